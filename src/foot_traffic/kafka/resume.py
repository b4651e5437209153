"""Where an exactly-once run resumes: its run record in the state topic, and the topic's last committed events.

At the first start, a *run record* goes to a compacted state topic
``<topic>.foot-traffic-state``: the SEED, the start instant and a fingerprint of
every setting the plan depends on. A restart reads it back (same fingerprint
required), reads the last committed event of every partition, finds where that
event stands in the deterministic plan (the plan of a date depends only on the
configuration, SEED and date) and resumes right after the latest one of each
store: transactions commit in order, so everything before it is already in the
topic, and nothing after it is.
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
from foot_traffic.kafka.client import admin_config
from foot_traffic.kafka.producer import ValueSerializer
from foot_traffic.model.grid import datetime_to_us, local_date
from foot_traffic.model.plan import StoreModel, plan_day
from foot_traffic.run.service import ResumeAfter, day_events

STATE_SUFFIX = ".foot-traffic-state"
TAIL_WINDOW = 1000
"""Records read back from the end of each partition at first; doubled until a committed event is found."""


def state_topic(topic: str) -> str:
    """The compacted topic that holds a topic's run record."""
    return topic + STATE_SUFFIX


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a restart needs to rebuild the same plan: the seed, the start and a fingerprint of the settings."""

    fingerprint: str
    seed: str
    start_us: int

    def encode(self) -> bytes:
        """Serialise as JSON."""
        return json.dumps({"fingerprint": self.fingerprint, "seed": self.seed, "start_us": self.start_us}).encode()

    @staticmethod
    def decode(raw: bytes) -> RunRecord:
        """Parse the JSON form."""
        data = json.loads(raw)
        return RunRecord(str(data["fingerprint"]), str(data["seed"]), int(data["start_us"]))


def fingerprint(plan_settings: Mapping[str, object]) -> str:
    """A short stable digest of the settings a plan depends on."""
    canonical = json.dumps(plan_settings, sort_keys=True, default=repr)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where one store's sequence stopped: the last committed event's date, index in that date's events, entry."""

    date: dt.date
    index: int
    customer_id: str
    entry_us: int

    @property
    def after(self) -> ResumeAfter:
        """The position to resume after."""
        return ResumeAfter(self.date, self.index)


def read_run_record(bootstrap: str, topic: str, extra: Mapping[str, Any] | None, timeout_s: float) -> RunRecord | None:
    """The topic's run record, or None for a topic never written in exactly-once mode."""
    records = _tail(bootstrap, state_topic(topic), extra, timeout_s)
    last = max((r for r in records.values() if r is not None), key=lambda r: r[0], default=None)
    return None if last is None else RunRecord.decode(last[1])


def _tail(
    bootstrap: str, topic: str, extra: Mapping[str, Any] | None, timeout_s: float
) -> dict[int, tuple[int, bytes] | None]:
    """The last committed record (offset, value) of each partition, or None for an empty partition."""
    consumer = Consumer(
        {
            **admin_config(bootstrap, extra),
            "group.id": f"foot-traffic-resume-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
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
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaUnavailableError(f"cannot read back {topic}[{partition}]: {error.str()}")
            value, offset = msg.value(), msg.offset()
            if isinstance(value, bytes) and offset is not None:
                last = (offset, value)
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
        first_date = local_date(start_us, store.model.tz)
        plan = plan_day(store.model, root, date, now_us=start_us if date == first_date else None)
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
