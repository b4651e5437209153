"""Simulated time end to end: backfills, backfill-then-live, stores, calendar, sensor events, progress line."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import Settings
from foot_traffic.events.event import Event
from foot_traffic.model import randomness
from foot_traffic.model.grid import UTC, datetime_to_us, local_date
from foot_traffic.model.plan import plan_day
from foot_traffic.run.timeline import day_events
from tests.integration.conftest import ROOT, ProducerProcess, Record, base_env, consume_all
from tests.integration.test_run_kafka import FIELDS, assert_event_shape, emitted_ids, summary

DATA = ROOT / "tests" / "integration" / "data"
LOGGED = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO foot_traffic\.run\.service: "
    r"Emitted customer_id=([0-9a-f-]{36}) entry_time=(\S+) "
)
PROGRESS = re.compile(
    r"backfill \d{4}-\d\d-\d\d \d\d:\d\d \(\s*[\d.]+%\) \| [\d,]+ events \| [\d,]+ events/s \| ETA \S+"
)
LOG_MARGIN = dt.timedelta(milliseconds=2)
"""Log times are truncated to the millisecond: an event logged right at its entry time may look 1 ms early."""
CAUGHT_UP = dt.timedelta(milliseconds=50)
"""An event logged this soon after its entry_time shows the simulated clock has reached the wall clock."""

Start = Callable[..., ProducerProcess]
Key = tuple[str | None, str, str]
"""(store_id, local date, slot label): the cell of a plan."""


def foot_traffic(command: str, *args: str, env: Mapping[str, str], timeout: float = 120) -> bytes:
    """Run one foot-traffic command to completion; return its standard output, failing on a non-zero status."""
    done = subprocess.run(
        [sys.executable, "-m", "foot_traffic", command, *args],
        env=dict(env),
        capture_output=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout


def plans(env: Mapping[str, str], *args: str) -> list[dict[str, Any]]:
    """The objects ``plan --json`` prints, one per store per day."""
    return [json.loads(line) for line in foot_traffic("plan", "--json", *args, env=env).splitlines()]


def planned(plan_lines: list[dict[str, Any]]) -> dict[Key, int]:
    """Each plan cell's count."""
    return {(p.get("store_id"), p["date"], slot["label"]): slot["count"] for p in plan_lines for slot in p["slots"]}


def cell_counts(events: list[dict[str, Any]]) -> Counter[Key]:
    """Events per plan cell; an entry_time carries its zone's offset, so its first 10 characters are the local date."""
    return Counter((e.get("store_id"), e["entry_time"][:10], e["time_slot"]) for e in events)


def instant(text: str) -> dt.datetime:
    """An ISO-8601 instant with an offset."""
    moment = dt.datetime.fromisoformat(text)
    assert moment.tzinfo is not None, text
    return moment


def log_time(line: str) -> dt.datetime:
    """The time stamp of a log line (the producer runs with TZ=UTC)."""
    return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)


def logged_emissions(process: ProducerProcess) -> list[tuple[dt.datetime, str, dt.datetime]]:
    """(log time, customer_id, entry_time) of every per-event log line, in order."""
    return [
        (log_time(m.group(1)), m.group(2), instant(m.group(3))) for line in process.stderr if (m := LOGGED.match(line))
    ]


class CatchUp:
    """Follows a backfill-then-live run's per-event log lines to tell when it caught up with the wall clock.

    During the backfill events are logged well after their entry_time; the first one
    logged within CAUGHT_UP of its entry_time marks the hand-over to live time.
    """

    def __init__(self, process: ProducerProcess) -> None:
        self.process = process
        self.at: dt.datetime | None = None
        self.last_entry: dt.datetime | None = None
        self._seen = 0

    def live_for(self) -> dt.timedelta:
        """Simulated time covered since the hand-over (zero before it); call it under the process's line lock."""
        lines = self.process.stderr
        for line in lines[self._seen :]:
            if m := LOGGED.match(line):
                entry = instant(m.group(3))
                if self.at is None and log_time(m.group(1)) - entry < CAUGHT_UP:
                    self.at = entry
                self.last_entry = entry
        self._seen = len(lines)
        if self.at is None or self.last_entry is None:
            return dt.timedelta(0)
        return self.last_entry - self.at


