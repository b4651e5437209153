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
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from confluent_kafka import KafkaException

from foot_traffic.errors import ConfigError, DeliveryError, KafkaUnavailableError
from foot_traffic.events.encoding import Encoded
from foot_traffic.kafka.admin import ensure_state_topic
from foot_traffic.kafka.client import ProducerClient, describe_error
from foot_traffic.kafka.producer import AbortableError, KafkaSink, ValueSerializer, requires_abort
from foot_traffic.kafka.resume import (
    ResumePoint,
    RunRecord,
    State,
    points_from_progress,
    read_state,
    resume_points,
    state_topic,
    unit_key,
)
from foot_traffic.model import randomness
from foot_traffic.model.imperfections import NONE, Imperfections
from foot_traffic.model.plan import StoreModel
from foot_traffic.model.units import Shard, Unit
from foot_traffic.run import imperfect
from foot_traffic.run import positions as units
from foot_traffic.run.positions import Position, Positions, ResumeAfter
from foot_traffic.run.recording import NO_METRICS, Recorder

log = logging.getLogger(__name__)

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
        self.delivered = 0
        """Events of committed transactions."""
        self.failed = 0
        """Events refused, or of transactions that could not commit and are not sent again."""
        self.withdrawn = Held()
        """Events of transactions aborted to be sent again: counted neither delivered nor failed."""
        try:
            self._client.init_transactions(timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailableError(
                f"cannot initialise transactions on {sink.bootstrap}: {describe_error(exc)}"
            ) from None

    def carry(self, record: RunRecord | None, positions: Positions) -> None:
        """Write ``record`` (a new run's) in the first transaction, and ``positions`` as they change, at each commit."""
        self._record = record
        self._positions = positions

    def commit_through(self, committer: Committer, rewind: Callable[[], None]) -> None:
        """Commit each transaction through ``committer`` (a fleet's, with its offsets) instead of directly.

        When the committer refuses (returns False), the sink aborts the transaction and withdraws its events.
        When the client refuses an event until the transaction is aborted, the sink aborts it, withdraws its
        events and calls ``rewind``, so that the owner sends them again from the committed positions.
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
        self._sink.poll()
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
            self._fail_held()
            if self._positions is not None:
                self._positions.forget(self._positions.take())
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
                self._broken = DeliveryError(
                    f"cannot begin a transaction: {describe_error(exc)}; this process sends nothing more, and a "
                    "restart (in a fleet, the other members) resumes from the committed positions"
                )
                raise self._broken from None
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
            log.error("Cannot abort the open transaction: %s", describe_error(exc))
            return False
        return True

    def _fail_held(self) -> None:
        """Count the events of the transaction just ended as failed: not committed, and not sent again."""
        self.failed += self._held.total
        self._held = Held()


@dataclass(frozen=True, slots=True)
class ExactlyOnce:
    """What an exactly-once run needs to know, built by the command line from the settings.

    ``fingerprint`` digests the settings the plan depends on; ``seed`` and ``start_us`` are
    SEED and START if set (``start_text``, START as written, names it in an error).
    """

    broker: str
    topic: str
    extra: Mapping[str, Any]
    replication_factor: int
    timeout_s: float
    transactional_id: str
    commit_interval_s: float
    fingerprint: str
    seed: str | None
    start_us: int | None
    start_text: str
    dated: bool = False
    """Units are stores and dates (a run with UNTIL), else stores."""
    shard: Shard | None = None
    partitions: int | None = None
    """FLEET_PARTITIONS, for a sharded run."""
    fleet: bool = False
    """A fleet member: its units come with its assignments, and it resumes them then."""
    producer: Mapping[str, Any] = field(default_factory=dict)
    """Producer properties of the transactional producer only (a fleet's transaction timeout)."""
    entry_timestamps: bool = False
    """KAFKA_TIMESTAMP=entry: each record's timestamp is its entry_time."""
    imperfections: Imperfections = NONE
    """When and how often events go: positions are then ranks in each day's send order."""

    def owns(self, unit: Unit) -> bool:
        """Whether this process runs ``unit``: any of an unsharded run, its shard's of a sharded one."""
        return self.shard is None or self.partitions is None or self.shard.owns(unit, self.partitions)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An exactly-once run ready to go: its seed, start, where each store resumes, its positions and its sink."""

    seed: str
    start_us: int
    resume: dict[str | None, ResumeAfter]
    clock_start_us: int
    sink: TransactionalKafkaSink
    positions: Positions


def prepare(
    run: ExactlyOnce,
    stores: Callable[[], list[StoreModel]],
    now_us: int,
    *,
    serializer: ValueSerializer | None = None,
    metrics: Recorder = NO_METRICS,
    settle: Callable[[float], int] | None = None,
) -> Prepared:
    """Open the transactional sink, read the state back, check it matches, and find where each store resumes.

    The sink comes first: initialising its transactions fences an earlier process of the
    same transactional id and ends its open transaction, so the state read next is final
    for this process's units. With a ``serializer`` (the schema registry's), events are
    produced in its framing and read back with it. ``settle``: see :class:`TransactionalKafkaSink`.

    Raises ConfigError when the topic holds a run of other settings, SEED, START or shards.
    """
    ensure_state_topic(run.broker, run.extra, state_topic(run.topic), run.replication_factor, run.timeout_s)
    extra = {**run.extra, **run.producer, "transactional.id": run.transactional_id}
    plain = KafkaSink(
        run.broker,
        run.topic,
        extra=extra,
        serializer=serializer,
        metrics=metrics,
        entry_timestamps=run.entry_timestamps,
    )
    sink = TransactionalKafkaSink(
        plain, commit_interval_s=run.commit_interval_s, timeout_s=max(run.timeout_s, 10.0), settle=settle
    )
    try:
        state = read_state(run.broker, run.topic, run.extra, run.timeout_s)
        seed, start, points, new_record = _resume(run, state, stores, now_us, serializer)
    except BaseException:
        sink.close()
        raise
    clock_start = max((p.entry_us for p in points.values()), default=start)
    if run.fleet:  # its units resume as they are assigned: only its simulated clock starts where the fleet stands
        points = {}
    _log_resumes(points)
    positions = Positions(dated=run.dated, start_us=start)
    sink.carry(new_record, positions)
    return Prepared(seed, start, {k: p.after for k, p in points.items()}, clock_start, sink, positions)


def _resume(
    run: ExactlyOnce,
    state: State,
    stores: Callable[[], list[StoreModel]],
    now_us: int,
    serializer: ValueSerializer | None,
) -> tuple[str, int, dict[str | None, ResumePoint], RunRecord | None]:
    """The seed, the start, where each store resumes, and the run record to write (None when the topic has one)."""
    record = state.record
    if record is None:
        seed = run.seed if run.seed is not None else secrets.token_hex(8)
        start = run.start_us if run.start_us is not None else now_us
        shards = None if run.shard is None else run.shard.count
        return seed, start, {}, RunRecord(run.fingerprint, seed, start, shards, run.partitions if shards else None)
    check_matches(record, run)
    root = randomness.root_entropy(record.seed)
    if run.fleet:  # each store's furthest committed event, whoever sent it: the fleet's simulated now
        furthest = units.resume_points(state.progress, lambda _: True)
        return record.seed, record.start_us, points_from_progress(run.topic, furthest, stores=stores(), root=root), None
    if not state.progress and run.shard is None:  # an earlier version's: where its last events stand in the plan
        points = resume_points(
            run.broker,
            run.topic,
            run.extra,
            run.timeout_s,
            stores=stores(),
            root=root,
            start_us=record.start_us,
            serializer=serializer,
        )
        return record.seed, record.start_us, points, None
    # a run without UNTIL runs each of its stores' every date: all of a store's positions speak for it
    imp, by_id = run.imperfections, {store.store_id: store for store in stores()}

    def later(store_id: str | None, a: Position, b: Position) -> bool:
        return imperfect.later(by_id[store_id], root, imp, a, b)

    owns = run.owns if run.dated else lambda _: True
    mine = units.resume_points(state.progress, owns, later if imp.on else None)
    start = next((p.start_us for p in mine.values()), record.start_us)
    points = points_from_progress(run.topic, mine, stores=list(by_id.values()), root=root, imperfections=imp)
    return record.seed, start, points, None


def check_matches(record: RunRecord, run: ExactlyOnce) -> None:
    """Raise ConfigError unless the topic's run is this one: same plan settings, and SEED and START if set."""
    problems = []
    shards = None if run.shard is None else run.shard.count
    if record.shards != shards:
        held = "an unsharded run" if record.shards is None else f"a run of {record.shards} shards"
        wanted = "no SHARD" if record.shards is None else f"SHARD=I/{record.shards}"
        problems.append(f"KAFKA_TOPIC={run.topic!r}: it holds {held}; expected {wanted}, or a new topic")
    elif shards is not None and record.partitions != run.partitions:
        problems.append(
            f"FLEET_PARTITIONS={run.partitions}: expected the FLEET_PARTITIONS of the run in the topic, "
            f"{record.partitions}, or a new topic"
        )
    elif record.fingerprint != run.fingerprint:
        problems.append(
            f"KAFKA_TOPIC={run.topic!r}: it holds a run of other settings (fingerprint {record.fingerprint}, "
            f"these settings give {run.fingerprint}); expected the settings of that run, or a new topic"
        )
    if run.seed is not None and run.seed != record.seed:
        problems.append(f"SEED={run.seed!r}: expected the SEED of the run in the topic, {record.seed!r}")
    if run.start_us is not None and run.start_us != record.start_us:
        problems.append(
            f"START={run.start_text!r}: expected the START of the run in the topic, "
            f"{record.start_us} µs after the epoch"
        )
    if problems:
        raise ConfigError(problems)


def _log_resumes(points: Mapping[str | None, ResumePoint]) -> None:
    """One line per store that resumes: after which event."""
    for store_id, point in points.items():
        label = "" if store_id is None else f" of store {store_id}"
        if point.customer_id is None:
            log.info("Resuming%s at the start of %s", label, point.date.isoformat())
            continue
        log.info(
            "Resuming%s after customer_id=%s (%s, event #%d of the day)",
            label,
            point.customer_id,
            point.date.isoformat(),
            point.index + 1,
        )
