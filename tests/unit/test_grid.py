"""The slot grid: labels, half-open slots, and how they cover the day."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.model.grid import DEFAULT_GRID, US_PER_DAY, SlotGrid, datetime_to_us, us_to_datetime


def test_labels_match_the_specification() -> None:
    """Labels are the specification's, with an en dash."""
    assert DEFAULT_GRID.labels == (
        "00:00\u201306:59",
        "07:00\u201309:59",
        "10:00\u201313:59",
        "14:00\u201316:59",
        "17:00\u201319:59",
        "20:00\u201323:59",
    )


@pytest.mark.parametrize(
    ("clock", "slot"),
    [
        ("00:00:00", 0),
        ("06:59:30", 0),
        ("06:59:59.999999", 0),
        ("07:00:00", 1),
        ("13:59:59", 2),
        ("14:00:00", 3),
        ("19:59:59.5", 4),
        ("20:00:00", 5),
        ("23:59:59.999999", 5),
    ],
)
def test_slots_are_half_open(clock: str, slot: int) -> None:
    """Each instant belongs to the slot whose [start, next start) holds it."""
    date = dt.date(2025, 8, 12)
    instant = datetime_to_us(dt.datetime.combine(date, dt.time.fromisoformat(clock), tzinfo=dt.UTC))
    bounds = DEFAULT_GRID.boundaries_us(date)
    assert [i for i in range(len(DEFAULT_GRID)) if bounds[i] <= instant < bounds[i + 1]] == [slot]


@given(st.dates(min_value=dt.date(1971, 1, 1), max_value=dt.date(2200, 1, 1)))
def test_boundaries_cover_the_day_without_gaps(date: dt.date) -> None:
    """In UTC the slot intervals are contiguous and span exactly 24 hours."""
    bounds = DEFAULT_GRID.boundaries_us(date)
    assert bounds[0] == datetime_to_us(dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC))
    assert bounds[-1] - bounds[0] == US_PER_DAY
    assert list(bounds) == sorted(set(bounds))
    assert len(bounds) == len(DEFAULT_GRID) + 1


@given(st.integers(min_value=0, max_value=2**53))
def test_microsecond_round_trip(instant: int) -> None:
    """Epoch microseconds survive the trip through datetime."""
    assert datetime_to_us(us_to_datetime(instant)) == instant


@pytest.mark.parametrize("starts", [(), (60,), (0, 0), (0, 120, 60), (0, 1440)])
def test_invalid_grids_are_rejected(starts: tuple[int, ...]) -> None:
    """A grid must start at midnight and increase strictly within the day."""
    with pytest.raises(ValueError, match="slot"):
        SlotGrid(starts)
