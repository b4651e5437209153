"""The Kafka sink: produces events to one topic and accounts for every delivery report.

Every produced event has a delivery report: a confirmed one is counted as
delivered, a failed one is logged with its customer_id, counted as failed and,
given a dead-letter file, written to it with the event itself. Nothing is
dropped silently.

Without metrics, the plain sink asks for failed reports only
(``delivery.report.only.error``): a confirmation then costs the loop no Python
call, and the delivered count is derived instead, as the events queued less
those still in the client (queued, in flight, or with a report not yet served)
less the failed reports; confirmations are seen at the sink's polls, where they end
a streak of failures or an outage. Metrics count confirmations per store and slot, and a
transactional producer's sink keeps its own bookkeeping: both keep every report.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from foot_traffic.errors import DeliveryError
from foot_traffic.events.encoding import Encoded, MixedBatch
from foot_traffic.events.fields import ENTRY_TIME, ID_AT
from foot_traffic.kafka.client import (
    ALL_BROKERS_DOWN,
    UNASSIGNED,
    DeliveryReport,
    ProducerClient,
    describe_error,
    kafka_error,
)
from foot_traffic.kafka.deadletter import DeadLetterFile
from foot_traffic.kafka.properties import REPORTS_EVERY_DELIVERY
from foot_traffic.model.grid import datetime_to_us
from foot_traffic.run.recording import NO_METRICS, Recorder, Tally

log = logging.getLogger(__name__)


class AbortableError(DeliveryError):
    """The client refused an event because the open transaction must be aborted: aborted, it can be sent again."""


class ProducerFailedError(DeliveryError):
    """The client raised its fatal error from a poll: it sends nothing more (``cause``: the client's exception)."""

    def __init__(self, cause: KafkaException) -> None:
        super().__init__(f"the producer failed for good: {describe_error(cause)}; this process sends nothing more")
        self.cause = cause


def failed_for_good(exc: BaseException) -> bool:
    """Whether the client has failed for good: a fatal error, such as a producer the broker fenced.

    A transactional producer is fenced when the broker aborts its transaction for outliving
    transaction.timeout.ms (the process hung) and bumps its epoch; its later calls all fail.
    """
    error = kafka_error(exc)
    return error is not None and (error.fatal() or error.code() in (KafkaError._FATAL, KafkaError._FENCED))


def requires_abort(exc: KafkaException) -> bool:
    """Whether the client refused a message until the open transaction ends (it timed out while the process hung).

    Abortable, or failed for good: a fleet member's sink then replaces its producer (see transactions).
    """
    error = kafka_error(exc)
    return error is not None and (
        error.txn_requires_abort() or error.code() == KafkaError._STATE or failed_for_good(exc)
    )


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
    dead letters keep the plain JSON. ``client`` is the producer, shared with a transactional sink.
    Without metrics and outside transactions, only failures are reported (see the module's text), unless
    ``extra`` sets ``delivery.report.only.error`` to false.
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
        entry_timestamps: bool = False,
    ) -> None:
        self.topic = topic
        self.entry_timestamps = entry_timestamps
        self.bootstrap = bootstrap
        self._confirmed = 0
        self.failed = 0
        self.dead_letters = dead_letters
        self.serializer = serializer
        self._down = False
        self._metrics = metrics
        self._failures = FailureLog("" if dead_letters is None else f"; each is in {dead_letters.path}")
        self._reports: dict[tuple[str | None, str], DeliveryReport] = {}
        config = dict(extra or {})
        self.only_errors = (
            not metrics.enabled and "transactional.id" not in config and config.get(REPORTS_EVERY_DELIVERY) is not False
        )
        """Whether confirmations go unreported and the delivered count is derived from the client's queue."""
        if self.only_errors:
            config[REPORTS_EVERY_DELIVERY] = True
        self._queued = 0
        """Events the client accepted (counted only while only failures are reported)."""
        self._lost = 0
        """Failed delivery reports (counted only while only failures are reported)."""
        self._served = 0
        """Confirmations whose effects (a streak ended, the brokers back) have been applied."""
        self._config, self._factory = config, producer_factory
        self.client = ProducerClient(bootstrap, config, self._on_error, producer_factory)
        self._partition = self.client.fixed_partition(topic)
        """The main topic's partition when it has only one, else UNASSIGNED (the partitioner's choice)."""

    @property
    def delivered(self) -> int:
        """Events confirmed so far: counted report by report, or derived when only failures are reported.

        The derived count is the queued events less the client's length (queued, in flight, or a report
        not yet served) less the failed reports served; it only grows, and is exact once nothing is pending.
        """
        if self.only_errors:
            self._confirmed = max(self._confirmed, self._queued - self.client.pending() - self._lost)
        return self._confirmed

    def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
        """Queue one visit event of a (store, slot); wait for room while the local queue is full."""
        # KAFKA_TIMESTAMP=entry: the entry_time field sits at a fixed place in every event's bytes
        entry = dt.datetime.fromisoformat(value[ENTRY_TIME].decode()) if self.entry_timestamps else None
        stamp = 0 if entry is None else datetime_to_us(entry) // 1000
        self._produce(self.topic, key, value, self._report(store_id, slot), stamp)
        self.poll()

    def send_to(self, topic: str, key: str, value: bytes) -> None:
        """Queue one event for another topic, as plain JSON; wait for room while the local queue is full."""
        self._produce(topic, key, value, self._on_delivery)
        self.poll()

    def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
        """Queue events [start, stop) of a batch, key = customer_id; wait for room while the queue is full."""
        if stop <= start:
            return
        reports = self._reports_of(batch, start, stop)
        if self.serializer is not None or self.entry_timestamps:  # one serializer call, or a timestamp, per event
            stamps = (batch.entries_us[start:stop] // 1000).tolist() if self.entry_timestamps else [0] * (stop - start)
            for i, report, stamp in zip(range(start, stop), reports, stamps, strict=False):
                self._produce(self.topic, batch.key(i).decode(), batch.value(i), report, stamp)
            self.poll()
            return
        try_produce, produce, topic, partition = (
            self.client.try_produce,
            self.client.produce,
            self.topic,
            self._partition,
        )
        lines, id_at = batch.lines, ID_AT
        for k, (offset, end, report) in enumerate(zip(*batch.bounds(start, stop), reports, strict=False)):
            value, key = lines[offset:end], lines[offset + id_at : offset + id_at + 36]
            try:
                try:
                    try_produce(topic, value, key, partition, report)
                except BufferError:  # the queue is full: the client's backpressure loop takes over
                    produce(topic, value, key, report, partition)
            except KafkaException as exc:
                self._queued += k
                raise self._refused(topic, key.decode(), value, exc) from None
        self._queued += stop - start
        self.poll()

    def _reports_of(self, batch: Encoded, start: int, stop: int) -> Iterable[DeliveryReport]:
        """The delivery callback of each event [start, stop): its (store, slot)'s, built once per group."""
        if isinstance(batch, MixedBatch) and self._metrics.enabled:
            groups = batch.groups[start:stop].tolist()
            per_group = {g: self._report(batch.infos[g].store_id, batch.infos[g].time_slot) for g in set(groups)}
            return [per_group[g] for g in groups]
        return itertools.repeat(self._report(*batch.origin(start)))

    def _produce(self, topic: str, key: str, value: bytes, report: DeliveryReport, timestamp_ms: int = 0) -> None:
        """Serialise (for the main topic) and queue one event; DeliveryError if it is refused outright."""
        wire = self._serialize(topic, key, value)
        try:
            self.client.produce(
                topic,
                wire,
                key.encode(),
                report,
                self._partition if topic == self.topic else UNASSIGNED,
                timestamp_ms=timestamp_ms,
            )
        except KafkaException as exc:
            raise self._refused(topic, key, value, exc) from None
        self._queued += 1

    def _refused(self, topic: str, key: str, value: bytes, exc: KafkaException) -> DeliveryError:
        """Count and keep an event the client refused outright; return the error that stops the run.

        Refused because the open transaction must be aborted first (its messages timed out while
        the process hung, say), the error is an :class:`AbortableError`: a fleet's sink can abort
        and send the transaction's events again.
        """
        self.failed += 1
        self._dead_letter(topic, key, value, describe_error(exc))
        kind = AbortableError if requires_abort(exc) else DeliveryError
        return kind(f"cannot produce event {key}: {describe_error(exc)}")

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
                    self._confirmed += 1
                    return
            else:
                tally.failed += 1
            on_delivery(err, msg)

        return report

    def poll(self) -> None:
        """Serve delivery reports that are ready; ProducerFailedError if the client has failed for good."""
        try:
            self.client.poll()
        except KafkaException as exc:  # the client's fatal error, raised by the poll that serves it
            raise ProducerFailedError(exc) from None
        self._settle()

    def pending(self) -> int:
        """Events queued or in flight, not yet confirmed or failed."""
        return self.client.pending()

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding deliveries; return how many are still unconfirmed."""
        try:
            pending = self.client.flush(timeout_s)
        except KafkaException as exc:  # the client's fatal error: what it holds is never confirmed
            log.error("%s", ProducerFailedError(exc))
            pending = self.client.pending()
        self._settle()
        self._failures.release()
        return pending

    def renew(self) -> ProducerClient:
        """Replace a client that failed for good by a new one of the same configuration; return it.

        What the old one still holds is purged first: each of its events gets its failed report now.
        """
        self._purge()
        self.client = ProducerClient(self.bootstrap, self._config, self._on_error, self._factory)
        return self.client

    def _purge(self) -> None:
        """Fail whatever the client still holds, queued or in flight: each event gets its failed report now."""
        try:
            self.client.purge()
        except KafkaException as exc:  # a client that failed for good raises its fatal error at the first poll
            log.debug("Purging the producer: %s", describe_error(exc))

    def close(self) -> None:
        """Fail whatever is still unconfirmed (its delivery reports say so), then close the dead-letter file."""
        self._purge()
        self._settle()
        self._failures.release()
        if self.dead_letters is not None:
            self.dead_letters.close()

    def _settle(self) -> None:
        """With only failures reported: apply what the confirmations since the last call mean."""
        if self.only_errors and self.delivered > self._served:
            self._served = self._confirmed
            self._resumed()

    def _resumed(self) -> None:
        """A delivery was confirmed: a streak of failures is over, and brokers reported down are back."""
        if self._failures.streak:
            self._failures.delivered()
        if self._down:
            self._down = False
            self._metrics.broker_up()
            log.warning("Kafka at %s is reachable again; deliveries resumed", self.bootstrap)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:  # the common case first: a confirmation reads nothing of the message
            self._confirmed += 1
            if self._failures.streak or self._down:
                self._resumed()
            return
        key = msg.key()
        customer_id = key.decode() if isinstance(key, bytes) else str(key)
        self.failed += 1
        self._lost += 1
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
        if err.code() == ALL_BROKERS_DOWN:
            if not self._down:
                self._down = True
                self._metrics.broker_down()
                log.warning("All Kafka brokers at %s are down; events are kept and retried", self.bootstrap)
            return
        if err.fatal():
            log.error("Fatal Kafka producer error: %s: %s", err.name(), err.str())
        else:
            log.debug("Kafka client error: %s: %s", err.name(), err.str())
