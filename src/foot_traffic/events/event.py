"""The foot_traffic event, the optional entry/exit sensor events, and their JSON encoding.

The encoder writes the fields in the specification's order with a fixed
template: every value is a number, a UUID, a timestamp or a string whose JSON
form is computed once, so the bytes are the same on every run.

Timestamps carry the UTC offset of the run's time zone at that instant: with the
default TIMEZONE=UTC they are exactly the specification's ``…+00:00``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from foot_traffic.model.arrivals import Batch
from foot_traffic.model.grid import US_PER_DAY, US_PER_MINUTE, UTC
from foot_traffic.model.plan import DayPlan

EVENT_TYPE = "foot_traffic"
_BUCKET_US = 15 * US_PER_MINUTE


@lru_cache(maxsize=64)
def _day_prefix(day_number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).isoformat() + "T"


def _clock(instant_us: int) -> str:
    day, rest = divmod(instant_us, US_PER_DAY)
    seconds, micros = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day_prefix(day)}{hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}"


def format_utc(instant_us: int) -> str:
    """Format epoch microseconds as ISO 8601 UTC with microseconds, e.g. ``2025-08-12T17:52:24.442703+00:00``."""
    return _clock(instant_us) + "+00:00"


def _offset_us(instant_us: int, tz: dt.tzinfo) -> int:
    offset = dt.datetime.fromtimestamp(instant_us // 1_000_000, tz).utcoffset()
    assert offset is not None  # noqa: S101 - zoneinfo always gives an offset to aware datetimes
    return (offset.days * 86_400 + offset.seconds) * 1_000_000


@lru_cache(maxsize=4096)
def _bucket_offset(bucket: int, tz: dt.tzinfo) -> int | None:
    """The zone's offset over a 15-minute bucket, or None if it changes inside it."""
    start = bucket * _BUCKET_US
    first, last = _offset_us(start, tz), _offset_us(start + _BUCKET_US - 1, tz)
    return first if first == last else None


@lru_cache(maxsize=64)
def _offset_text(offset_us: int) -> str:
    sign = "-" if offset_us < 0 else "+"
    minutes = abs(offset_us) // US_PER_MINUTE
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_instant(instant_us: int, tz: dt.tzinfo = UTC) -> str:
    """Format an instant in ISO 8601 with microseconds and the zone's offset at that instant."""
    if tz is UTC:
        return format_utc(instant_us)
    offset = _bucket_offset(instant_us // _BUCKET_US, tz)
    if offset is None:
        offset = _offset_us(instant_us, tz)
    return _clock(instant_us + offset) + _offset_text(offset)


def format_uuid(raw: bytes) -> str:
    """Format 16 bytes in the canonical 8-4-4-4-12 lowercase hex form."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=1024)
def _json_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Event:
    """One customer visit."""

    customer_id: str
    entry_us: int
    duration_min: int
    weekday: str
    time_slot: str
    store_id: str | None = None
    tz: dt.tzinfo = UTC

    @property
    def exit_us(self) -> int:
        """exit_time = entry_time + duration."""
        return self.entry_us + self.duration_min * US_PER_MINUTE

    def encode(self) -> bytes:
        """Serialise to compact UTF-8 JSON, fields in the specification's order."""
        store = "" if self.store_id is None else f',"store_id":{_json_str(self.store_id)}'
        return (
            f'{{"event_type":"{EVENT_TYPE}","customer_id":"{self.customer_id}",'
            f'"entry_time":"{format_instant(self.entry_us, self.tz)}",'
            f'"exit_time":"{format_instant(self.exit_us, self.tz)}",'
            f'"trip_duration_minutes":{self.duration_min},"weekday":"{self.weekday}",'
            f'"time_slot":{_json_str(self.time_slot)}{store}}}'
        ).encode()


def sensor_event(kind: str, customer_id: str, time: str, store_id: str | None = None) -> bytes:
    """Encode an ``entry`` or ``exit`` sensor event."""
    store = "" if store_id is None else f',"store_id":{_json_str(store_id)}'
    return f'{{"event_type":"{kind}","customer_id":"{customer_id}","time":"{time}"{store}}}'.encode()


def batch_events(plan: DayPlan, batch: Batch, store_id: str | None = None) -> Iterator[Event]:
    """Turn a batch of sampled arrivals into events, in entry order."""
    weekday = plan.weekday
    label = plan.labels[batch.slot]
    tz = plan.tz
    ids = batch.ids.tobytes()
    for i, (entry, duration) in enumerate(zip(batch.entries_us.tolist(), batch.durations_min.tolist(), strict=True)):
        yield Event(format_uuid(ids[16 * i : 16 * i + 16]), entry, duration, weekday, label, store_id, tz)
