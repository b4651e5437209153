"""The foot_traffic event, and its JSON encoding.

The encoder writes the fields in the specification's order with a fixed
template: every value is a number, a UUID, a timestamp or a label whose JSON
form is computed once, so the bytes are the same on every run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from foot_traffic.arrivals import Batch
from foot_traffic.grid import US_PER_DAY, US_PER_MINUTE
from foot_traffic.plan import DayPlan

EVENT_TYPE = "foot_traffic"


@lru_cache(maxsize=64)
def _day_prefix(day_number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).isoformat() + "T"


def format_utc(instant_us: int) -> str:
    """Format epoch microseconds as ISO 8601 UTC with microseconds, e.g. ``2025-08-12T17:52:24.442703+00:00``."""
    day, rest = divmod(instant_us, US_PER_DAY)
    seconds, micros = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day_prefix(day)}{hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}+00:00"


def format_uuid(raw: bytes) -> str:
    """Format 16 bytes in the canonical 8-4-4-4-12 lowercase hex form."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class Event:
    """One customer visit."""

    customer_id: str
    entry_us: int
    duration_min: int
    weekday: str
    time_slot: str

    @property
    def exit_us(self) -> int:
        """exit_time = entry_time + duration."""
        return self.entry_us + self.duration_min * US_PER_MINUTE

    def to_dict(self) -> dict[str, object]:
        """The event as the specification's JSON object."""
        return {
            "event_type": EVENT_TYPE,
            "customer_id": self.customer_id,
            "entry_time": format_utc(self.entry_us),
            "exit_time": format_utc(self.exit_us),
            "trip_duration_minutes": self.duration_min,
            "weekday": self.weekday,
            "time_slot": self.time_slot,
        }

    def encode(self) -> bytes:
        """Serialise to compact UTF-8 JSON, fields in the specification's order."""
        return (
            f'{{"event_type":"{EVENT_TYPE}","customer_id":"{self.customer_id}",'
            f'"entry_time":"{format_utc(self.entry_us)}","exit_time":"{format_utc(self.exit_us)}",'
            f'"trip_duration_minutes":{self.duration_min},"weekday":"{self.weekday}",'
            f'"time_slot":{_json_str(self.time_slot)}}}'
        ).encode()


@lru_cache(maxsize=256)
def _json_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def batch_events(plan: DayPlan, batch: Batch) -> Iterator[Event]:
    """Turn a batch of sampled arrivals into events, in entry order."""
    weekday = plan.weekday
    label = plan.labels[batch.slot]
    ids = batch.ids.tobytes()
    for i, (entry, duration) in enumerate(zip(batch.entries_us.tolist(), batch.durations_min.tolist(), strict=True)):
        yield Event(format_uuid(ids[16 * i : 16 * i + 16]), entry, duration, weekday, label)
