"""The batch encoder writes, for any instants, zones, ids and durations, exactly ``Event.encode``'s bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from foot_traffic.events.encoding import encode_batch
from foot_traffic.events.event import batch_events
from foot_traffic.events.fields import BLOCK, DAYS_AT_ONCE
from foot_traffic.model.arrivals import Batch
from foot_traffic.model.grid import UTC
from foot_traffic.model.plan import DayPlan, Model, plan_day

ZONES: list[dt.tzinfo] = [
    UTC,
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/St_Johns"),  # half-hour offset, DST
    ZoneInfo("Asia/Kathmandu"),  # quarter-hour offset
    ZoneInfo("Australia/Lord_Howe"),  # a half-hour DST change
]
PLAN = plan_day(Model(daily_customers=100), 1, dt.date(2025, 3, 30))
US = 1_000_000
YEAR_1971, YEAR_2200 = 365 * 86_400 * US, 7_258_118_400 * US


def reference(plan: DayPlan, batch: Batch, store_id: str | None) -> bytes:
    """The batch's lines, one ``Event.encode`` each."""
    return b"".join(event.encode() + b"\n" for event in batch_events(plan, batch, store_id))


def batch_of(entries: list[int], durations: list[int], seed: int) -> Batch:
    """A batch of the given visits with random 16-byte ids."""
    ids = np.random.default_rng(seed).integers(0, 256, (len(entries), 16), dtype=np.uint8)
    as_array: npt.NDArray[np.int64] = np.array(entries, dtype=np.int64)
    return Batch(0, as_array, np.array(durations, dtype=np.int64), ids)


@settings(max_examples=150, deadline=None)
@given(
    visits=st.lists(st.tuples(st.integers(YEAR_1971, YEAR_2200), st.integers(10, 99)), max_size=40),
    zone=st.sampled_from(ZONES),
    store_id=st.sampled_from([None, "S-1", 'naïve "store"']),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_visits_encode_as_the_events_do(
    visits: list[tuple[int, int]], zone: dt.tzinfo, store_id: str | None, seed: int
) -> None:
    """Instants anywhere from 1971 to 2200, in any order and zone: each line is ``Event.encode``'s."""
    plan = dataclasses.replace(PLAN, tz=zone)
    batch = batch_of([entry for entry, _ in visits], [minutes for _, minutes in visits], seed)
    assert encode_batch(plan, batch, store_id).lines == reference(plan, batch, store_id)


def test_a_dense_batch_of_several_blocks_across_a_change_of_offset() -> None:
    """More visits than a block, one every 0.4 s across Berlin's spring change and midnight: the reference's bytes."""
    change = int(dt.datetime(2025, 3, 30, 1, 0, tzinfo=UTC).timestamp()) * US  # 03:00 CEST
    n = 3 * BLOCK + 123
    entries = [change - n * 200_000 + i * 400_000 + i % 7 for i in range(n)]
    durations = [10 + i % 90 for i in range(n)]
    plan = dataclasses.replace(PLAN, tz=ZoneInfo("Europe/Berlin"))
    batch = batch_of(entries, durations, 7)
    assert encode_batch(plan, batch).lines == reference(plan, batch, None)


def test_visits_days_apart_take_each_day_s_table() -> None:
    """Visits more than the days gathered at once apart (leap days, year ends, 2100): the reference's bytes."""
    days = [dt.date(2024, 2, 29), dt.date(2024, 12, 31), dt.date(2099, 12, 31), dt.date(2100, 3, 1)]
    assert (days[-1] - days[0]).days >= DAYS_AT_ONCE
    entries = [int(dt.datetime.combine(day, dt.time(23, 59, 59, 999_999), UTC).timestamp() * US) for day in days]
    batch = batch_of(entries, [10, 99, 45, 60], 3)
    for zone in ZONES:
        plan = dataclasses.replace(PLAN, tz=zone)
        assert encode_batch(plan, batch, "S").lines == reference(plan, batch, "S")
