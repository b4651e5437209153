"""The slot grid: how a day is cut into time slots, and where each slot lies in time.

Slots are half-open: each covers [its start, the next slot's start) and the last
ends at midnight, so every instant of a day belongs to exactly one slot.
All instants are integers: microseconds since the Unix epoch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_DAY = 86_400 * US_PER_SECOND

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""English weekday names indexed by ``date.weekday()``, independent of the locale."""

UTC = ZoneInfo("UTC")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class SlotGrid:
    """Start minutes of each slot after local midnight; the first is always 0.

    ``labels`` are the human-readable labels as in the specification, e.g. ``00:00–06:59``.
    """

    starts: tuple[int, ...]
    labels: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.starts or self.starts[0] != 0:
            raise ValueError("the first slot must start at 00:00")
        if any(b <= a for a, b in zip(self.starts, self.starts[1:], strict=False)):
            raise ValueError("slot starts must be strictly increasing")
        if self.starts[-1] >= MINUTES_PER_DAY:
            raise ValueError("slot starts must be before 24:00")
        labels = tuple(
            f"{_hhmm(start)}\u2013{_hhmm(end - 1)}" for start, end in zip(self.starts, self.ends, strict=True)
        )
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def ends(self) -> tuple[int, ...]:
        """End minute (exclusive) of each slot; the last is 24:00."""
        return (*self.starts[1:], MINUTES_PER_DAY)

    def boundaries_us(self, date: dt.date, tz: dt.tzinfo = UTC) -> tuple[int, ...]:
        """Return the instants of each slot start and of the day's end, in epoch microseconds.

        Boundaries are local wall-clock times in ``tz``; a slot that spans a
        daylight-saving change keeps its true length.
        """
        points = [*self.starts, MINUTES_PER_DAY]
        return tuple(local_minute_to_us(date, minute, tz) for minute in points)


def local_minute_to_us(date: dt.date, minute_of_day: int, tz: dt.tzinfo = UTC) -> int:
    """Return the instant of a local wall-clock minute of ``date`` (24:00 is next midnight)."""
    day, minute = divmod(minute_of_day, MINUTES_PER_DAY)
    local = dt.datetime.combine(date + dt.timedelta(days=day), dt.time(minute // 60, minute % 60), tzinfo=tz)
    delta = local - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def us_to_datetime(instant_us: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    """Convert epoch microseconds to an aware datetime in ``tz``."""
    return (_EPOCH + dt.timedelta(microseconds=instant_us)).astimezone(tz)


def datetime_to_us(moment: dt.datetime) -> int:
    """Convert an aware datetime to epoch microseconds."""
    if moment.tzinfo is None:
        raise ValueError("datetime must carry a time zone")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def local_date(instant_us: int, tz: dt.tzinfo = UTC) -> dt.date:
    """Return the local calendar date of an instant."""
    return us_to_datetime(instant_us, tz).date()


DEFAULT_GRID = SlotGrid((0, 7 * 60, 10 * 60, 14 * 60, 17 * 60, 20 * 60))
"""The specification's grid: 00:00–06:59, 07:00–09:59, 10:00–13:59, 14:00–16:59, 17:00–19:59, 20:00–23:59."""


def days_from(first: dt.date) -> Iterator[dt.date]:
    """Every date from ``first`` on."""
    date = first
    while True:
        yield date
        date += dt.timedelta(days=1)
