"""The pure parts of exactly-once delivery: run records, fingerprints and resuming a sequence."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from foot_traffic.cli.run_command import plan_settings, transactional_id
from foot_traffic.config.resolve import load_settings
from foot_traffic.errors import ConfigError, DeliveryError
from foot_traffic.kafka.exactly_once import ExactlyOnce, _resume, check_matches
from foot_traffic.kafka.resume import RunRecord, State, fingerprint, state_topic
from foot_traffic.kafka.transactions import TransactionalKafkaSink
from foot_traffic.model.grid import US_PER_DAY, datetime_to_us
from foot_traffic.model.plan import Model, StoreModel, plan_day
from foot_traffic.model.randomness import root_entropy
from foot_traffic.model.units import Shard, Unit
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.positions import Position, Positions, ResumeAfter
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink
from foot_traffic.run.timeline import day_events
from tests.unit.fakes import FakeProducer, fake_sink

GOLDEN = Path(__file__).parent.parent / "golden"
START = datetime_to_us(dt.datetime(2025, 8, 12, 9, 30, tzinfo=dt.UTC))
END = datetime_to_us(dt.datetime(2025, 8, 14, tzinfo=dt.UTC))


def test_run_record_round_trip() -> None:
    """A run record survives encoding."""
    record = RunRecord("abc", "seed", START)
    assert RunRecord.decode(record.encode()) == record
    assert state_topic("t") == "t.foot-traffic-state"


def test_fingerprint_follows_the_plan_settings_only() -> None:
    """Settings that change the plan change the fingerprint; clock, sink and logging do not."""
    base = fingerprint(plan_settings(load_settings({"DAILY_CUSTOMERS": "10"})))
    assert base == fingerprint(plan_settings(load_settings({"DAILY_CUSTOMERS": "10", "SPEED": "max", "SINK": "kafka"})))
    assert base == fingerprint(plan_settings(load_settings({"DAILY_CUSTOMERS": "10", "LOG_LEVEL": "DEBUG"})))
    for changed in (
        {"DAILY_CUSTOMERS": "11"},
        {"DAILY_CUSTOMERS": "10", "TIMEZONE": "Europe/Rome"},
        {"DAILY_CUSTOMERS": "10", "ARRIVAL_MODEL": "poisson"},
        {"DAILY_CUSTOMERS": "10", "KAFKA_TOPIC": "x"},
    ):
        assert fingerprint(plan_settings(load_settings(changed))) != base


@pytest.mark.parametrize(
    ("env", "digest"),
    [
        ({"DAILY_CUSTOMERS": "10"}, "81f744c8f4e7ac9b"),
        ({}, "50017fb4fe16d43b"),
        (
            {
                "KAFKA_TOPIC": "x",
                "TIMEZONE": "Europe/Rome",
                "ARRIVAL_MODEL": "poisson",
                "STORES_FILE": str(GOLDEN / "stores.toml"),
                "CALENDAR_FILE": str(GOLDEN / "calendar.toml"),
            },
            "3c3e8faf38e34b19",
        ),
    ],
    ids=["daily-customers", "defaults", "stores-and-calendar"],
)
def test_fingerprints_stay_those_of_earlier_runs(env: dict[str, str], digest: str) -> None:
    """The fingerprints recorded by earlier versions are still produced, so a topic they wrote still resumes."""
    assert fingerprint(plan_settings(load_settings(env))) == digest


@pytest.mark.parametrize("skip", [0, 1, 57, -1])
def test_a_resumed_run_emits_exactly_the_rest_of_the_sequence(skip: int) -> None:
    """Resuming after event k of a day (-1: its last) emits the plan's events from k + 1 on, and nothing before."""
    model = Model(daily_customers=400)
    everything = MemorySink()
    Service(model, 3, everything, ManualClock(START), poll_s=0.5, until_us=END).run()
    plan = plan_day(model, 3, dt.date(2025, 8, 12), now_us=START)
    first_day = [e.encode() for e in day_events(3, plan)]
    skip = skip % len(first_day)
    resumed = MemorySink()
    clock = ManualClock(START + US_PER_DAY // 8)
    Service(
        model,
        3,
        resumed,
        clock,
        poll_s=0.5,
        until_us=END,
        start_us=START,
        resume={None: ResumeAfter(dt.date(2025, 8, 12), skip)},
    ).run()
    values = [v for _, v in resumed.records]
    assert values == [v for _, v in everything.records][skip + 1 :]
    assert values[: len(first_day) - skip - 1] == first_day[skip + 1 :]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"EXACTLY_ONCE": "1", "SINK": "stdout"}, "expected SINK=kafka"),
        ({"EXACTLY_ONCE": "1", "EXIT_EVENTS_TOPIC": "s"}, "not supported together"),
        ({"COMMIT_INTERVAL_MS": "0"}, "COMMIT_INTERVAL_MS='0': expected an integer between 1"),
    ],
)
def test_exactly_once_settings_are_checked(env: dict[str, str], needle: str) -> None:
    """Combinations exactly-once cannot honour are refused up front."""
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert any(needle in p for p in info.value.problems)


class Monotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def transactional(record: RunRecord | None = None) -> tuple[TransactionalKafkaSink, FakeProducer, Monotonic]:
    """A transactional sink committing every second over a fake producer, with its clock."""
    plain, producer = fake_sink(topic="t")
    clock = Monotonic()
    sink = TransactionalKafkaSink(plain, commit_interval_s=1.0, run_record=record, monotonic=clock, timeout_s=1)
    return sink, producer, clock


def test_sends_go_in_transactions_committed_on_the_interval() -> None:
    """The first send opens a transaction that carries the run record first; a send past the interval commits."""
    sink, producer, clock = transactional(RunRecord("f", "s", START))
    assert producer.calls == ["init"]
    sink.send("c1", b"{}", None, "slot")
    assert producer.calls == ["init", "begin"]
    assert [(m.topic(), m.key()) for m, _ in producer.queue] == [(state_topic("t"), b"t"), ("t", b"c1")]
    assert RunRecord.decode(producer.queue[0][0].value()) == RunRecord("f", "s", START)
    clock.now = 0.5
    sink.send_to("sensors", "c1", b"{}")
    assert producer.calls == ["init", "begin"], "within the interval: the same transaction"
    clock.now = 1.0
    sink.poll()
    assert producer.calls == ["init", "begin", "commit"]
    sink.send("c2", b"{}", None, "slot")
    assert producer.calls == ["init", "begin", "commit", "begin"]
    assert [m.topic() for m, _ in producer.queue].count(state_topic("t")) == 1, "the run record goes once"
    for _ in range(len(producer.queue)):
        producer.deliver(None)
    assert sink.flush(0) == 0
    assert producer.calls[-1] == "commit"
    assert (sink.delivered, sink.failed) == (3, 0), "the run record is not an event"


def test_a_refused_commit_aborts_and_flush_reports_it_unconfirmed(caplog: pytest.LogCaptureFixture) -> None:
    """A commit the broker refuses aborts the transaction; flush logs why and counts its events as unconfirmed."""
    sink, producer, clock = transactional()
    sink.send("c1", b"{}", None, "slot")
    producer.refuse_commit = KafkaException(KafkaError(KafkaError._FENCED, "fenced"))
    assert sink.flush(0) == 1
    assert producer.calls == ["init", "begin", "abort"]
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith("cannot commit a transaction: _FENCED: fenced; the transaction was aborted")
    sink.send("c2", b"{}", None, "slot")
    clock.now = 1.0  # past the interval: the loop's own commit is refused too, and stops the run
    with pytest.raises(DeliveryError, match="cannot commit a transaction: _FENCED"):
        sink.poll()
    assert producer.calls == ["init", "begin", "abort", "begin", "abort"]


def test_close_aborts_an_open_transaction_and_fails_its_events() -> None:
    """Closing mid-transaction aborts it; the events still queued are purged and counted as failed."""
    sink, producer, _ = transactional()
    sink.send("c1", b"{}", None, "slot")
    sink.send("c2", b"{}", None, "slot")
    sink.close()
    assert producer.calls == ["init", "begin", "abort"]
    assert producer.purged
    assert (sink.delivered, sink.failed) == (0, 2)


def test_each_commit_carries_the_positions_that_moved_just_before_it() -> None:
    """A commit first writes each moved unit's position to the state topic, keyed by the unit; then commits."""
    sink, producer, clock = transactional()
    positions = Positions(dated=True, start_us=START)
    sink.carry(RunRecord("f", "s", START), positions)
    positions.note("a", dt.date(2025, 8, 12), 0, done=False)
    sink.send("c1", b"{}", "a", "slot")
    positions.note("a", dt.date(2025, 8, 12), 1, done=True)
    sink.send("c2", b"{}", "a", "slot")
    clock.now = 1.0
    sink.poll()
    assert producer.calls == ["init", "begin", "commit"]
    state = [(m.key(), m.value()) for m, _ in producer.queue if m.topic() == state_topic("t")]
    assert [key for key, _ in state] == [b"t", b"unit:a|2025-08-12"]
    assert Position.decode(state[1][1]) == Position(dt.date(2025, 8, 12), 1, True, START)
    sink.send("c3", b"{}", "a", "slot")  # no position moved: none written
    clock.now = 2.0
    sink.poll()
    assert [m.topic() for m, _ in producer.queue].count(state_topic("t")) == 2


def test_flush_commits_positions_that_moved_without_events() -> None:
    """Positions noted after the last event (a closed day, the end reached) still reach the state topic."""
    sink, producer, _ = transactional()
    positions = Positions(dated=True, start_us=START)
    sink.carry(None, positions)
    positions.note(None, dt.date(2025, 8, 13), -1, done=True)
    sink.flush(0)
    assert producer.calls == ["init", "begin", "commit"]
    ((message, _),) = producer.queue
    assert (message.topic(), message.key()) == (state_topic("t"), b"unit:|2025-08-13")
    sink.flush(0)
    assert producer.calls == ["init", "begin", "commit"], "nothing moved since: no transaction"


