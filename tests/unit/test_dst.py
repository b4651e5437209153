"""Daylight-saving days: 23- and 25-hour local days in Europe/Rome and America/New_York, run whole."""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from scipy import stats

from foot_traffic.config.resolve import load_settings
from foot_traffic.model.grid import DEFAULT_GRID, WEEKDAYS, datetime_to_us
from foot_traffic.model.plan import DayPlan, plan_day
from foot_traffic.model.randomness import root_entropy
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink

SEED = "dst"
ROOT = root_entropy(SEED)
VOLUME = "20000"
HOUR_US = 3_600_000_000


@dataclass(frozen=True)
class Change:
    """A daylight-saving change: the local day, the wall-clock hour skipped or repeated, and the offsets."""

    zone: str
    date: dt.date
    day_hours: int
    first_slot_hours: int
    hour: int
    """The local hour [hour:00, hour+1:00) that does not exist (spring) or happens twice (autumn)."""
    instant: dt.datetime
    """When the offset changes."""
    before: dt.timedelta
    after: dt.timedelta

    @property
    def spring(self) -> bool:
        """Whether clocks go forward (the day has 23 hours)."""
        return self.day_hours == 23


def _h(hours: int) -> dt.timedelta:
    return dt.timedelta(hours=hours)


ROME_SPRING = Change(
    "Europe/Rome", dt.date(2025, 3, 30), 23, 6, 2, dt.datetime(2025, 3, 30, 1, tzinfo=dt.UTC), _h(1), _h(2)
)
ROME_AUTUMN = Change(
    "Europe/Rome", dt.date(2025, 10, 26), 25, 8, 2, dt.datetime(2025, 10, 26, 1, tzinfo=dt.UTC), _h(2), _h(1)
)
NY_SPRING = Change(
    "America/New_York", dt.date(2025, 3, 9), 23, 6, 2, dt.datetime(2025, 3, 9, 7, tzinfo=dt.UTC), _h(-5), _h(-4)
)
NY_AUTUMN = Change(
    "America/New_York", dt.date(2025, 11, 2), 25, 8, 1, dt.datetime(2025, 11, 2, 6, tzinfo=dt.UTC), _h(-4), _h(-5)
)
CHANGES = (ROME_SPRING, ROME_AUTUMN, NY_SPRING, NY_AUTUMN)
SPRING = tuple(c for c in CHANGES if c.spring)
AUTUMN = tuple(c for c in CHANGES if not c.spring)


def _id(change: Change) -> str:
    return f"{change.zone}-{change.date}"


@dataclass(frozen=True)
class LocalDay:
    """One whole local day run from local midnight to the next, and what it emitted."""

    change: Change
    tz: ZoneInfo
    plan: DayPlan
    start_us: int
    end_us: int
    records: tuple[bytes, ...]
    events: tuple[dict[str, object], ...]

    def entries(self) -> list[dt.datetime]:
        """Each event's entry_time as an aware datetime with the offset it was written with."""
        return [dt.datetime.fromisoformat(str(e["entry_time"])) for e in self.events]


def _local_midnight(date: dt.date, tz: ZoneInfo) -> int:
    return datetime_to_us(dt.datetime.combine(date, dt.time(), tzinfo=tz))


@functools.cache
def run_local_day(change: Change) -> LocalDay:
    """Run the service on a manual clock from the date's local midnight to the next."""
    tz = ZoneInfo(change.zone)
    model = load_settings({"TIMEZONE": change.zone, "BASE_DAILY_CUSTOMERS": VOLUME}).model()
    start, end = _local_midnight(change.date, tz), _local_midnight(change.date + dt.timedelta(days=1), tz)
    sink = MemorySink()
    Service(model, ROOT, sink, ManualClock(start), poll_s=0.5, until_us=end).run()
    records = tuple(value for _, value in sink.records)
    return LocalDay(
        change=change,
        tz=tz,
        plan=plan_day(model, ROOT, change.date),
        start_us=start,
        end_us=end,
        records=records,
        events=tuple(json.loads(value) for value in records),
    )


