"""The service loop, driven by a manual clock and an in-memory sink."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import threading
from collections import Counter

import pytest

from foot_traffic.events.encoding import Encoded
from foot_traffic.model.grid import US_PER_DAY, US_PER_SECOND, datetime_to_us
from foot_traffic.model.plan import Model, StoreModel, plan_day
from foot_traffic.run.clock import ManualClock, RealClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink
from foot_traffic.run.timeline import day_events
from tests.unit.fakes import SteppedClock

ROOT = 99
DATE = dt.date(2025, 8, 12)
MIDNIGHT = datetime_to_us(dt.datetime.combine(DATE, dt.time(), tzinfo=dt.UTC))


def test_emits_the_whole_plan_in_order_until_the_end() -> None:
    """From midnight, one simulated day emits exactly that day's plan, in entry order, as due."""
    model = Model(daily_customers=300)
    sink = MemorySink()
    clock = ManualClock(MIDNIGHT)
    service = Service(model, ROOT, sink, clock, poll_s=0.5, until_us=MIDNIGHT + US_PER_DAY)
    counters = service.run()
    plan = plan_day(model, ROOT, DATE)
    expected = [e.encode() for e in day_events(ROOT, plan)]
    assert [value for _, value in sink.records] == expected
    assert counters.planned == counters.emitted == 300
    keys = [key for key, _ in sink.records]
    assert keys == [json.loads(v)["customer_id"] for _, v in sink.records]


def test_each_event_leaves_once_its_entry_time_is_due() -> None:
    """An event is sent only when the clock has reached its entry time."""
    model = Model(daily_customers=50)
    clock = ManualClock(MIDNIGHT)
    sent_at: list[tuple[int, int]] = []

    class Probe(MemorySink):
        def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
            entry = datetime_to_us(dt.datetime.fromisoformat(json.loads(value)["entry_time"]))
            sent_at.append((entry, clock.now_us()))
            super().send(key, value, store_id, slot)

        def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
            for value in batch.values(start, stop):
                entry = datetime_to_us(dt.datetime.fromisoformat(json.loads(value)["entry_time"]))
                sent_at.append((entry, clock.now_us()))
            super().send_batch(batch, start, stop)

    Service(model, ROOT, Probe(), clock, poll_s=1.0, until_us=MIDNIGHT + US_PER_DAY).run()
    assert len(sent_at) == 50
    assert all(entry <= now for entry, now in sent_at)


def test_waits_are_never_longer_than_the_poll_interval() -> None:
    """No single wait exceeds SLEEP / TIME_SCALE, and a shorter one ends exactly when the next event is due."""
    model = Model(daily_customers=5)
    clock = SteppedClock(MIDNIGHT)
    sink = MemorySink()
    Service(model, ROOT, sink, clock, poll_s=0.25, stop=clock.stop, until_us=MIDNIGHT + US_PER_DAY).run()
    entries = {datetime_to_us(dt.datetime.fromisoformat(json.loads(v)["entry_time"])) for _, v in sink.records}
    assert len(entries) == 5
    assert max(timeout for timeout, _ in clock.waits) == 0.25
    short = [now for timeout, now in clock.waits if timeout < 0.25]
    assert short
    assert set(short) <= entries | {MIDNIGHT + US_PER_DAY}