def the_line(process: ProducerProcess, needle: str) -> str:
    """The one standard-error line containing ``needle``."""
    (line,) = process.lines_with(needle)
    return line


def events_from(settings: Settings) -> Iterator[Event]:
    """The deterministic visits of a single-store run from its START on, day after day."""
    root = randomness.root_entropy(settings.seed)
    model = settings.model()
    start_us = settings.start_us
    assert start_us is not None
    date = local_date(start_us, model.tz)
    plan = plan_day(model, root, date, now_us=start_us)
    while True:
        yield from day_events(root, plan)
        date += dt.timedelta(days=1)
        plan = plan_day(model, root, date)


def decoded(records: list[Record]) -> list[dict[str, Any]]:
    """The JSON objects of the records, checking that each key is the record's customer_id."""
    events = [json.loads(r.value) for r in records]
    assert [r.key for r in records] == [e["customer_id"] for e in events]
    return events


def now_utc() -> dt.datetime:
    """The wall clock, as the producer's RealClock reads it."""
    return dt.datetime.fromtimestamp(time.time_ns() // 1000 / 1e6, UTC)


@pytest.mark.kafka
def test_backfill_to_kafka_equals_stdout_and_the_plan(broker: str, topic: str, producer_process: Start) -> None:
    """A seeded --speed max backfill ends by itself; Kafka holds stdout's exact bytes, and the plan's counts."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, SEED="backfill", BASE_DAILY_CUSTOMERS="2000")
    args = ["--speed", "max", "--start", "2025-08-11", "--until", "2025-08-14"]
    process = producer_process(args, env)
    assert process.finish(120) == 0
    lines = foot_traffic("run", *args, "--sink", "stdout", env=env).splitlines()
    records = consume_all(broker, topic)
    assert [r.value for r in records] == lines
    events = decoded(records)
    assert [e["customer_id"] for e in events] == emitted_ids(process)
    for event in events:
        assert_event_shape(event)
    expected = planned(plans(env, "--date", "2025-08-11", "--days", "3"))
    counts = cell_counts(events)
    assert {cell: counts[cell] for cell in expected} == expected
    assert counts.total() == sum(expected.values()) == summary(process)[1]
    assert {date for _, date, _ in counts} == {"2025-08-11", "2025-08-12", "2025-08-13"}


@pytest.mark.kafka
def test_backfill_hands_over_to_live_time_without_gap_or_duplicate(
    broker: str, topic: str, producer_process: Start
) -> None:
    """--speed max from 20 s ago catches up, then runs live: exactly the deterministic sequence, none early."""
    launch = now_utc()
    start = (launch - dt.timedelta(seconds=20)).replace(microsecond=0)
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        SEED="hand-over",
        DAILY_CUSTOMERS="20000000",
        SPEED="max",
        START=start.isoformat(),
        LOG_LEVEL="INFO",
        TZ="UTC",
    )
    process = producer_process([], env)
    catch_up = CatchUp(process)
    process.wait_for(lambda: catch_up.live_for() > dt.timedelta(seconds=1.5), 60, "1.5 s of live events")
    assert process.stop() == 0
    records = consume_all(broker, topic)
    expected = list(itertools.islice(events_from(load_settings(env)), len(records)))
    assert [r.value for r in records] == [e.encode() for e in expected]
    assert [r.key for r in records] == [e.customer_id for e in expected]
    emissions = logged_emissions(process)
    assert [cid for _, cid, _ in emissions] == [r.key for r in records]
    assert summary(process)[1:] == (len(records), len(records), 0)
    entries = [entry for _, _, entry in emissions]
    assert entries[0] >= start
    assert any(entry < launch for entry in entries), "events of the backfill, from before the process started"
    assert catch_up.at is not None
    assert catch_up.at > launch
    live = [(logged, entry) for logged, _, entry in emissions if entry >= catch_up.at]
    assert len(live) > 100, "events of the live phase"
    early = [(logged, entry) for logged, entry in live if logged < entry - LOG_MARGIN]
    assert not early, f"live events logged before their entry_time: {early[:5]}"
    late = max(logged - entry for logged, entry in live)
    assert late < dt.timedelta(seconds=1), f"a live event was emitted {late} after its entry_time"


@pytest.mark.kafka
def test_several_stores_carry_store_id_and_follow_each_stores_plan(
    broker: str, topic: str, producer_process: Start
) -> None:
    """Two stores (one on Rome time): store_id last, keys = customer_id, each store's counts = its plan."""
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        SEED="stores",
        BASE_DAILY_CUSTOMERS="3000",
        STORES_FILE=str(DATA / "stores_two.toml"),
        LOG_LEVEL="WARNING",
    )
    start, until = dt.datetime(2025, 8, 12, tzinfo=UTC), dt.datetime(2025, 8, 13, tzinfo=UTC)
    args = ["--speed", "max", "--start", "2025-08-12", "--until", "2025-08-13"]
    assert producer_process(args, env).finish(120) == 0
    events = decoded(consume_all(broker, topic))
    assert {tuple(e) for e in events} == {(*FIELDS, "store_id")}
    assert {e["store_id"] for e in events} == {"milan-01", "leeds-02"}
    for event in events:
        assert start <= instant(event["entry_time"]) < until
        offset = "+02:00" if event["store_id"] == "milan-01" else "+00:00"
        assert event["entry_time"].endswith(offset), event
    # The plan of the run's start instant (Rome is already at 02:00): slots wholly before UNTIL must match it.
    plan_lines = plans(env, "--date", "2025-08-12", "--days", "2", "--now", start.isoformat())
    assert {p["store_id"] for p in plan_lines} == {"milan-01", "leeds-02"}
    settings = load_settings(env)
    root = randomness.root_entropy(settings.seed)
    models = {run.store_id: run.model for run in settings.store_models()}
    expected: dict[Key, int] = {}
    for p in plan_lines:
        for slot in p["slots"]:
            cell = (p["store_id"], p["date"], slot["label"])
            if instant(slot["end"]) <= until:
                expected[cell] = slot["count"]
            elif instant(slot["start"]) >= until:
                expected[cell] = 0
            else:  # the slot straddles UNTIL: only its visits before UNTIL are emitted
                day = plan_day(models[p["store_id"]], root, dt.date.fromisoformat(p["date"]), datetime_to_us(start))
                expected[cell] = sum(
                    1
                    for e in day_events(root, day, p["store_id"])
                    if e.time_slot == slot["label"] and e.entry_us < datetime_to_us(until)
                )
                assert 0 < expected[cell] < slot["count"]
    counts = cell_counts(events)
    assert {cell: counts[cell] for cell in expected} == expected
    assert counts.total() == sum(expected.values())
    per_store = Counter(e["store_id"] for e in events)
    assert per_store["leeds-02"] < per_store["milan-01"]


