"""The event's JSON encoding and timestamps."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.events.event import Event, batch_events, format_utc
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.grid import US_PER_MINUTE, datetime_to_us
from foot_traffic.model.plan import Model, plan_day

FIELDS = ["event_type", "customer_id", "entry_time", "exit_time", "trip_duration_minutes", "weekday", "time_slot"]


@given(st.integers(min_value=0, max_value=datetime_to_us(dt.datetime(9999, 1, 1, tzinfo=dt.UTC))))
def test_timestamps_match_isoformat_with_microseconds(instant: int) -> None:
    """format_utc agrees with datetime.isoformat, always with microseconds and +00:00."""
    expected = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=instant)).isoformat(
        timespec="microseconds"
    )
    assert format_utc(instant) == expected
    assert expected.endswith("+00:00")


def test_encoding_is_the_specification_schema() -> None:
    """The encoded event parses to the specification's fields, in order, with exit = entry + duration."""
    entry = datetime_to_us(dt.datetime(2025, 8, 12, 17, 52, 24, 442703, tzinfo=dt.UTC))
    event = Event("1b4e28ba-2fa1-41d2-883f-0016d3cca427", entry, 39, "Tuesday", "17:00\u201319:59")
    raw = event.encode()
    parsed = json.loads(raw)
    assert list(parsed) == FIELDS
    assert parsed == {
        "event_type": "foot_traffic",
        "customer_id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
        "entry_time": "2025-08-12T17:52:24.442703+00:00",
        "exit_time": "2025-08-12T18:31:24.442703+00:00",
        "trip_duration_minutes": 39,
        "weekday": "Tuesday",
        "time_slot": "17:00\u201319:59",
    }
    assert "\u2013".encode() in raw


def test_a_store_id_comes_last_escaped_and_times_carry_the_zone_offset() -> None:
    """With a store and a zone, the JSON ends with the store_id (escaped) and both times use the local offset."""
    entry = datetime_to_us(dt.datetime(2025, 8, 12, 17, 52, 24, 442703, tzinfo=dt.UTC))
    event = Event("c-1", entry, 75, "Tuesday", "17:00\u201319:59", 'north "2"', ZoneInfo("Europe/Rome"))
    parsed = json.loads(event.encode())
    assert list(parsed) == [*FIELDS, "store_id"]
    assert parsed["store_id"] == 'north "2"'
    assert parsed["entry_time"] == "2025-08-12T19:52:24.442703+02:00"  # CEST is UTC+2 in August
    assert parsed["exit_time"] == "2025-08-12T21:07:24.442703+02:00"  # 75 minutes later


def test_events_of_a_plan_carry_weekday_slot_and_consistent_times() -> None:
    """Each event names its date's weekday and its slot's label; exit follows entry."""
    date = dt.date(2025, 8, 16)
    plan = plan_day(Model(daily_customers=600), 3, date)
    events = [e for b in day_batches(3, plan) for e in batch_events(plan, b)]
    assert len(events) == 600
    for event in events:
        parsed = json.loads(event.encode())
        assert parsed["weekday"] == "Saturday"
        slot = next(i for i in range(6) if plan.bounds[i] <= event.entry_us < plan.bounds[i + 1])
        assert parsed["time_slot"] == plan.labels[slot]
        assert event.exit_us - event.entry_us == parsed["trip_duration_minutes"] * US_PER_MINUTE
        assert dt.datetime.fromisoformat(parsed["entry_time"]).date() == date
