"""The pure parts of exactly-once delivery: run records, fingerprints and resuming a sequence."""

from __future__ import annotations

import datetime as dt

import pytest

from foot_traffic.config.resolve import load_settings
from foot_traffic.errors import ConfigError
from foot_traffic.kafka.transactions import RunRecord, fingerprint, plan_settings, state_topic
from foot_traffic.model.grid import US_PER_DAY, datetime_to_us
from foot_traffic.model.plan import Model, plan_day
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import ResumeAfter, Service, day_events
from foot_traffic.run.sinks import MemorySink

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
