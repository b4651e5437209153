"""The consumer side of the Kafka adapter: one topic read once, from each partition's start to its end offset.

The reader is a one-off consumer (no group offsets committed, committed
transactions only) of the offsets that exist when reading begins: records
written later are left out, so a report describes one fixed set of events.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from foot_traffic.errors import KafkaUnavailableError
from foot_traffic.retry import Backoff, RetriesExhausted, Retryable, retrying

_client_log = logging.getLogger("foot_traffic.librdkafka")

FETCH_BYTES = 32 << 20
"""Largest fetch response from the brokers."""
SECURITY_PREFIXES = ("security.", "sasl.", "ssl.", "enable.ssl.")
"""Client properties a reader takes from the settings: only the security ones (the rest are the producer's)."""

Batch = tuple[list[bytes], list[Message]]
"""Record values (a null value as b"") and the records they are of, in the order consumed."""


def consumer_config(bootstrap: str, client: Mapping[str, str]) -> dict[str, Any]:
    """A one-off reader: no group offsets committed, committed transactions only, end-of-partition events.

    Only the security properties of ``client`` apply: the KAFKA_PRODUCER_* pass-through is the producer's.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": f"foot-traffic-report-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        # large fetches that keep the local queue full (librdkafka's 64 MB cap) read about twice as fast as defaults
        "fetch.max.bytes": FETCH_BYTES,
        "max.partition.fetch.bytes": FETCH_BYTES // 2,
        "receive.message.max.bytes": FETCH_BYTES + 512,
        "queued.min.messages": 1_000_000,
    }
    for key, value in client.items():
        if key.startswith(SECURITY_PREFIXES):
            config[key] = value
    return config


class TopicReader:
    """Reads one topic up to the end offsets of the moment :meth:`assign_to_end` is called; close it when done."""

    def __init__(self, bootstrap: str, topic: str, client: Mapping[str, str], *, timeout_s: float) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._timeout_s = timeout_s
        self._errors: list[KafkaError] = []
        self._consumer = Consumer(consumer_config(bootstrap, client), logger=_client_log, error_cb=self._errors.append)

    def partitions(self, backoff: Backoff) -> list[int] | None:
        """The topic's partitions, None when it does not exist; KafkaUnavailableError when the cluster is not reached.

        Each of ``backoff.attempts`` tries waits up to the timeout for the cluster's answer.
        """
        try:
            metadata = retrying(self._list_topic, backoff, f"Kafka at {self.bootstrap}")
        except RetriesExhausted as exc:
            raise KafkaUnavailableError(
                f"cannot reach Kafka at {self.bootstrap} after {exc.attempts} attempt(s): {exc.reason}; "
                "check KAFKA_BROKER"
            ) from None
        described = metadata.topics.get(self.topic)
        if described is None or described.error is not None or not described.partitions:
            return None
        return sorted(described.partitions)

    def _list_topic(self) -> Any:
        """The topic's metadata; Retryable with the client's last error when the cluster does not answer."""
        try:
            return self._consumer.list_topics(self.topic, timeout=self._timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            reason = next((e.str() for e in reversed(self._errors) if hasattr(e, "str")), "") or str(error)
            self._errors.clear()
            raise Retryable(reason) from None

    def assign_to_end(self, partitions: Sequence[int]) -> dict[int, int]:
        """Start reading each partition that holds records at its first offset; return their end offsets."""
        ends: dict[int, int] = {}
        assignment = []
        for partition in partitions:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=self._timeout_s, cached=False
            )
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(self.topic, partition, low))
        if assignment:
            self._consumer.assign(assignment)
        return ends

    def batches(self, ends: Mapping[int, int], batch: int, stall_s: float) -> Iterator[Batch]:
        """Batches of records until every partition has reached its end offset.

        Raises KafkaUnavailableError when a partition cannot be read, or when
        nothing arrives for ``stall_s`` seconds before the end offsets.
        """
        pending = set(ends)
        last_progress = time.monotonic()
        while pending:
            messages = self._consumer.consume(batch, timeout=1.0)
            values, kept = batch_records(messages, self.topic, ends, pending)
            if values:
                last_progress = time.monotonic()
                yield values, kept
            elif pending:
                # transaction markers and aborted records take offsets but are never delivered
                positions = self._consumer.position([TopicPartition(self.topic, p) for p in pending])
                pending -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
                if pending and time.monotonic() - last_progress > stall_s:
                    raise KafkaUnavailableError(
                        f"no record of {self.topic} received for {stall_s:.0f} s before its end offsets; "
                        "check KAFKA_BROKER"
                    )

    def close(self) -> None:
        """Leave the cluster."""
        self._consumer.close()


def batch_records(messages: list[Any], topic: str, ends: Mapping[int, int], pending: set[int]) -> Batch:
    """The values of a batch's records before their partition's end offset; updates ``pending``.

    A batch of plain records (the usual case) is sorted out with a few list
    comprehensions and numpy; end-of-partition events, errors and null values
    go through the loop below.
    """
    values = [message.value() for message in messages]
    if not messages or None in values:
        return _records_one_by_one(messages, topic, ends, pending)
    partitions = np.array([message.partition() for message in messages], dtype=np.int64)
    offsets = np.array([message.offset() for message in messages], dtype=np.int64)
    end = np.zeros(int(partitions.max()) + 1, dtype=np.int64)
    for partition in np.unique(partitions).tolist():
        end[partition] = ends[partition]
    limit = end[partitions]
    pending -= set(np.unique(partitions[offsets >= limit - 1]).tolist())
    keep = offsets < limit
    if keep.all():
        return values, messages
    picked = np.flatnonzero(keep).tolist()
    return [values[i] for i in picked], [messages[i] for i in picked]


def _records_one_by_one(messages: list[Any], topic: str, ends: Mapping[int, int], pending: set[int]) -> Batch:
    values: list[bytes] = []
    kept: list[Message] = []
    for message in messages:
        error = message.error()
        partition = message.partition()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(partition)
                continue
            raise KafkaUnavailableError(f"cannot read {topic} partition {partition}: {error.str()}")
        offset = message.offset()
        if offset >= ends[partition]:
            pending.discard(partition)
            continue
        if offset == ends[partition] - 1:
            pending.discard(partition)
        values.append(message.value() or b"")
        kept.append(message)
    return values, kept
