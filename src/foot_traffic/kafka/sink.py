"""A thin adapter from the Sink protocol to confluent-kafka's Producer.

Start-up checks the broker with bounded retries and creates the topic when it
is missing. Every produced event has a delivery report: a confirmed one is
counted as delivered, a failed one is logged with its customer_id, counted
as failed and, given a dead-letter file, written to it with the event itself.
Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from foot_traffic.errors import DeliveryError, KafkaRefusedError, KafkaUnavailableError
from foot_traffic.events.encoding import ID_AT, EncodedBatch
from foot_traffic.kafka.deadletter import DeadLetterFile
from foot_traffic.metrics.prometheus import NO_METRICS, Recorder, Tally, visit_labels

log = logging.getLogger(__name__)
_client_log = logging.getLogger("foot_traffic.librdkafka")

BUFFER_FULL_WAIT_S = 0.1
"""Poll interval while the local queue is full."""

DeliveryReport = Callable[[KafkaError | None, Message], None]
"""A produce call's delivery callback."""


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


def connect(
    bootstrap: str,
    topics: Sequence[str],
    *,
    attempts: int,
    backoff_s: float,
    attempt_timeout_s: float,
    partitions: int,
    replication_factor: int,
    extra: Mapping[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Reach the cluster within ``attempts`` tries and make sure the topics exist.

    Raises KafkaUnavailableError naming the broker after the last attempt, or
    naming the topic and the reason when it cannot be created.
    """
    errors: list[KafkaError] = []
    admin = AdminClient(admin_config(bootstrap, extra), logger=_client_log, error_cb=errors.append)
    last_error = ""
    for attempt in range(1, attempts + 1):
        try:
            metadata = _list_topics(admin, attempt_timeout_s, errors)
            break
        except KafkaException as exc:
            refusal = _refusal(errors)
            if refusal is not None:
                raise KafkaRefusedError(f"cannot connect to Kafka at {bootstrap}: {refusal}") from None
            last_error = next((f"{e.name()}: {e.str()}" for e in reversed(errors) if e.code() != _DOWN), "")
            last_error = last_error or describe_error(exc)
            errors.clear()
            if attempt < attempts:
                log.warning(
                    "Kafka at %s not reachable (attempt %d of %d): %s; retrying in %.1f s",
                    bootstrap,
                    attempt,
                    attempts,
                    last_error,
                    backoff_s,
                )
                sleep(backoff_s)
    else:
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {bootstrap} after {attempts} attempt(s) "
            f"{backoff_s:g} s apart: {last_error}; check KAFKA_BROKER"
        )
    log.info("Connected to Kafka at %s (%d broker(s))", bootstrap, len(metadata.brokers))
    for topic in topics:
        existing = metadata.topics.get(topic)
        if existing is None or existing.error is not None:
            _create_topic(
                admin, bootstrap, topic, partitions=partitions, rf=replication_factor, timeout_s=attempt_timeout_s
            )


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


def _create_topic(
    admin: AdminClient, bootstrap: str, topic: str, *, partitions: int, rf: int, timeout_s: float
) -> None:
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=rf)],
        request_timeout=timeout_s,
    )
    try:
        futures[topic].result(timeout=timeout_s + 5)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise KafkaUnavailableError(
            f"topic {topic!r} does not exist on {bootstrap} and cannot be created "
            f"({partitions} partition(s), replication factor {rf}): {describe_error(exc)}; "
            "create it yourself, or adjust KAFKA_TOPIC_PARTITIONS / KAFKA_TOPIC_REPLICATION_FACTOR"
        ) from None
    log.info("Created topic %s (%d partition(s), replication factor %d)", topic, partitions, rf)


CONNECT_SLICE_S = 0.25
"""First wait of a start-up attempt before the client's error reports are read; each next wait doubles."""

_DOWN = KafkaError._ALL_BROKERS_DOWN
_TLS_ALERT = re.compile(
    r"alert (bad certificate|certificate required|unknown ca|certificate unknown|certificate revoked|"
    r"certificate expired|unsupported certificate|access denied|handshake failure)",
    re.IGNORECASE,
)


def _list_topics(admin: AdminClient, timeout_s: float, errors: list[KafkaError]) -> Any:
    """The cluster's metadata within ``timeout_s``, given up at once when the brokers refuse this client.

    librdkafka reports a failed login or TLS handshake only to the error
    callback and keeps reconnecting, so the attempt waits in growing slices and
    reads those reports between them.
    """
    deadline = time.monotonic() + timeout_s
    wait = CONNECT_SLICE_S
    while True:
        left = deadline - time.monotonic()
        try:
            return admin.list_topics(timeout=max(min(wait, left), 0.001))
        except KafkaException:
            admin.poll(0)
            if left <= wait or _refusal(errors) is not None:
                raise
            wait *= 2


def _refusal(errors: Sequence[KafkaError]) -> str | None:
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


def describe_error(exc: BaseException) -> str:
    """A one-line description of a Kafka client exception for messages: ``NAME: text`` of its KafkaError, else str()."""
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return f"{error.name()}: {error.str()}"
    return str(exc)


class ValueSerializer(Protocol):
    """Turns an event's plain JSON into the bytes its topic receives (e.g. a schema registry's framing), and back."""

    def __call__(self, value: bytes) -> bytes:
        """The bytes to produce for one event; DeliveryError if the event cannot be serialised."""
        ...

    def plain(self, value: bytes) -> bytes:
        """The plain JSON of a produced value; ValueError if it is not one of these events."""
        ...


class FailureLog:
    """ERROR lines for failed deliveries that stay readable in a long outage.

    The first ``first`` failures of a streak (failures with no confirmed delivery between them)
    get a line each, naming the customer_id; the rest are counted and reported in one line per
    ``interval_s``, and whatever is held back is reported when a delivery succeeds again or the
    sink is flushed or closed. Every failed event is still counted, and kept in the dead-letter file.
    """

    def __init__(
        self,
        where: str = "",
        *,
        first: int = 10,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.where = where
        self.first = first
        self.interval_s = interval_s
        self._clock = clock
        self.streak = 0
        """Failures since the last confirmed delivery."""
        self._held = 0
        self._held_since = 0.0
        self._last_reason = ""

    def failed(self, customer_id: str, reason: str) -> None:
        """One delivery failed."""
        self.streak += 1
        if self.streak <= self.first:
            log.error("Delivery failed for customer_id=%s: %s", customer_id, reason)
            return
        if self._held == 0:
            self._held_since = self._clock()
        self._held += 1
        self._last_reason = reason
        if self._clock() - self._held_since >= self.interval_s:
            self.release()

    def delivered(self) -> None:
        """A delivery succeeded: the streak is over."""
        self.release()
        self.streak = 0

    def release(self) -> None:
        """Report the failures held back, if any, in one line."""
        if self._held == 0:
            return
        log.error(
            "Delivery failed for %d more event(s) in the last %.0f s (last error: %s)%s",
            self._held,
            max(self._clock() - self._held_since, 0.0),
            self._last_reason,
            self.where,
        )
        self._held = 0


class KafkaSink:
    """Produces events to one topic, key = customer_id, and accounts for every delivery report.

    With a ``serializer``, the main topic's events are produced as it frames them, one call per event;
    dead letters keep the plain JSON.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        extra: Mapping[str, Any] | None = None,
        producer_factory: Callable[..., Producer] = Producer,
        dead_letters: DeadLetterFile | None = None,
        serializer: ValueSerializer | None = None,
        metrics: Recorder = NO_METRICS,
    ) -> None:
        self.topic = topic
        self.bootstrap = bootstrap
        self.delivered = 0
        self.failed = 0
        self.dead_letters = dead_letters
        self.serializer = serializer
        self._down = False
        self._metrics = metrics
        self._failures = FailureLog("" if dead_letters is None else f"; each is in {dead_letters.path}")
        self._reports: dict[tuple[str | None, str], DeliveryReport] = {}
        self._producer = producer_factory(
            {**producer_config(bootstrap, extra), "error_cb": self._on_error},
            logger=_client_log,
        )

    def send(self, key: str, value: bytes, topic: str | None = None) -> None:
        """Queue one event for ``topic`` (default: the sink's); wait for room while the local queue is full."""
        wire = self._serialize(topic or self.topic, key, value)
        report: DeliveryReport = self._on_delivery
        if self._metrics.enabled and (topic or self.topic) == self.topic:
            labels = visit_labels(value)  # about a microsecond: only the event-by-event paths come here
            report = report if labels is None else self._report(*labels)
        while True:
            try:
                self._producer.produce(topic or self.topic, wire, key.encode(), on_delivery=report)
                break
            except BufferError:
                self._producer.poll(BUFFER_FULL_WAIT_S)
            except KafkaException as exc:
                self.failed += 1
                self._dead_letter(topic or self.topic, key, value, describe_error(exc))
                raise DeliveryError(f"cannot produce event {key}: {describe_error(exc)}") from None
        self._producer.poll(0)

    def send_batch(self, batch: EncodedBatch, start: int, stop: int) -> None:
        """Queue events [start, stop) of a batch, key = customer_id; wait for room while the queue is full."""
        if self.serializer is not None:
            # one serializer call per event; KafkaSink's own send, so a subclass's per-event hooks stay per batch
            for i in range(start, stop):
                KafkaSink.send(self, batch.key(i).decode(), batch.value(i))
            return
        produce, topic, report = self._producer.produce, self.topic, self._report(batch.store_id, batch.time_slot)
        step = batch.width + 1
        lines, width, id_at = batch.lines, batch.width, ID_AT
        for offset in range(start * step, stop * step, step):
            value, key = lines[offset : offset + width], lines[offset + id_at : offset + id_at + 36]
            try:
                produce(topic, value, key, on_delivery=report)
            except BufferError:
                self._producer.poll(BUFFER_FULL_WAIT_S)
                self._produce_retrying(value, key, report)
            except KafkaException as exc:
                self.failed += 1
                self._dead_letter(topic, key.decode(), value, describe_error(exc))
                raise DeliveryError(f"cannot produce event {key.decode()}: {describe_error(exc)}") from None
        self._producer.poll(0)

    def _serialize(self, topic: str, key: str, value: bytes) -> bytes:
        """The bytes to produce: the serializer's for the main topic, else the plain JSON."""
        if self.serializer is None or topic != self.topic:
            return value
        try:
            return self.serializer(value)
        except DeliveryError as exc:
            self.failed += 1
            self._dead_letter(topic, key, value, str(exc))
            raise

    def _report(self, store_id: str | None, slot: str) -> DeliveryReport:
        """The delivery callback of a (store, slot)'s events: the plain one, or one that also counts them."""
        if not self._metrics.enabled:
            return self._on_delivery
        found = self._reports.get((store_id, slot))
        if found is None:
            found = self._reports[store_id, slot] = self._counting(self._metrics.tally(store_id, slot))
        return found

    def _counting(self, tally: Tally) -> DeliveryReport:
        """A delivery callback that counts in ``tally`` too, as cheap as the plain one.

        A confirmation while Kafka is up and no failure is pending is all there is to count, so it
        skips the plain callback (which would read the message); anything else goes through it.
        """
        on_delivery, failures = self._on_delivery, self._failures

        def report(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                tally.delivered += 1
                if not self._down and not failures.streak:
                    self.delivered += 1
                    return
            else:
                tally.failed += 1
            on_delivery(err, msg)

        return report

    def _produce_retrying(self, value: bytes, key: bytes, report: DeliveryReport) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value, key, on_delivery=report)
                return
            except BufferError:
                self._producer.poll(BUFFER_FULL_WAIT_S)

    def poll(self) -> None:
        """Serve delivery reports that are ready."""
        self._producer.poll(0)

    def pending(self) -> int:
        """Events queued or in flight, not yet confirmed or failed."""
        return len(self._producer)

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding deliveries; return how many are still unconfirmed."""
        pending = int(self._producer.flush(timeout_s))
        self._failures.release()
        return pending

    def close(self) -> None:
        """Fail whatever is still unconfirmed (its delivery reports say so), then close the dead-letter file."""
        if len(self._producer):
            self._producer.purge()
            self._producer.flush(0)
        self._failures.release()
        if self.dead_letters is not None:
            self.dead_letters.close()

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        key = msg.key()
        customer_id = key.decode() if isinstance(key, bytes) else str(key)
        if err is None:
            self.delivered += 1
            if self._failures.streak:
                self._failures.delivered()
            if self._down:
                self._down = False
                self._metrics.broker_up()
                log.warning("Kafka at %s is reachable again; deliveries resumed", self.bootstrap)
            return
        self.failed += 1
        self._failures.failed(customer_id, f"{err.name()}: {err.str()}")
        if self.dead_letters is not None:
            value = msg.value()
            topic = msg.topic() or self.topic
            self._dead_letter(
                topic,
                customer_id,
                self._plain(topic, value if isinstance(value, bytes) else b""),
                f"{err.name()}: {err.str()}",
            )

    def _plain(self, topic: str, value: bytes) -> bytes:
        """The plain JSON of a produced value (a serialised one decoded; as it is if that fails)."""
        if self.serializer is None or topic != self.topic or not value:
            return value
        try:
            return self.serializer.plain(value)
        except ValueError:
            return value

    def _dead_letter(self, topic: str, customer_id: str, value: bytes, error: str) -> None:
        """Keep an event Kafka did not take in the dead-letter file, if there is one."""
        if self.dead_letters is not None:
            self.dead_letters.write(topic, customer_id, bytes(value), error)

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            if not self._down:
                self._down = True
                self._metrics.broker_down()
                log.warning("All Kafka brokers at %s are down; events are kept and retried", self.bootstrap)
            return
        if err.fatal():
            log.error("Fatal Kafka producer error: %s: %s", err.name(), err.str())
        else:
            log.debug("Kafka client error: %s: %s", err.name(), err.str())
