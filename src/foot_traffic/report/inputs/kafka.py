"""Events from a Kafka topic: its committed records up to the end offsets of the moment reading begins.

The records are read through the Kafka adapter (:mod:`foot_traffic.kafka.reader`);
values in the Schema Registry framing (JSON or Avro payloads) are turned into
plain event lines by :mod:`foot_traffic.report.inputs.framing`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from foot_traffic.kafka.reader import TopicReader
from foot_traffic.report.inputs.events import Chunk, EventsInputError
from foot_traffic.report.inputs.framing import FramedValues, RegistrySource
from foot_traffic.retry import Backoff

log = logging.getLogger(__name__)

KAFKA_BATCH = 50_000
"""Records asked of the consumer at once."""
STALL_SECONDS = 60.0
"""A topic that delivers nothing for this long before its end offsets is reported unreadable."""


@dataclass(frozen=True, slots=True)
class KafkaSource:
    """Where to read events from Kafka, and how long to try."""

    bootstrap: str
    topic: str
    client: Mapping[str, str]
    """Security properties (``security.*``, ``sasl.*``, ``ssl.*``) for the consumer."""
    attempts: int = 1
    backoff_s: float = 5.0
    timeout_s: float = 10.0
    registry: RegistrySource | None = None
    """The schema registry of values in its framing (SCHEMA_REGISTRY_URL); None: only JSON payloads are read."""


def kafka_chunks(source: KafkaSource, *, batch: int = KAFKA_BATCH, stall_s: float = STALL_SECONDS) -> Iterator[Chunk]:
    """Blocks of the topic's record values, from each partition's start to its end offset when reading began.

    Raises KafkaUnavailableError when the cluster cannot be reached or stops
    answering, EventsInputError when the topic does not exist, RegistryUnavailableError
    when the schema registry of framed values cannot be reached.
    """
    framing = FramedValues(source.registry)
    reader = TopicReader(source.bootstrap, source.topic, source.client, timeout_s=source.timeout_s)
    try:
        partitions = reader.partitions(Backoff(source.attempts, source.backoff_s))
        if partitions is None:
            raise EventsInputError(
                f"KAFKA_TOPIC={source.topic!r}: no such topic on {source.bootstrap}; expected an existing topic"
            )
        ends = reader.assign_to_end(partitions)
        log.info("Reading %s: %d record(s) in %d partition(s)", source.topic, sum(ends.values()), len(partitions))
        for values, messages in reader.batches(ends, batch, stall_s):
            blank = [value or b" " for value in values]  # an empty or null value counts as a blank line
            yield kafka_chunk(source.topic, blank, messages, framing)
    finally:
        reader.close()
        framing.close()


def kafka_chunk(topic: str, values: list[bytes], messages: list[Any], framing: FramedValues | None = None) -> Chunk:
    """One block of record values; a value holding a newline would split into two lines, so it is refused.

    Values in the Schema Registry framing (magic byte 0, 4-byte schema id, payload)
    are turned into plain event JSON by ``framing`` (by default one without a
    registry, which reads JSON payloads only); see :mod:`foot_traffic.report.inputs.framing`.
    Plain values are joined as they are: JSON text never holds a NUL byte, so one
    search of the block tells whether any value is framed.
    """

    def where(i: int, before: int = 0) -> str:
        return f"KAFKA_TOPIC={topic!r} partition {messages[i].partition()} offset {messages[i].offset()}"

    framed = bool(values) and values[0][:1] == b"\x00"
    data = b"" if framed else b"\n".join(values)
    if framed or b"\x00" in data:
        if framing is None:
            framing = FramedValues()
        values = framing.decode(values, where)
        data = b"\n".join(values)
    if data.count(b"\n") != len(values) - 1:
        bad = next(i for i, v in enumerate(values) if b"\n" in v)
        raise EventsInputError(f"{where(bad)}: a record value holds a newline; expected one JSON event per record")
    partitions = np.array([message.partition() for message in messages], dtype=np.int32)
    timestamps = np.array([message.timestamp()[1] for message in messages], dtype=np.int64)
    return Chunk(data, where, partitions, timestamps)
