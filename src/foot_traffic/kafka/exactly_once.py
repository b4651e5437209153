"""An exactly-once run's start-up: open its transactional sink, read its state back, and find where it resumes.

The sink comes first: initialising its transactions fences an earlier process of the same
transactional id and ends its open transaction, so the state read next is final for this
process's units. The topic's run record must match this run (plan settings, SEED, START,
shards); each store then resumes right after its last committed event.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from foot_traffic.errors import ConfigError
from foot_traffic.kafka.admin import ensure_state_topic
from foot_traffic.kafka.producer import KafkaSink, ValueSerializer
from foot_traffic.kafka.resume import (
    ResumePoint,
    RunRecord,
    State,
    points_from_progress,
    read_state,
    resume_points,
    state_topic,
)
from foot_traffic.kafka.transactions import TransactionalKafkaSink
from foot_traffic.model import randomness
from foot_traffic.model.imperfections import NONE, Imperfections
from foot_traffic.model.plan import StoreModel
from foot_traffic.model.units import Shard, Unit
from foot_traffic.retry import Backoff
from foot_traffic.run import imperfect
from foot_traffic.run import positions as units
from foot_traffic.run.positions import Position, Positions, ResumeAfter
from foot_traffic.run.recording import NO_METRICS, Recorder

log = logging.getLogger(__name__)


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
    attempts: int = 1
    """How many times to try initialising transactions (MAX_RETRIES), ``backoff_s`` apart (RETRY_BACKOFF_SECONDS)."""
    backoff_s: float = 0.0

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
        plain,
        commit_interval_s=run.commit_interval_s,
        timeout_s=max(run.timeout_s, 10.0),
        settle=settle,
        backoff=Backoff(run.attempts, run.backoff_s),
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
