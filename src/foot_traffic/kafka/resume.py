"""Where an exactly-once run resumes: its run record and its units' positions, in the state topic.

At the first start, a *run record* goes to a compacted state topic
``<topic>.foot-traffic-state``: the SEED, the start instant and a fingerprint of
every setting the plan depends on (with the shards' count N and FLEET_PARTITIONS
for a sharded run; the shards of a run share its record). Every transaction also
writes there the position of each unit of work it carried events of
(:mod:`foot_traffic.run.positions`), keyed ``unit:<store id>|<date>``. A restart
reads the topic back with read_committed and resumes each store after its furthest
position: the plan of a date depends only on the configuration, SEED and date.

A topic written by an earlier version holds a run record and no position. Its
restart falls back to the old way: read the last committed event of every
partition of the events topic, find where it stands in the plan, and resume right
after the latest one of each store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from foot_traffic.errors import ConfigError, KafkaUnavailableError
from foot_traffic.events.event import batch_events
from foot_traffic.kafka.client import admin_config
from foot_traffic.kafka.producer import ValueSerializer
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.grid import datetime_to_us, local_date
from foot_traffic.model.imperfections import NONE, Imperfections
from foot_traffic.model.plan import DayPlan, StoreModel, plan_day
from foot_traffic.model.units import Unit
from foot_traffic.run.imperfect import copy_at
from foot_traffic.run.positions import Position, ResumeAfter
from foot_traffic.run.timeline import day_events

STATE_SUFFIX = ".foot-traffic-state"
UNIT_PREFIX = "unit:"
"""Keys of position records: the prefix, then the unit's key (a topic's name, the run record's key, has no ':')."""
TAIL_WINDOW = 1000
"""Records read back from the end of each partition at first; doubled until a committed event is found."""


def state_topic(topic: str) -> str:
    """The compacted topic that holds a topic's run record."""
    return topic + STATE_SUFFIX