@pytest.mark.kafka
def test_a_single_store_file_gives_the_specifications_seven_fields(
    broker: str, topic: str, producer_process: Start
) -> None:
    """With one store in STORES_FILE, events have exactly the specification's fields, no store_id."""
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        SEED="one-store",
        BASE_DAILY_CUSTOMERS="2000",
        STORES_FILE=str(DATA / "stores_one.toml"),
        LOG_LEVEL="WARNING",
    )
    assert producer_process(["--speed", "max", "--start", "2025-08-12", "--until", "2025-08-13"], env).finish(60) == 0
    events = decoded(consume_all(broker, topic))
    assert events
    for event in events:
        assert_event_shape(event)
    plan_lines = plans(env, "--date", "2025-08-12")
    assert ["store_id" in p for p in plan_lines] == [False]
    expected = planned(plan_lines)
    assert cell_counts(events) == Counter({cell: n for cell, n in expected.items() if n})


@pytest.mark.kafka
def test_calendar_closes_a_date_and_keeps_to_opening_hours(broker: str, topic: str, producer_process: Start) -> None:
    """A date marked closed gets no event; on an open day every visit enters between 09:00 and 20:00 local time."""
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        SEED="calendar",
        BASE_DAILY_CUSTOMERS="4000",
        TIMEZONE="Europe/Rome",
        CALENDAR_FILE=str(DATA / "calendar.toml"),
        LOG_LEVEL="WARNING",
    )
    args = ["--speed", "max", "--start", "2025-08-11", "--until", "2025-08-13"]
    assert producer_process(args, env).finish(60) == 0
    events = decoded(consume_all(broker, topic))
    monday, tuesday = plans(env, "--date", "2025-08-11", "--days", "2")
    assert (monday["date"], monday["total"], monday["day_total"]) == ("2025-08-11", 0, 0)
    assert tuesday["date"] == "2025-08-12"
    assert tuesday["total"] > 0
    local = [instant(e["entry_time"]) for e in events]
    assert {moment.date() for moment in local} == {dt.date(2025, 8, 12)}
    assert all(moment.utcoffset() == dt.timedelta(hours=2) for moment in local)
    assert all(dt.time(9) <= moment.time() < dt.time(20) for moment in local)
    assert len(events) == tuesday["total"]
    assert cell_counts(events) == Counter({cell: n for cell, n in planned([tuesday]).items() if n})


