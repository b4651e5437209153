"""The windowed consumer example: windows, watermark, allowed lateness and deduplication on hand-made visits."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "windowed_consumer.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("windowed_consumer", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


wc = _load()
DAY = dt.date(2025, 8, 11)
UTC = dt.UTC
MORNING, NOON = "07:00–09:59", "10:00–13:59"


def visit(customer: str, hh: int, mm: int, slot: str, store: str | None = None) -> Any:
    """A visit of DAY at hh:mm UTC in ``slot``."""
    return wc.Visit(customer, dt.datetime.combine(DAY, dt.time(hh, mm), tzinfo=UTC), slot, store)


def test_window_end_is_the_minute_after_the_label() -> None:
    """A slot labelled 07:00–09:59 ends at 10:00 that day; the last slot of the day ends at the next midnight."""
    assert visit("a", 8, 0, MORNING).window_end == dt.datetime(2025, 8, 11, 10, 0, tzinfo=UTC)
    assert visit("a", 21, 0, "20:00–23:59").window_end == dt.datetime(2025, 8, 12, 0, 0, tzinfo=UTC)


def test_in_order_visits_are_all_counted() -> None:
    """Visits in entry order fill their windows; the watermark closes the morning once noon is an hour in."""
    windows = wc.Windows(dt.timedelta(minutes=30))
    for i, (hh, mm, slot) in enumerate([(7, 5, MORNING), (9, 50, MORNING), (10, 20, NOON), (10, 31, NOON)]):
        assert windows.add(visit(f"c{i}", hh, mm, slot)) == "counted"
    assert windows.closed == {(None, DAY, MORNING): 2}  # 10:31 − 30 min passed 10:00
    assert windows.finish() == {(None, DAY, MORNING): 2, (None, DAY, NOON): 2}


def test_a_visit_later_than_the_allowed_lateness_is_dropped_and_counted() -> None:
    """A morning visit read after noon's 10:31 is dropped with 30 minutes of lateness and kept with 40."""
    events = [visit("a", 9, 0, MORNING), visit("b", 10, 31, NOON), visit("late", 9, 55, MORNING)]
    short = wc.Windows(dt.timedelta(minutes=30))
    assert [short.add(v) for v in events] == ["counted", "counted", "late"]
    assert (short.dropped_late, short.finish()[(None, DAY, MORNING)]) == (1, 1)
    long = wc.Windows(dt.timedelta(minutes=40))
    assert [long.add(v) for v in events] == ["counted", "counted", "counted"]
    assert (long.dropped_late, long.finish()[(None, DAY, MORNING)]) == (0, 2)


def test_dedupe_counts_a_visit_once_and_counts_the_copies() -> None:
    """With dedupe a second copy of a visit is a duplicate; without it the window counts it twice."""
    events = [visit("a", 8, 0, MORNING), visit("b", 8, 1, MORNING), visit("a", 8, 0, MORNING)]
    on = wc.Windows(dt.timedelta(0))
    assert [on.add(v) for v in events] == ["counted", "counted", "duplicate"]
    assert (on.duplicates, on.finish()) == (1, {(None, DAY, MORNING): 2})
    off = wc.Windows(dt.timedelta(0), dedupe=False)
    assert [off.add(v) for v in events] == ["counted"] * 3
    assert (off.duplicates, off.finish()) == (0, {(None, DAY, MORNING): 3})


def test_a_copy_after_its_window_closed_is_late() -> None:
    """A duplicate read once its window closed cannot be told from a new visit: it is dropped as late."""
    windows = wc.Windows(dt.timedelta(0))
    assert [windows.add(v) for v in [visit("a", 9, 0, MORNING), visit("b", 10, 0, NOON)]] == ["counted"] * 2
    assert windows.add(visit("a", 9, 0, MORNING)) == "late"
    assert windows.finish() == {(None, DAY, MORNING): 1, (None, DAY, NOON): 1}


def test_the_slowest_partition_holds_the_watermark() -> None:
    """Partition 1 far ahead does not close the morning while partition 0 is still in it; its end releases it."""
    windows = wc.Windows(dt.timedelta(0))
    windows.expect([0, 1])
    assert windows.add(visit("p1", 13, 0, NOON), partition=1) == "counted"
    assert windows.watermark is None  # partition 0 has given nothing yet
    assert windows.add(visit("p0", 8, 0, MORNING), partition=0) == "counted"
    assert windows.watermark == dt.datetime(2025, 8, 11, 8, 0, tzinfo=UTC)
    assert windows.add(visit("p0b", 9, 59, MORNING), partition=0) == "counted"
    assert windows.closed == {}
    windows.idle(0)
    assert windows.closed == {(None, DAY, MORNING): 2}


def test_stores_have_windows_of_their_own() -> None:
    """The same date and slot of two stores are two windows."""
    windows = wc.Windows(dt.timedelta(0))
    windows.add(visit("a", 8, 0, MORNING, "s1"))
    windows.add(visit("b", 8, 0, MORNING, "s2"))
    windows.add(visit("c", 8, 5, MORNING, "s2"))
    assert windows.finish() == {("s1", DAY, MORNING): 1, ("s2", DAY, MORNING): 2}


def test_parse_visit_reads_an_event_and_skips_sensor_events() -> None:
    """A foot_traffic event gives its visit; a sensor event and an empty value give None."""
    event = {
        "event_type": "foot_traffic",
        "customer_id": "0b4e3c46-5f0e-4c1a-9d0a-3b1f6f2d8e11",
        "entry_time": "2025-08-11T08:00:00.000000+02:00",
        "exit_time": "2025-08-11T08:30:00.000000+02:00",
        "trip_duration_minutes": 30,
        "weekday": "Monday",
        "time_slot": MORNING,
    }
    parsed = wc.parse_visit(json.dumps(event).encode())
    assert parsed.window == (None, DAY, MORNING)
    assert parsed.window_end == dt.datetime(2025, 8, 11, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert wc.parse_visit(b'{"event_type": "entry", "customer_id": "x"}') is None
    assert wc.parse_visit(b"") is None


def test_summary_lists_windows_in_order_with_the_tallies() -> None:
    """The JSON summary lists every window by store, date and slot, with events, duplicates and drops."""
    windows = wc.Windows(dt.timedelta(0))
    for v in [visit("b", 10, 5, NOON, "s2"), visit("a", 8, 0, MORNING, "s1"), visit("b", 10, 5, NOON, "s2")]:
        windows.add(v)
    assert wc.summary(windows) == {
        "windows": [
            {"store_id": "s2", "date": "2025-08-11", "slot": NOON, "count": 1},
        ],
        "events": 3,
        "duplicates": 1,
        "dropped_late": 1,  # s1's morning visit came after 10:05
    }


def test_negative_lateness_is_refused() -> None:
    """A negative allowed lateness exits 2 naming the flag."""
    with pytest.raises(SystemExit) as exc:
        wc.main(["--allowed-lateness-seconds", "-1"])
    assert exc.value.code == 2