@pytest.mark.parametrize("change", CHANGES, ids=_id)
def test_every_event_is_on_its_local_day_slot_weekday_and_offset(change: Change) -> None:
    """Each event's local date, weekday and slot follow its local wall-clock time; its offsets are the zone's."""
    day = run_local_day(change)
    assert len(day.events) > 10_000
    for event, entry in zip(day.events, day.entries(), strict=True):
        local = entry.astimezone(day.tz)
        assert day.start_us <= datetime_to_us(entry) < day.end_us
        assert entry.utcoffset() == local.utcoffset()
        assert entry.replace(tzinfo=None) == local.replace(tzinfo=None)
        assert local.date() == change.date
        assert event["weekday"] == WEEKDAYS[change.date.weekday()]
        assert (
            event["time_slot"]
            == day.plan.labels[bisect.bisect_right(DEFAULT_GRID.starts, local.hour * 60 + local.minute) - 1]
        )
        leave = dt.datetime.fromisoformat(str(event["exit_time"]))
        assert leave.utcoffset() == leave.astimezone(day.tz).utcoffset()
        assert leave - entry == dt.timedelta(minutes=int(str(event["trip_duration_minutes"])))


@pytest.mark.parametrize("change", CHANGES, ids=_id)
def test_slot_totals_equal_the_plan_and_ids_are_unique(change: Change) -> None:
    """Per slot the day emits exactly the plan's counts, the whole day_total, each customer_id once."""
    day = run_local_day(change)
    emitted = Counter(str(e["time_slot"]) for e in day.events)
    assert {label: emitted.get(label, 0) for label in day.plan.labels} == dict(
        zip(day.plan.labels, day.plan.counts, strict=True)
    )
    assert len(day.events) == day.plan.day_total == sum(day.plan.counts)
    assert len({e["customer_id"] for e in day.events}) == len(day.events)


@pytest.mark.parametrize("change", CHANGES, ids=_id)
def test_the_slot_holding_the_change_has_its_true_length(change: Change) -> None:
    """The 00:00–06:59 slot lasts 6 h on a 23-hour day and 8 h on a 25-hour day; the other slots keep theirs."""
    plan = run_local_day(change).plan
    lengths = [(b - a) / HOUR_US for a, b in zip(plan.bounds, plan.bounds[1:], strict=False)]
    assert lengths == [change.first_slot_hours, 3, 4, 3, 3, 4]
    assert plan.end_us - plan.start_us == change.day_hours * HOUR_US
    assert plan.bounds[0] <= datetime_to_us(change.instant) < plan.bounds[1]


@pytest.mark.parametrize("change", SPRING, ids=_id)
def test_no_entry_falls_in_the_missing_hour(change: Change) -> None:
    """On a spring-forward day no entry_time shows the skipped wall-clock hour; the hours around it have visits."""
    day = run_local_day(change)
    hours = Counter(entry.hour for entry in day.entries())
    assert hours[change.hour] == 0
    assert hours[change.hour - 1] > 100
    assert hours[change.hour + 1] > 100
    for entry in day.entries():
        assert datetime_to_us(entry.replace(tzinfo=None).replace(tzinfo=day.tz)) == datetime_to_us(entry)


@pytest.mark.parametrize("change", AUTUMN, ids=_id)
def test_the_repeated_hour_is_counted_once_with_both_offsets_in_real_time_proportion(change: Change) -> None:
    """On a fall-back day the repeated hour's visits carry the summer then the winter offset, about half each."""
    day = run_local_day(change)
    repeated = [entry for entry in day.entries() if entry.hour == change.hour]
    offsets = Counter(entry.utcoffset() for entry in repeated)
    assert set(offsets) == {change.before, change.after}
    first, second = offsets[change.before], offsets[change.after]
    assert stats.binomtest(first, first + second, 0.5).pvalue > 0.001
    turn = datetime_to_us(change.instant)
    for entry in repeated:
        instant = datetime_to_us(entry)
        if entry.utcoffset() == change.before:
            assert turn - HOUR_US <= instant < turn
        else:
            assert turn <= instant < turn + HOUR_US
    real_hours = Counter((datetime_to_us(e) - turn) // HOUR_US for e in day.entries())
    assert real_hours[-1] == first
    assert real_hours[0] == second


def test_cli_naive_start_and_until_are_local_midnights() -> None:
    """`run --start D --until D+1` with TIMEZONE emits exactly the in-process local day, bytes for bytes."""
    change = ROME_AUTUMN
    argv = [sys.executable, "-m", "foot_traffic", "run", "--sink", "stdout", "--speed", "max", "--seed", SEED]
    argv += ["--start", change.date.isoformat(), "--until", (change.date + dt.timedelta(days=1)).isoformat()]
    argv += ["--timezone", change.zone, "--base-daily-customers", VOLUME, "--log-level", "WARNING"]
    proc = subprocess.run(argv, capture_output=True, check=True, timeout=120)
    assert proc.stdout == b"".join(record + b"\n" for record in run_local_day(change).records)
