"""Crash-safe, exactly-once delivery: a transactional producer that resumes from the topic itself.

How it works:

* Events are produced inside Kafka transactions, committed every COMMIT_INTERVAL_MS
  (and whenever the loop goes idle past that interval, and at shutdown). A consumer
  reading with ``isolation.level=read_committed`` sees only committed events.
* At the first start, a *run record* goes to a compacted state topic
  ``<topic>.foot-traffic-state``: the SEED, the start instant and a fingerprint of
  every setting the plan depends on. It is written in the first transaction.
* After a crash (even SIGKILL), a restart with the same transactional id fences the
  old producer, whose open transaction is aborted. The new process reads the run
  record (same fingerprint required, else it refuses), reads the last committed
  event of every partition, finds where that event stands in the deterministic plan
  (the plan of a date depends only on the configuration, SEED and date) and resumes
  right after the latest one: transactions commit in order, so everything before it
  is already in the topic, and nothing after it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from foot_traffic.config.settings import Settings
from foot_traffic.errors import ConfigError, DeliveryError, KafkaUnavailableError
from foot_traffic.events.encoding import EncodedBatch
from foot_traffic.kafka.sink import KafkaSink, ValueSerializer, admin_config, describe_error
from foot_traffic.metrics.prometheus import NO_METRICS, Recorder
from foot_traffic.model import randomness
from foot_traffic.model.grid import datetime_to_us, local_date
from foot_traffic.model.plan import StoreModel, plan_day
from foot_traffic.run.service import ResumeAfter, day_events

log = logging.getLogger(__name__)

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


def ensure_state_topic(bootstrap: str, topic: str, extra: Mapping[str, Any] | None, rf: int, timeout_s: float) -> None:
    """Create the compacted state topic when it is missing."""
    admin = AdminClient(admin_config(bootstrap, extra))
    name = state_topic(topic)
    if name in admin.list_topics(timeout=timeout_s).topics:
        return
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=rf, config={"cleanup.policy": "compact"})]
    )
    try:
        futures[name].result(timeout=timeout_s + 5)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if not (isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise KafkaUnavailableError(f"cannot create the state topic {name!r}: {describe_error(exc)}") from None


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


class TransactionalKafkaSink(KafkaSink):
    """A KafkaSink that produces in transactions committed every ``commit_interval_s``."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        transactional_id: str,
        commit_interval_s: float,
        run_record: RunRecord | None = None,
        extra: Mapping[str, Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        timeout_s: float = 30.0,
        serializer: ValueSerializer | None = None,
        metrics: Recorder = NO_METRICS,
    ) -> None:
        super().__init__(
            bootstrap,
            topic,
            extra={**(extra or {}), "transactional.id": transactional_id},
            serializer=serializer,
            metrics=metrics,
        )
        self._interval = commit_interval_s
        self._monotonic = monotonic
        self._timeout = timeout_s
        self._open = False
        self._opened_at = 0.0
        self._record = run_record
        try:
            self._producer.init_transactions(timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailableError(
                f"cannot initialise transactions on {bootstrap}: {describe_error(exc)}"
            ) from None

    def _begin(self) -> None:
        if not self._open:
            self._producer.begin_transaction()
            self._open = True
            self._opened_at = self._monotonic()
            if self._record is not None:
                self._producer.produce(state_topic(self.topic), self._record.encode(), self.topic.encode())
                self._record = None

    def send(self, key: str, value: bytes, topic: str | None = None) -> None:
        """Produce one event inside the open transaction."""
        self._begin()
        super().send(key, value, topic)
        self._maybe_commit()

    def send_batch(self, batch: EncodedBatch, start: int, stop: int) -> None:
        """Produce a batch inside the open transaction."""
        self._begin()
        super().send_batch(batch, start, stop)
        self._maybe_commit()

    def poll(self) -> None:
        """Serve delivery reports; commit when the transaction has been open long enough."""
        super().poll()
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        if self._open and self._monotonic() - self._opened_at >= self._interval:
            self._commit(self._timeout)

    def _commit(self, timeout_s: float) -> None:
        try:
            self._producer.commit_transaction(timeout_s)
        except KafkaException as exc:
            self._open = False
            with_abort = ""
            try:
                self._producer.abort_transaction(timeout_s)
                with_abort = "; the transaction was aborted, restart to resume exactly once"
            except KafkaException:
                with_abort = "; restart to resume exactly once"
            raise DeliveryError(f"cannot commit a transaction: {describe_error(exc)}{with_abort}") from None
        self._open = False

    def flush(self, timeout_s: float) -> int:
        """Commit the open transaction (which waits for its deliveries); return what is unconfirmed."""
        if self._open:
            try:
                self._commit(timeout_s)
            except DeliveryError as exc:
                log.error("%s", exc)
                return max(1, len(self._producer))
        return int(self._producer.flush(timeout_s))

    def close(self) -> None:
        """Abort an uncommitted transaction; its events are counted as failed by their reports."""
        if self._open:
            try:
                self._producer.abort_transaction(self._timeout)
            except KafkaException as exc:
                log.error("Cannot abort the open transaction: %s", describe_error(exc))
            self._open = False
        super().close()


def plan_settings(settings: Settings) -> dict[str, object]:
    """The settings a run's plan depends on (not the clock, the sink or the logging)."""
    return {
        "topic": settings.topic,
        "weights": settings.weights,
        "base_daily_customers": settings.base_daily_customers,
        "daily_customers": settings.daily_customers,
        "variation_pct": settings.variation_pct,
        "timezone": str(settings.timezone),
        "arrival_model": settings.arrival_model,
        "daily_totals": settings.daily_totals,
        "daily_dispersion": settings.daily_dispersion,
        "calendar": settings.calendar,
        "stores": settings.stores,
    }


@dataclass(frozen=True, slots=True)
class Prepared:
    """An exactly-once run ready to go: its seed, start, where each store resumes, and its sink."""

    seed: str
    start_us: int
    resume: dict[str | None, ResumeAfter]
    clock_start_us: int
    sink: TransactionalKafkaSink


def prepare(
    settings: Settings,
    stores: Callable[[], list[StoreModel]],
    extra: Mapping[str, Any] | None,
    now_us: int,
    serializer: ValueSerializer | None = None,
    *,
    metrics: Recorder = NO_METRICS,
) -> Prepared:
    """Read the topic's run record, check it matches, find where to resume, and open the transactional sink.

    With a ``serializer`` (the schema registry's), events are produced in its framing and read back with it.

    Raises ConfigError when the topic holds a run of other settings, SEED or START.
    """
    timeout = settings.connect_timeout_seconds
    ensure_state_topic(settings.broker, settings.topic, extra, settings.topic_replication_factor, timeout)
    record = read_run_record(settings.broker, settings.topic, extra, timeout)
    digest = fingerprint(plan_settings(settings))
    new_record: RunRecord | None = None
    if record is not None:
        problems = []
        if record.fingerprint != digest:
            problems.append(
                f"KAFKA_TOPIC={settings.topic!r}: it holds a run of other settings (fingerprint {record.fingerprint}, "
                f"these settings give {digest}); expected the settings of that run, or a new topic"
            )
        if settings.seed is not None and settings.seed != record.seed:
            problems.append(f"SEED={settings.seed!r}: expected the SEED of the run in the topic, {record.seed!r}")
        if settings.start_us is not None and settings.start_us != record.start_us:
            problems.append(
                f"START={settings.start.isoformat() if settings.start else ''!r}: expected the START of the run "
                f"in the topic, {record.start_us} µs after the epoch"
            )
        if problems:
            raise ConfigError(problems)
        seed, start = record.seed, record.start_us
    else:
        seed = settings.seed if settings.seed is not None else secrets.token_hex(8)
        start = settings.start_us if settings.start_us is not None else now_us
        new_record = RunRecord(digest, seed, start)
    root = randomness.root_entropy(seed)
    runs = stores()
    points = (
        resume_points(
            settings.broker,
            settings.topic,
            extra,
            timeout,
            stores=runs,
            root=root,
            start_us=start,
            serializer=serializer,
        )
        if record
        else {}
    )
    for store_id, point in points.items():
        label = "" if store_id is None else f" of store {store_id}"
        log.info(
            "Resuming%s after customer_id=%s (%s, event #%d of the day)",
            label,
            point.customer_id,
            point.date.isoformat(),
            point.index + 1,
        )
    sink = TransactionalKafkaSink(
        settings.broker,
        settings.topic,
        transactional_id=settings.transactional_id or f"foot-traffic-{settings.topic}",
        commit_interval_s=settings.commit_interval_ms / 1000,
        run_record=new_record,
        extra=extra,
        timeout_s=max(timeout, 10.0),
        serializer=serializer,
        metrics=metrics,
    )
    clock_start = max((p.entry_us for p in points.values()), default=start)
    return Prepared(seed, start, {k: p.after for k, p in points.items()}, clock_start, sink)
