"""The Kafka client's plumbing: its configurations, its errors in words, and the producer both sinks share.

:class:`ProducerClient` is the thin wrapper over confluent-kafka's Producer that
the plain and the transactional sink use alike: it holds the one
produce-with-backpressure loop (a full local queue makes the producer wait,
never drop) and the transaction calls.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

client_log = logging.getLogger("foot_traffic.librdkafka")
"""The logger librdkafka's own lines go to (silenced unless LOG_LEVEL=DEBUG)."""

BUFFER_FULL_WAIT_S = 0.1
"""Poll interval while the local queue is full."""
ALL_BROKERS_DOWN = KafkaError._ALL_BROKERS_DOWN
UNASSIGNED = -1
"""The partition argument that leaves the choice to the client's partitioner (librdkafka's RD_KAFKA_PARTITION_UA)."""
METADATA_TIMEOUT_S = 10.0
"""How long the start-up may wait for a topic's partition count before leaving placement to the partitioner."""

DeliveryReport = Callable[[KafkaError | None, Message], None]
"""A produce call's delivery callback."""

_TLS_ALERT = re.compile(
    r"alert (bad certificate|certificate required|unknown ca|certificate unknown|certificate revoked|"
    r"certificate expired|unsupported certificate|access denied|handshake failure)",
    re.IGNORECASE,
)


def producer_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The producer properties: durable (acks=all), idempotent, batched.

    Up to 10,000 messages per batch after at most 5 ms of lingering keep the
    broker's request rate low in backfills without delaying real-time events
    noticeably; the local queue is capped at 64 MB so a backfill's memory stays
    bounded (a full queue makes the producer wait, never drop).
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": "foot-traffic",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "queue.buffering.max.kbytes": 65_536,
        "compression.type": "none",
    }
    config.update(extra or {})
    return config


def admin_config(bootstrap: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """A client configuration of ``bootstrap`` plus only the security properties of ``extra``.

    For the admin clients and consumers beside the producer: they connect as it does, but the producer's
    other pass-through properties (``linger.ms``, ...) are not theirs.
    """
    config = {"bootstrap.servers": bootstrap}
    for key, value in (extra or {}).items():
        if key.startswith(("security.", "sasl.", "ssl.", "enable.ssl.")):
            config[key] = value
    return config


def kafka_error(exc: BaseException) -> KafkaError | None:
    """The KafkaError a Kafka client exception carries, if any."""
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else None


def describe_error(exc: BaseException) -> str:
    """A one-line description of a Kafka client exception for messages: ``NAME: text`` of its KafkaError, else str()."""
    error = kafka_error(exc)
    return str(exc) if error is None else f"{error.name()}: {error.str()}"


def refusal(errors: Sequence[KafkaError]) -> str | None:
    """Why the brokers refused this client (failed SASL login or TLS handshake), or None if they did not."""
    for error in errors:
        code, text = error.code(), error.str()
        if code == KafkaError._AUTHENTICATION:
            return (
                f"authentication failed: {text}; "
                "check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if code == KafkaError._SSL and "certificate verify failed" in text:
            return (
                f"the broker's certificate is not trusted: {text}; "
                "check KAFKA_SSL_CA_LOCATION and KAFKA_SSL_ENDPOINT_IDENTIFICATION"
            )
        if code in (KafkaError._SSL, KafkaError._TRANSPORT) and _TLS_ALERT.search(text):
            return (
                f"the broker rejected this client's TLS handshake: {text}; "
                "check KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION"
            )
        if code == KafkaError._SSL:
            return f"SSL handshake failed: {text}; check KAFKA_SECURITY_PROTOCOL and the KAFKA_SSL_* settings"
    return None


class ProducerClient:
    """One confluent-kafka Producer, configured by :func:`producer_config`, with backpressure and transactions.

    ``try_produce`` is the client's own produce call, which raises BufferError while the local queue
    is full: a hot loop tries it first and falls back to :meth:`produce` only then. Its arguments are
    positional, ``(topic, value, key, partition, report)``: keywords cost the client a parse per call.
    """

    def __init__(
        self,
        bootstrap: str,
        extra: Mapping[str, Any] | None,
        on_error: Callable[[KafkaError], None],
        factory: Callable[..., Producer] = Producer,
    ) -> None:
        self._producer = factory({**producer_config(bootstrap, extra), "error_cb": on_error}, logger=client_log)
        self.try_produce = self._producer.produce

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        report: DeliveryReport | None,
        partition: int = UNASSIGNED,
        *,
        timestamp_ms: int = 0,
    ) -> None:
        """Queue one message (timestamp 0: the time of sending); while the local queue is full, serve reports.

        Raises KafkaException when the client refuses the message outright.
        """
        while True:
            try:
                self._producer.produce(topic, value, key, partition, report, timestamp=timestamp_ms)
                return
            except BufferError:
                self._producer.poll(BUFFER_FULL_WAIT_S)

    def fixed_partition(self, topic: str, timeout_s: float = METADATA_TIMEOUT_S) -> int:
        """0 if ``topic`` has one partition, where any partitioner puts every key; else UNASSIGNED.

        Naming the partition spares librdkafka's partitioner a call per message. A topic with more
        partitions, or whose metadata cannot be read in ``timeout_s``, is left to the partitioner, so a
        record's placement never differs from the client's own choice.
        """
        try:
            found = self._producer.list_topics(topic, timeout_s).topics.get(topic)
        except KafkaException:
            return UNASSIGNED
        if found is None or found.error is not None or len(found.partitions) != 1:
            return UNASSIGNED
        return 0

    def poll(self, timeout_s: float = 0) -> None:
        """Serve the delivery reports that are ready, waiting up to ``timeout_s`` for one."""
        self._producer.poll(timeout_s)

    def pending(self) -> int:
        """Messages queued or in flight, not yet confirmed or failed."""
        return len(self._producer)

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for outstanding deliveries; return how many are still pending."""
        return int(self._producer.flush(timeout_s))

    def purge(self) -> None:
        """Fail whatever is still queued or in flight: each gets its (failed) delivery report now."""
        if len(self._producer):
            self._producer.purge()
            self._producer.flush(0)

    def init_transactions(self, timeout_s: float) -> None:
        """Register the transactional id, fencing any earlier producer of it; KafkaException on failure."""
        self._producer.init_transactions(timeout_s)

    def begin_transaction(self) -> None:
        """Open a transaction."""
        self._producer.begin_transaction()

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], group: Any, timeout_s: float) -> None:
        """Add a consumer group's offsets to the open transaction, refused for a stale ``group`` (KIP-447)."""
        self._producer.send_offsets_to_transaction(offsets, group, timeout_s)

    def commit_transaction(self, timeout_s: float) -> None:
        """Commit the open transaction (after its deliveries); KafkaException on failure."""
        self._producer.commit_transaction(timeout_s)

    def abort_transaction(self, timeout_s: float) -> None:
        """Abort the open transaction; KafkaException on failure."""
        self._producer.abort_transaction(timeout_s)