def sensor_events(records: list[Record]) -> list[tuple[str, str, dt.datetime, int]]:
    """(kind, customer_id, time, partition) of each sensor record, checking its shape and key."""
    out = []
    for record in records:
        event = json.loads(record.value)
        assert list(event) == ["event_type", "customer_id", "time"]
        assert event["customer_id"] == record.key
        out.append((event["event_type"], event["customer_id"], instant(event["time"]), record.partition))
    assert {kind for kind, *_ in out} <= {"entry", "exit"}
    return out


def assert_in_time_order_per_partition(sensors: list[tuple[str, str, dt.datetime, int]]) -> None:
    """Within a partition the sensor events come in time order (consume_all keeps each partition's order)."""
    for partition in {p for *_, p in sensors}:
        times = [t for *_, t, p in sensors if p == partition]
        assert times == sorted(times), f"partition {partition} out of time order"


@pytest.mark.kafka
def test_sensor_events_in_a_backfill_stop_at_until(broker: str, topic: str, producer_process: Start) -> None:
    """EXIT_EVENTS_TOPIC gets an entry per visit and an exit per visit that leaves before UNTIL, in time order."""
    sensor_topic = f"{topic}-sensors"
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        EXIT_EVENTS_TOPIC=sensor_topic,
        KAFKA_TOPIC_PARTITIONS="3",
        SEED="sensors",
        BASE_DAILY_CUSTOMERS="3000",
        LOG_LEVEL="INFO",
    )
    until = dt.datetime(2025, 8, 13, tzinfo=UTC)
    process = producer_process(["--speed", "max", "--start", "2025-08-12", "--until", "2025-08-13"], env)
    assert process.finish(60) == 0
    visits = decoded(consume_all(broker, topic))
    sensors = sensor_events(consume_all(broker, sensor_topic))
    entries = Counter((cid, t) for kind, cid, t, _ in sensors if kind == "entry")
    exits = Counter((cid, t) for kind, cid, t, _ in sensors if kind == "exit")
    assert entries == Counter((v["customer_id"], instant(v["entry_time"])) for v in visits)
    leaving = [instant(v["exit_time"]) < until for v in visits]
    assert exits == Counter(
        (v["customer_id"], instant(v["exit_time"])) for v, left in zip(visits, leaving, strict=True) if left
    )
    assert not all(leaving), "some visits end after UNTIL, and their exits are absent"
    assert_in_time_order_per_partition(sensors)
    assert len({p for *_, p in sensors}) > 1
    assert f"sensor_events={len(sensors)}" in the_line(process, "Summary:")