def test_a_sharded_run_record_says_how_it_is_cut() -> None:
    """A shard's run record holds N and FLEET_PARTITIONS; an unsharded one keeps the bytes earlier versions wrote."""
    assert RunRecord("f", "s", 5).encode() == b'{"fingerprint": "f", "seed": "s", "start_us": 5}'
    sharded = RunRecord("f", "s", 5, 3, 64)
    assert RunRecord.decode(sharded.encode()) == sharded
    assert json.loads(sharded.encode())["shards"] == 3


def test_shards_of_one_run_share_its_fingerprint_and_transactional_id_base() -> None:
    """I is not in the fingerprint (the shards share one run record); N and FLEET_PARTITIONS are; ids differ by I."""
    base = {"DAILY_CUSTOMERS": "10", "SEED": "s"}

    def of(**env: str) -> str:
        return fingerprint(plan_settings(load_settings(base | env)))

    assert of(SHARD="0/3") == of(SHARD="2/3")
    assert len({of(), of(SHARD="0/3"), of(SHARD="0/2"), of(SHARD="0/3", FLEET_PARTITIONS="32")}) == 4
    assert of() == of(FLEET_PARTITIONS="32"), "FLEET_PARTITIONS cuts nothing in an unsharded run"
    assert transactional_id(load_settings(base | {"SHARD": "1/3", "KAFKA_TOPIC": "v"})) == (
        "foot-traffic-v-shard-1-of-3"
    )
    settings = load_settings(base | {"SHARD": "auto/2", "HOSTNAME": "ft-0", "KAFKA_TRANSACTIONAL_ID": "x"})
    assert transactional_id(settings) == "x-shard-0-of-2"
    assert transactional_id(load_settings(base)) == "foot-traffic-foot_traffic"


def eo(shard: Shard | None = None, partitions: int | None = None) -> ExactlyOnce:
    """What an exactly-once start-up knows, for the checks of a topic's run record."""
    return ExactlyOnce(
        "b", "t", {}, 1, 1.0, "id", 0.2, "f", None, None, "", dated=True, shard=shard, partitions=partitions
    )


@pytest.mark.parametrize(
    ("record", "run", "problem"),
    [
        (RunRecord("f", "s", 5), eo(Shard(0, 2), 64), "KAFKA_TOPIC='t': it holds an unsharded run; expected no SHARD"),
        (RunRecord("g", "s", 5, 3, 64), eo(), "KAFKA_TOPIC='t': it holds a run of 3 shards; expected SHARD=I/3"),
        (RunRecord("g", "s", 5, 3, 64), eo(Shard(1, 2), 64), "it holds a run of 3 shards; expected SHARD=I/3"),
        (RunRecord("g", "s", 5, 2, 64), eo(Shard(1, 2), 32), "FLEET_PARTITIONS=32: expected the FLEET_PARTITIONS"),
    ],
)
def test_a_topic_of_other_shards_is_refused(record: RunRecord, run: ExactlyOnce, problem: str) -> None:
    """A run cut into other units than the topic's is refused, naming what differs, not just a fingerprint."""
    with pytest.raises(ConfigError) as info:
        check_matches(record, run)
    (line,) = info.value.problems
    assert line.startswith(problem) or problem in line


def test_a_run_that_sent_nothing_still_records_itself() -> None:
    """A new run that sent no event (a shard without units) commits its run record at flush: the topic knows it."""
    sink, producer, _ = transactional(RunRecord("f", "s", START, 2, 64))
    sink.flush(0)
    assert producer.calls == ["init", "begin", "commit"]
    ((message, _),) = producer.queue
    assert RunRecord.decode(message.value()) == RunRecord("f", "s", START, 2, 64)


def test_a_fleet_members_clock_starts_at_the_furthest_committed_event_of_the_fleet() -> None:
    """A member resumes no store up front; its resume points, whoever committed them, give its clock's start."""
    chain = [StoreModel(Model(daily_customers=50, store_key=i + 1, tz=dt.UTC), f"s{i}") for i in range(2)]
    root = root_entropy("fleet")
    day2 = dt.date(2025, 8, 13)
    progress = {
        Unit("s0", day2): Position(day2, 3, False, START),
        Unit("s1", day2): Position(day2, 20, False, START),
        Unit("s1", dt.date(2025, 8, 12)): Position(dt.date(2025, 8, 12), 30, True, START),
    }
    run = replace(eo(), fleet=True)
    record = RunRecord("f", "fleet", START)
    _, start, points, new_record = _resume(run, State(record, progress), lambda: chain, START, None)
    events = list(day_events(root, plan_day(chain[1].model, root, day2), "s1"))
    assert (start, new_record) == (START, None)
    assert points["s1"].entry_us == events[20].entry_us, "the store's furthest committed event, on its own day"
    assert max(p.entry_us for p in points.values()) == events[20].entry_us
