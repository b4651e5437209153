"""Crash-safe, exactly-once delivery: a transactional sink that resumes from its committed positions.

How it works:

* Events are produced inside Kafka transactions, committed every COMMIT_INTERVAL_MS
  (and whenever the loop goes idle past that interval, and at shutdown). A consumer
  reading with ``isolation.level=read_committed`` sees only committed events.
* The first transaction of a new run carries its run record, and every transaction
  carries, just before its commit, the position of each unit of work it holds events
  of (see :mod:`foot_traffic.kafka.resume`).
* After a crash (even SIGKILL), a restart with the same transactional id fences the
  old producer, whose open transaction is aborted, reads the state back and resumes
  each store right after its last committed event. Each shard of a run has a
  transactional id and positions of its own, so shards fence only their own zombies.

The transactional sink wraps a plain :class:`KafkaSink` and drives transactions on
the producer they share: composition, so the sink's accounting stays one piece of code.
A run's start-up (the state read back, where each store resumes) is
:mod:`foot_traffic.kafka.exactly_once`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from confluent_kafka import KafkaException

from foot_traffic.errors import DeliveryError, KafkaUnavailableError
from foot_traffic.events.encoding import Encoded
from foot_traffic.kafka.client import ProducerClient, describe_error, kafka_error
from foot_traffic.kafka.producer import (
    AbortableError,
    KafkaSink,
    ProducerFailedError,
    failed_for_good,
    requires_abort,
)
from foot_traffic.kafka.resume import (
    RunRecord,
    state_topic,
    unit_key,
)
from foot_traffic.model.units import Unit
from foot_traffic.retry import Backoff, RetriesExhausted, Retryable, retrying
from foot_traffic.run.positions import Position, Positions

log = logging.getLogger(__name__)

ONCE = Backoff(attempts=1, seconds=0.0)
"""One attempt, no retry."""

Committer = Callable[[Mapping[Unit, Position], float], bool]
"""Commits the open transaction, given the positions it carries and a timeout; False when refused (to abort)."""


@dataclass(frozen=True, slots=True)
class Held:
    """Events of a transaction: visit events of the topic, and others (sensor events)."""

    events: int = 0
    others: int = 0

    @property
    def total(self) -> int:
        """Every event."""
        return self.events + self.others

    def __add__(self, other: Held) -> Held:
        return Held(self.events + other.events, self.others + other.others)


class TransactionalKafkaSink:
    """A Sink that produces through ``sink`` inside transactions committed every ``commit_interval_s``.

    It counts events per transaction, not per delivery report: the events of the open
    transaction are delivered once it commits (a failed delivery fails the commit), failed
    when it cannot commit, and withdrawn when it is aborted for a rewind that sends them
    again (a fleet's): an acknowledged event of an aborted transaction was never delivered.
    With ``settle`` (an at-least-once fleet's checkpoints, which hold no events), each commit
    first waits for the events another producer sent: a position never leads unconfirmed events.
    """

    def __init__(
        self,
        sink: KafkaSink,
        *,
        commit_interval_s: float,
        run_record: RunRecord | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        timeout_s: float = 30.0,
        settle: Callable[[float], int] | None = None,
        backoff: Backoff = ONCE,
    ) -> None:
        self._sink = sink
        self._settle = settle
        self._client = sink.client
        self._interval = commit_interval_s
        self._monotonic = monotonic
        self._timeout = timeout_s
        self._open = False
        self._opened_at = 0.0
        self._record = run_record
        self._positions: Positions | None = None
        self._committer: Committer | None = None
        self._rewind: Callable[[], None] | None = None
        self._held = Held()
        self._broken: DeliveryError | None = None
        self._backoff = backoff
        self.delivered = 0
        """Events of committed transactions."""
        self.failed = 0
        """Events refused, or of transactions that could not commit and are not sent again."""
        self.withdrawn = Held()
        """Events of transactions aborted to be sent again: counted neither delivered nor failed."""
        self._initialise()

    def _initialise(self) -> None:
        """Register the transactional id, tried again while its error may pass (a coordinator still loading)."""
        bootstrap, backoff = self._sink.bootstrap, self._backoff

        def attempt() -> None:
            try:
                self._client.init_transactions(self._timeout)
            except KafkaException as exc:
                error = kafka_error(exc)
                if error is not None and error.retriable():
                    raise Retryable(describe_error(exc)) from None
                raise KafkaUnavailableError(
                    f"cannot initialise transactions on {bootstrap}: {describe_error(exc)}"
                ) from None

        try:
            retrying(attempt, backoff, f"The transaction coordinator of Kafka at {bootstrap}")
        except RetriesExhausted as exc:
            raise KafkaUnavailableError(
                f"cannot initialise transactions on {bootstrap} after {backoff.attempts} attempt(s) "
                f"{backoff.seconds:g} s apart: {exc.reason}"
            ) from None

    def carry(self, record: RunRecord | None, positions: Positions) -> None:
        """Write ``record`` (a new run's) in the first transaction, and ``positions`` as they change, at each commit."""
        self._record = record
        self._positions = positions

    def commit_through(self, committer: Committer, rewind: Callable[[], None]) -> None:
        """Commit each transaction through ``committer`` (a fleet's, with its offsets) instead of directly.

        When the committer refuses (returns False), the sink aborts the transaction and withdraws its events.
        When the client refuses an event until the transaction is aborted, the sink aborts it, withdraws its
        events and calls ``rewind``, so that the owner sends them again from the committed positions. When the
        producer has failed for good (fenced: the broker aborted a transaction that outlived
        transaction.timeout.ms while the process hung), a new producer of the same transactional id takes its
        place, and the same follows. A member's transactional id is its own, so no other process is fenced.
        """
        self._committer = committer
        self._rewind = rewind

    @property
    def client(self) -> ProducerClient:
        """The transactional producer client."""
        return self._client

    @property
    def is_open(self) -> bool:
        """Whether a transaction is open."""
        return self._open

    def commit_now(self) -> None:
        """Commit the open transaction now (one with only positions and offsets when none is open).

        Nothing once no transaction can begin: that error was raised (and reported) already.
        """
        if self._broken is not None:
            return
        self._begin()
        self._commit(self._timeout)

    def abort(self) -> None:
        """Abort the open transaction to send its events again (a rewind): they are withdrawn, not failed."""
        if self._open:
            self._end_aborted(self._timeout)
            self._withdraw()

    def _withdraw(self) -> None:
        """Withdraw the events of the transaction just aborted: neither delivered nor failed, they are sent again."""
        if self._held.total:  # their purged deliveries were logged as failures: they are not
            log.warning("Aborted a transaction of %d event(s); they are sent again", self._held.total)
        self.withdrawn += self._held
        self._held = Held()

    def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
        """Produce one visit event inside the open transaction."""
        self._begin()
        self._hand(lambda: self._sink.send(key, value, store_id, slot), Held(events=1))

    def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
        """Produce a batch inside the open transaction."""
        self._begin()
        self._hand(lambda: self._sink.send_batch(batch, start, stop), Held(events=stop - start))

    def send_to(self, topic: str, key: str, value: bytes) -> None:
        """Produce one event for another topic inside the open transaction."""
        self._begin()
        self._hand(lambda: self._sink.send_to(topic, key, value), Held(others=1))

    def poll(self) -> None:
        """Serve delivery reports; commit when the transaction has been open long enough."""
        try:
            self._sink.poll()
        except ProducerFailedError as exc:
            self._failed(exc.cause)
            return
        self._maybe_commit()

    def pending(self) -> int:
        """Events queued or in flight, not yet confirmed or failed."""
        return self._sink.pending()

    def flush(self, timeout_s: float) -> int:
        """Commit the open transaction (which waits for its deliveries) and moved positions; return the unconfirmed.

        A run that sent nothing (a shard without units) still commits its run record, so the topic knows its run.
        """
        moved = self._positions is not None and self._positions.pending()
        if self._broken is None and not self._open and (moved or self._record is not None):
            self._begin()
        if self._open:
            try:
                self._commit(timeout_s)
            except DeliveryError as exc:
                log.error("%s", exc)
                return max(1, self._sink.pending())
        return self._sink.flush(timeout_s)

    def close(self) -> None:
        """Abort an uncommitted transaction and count its events as failed; close the producer's sink."""
        if self._open:
            self._end_aborted(self._timeout)
            self._fail_held()
        self._sink.close()

    def _hand(self, send: Callable[[], None], held: Held) -> None:
        """Hand events to the plain sink inside the open transaction; commit if it has been open long enough.

        An event refused outright stops the run: the transaction, with a batch perhaps half queued, is aborted
        and its events counted as failed, and the positions noted for it are dropped, so none is committed.
        In a fleet, an event refused until the transaction is aborted (its messages timed out while the
        process hung) does not: the transaction is aborted, its events withdrawn, and the owner rewinds.
        """
        try:
            send()
        except ProducerFailedError as exc:  # raised by the poll after the events were queued
            self._held += held
            self._failed(exc.cause)
            return
        except DeliveryError as exc:
            self._held += held
            if isinstance(exc, AbortableError) and self._rewind is not None:
                if self._end_aborted(self._timeout):
                    log.warning("%s; aborted the transaction: its %d event(s) are sent again", exc, self._held.total)
                    self.withdrawn += self._held
                    self._held = Held()
                    self._rewind()
                    return
            else:
                self._end_aborted(self._timeout)
            self._fail_transaction()
            raise
        self._held += held
        self._maybe_commit()

    def _begin(self) -> None:
        """Open a transaction unless one is; DeliveryError when none can open (a fenced producer: for good)."""
        if not self._open:
            if self._broken is not None:
                raise self._broken
            try:
                self._client.begin_transaction()
            except KafkaException as exc:  # fatal (fenced, or timed out by the broker): this producer sends no more
                if not self._replaces(exc):
                    self._broken = DeliveryError(
                        f"cannot begin a transaction: {describe_error(exc)}; this process sends nothing more, and "
                        "a restart resumes from the committed positions"
                    )
                    raise self._broken from None
                self._renew(exc)  # a fleet member's: nothing was open, so nothing rewinds
                self._client.begin_transaction()
            self._open = True
            self._opened_at = self._monotonic()
            if self._record is not None:
                topic = self._sink.topic
                self._client.produce(state_topic(topic), self._record.encode(), topic.encode(), None)
                self._record = None

    def _maybe_commit(self) -> None:
        if self._open and self._monotonic() - self._opened_at >= self._interval:
            self._commit(self._timeout)

    def _commit(self, timeout_s: float) -> None:
        unconfirmed = 0 if self._settle is None else self._settle(timeout_s)
        if unconfirmed:  # positions go only after their events: a crash after the commit would lose these
            self._end_aborted(timeout_s)
            raise DeliveryError(
                f"{unconfirmed} event(s) still unconfirmed after {timeout_s:.1f} s; their positions are not committed"
            )
        taken = {} if self._positions is None else self._positions.take()
        state = state_topic(self._sink.topic)
        try:
            for unit, position in taken.items():
                self._client.produce(state, position.encode(), unit_key(unit), None)
        except KafkaException as exc:
            if self._rewind is None or not requires_abort(exc):
                self._cannot_commit(exc, timeout_s)
            log.warning("Cannot write positions (%s): the transaction was not committed", describe_error(exc))
            self.abort()
            self._rewind()  # as when a fleet's commit is refused: the owned units resume from their committed positions
            return
        if self._committer is not None:
            if not self._committer(taken, timeout_s):
                self.abort()
                return
        else:
            try:
                self._client.commit_transaction(timeout_s)
            except KafkaException as exc:
                self._cannot_commit(exc, timeout_s)
        self._open = False
        self.delivered += self._held.total
        self._held = Held()

    def _cannot_commit(self, exc: KafkaException, timeout_s: float) -> NoReturn:
        """Abort the transaction that cannot commit, count its events failed, and stop the run."""
        with_abort = "; the transaction was aborted" if self._end_aborted(timeout_s) else ""
        self._fail_held()
        raise DeliveryError(
            f"cannot commit a transaction: {describe_error(exc)}{with_abort}; restart to resume exactly once"
        ) from None

    def _end_aborted(self, timeout_s: float) -> bool:
        """Abort the open transaction (its events are never seen by read_committed readers); False if it failed."""
        self._open = False
        try:
            self._client.abort_transaction(timeout_s)
        except KafkaException as exc:
            if self._replaces(exc):
                self._renew(exc)  # the broker aborted the transaction when it fenced the producer
                return True
            log.error("Cannot abort the open transaction: %s", describe_error(exc))
            return False
        return True

    def _failed(self, exc: KafkaException) -> None:
        """The client raised its fatal error: in a fleet, replace it and rewind; alone, stop the run.

        In a fleet, a new producer takes the place of one that failed for good; the open transaction's events
        are withdrawn and the owner rewinds. Alone (whose transactional id a restart shares, so a newer
        instance may be what fenced it), the events fail, no position is committed, and the run stops.
        """
        self._open = False
        rewind = self._rewind
        if rewind is not None and self._replaces(exc):
            self._renew(exc)
            self._withdraw()
            rewind()
            return
        self._fail_transaction()
        self._broken = DeliveryError(
            f"the producer failed for good: {describe_error(exc)}; this process sends nothing more, and a restart "
            "resumes exactly once from the committed positions"
        )
        raise self._broken from None

    def _replaces(self, exc: KafkaException) -> bool:
        """Whether ``exc`` is a fleet member's producer failed for good, which a new one replaces."""
        return self._rewind is not None and failed_for_good(exc)

    def _renew(self, exc: KafkaException) -> None:
        """Replace a fleet member's producer that failed for good by a new one of its transactional id."""
        log.warning(
            "The producer failed for good (%s): the broker aborted its transaction, which outlived "
            "transaction.timeout.ms while this process hung; a new producer takes its place",
            describe_error(exc),
        )
        self._client = self._sink.renew()
        self._initialise()

    def _fail_held(self) -> None:
        """Count the events of the transaction just ended as failed: not committed, and not sent again."""
        self.failed += self._held.total
        self._held = Held()

    def _fail_transaction(self) -> None:
        """Fail the events of the transaction just ended, and drop the positions noted for them: none is committed."""
        self._fail_held()
        if self._positions is not None:
            self._positions.forget(self._positions.take())