@pytest.mark.kafka
def test_sensor_events_on_a_live_stop_are_those_due_and_no_more(
    broker: str, topic: str, producer_process: Start
) -> None:
    """Stopped live, the sensor topic holds every entry and every exit due by the stop, none later."""
    sensor_topic = f"{topic}-sensors"
    launch = now_utc()
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        EXIT_EVENTS_TOPIC=sensor_topic,
        SEED="live-sensors",
        DAILY_CUSTOMERS="2000000",
        # Exits come 10 to 75 minutes after entries: start 20 minutes back so some fall due while live.
        SPEED="max",
        START=(launch - dt.timedelta(minutes=20)).isoformat(),
        LOG_LEVEL="INFO",
        TZ="UTC",
    )
    process = producer_process([], env)
    catch_up = CatchUp(process)
    # Stopped during the backfill, the run would stop at its simulated instant: wait until it is live.
    process.wait_for(lambda: catch_up.live_for() > dt.timedelta(seconds=1.5), 60, "1.5 s of live events")
    assert process.stop() == 0
    received = log_time(the_line(process, "Received SIGTERM"))
    finished = log_time(the_line(process, "Summary:")) + LOG_MARGIN
    records = consume_all(broker, topic)
    assert [r.key for r in records] == emitted_ids(process)
    visits = decoded(records)
    sensors = sensor_events(consume_all(broker, sensor_topic))
    assert all(t <= finished for _, _, t, _ in sensors), "no sensor event after the stop"
    entries = Counter((cid, t) for kind, cid, t, _ in sensors if kind == "entry")
    assert entries == Counter((v["customer_id"], instant(v["entry_time"])) for v in visits)
    exits = Counter((cid, t) for kind, cid, t, _ in sensors if kind == "exit")
    possible = Counter((v["customer_id"], instant(v["exit_time"])) for v in visits)
    assert exits <= possible
    due = Counter({(cid, t): n for (cid, t), n in possible.items() if t <= received})
    assert due <= exits, "every exit due by the stop signal was sent"
    assert any(t > launch for (_, t) in exits), "exits fell due after the process started"
    assert_in_time_order_per_partition(sensors)


class TerminalReader:
    """Collects what a child writes to the pseudo-terminal behind ``master``."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.text = ""
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO once the child has closed the terminal
                chunk = b""
            with self._changed:
                self.text += chunk.decode(errors="replace")
                self._changed.notify_all()
            if not chunk:
                return

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> None:
        """Block until ``pattern`` appears, or fail the test."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not pattern.search(self.text):
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    pytest.fail(f"no {pattern.pattern!r} on the terminal; got:\n{self.text[-2000:]}")
                self._changed.wait(min(left, 0.5))

    def join(self, timeout: float) -> None:
        """Wait for the child's last output."""
        self._thread.join(timeout)


BACKFILL_ARGS = ["--sink", "stdout", "--speed", "max", "--start", "2025-08-11", "--until", "2025-09-11"]
"""A backfill far longer than any test waits for: a month at a million visits a day."""


def test_progress_line_on_a_terminal() -> None:
    """A backfill whose standard error is a terminal redraws a "backfill … events/s … ETA" line."""
    env = base_env(DAILY_CUSTOMERS="1000000", SEED="progress", LOG_LEVEL="WARNING")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "foot_traffic", "run", *BACKFILL_ARGS],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
            cwd=ROOT,
        )
        os.close(slave)
        try:
            terminal = TerminalReader(master)
            terminal.wait_for(PROGRESS, 60)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 0
            terminal.join(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    finally:
        os.close(master)
    text = terminal.text.replace("\r\n", "\n")
    assert text.endswith("\n"), "the progress line is ended before the process exits"


def test_no_progress_line_without_a_terminal(producer_process: Start) -> None:
    """The same backfill with standard error on a pipe writes no progress line, however long it runs."""
    env = base_env(DAILY_CUSTOMERS="1000000", SEED="progress", LOG_LEVEL="WARNING")
    process = producer_process(BACKFILL_ARGS, env)
    began = time.monotonic()
    process.wait_for(lambda: time.monotonic() - began > 3.5, 10, "3.5 s of backfill")
    assert process.proc.poll() is None, "still backfilling after 3.5 s, past the progress line's 2 s"
    assert process.stop() == 0
    assert not process.lines_with("backfill")
    assert not process.lines_with("ETA")