def unit_key(unit: Unit) -> bytes:
    """The state topic's key of a unit's position record."""
    return (UNIT_PREFIX + unit.key).encode()


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a restart needs to rebuild the same plan: the seed, the start and a fingerprint of the settings.

    A sharded run's record also says how many shards and virtual partitions cut it into
    units (absent from an unsharded run's, which keeps the form earlier versions wrote).
    """

    fingerprint: str
    seed: str
    start_us: int
    shards: int | None = None
    partitions: int | None = None

    def encode(self) -> bytes:
        """Serialise as JSON."""
        data: dict[str, object] = {"fingerprint": self.fingerprint, "seed": self.seed, "start_us": self.start_us}
        if self.shards is not None:
            data |= {"shards": self.shards, "partitions": self.partitions}
        return json.dumps(data).encode()

    @staticmethod
    def decode(raw: bytes) -> RunRecord:
        """Parse the JSON form."""
        data = json.loads(raw)
        shards, partitions = data.get("shards"), data.get("partitions")
        return RunRecord(
            str(data["fingerprint"]),
            str(data["seed"]),
            int(data["start_us"]),
            None if shards is None else int(shards),
            None if partitions is None else int(partitions),
        )


@dataclass(frozen=True, slots=True)
class State:
    """What the state topic holds: the run record (None before the first commit) and each unit's last position."""

    record: RunRecord | None
    progress: dict[Unit, Position]


def fingerprint(plan_settings: Mapping[str, object]) -> str:
    """A short stable digest of the settings a plan depends on."""
    canonical = json.dumps(plan_settings, sort_keys=True, default=repr)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where one store's sequence stopped: the last committed event's date, index in that date's events, entry.

    Index -1 stands before the date's first event (``customer_id`` None, ``entry_us`` the plan's start).
    """

    date: dt.date
    index: int
    customer_id: str | None
    entry_us: int

    @property
    def after(self) -> ResumeAfter:
        """The position to resume after."""
        return ResumeAfter(self.date, self.index)


def read_state(bootstrap: str, topic: str, extra: Mapping[str, Any] | None, timeout_s: float) -> State:
    """The run record and unit positions committed to the topic's state topic, the latest of each key.

    Reads up to the end the topic had when called, waiting for other processes' open
    transactions (a shard's) to end, so no committed record before that end is missed.
    Raises ConfigError for a record that cannot be read.
    """
    name = state_topic(topic)
    record: RunRecord | None = None
    progress: dict[Unit, Position] = {}
    consumer = _committed_consumer(bootstrap, extra)
    try:
        for key, value in _read_all(consumer, name, timeout_s):
            try:
                if key == topic:
                    record = RunRecord.decode(value)
                elif key.startswith(UNIT_PREFIX):
                    progress[Unit.from_key(key.removeprefix(UNIT_PREFIX))] = Position.decode(value)
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(
                    [
                        f"KAFKA_TOPIC={topic!r}: its state topic {name} holds a record keyed {key!r} that cannot be "
                        f"read ({exc}); expected one written by foot-traffic, or a new topic"
                    ]
                ) from None
    finally:
        consumer.close()
    return State(record, progress)


def _committed_consumer(bootstrap: str, extra: Mapping[str, Any] | None) -> Consumer:
    """A consumer of committed records only, in a group of its own that commits nothing."""
    return Consumer(
        {
            **admin_config(bootstrap, extra),
            "group.id": f"foot-traffic-resume-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )


def _read_all(consumer: Consumer, topic: str, timeout_s: float) -> list[tuple[str, bytes]]:
    """(key, value) of every committed record of ``topic`` below the end it has now, in offset order."""
    metadata = consumer.list_topics(topic, timeout=timeout_s)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        return []
    records: list[tuple[str, bytes]] = []
    for partition in sorted(described.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
        if high > low:
            records += _read_partition(consumer, TopicPartition(topic, partition, low), high, timeout_s)
    return records


def _read_partition(consumer: Consumer, start: TopicPartition, end: int, timeout_s: float) -> list[tuple[str, bytes]]:
    """Committed records from ``start`` until the consumer's position reaches ``end``.

    read_committed stops at the first record of a transaction still open (another
    shard's, committing within its interval) and moves on once it ends; aborted records
    and transaction markers are skipped, so the position, not the records, says how far.
    A record at or past ``end - 1`` ends the read at once (one past it is left out): another
    member that keeps committing would otherwise keep records coming, and the end would never
    be noticed.
    """
    consumer.assign([start])
    records: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        error = None if msg is None else msg.error()
        if msg is not None and error is None:
            key, value, offset = msg.key(), msg.value(), msg.offset()
            if offset is not None and offset >= end:
                return records
            if isinstance(key, bytes) and isinstance(value, bytes):
                records.append((key.decode("utf-8", "replace"), value))
            if offset is None or offset < end - 1:
                continue
            return records
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            raise KafkaUnavailableError(f"cannot read back {start.topic}[{start.partition}]: {error.str()}")
        (position,) = consumer.position([start])
        if position.offset >= end:
            return records
    raise KafkaUnavailableError(f"timed out reading back {start.topic}[{start.partition}] up to offset {end}")


def _tail(
    bootstrap: str, topic: str, extra: Mapping[str, Any] | None, timeout_s: float
) -> dict[int, tuple[int, bytes] | None]:
    """The last committed record (offset, value) of each partition, or None for an empty partition."""
    consumer = _committed_consumer(bootstrap, extra)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            return {}
        result: dict[int, tuple[int, bytes] | None] = {}
        for partition in sorted(described.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            result[partition] = _last_in_partition(consumer, topic, partition, low=low, high=high, timeout_s=timeout_s)
        return result
    finally:
        consumer.close()


def _last_in_partition(
    consumer: Consumer, topic: str, partition: int, *, low: int, high: int, timeout_s: float
) -> tuple[int, bytes] | None:
    window = TAIL_WINDOW
    while True:
        start = max(low, high - window)
        consumer.assign([TopicPartition(topic, partition, start)])
        last: tuple[int, bytes] | None = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            error = None if msg is None else msg.error()
            if msg is not None and error is None:
                value, offset = msg.value(), msg.offset()
                if isinstance(value, bytes) and offset is not None and offset < high:
                    last = (offset, value)
                if offset is None or offset < high - 1:
                    continue
                break  # the end as of the call: records written since are not this tail's
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise KafkaUnavailableError(f"cannot read back {topic}[{partition}]: {error.str()}")
            if error is not None or consumer.position([TopicPartition(topic, partition)])[0].offset >= high:
                break
        else:
            raise KafkaUnavailableError(f"timed out reading back {topic}[{partition}]")
        if last is not None or start == low:
            return last
        window *= 2


def resume_points(
    bootstrap: str,
    topic: str,
    extra: Mapping[str, Any] | None,
    timeout_s: float,
    *,
    stores: list[StoreModel],
    root: int,
    start_us: int,
    serializer: ValueSerializer | None = None,
) -> dict[str | None, ResumePoint]:
    """For each store, where its committed sequence ends (stores with nothing committed are absent).

    With a ``serializer``, the topic's values are in its framing and are decoded with it.
    """
    latest: dict[str | None, tuple[int, str]] = {}
    for record in _tail(bootstrap, topic, extra, timeout_s).values():
        if record is None:
            continue
        event = json.loads(record[1] if serializer is None else _plain(serializer, topic, record[1]))
        store_id = event.get("store_id")
        entry = datetime_to_us(dt.datetime.fromisoformat(event["entry_time"]))
        if store_id not in latest or entry > latest[store_id][0]:
            latest[store_id] = (entry, event["customer_id"])
    points: dict[str | None, ResumePoint] = {}
    for store in stores:
        if store.store_id not in latest:
            continue
        entry, customer_id = latest[store.store_id]
        date = local_date(entry, store.model.tz)
        plan = _plan_of(store, root, date, start_us)
        for index, event in enumerate(day_events(root, plan, store.store_id)):
            if event.customer_id == customer_id:
                points[store.store_id] = ResumePoint(date, index, customer_id, entry)
                break
        else:
            raise ConfigError(
                [
                    f"KAFKA_TOPIC={topic!r}: its last event {customer_id} is not in this configuration's plan; "
                    "expected a topic written by this same configuration, or a new topic"
                ]
            )
    return points


def points_from_progress(
    topic: str,
    progress: Mapping[str | None, Position],
    *,
    stores: list[StoreModel],
    root: int,
    imperfections: Imperfections = NONE,
) -> dict[str | None, ResumePoint]:
    """Each store's resume point from its furthest committed position, with that event's id and entry instant.

    With imperfections a position's index is the copy's rank in its day's send order.
    """
    points: dict[str | None, ResumePoint] = {}
    for store in stores:
        position = progress.get(store.store_id)
        if position is None:
            continue
        if imperfections.on:
            found = copy_at(store, root, imperfections, position)
        else:
            found = _event_at(
                root, _plan_of(store, root, position.date, position.start_us), store.store_id, position.index
            )
        if found is None:
            raise ConfigError(
                [
                    f"KAFKA_TOPIC={topic!r}: its state topic holds a position past the end of "
                    f"{position.date.isoformat()}'s plan; expected a topic written by this same configuration"
                ]
            )
        customer_id, entry = found
        points[store.store_id] = ResumePoint(position.date, position.index, customer_id, max(entry, position.start_us))
    return points


def _plan_of(store: StoreModel, root: int, date: dt.date, start_us: int) -> DayPlan:
    """A date's plan in a run that started at ``start_us`` (its first day is cut there)."""
    first = local_date(start_us, store.model.tz)
    return plan_day(store.model, root, date, now_us=start_us if date == first else None)


def _event_at(root: int, plan: DayPlan, store_id: str | None, index: int) -> tuple[str | None, int] | None:
    """The customer id and entry instant of the plan's event ``index`` (-1: none, and the plan's start)."""
    if index < 0:
        return None, plan.start_us
    for batch in day_batches(root, plan):
        if index < len(batch):
            (event,) = batch_events(plan, batch.slice(index, index + 1), store_id)
            return event.customer_id, event.entry_us
        index -= len(batch)
    return None


def _plain(serializer: ValueSerializer, topic: str, value: bytes) -> bytes:
    """A framed value's plain JSON; a ConfigError when the topic holds something else."""
    try:
        return serializer.plain(value)
    except ValueError as exc:
        raise ConfigError(
            [
                f"KAFKA_TOPIC={topic!r}: its last event cannot be decoded ({exc}); expected a topic written by this "
                "same configuration (SCHEMA_REGISTRY_URL, SCHEMA_REGISTRY_FORMAT), or a new topic"
            ]
        ) from None
