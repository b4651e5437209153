"""Crash-safe exactly-once delivery: SIGKILL at any moment, restart, and the topic holds the plan once."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from foot_traffic.cli.run_command import plan_settings
from foot_traffic.config.resolve import load_settings
from foot_traffic.kafka.resume import RunRecord, fingerprint, state_topic
from foot_traffic.model.grid import local_date
from foot_traffic.model.plan import plan_day
from foot_traffic.model.randomness import root_entropy
from foot_traffic.run.positions import Position
from foot_traffic.run.timeline import day_events
from tests.integration.conftest import ROOT, ProducerProcess, base_env, consume_committed, wait_for_a_commit

Start = Callable[..., ProducerProcess]
BACKFILL = ["--speed", "20000", "--start", "2025-08-12", "--until", "2025-08-13"]


def committed(broker: str, topic: str) -> list[bytes]:
    """The value of every committed record of a single-partition topic."""
    return [value for _, value in consume_committed(broker, topic)]


@pytest.mark.kafka
def test_sigkill_at_any_moment_then_restart_leaves_every_event_once(
    broker: str, topic: str, producer_process: Start
) -> None:
    """Three SIGKILLs during an accelerated run, then a run to the end: the topic equals the plan, once."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1", DAILY_CUSTOMERS="30000", SEED="eo")
    for threshold in (300, 1500, 4000):
        process = producer_process(BACKFILL, env)
        process.wait_for_emitted(threshold)
        if threshold == 4000:  # the last run leaves a committed tail for the restart to resume after
            wait_for_a_commit(broker, topic)
        process.proc.kill()
        process.finish(30)
    final = producer_process(BACKFILL, env)
    assert final.finish(180) == 0
    assert final.lines_with("Resuming after customer_id=")
    expected = subprocess.run(
        [
            sys.executable,
            "-m",
            "foot_traffic",
            "run",
            "--sink",
            "stdout",
            "--speed",
            "max",
            "--start",
            "2025-08-12",
            "--until",
            "2025-08-13",
            "--daily-customers",
            "30000",
            "--seed",
            "eo",
            "--log-level",
            "WARNING",
        ],
        capture_output=True,
        check=True,
        cwd=ROOT,
        env=base_env(),
    ).stdout.splitlines()
    values = committed(broker, topic)
    assert len(values) == len(expected) == 30000
    assert values == expected


@pytest.mark.kafka
def test_real_time_crash_and_restart_continue_the_same_plan(broker: str, topic: str, producer_process: Start) -> None:
    """In real time, a SIGKILLed run restarted resumes the recorded run: committed events are a gapless prefix."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1", DAILY_CUSTOMERS="20000000", SEED="rt")
    first = producer_process([], env)
    first.wait_for_emitted(300)
    wait_for_a_commit(broker, topic)
    first.proc.kill()
    first.finish(30)
    second = producer_process([], env)
    second.wait_for(lambda: second.emitted() >= 300, 90, "300 more emitted events")
    assert second.stop(signal.SIGTERM) == 0
    assert second.lines_with("Resuming after customer_id=")
    state = dict(consume_committed(broker, state_topic(topic)))
    assert set(state) == {topic, "unit:|"}, "the run record and the position of the run's one unit (its store)"
    record = RunRecord.decode(state[topic])
    settings = load_settings({"DAILY_CUSTOMERS": "20000000", "SEED": "rt"})
    root = root_entropy(record.seed)
    date = local_date(record.start_us)
    plans = [
        plan_day(settings.model(), root, date, now_us=record.start_us),
        plan_day(settings.model(), root, date + dt.timedelta(days=1)),
    ]
    values = committed(broker, topic)
    expected = []
    last = Position(date, -1, False, record.start_us)
    for plan in plans:
        for index, event in enumerate(day_events(root, plan)):
            expected.append(event.encode())
            last = Position(plan.date, index, False, record.start_us)
            if len(expected) == len(values):
                break
        if len(expected) == len(values):
            break
    assert len(values) >= 600 - 300  # the second run alone committed at least what it emitted before SIGTERM
    assert values == expected
    assert Position.decode(state["unit:|"]) == last, "the committed position is the last committed event's"
    assert len({json.loads(v)["customer_id"] for v in values}) == len(values)


@pytest.mark.kafka
def test_restart_with_other_settings_is_refused(broker: str, topic: str, producer_process: Start) -> None:
    """A topic written by one configuration refuses another: exit 2 and a message naming what differs."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1", DAILY_CUSTOMERS="1000", SEED="a")
    assert producer_process(["--speed", "max", *BACKFILL[2:]], env).finish(120) == 0
    other = producer_process(BACKFILL, {**env, "DAILY_CUSTOMERS": "2000"})
    assert other.finish(120) == 2
    assert other.lines_with(f"KAFKA_TOPIC={topic!r}: it holds a run of other settings")
    seed = producer_process(BACKFILL, {**env, "SEED": "b"})
    assert seed.finish(120) == 2
    assert seed.lines_with("SEED='b': expected the SEED of the run in the topic, 'a'")
    assert len(committed(broker, topic)) == 1000


@pytest.mark.kafka
def test_a_topic_of_an_earlier_version_resumes_after_its_last_event(
    broker: str, topic: str, producer_process: Start
) -> None:
    """A run record and events, no position (as earlier versions wrote): the restart resumes after the last event."""
    options = {"DAILY_CUSTOMERS": "1000", "SEED": "old", "START": "2025-08-12", "UNTIL": "2025-08-13"}
    expected = subprocess.run(
        [sys.executable, "-m", "foot_traffic", "run", "--sink", "stdout", "--speed", "max", "--log-level", "WARNING"],
        capture_output=True,
        check=True,
        cwd=ROOT,
        env=base_env(**options),
    ).stdout.splitlines()
    settings = load_settings({**options, "KAFKA_TOPIC": topic})
    assert settings.start_us is not None
    record = RunRecord(fingerprint(plan_settings(settings)), "old", settings.start_us)
    admin = AdminClient({"bootstrap.servers": broker})
    for future in admin.create_topics([NewTopic(topic, 1, 1), NewTopic(state_topic(topic), 1, 1)]).values():
        future.result(30)
    earlier = Producer({"bootstrap.servers": broker})
    earlier.produce(state_topic(topic), record.encode(), topic.encode())
    for value in expected[:400]:
        earlier.produce(topic, value, json.loads(value)["customer_id"].encode())
    assert earlier.flush(30) == 0
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1", **options)
    resumed = producer_process(["--speed", "max"], env)
    assert resumed.finish(120) == 0
    last = json.loads(expected[399])["customer_id"]
    assert resumed.lines_with(f"Resuming after customer_id={last} (2025-08-12, event #400 of the day)")
    assert committed(broker, topic) == expected