def test_a_manual_clock_never_waits() -> None:
    """At max speed the loop jumps from deadline to deadline: a simulated day takes no wait on the stop flag."""

    class NoWaits(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            raise AssertionError("the loop waited")

    sink = MemorySink()
    clock = ManualClock(MIDNIGHT)
    end = MIDNIGHT + US_PER_DAY
    Service(Model(daily_customers=300), ROOT, sink, clock, poll_s=0.5, stop=NoWaits(), until_us=end).run()
    assert len(sink.records) == 300
    with_sensors = MemorySink()  # the event-by-event path too
    Service(
        Model(daily_customers=300),
        ROOT,
        with_sensors,
        ManualClock(MIDNIGHT),
        poll_s=0.5,
        stop=NoWaits(),
        until_us=end,
        sensor_topic="s",
    ).run()
    assert with_sensors.records == sink.records


def test_mid_day_start_then_next_day_whole(caplog: pytest.LogCaptureFixture) -> None:
    """Started mid-day, the first day follows the mid-day rule and the next is planned whole at midnight."""
    model = Model(daily_customers=1000)
    start = MIDNIGHT + 15 * 3600 * 10**6 + 30 * 60 * 10**6
    sink = MemorySink()
    caplog.set_level(logging.INFO, logger="foot_traffic")
    Service(model, ROOT, sink, ManualClock(start), poll_s=0.5, until_us=MIDNIGHT + 2 * US_PER_DAY).run()
    first = plan_day(model, ROOT, DATE, now_us=start)
    second = plan_day(model, ROOT, DATE + dt.timedelta(days=1))
    assert len(sink.records) == first.total + second.total
    plan_lines = [line for r in caplog.records for line in r.getMessage().split("\n") if "Planned total" in line]
    assert plan_lines == [first.log_line(), second.log_line()]
    messages = [line for r in caplog.records for line in r.getMessage().split("\n")]  # a batch's record: its lines
    emitted = [m for m in messages if m.startswith("Emitted customer_id=")]
    assert len(emitted) == len(sink.records)
    assert all(key in line for (key, _), line in zip(sink.records, emitted, strict=True))


def test_stop_flag_ends_the_run_without_emitting_more() -> None:
    """Once the stop flag is set, nothing more is sent."""
    model = Model(daily_customers=100)

    class StopAfter(MemorySink):
        def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
            super().send(key, value, store_id, slot)
            if len(self.records) >= 10:
                clock.stop.set()

        def send_batch(self, batch: Encoded, start: int, stop_at: int) -> None:
            super().send_batch(batch, start, stop_at)
            if len(self.records) >= 10:
                clock.stop.set()

    sink = StopAfter()
    clock = SteppedClock(MIDNIGHT)  # a clock that waits, so events leave one by one
    counters = Service(model, ROOT, sink, clock, poll_s=60.0, stop=clock.stop).run()
    assert counters.emitted == len(sink.records) == 10


def test_a_stop_signal_wakes_the_loop_from_a_long_wait() -> None:
    """Waiting on a real clock for an event hours away, the loop returns as soon as the stop flag is set."""
    stop = threading.Event()
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    evening = RealClock().now_us() + 3600 * US_PER_SECOND
    model = Model(daily_customers=1)
    counters = Service(model, ROOT, MemorySink(), RealClock(), poll_s=3600.0, stop=stop, start_us=evening).run()
    timer.join()
    assert counters.emitted == 0


def test_sensor_events_follow_the_clock_and_stop_at_until() -> None:
    """Each visit gives an entry at entry_time and an exit at exit_time, in time order; none at or after until."""
    model = Model(daily_customers=400)
    end = MIDNIGHT + US_PER_DAY
    sink = MemorySink()
    clock = ManualClock(MIDNIGHT)
    counters = Service(model, ROOT, sink, clock, poll_s=0.5, until_us=end, sensor_topic="sensors").run()
    visits = [json.loads(v) for _, v in sink.records]
    sensors = [json.loads(v) for _, v in sink.other["sensors"]]
    entries = [s for s in sensors if s["event_type"] == "entry"]
    exits = [s for s in sensors if s["event_type"] == "exit"]
    assert [e["time"] for e in entries] == [v["entry_time"] for v in visits]
    expected_exits = sorted(v["exit_time"] for v in visits if v["exit_time"] < "2025-08-13")
    assert [e["time"] for e in exits] == expected_exits
    assert len(exits) < len(visits)
    times = [s["time"] for s in sensors]
    assert times == sorted(times)
    assert counters.sensor_emitted == len(sensors)
    assert [k for k, _ in sink.other["sensors"]] == [s["customer_id"] for s in sensors]


def test_several_stores_merge_in_time_order_with_their_ids(caplog: pytest.LogCaptureFixture) -> None:
    """Stores' events are merged by entry time, carry store_id last, and each store logs its plan."""
    caplog.set_level(logging.INFO, logger="foot_traffic")
    stores = [
        StoreModel(Model(daily_customers=100, store_key=11), "a"),
        StoreModel(Model(daily_customers=50, store_key=22), "b"),
    ]
    sink = MemorySink()
    Service(stores, ROOT, sink, ManualClock(MIDNIGHT), poll_s=0.5, until_us=MIDNIGHT + US_PER_DAY).run()
    events = [json.loads(v) for _, v in sink.records]
    assert [e["entry_time"] for e in events] == sorted(e["entry_time"] for e in events)
    assert Counter(e["store_id"] for e in events) == {"a": 100, "b": 50}
    assert all(list(e)[-1] == "store_id" for e in events)
    plan_lines = [line for r in caplog.records for line in r.getMessage().split("\n") if "Planned total" in line]
    assert [line.split("]")[0] for line in plan_lines] == ["[store a", "[store b"]
    alone = MemorySink()
    Service([stores[1]], ROOT, alone, ManualClock(MIDNIGHT), poll_s=0.5, until_us=MIDNIGHT + US_PER_DAY).run()
    assert [v for _, v in alone.records] == [v for _, v in sink.records if b'"store_id":"b"' in v]


def test_importing_the_loop_loads_numpy_random_before_a_live_run_takes_its_start() -> None:
    """Importing the loop loads numpy.random: lazily at the first draw, it made a live run's first events late."""
    code = "import sys, foot_traffic.run.service; print('numpy.random' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True"]
