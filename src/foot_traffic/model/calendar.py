"""Opening hours per weekday and per-date exceptions (holidays, sales), as CALENDAR_FILE describes them.

The file is TOML when its name ends in ``.toml`` and JSON otherwise; both have
the same structure::

    # opening hours per weekday, local wall-clock time; a weekday not listed is open all day
    [hours]
    Monday = ["09:00", "20:00"]
    Sunday = "closed"
    # per date: a multiplier of the day's mean total, "closed", or a table with either/both
    [dates]
    "2025-12-25" = "closed"
    "2025-11-28" = 2.5
    "2025-12-24" = { multiplier = 1.5, hours = ["09:00", "14:00"] }

The same in JSON::

    {"hours": {"Monday": ["09:00", "20:00"], "Sunday": "closed"},
     "dates": {"2025-12-25": "closed", "2025-11-28": 2.5,
               "2025-12-24": {"multiplier": 1.5, "hours": ["09:00", "14:00"]}}}

Both tables are optional; a file with neither is the empty calendar.

* ``hours``: keys are English weekday names (``Monday`` … ``Sunday``, exact case);
  a value is ``[open, close]`` or ``"closed"``. Times are ``"HH:MM"`` from
  ``"00:00"`` to ``"23:59"``; close may also be ``"24:00"`` and must be after open.
* ``dates``: keys are ``"YYYY-MM-DD"``; a value is

  - a number: the multiplier of the day's mean total; the hours stay the weekday's;
  - ``"closed"``: closed all day (multiplier 0);
  - a table with ``multiplier`` and/or ``hours`` (as above, ``[open, close]``),
    or ``closed = true`` alone.

  A date entry that does not close the day opens it, even on a closed weekday:
  its multiplier defaults to 1 and its hours to the weekday's (all day when the
  weekday is closed or not listed).

Multipliers are finite numbers >= 0 (not booleans); 0 means closed. Unknown
keys anywhere are errors, and every error names the key path, the value and
what is expected, e.g. ``dates."2025-12-24".hours=['09:00']: expected ...``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from foot_traffic.model.grid import MINUTES_PER_DAY, WEEKDAYS

CLOSED: Final = "closed"
"""The marker of a closed weekday in :attr:`Calendar.weekday_hours`, as written in the file."""

WeekdayHours = tuple[int, int] | Literal["closed"] | None
"""A weekday's opening hours: ``(open, close)`` minutes, ``"closed"``, or None for open all day."""

_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOP_KEYS = ("hours", "dates")
_DATE_TABLE_KEYS = ("multiplier", "hours", "closed", "outages")
_HOURS_EXPECTED = 'a list of two times ["HH:MM", "HH:MM"], opening then closing'


def _check_hours(hours: tuple[int, int] | None) -> None:
    if hours is None:
        return
    if len(hours) != 2 or not 0 <= hours[0] < hours[1] <= MINUTES_PER_DAY:
        raise ValueError(f"hours must be (open, close) minutes with 0 <= open < close <= 1440, got {hours!r}")


def _check_multiplier(multiplier: float) -> None:
    if not math.isfinite(multiplier) or multiplier < 0:
        raise ValueError(f"multiplier must be a finite number >= 0, got {multiplier!r}")


@dataclass(frozen=True, slots=True)
class DayRule:
    """What the calendar says about one date: a multiplier of the day's mean total and the opening hours.

    ``multiplier`` is >= 0 and 0 means closed. ``hours`` is ``(open, close)`` in
    minutes after local midnight, ``0 <= open < close <= 1440``, or None for open all day.
    """

    multiplier: float
    hours: tuple[int, int] | None
    outages: tuple[tuple[int, int], ...] = ()
    """Sensor outages of the date, as (start, end) minutes (see :mod:`foot_traffic.model.imperfections`)."""

    def __post_init__(self) -> None:
        _check_multiplier(self.multiplier)
        _check_hours(self.hours)


CLOSED_DAY: Final = DayRule(0.0, None)
"""The rule of a closed day; every closed day is reported with this exact value."""


@functools.lru_cache(maxsize=256)
def _open_day(hours: tuple[int, int] | None) -> DayRule:
    """The rule of a day open at a weekday's hours, without a date's entry (made once per hours: rules are values)."""
    return DayRule(1.0, hours)


@dataclass(frozen=True, slots=True)
class DateOverride:
    """A per-date entry of the calendar: a multiplier (0 closes the day) and hours, None keeping the weekday's."""

    multiplier: float = 1.0
    hours: tuple[int, int] | None = None
    outages: tuple[tuple[int, int], ...] = field(default=(), repr=False)  # repr: what EXACTLY_ONCE fingerprints

    def __post_init__(self) -> None:
        _check_multiplier(self.multiplier)
        _check_hours(self.hours)


CLOSED_DATE: Final = DateOverride(0.0)
"""The entry of a date marked ``"closed"`` (or ``closed = true``)."""


@dataclass(frozen=True, slots=True)
class Calendar:
    """Opening hours per weekday (Monday first) and per-date overrides.

    ``dates`` may be given as any mapping; it is stored as a read-only mapping
    sorted by date, so two calendars with the same entries compare equal.
    """

    weekday_hours: tuple[WeekdayHours, ...] = (None,) * len(WEEKDAYS)
    dates: Mapping[dt.date, DateOverride] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if len(self.weekday_hours) != len(WEEKDAYS):
            raise ValueError(
                f"weekday_hours needs {len(WEEKDAYS)} entries, Monday first; got {len(self.weekday_hours)}"
            )
        for hours in self.weekday_hours:
            if hours != CLOSED:
                _check_hours(hours)
        object.__setattr__(self, "dates", MappingProxyType(dict(sorted(self.dates.items()))))

    def rule(self, date: dt.date) -> DayRule:
        """Return the multiplier and opening hours that apply on ``date``."""
        weekday = self.weekday_hours[date.weekday()]
        weekday_hours = None if weekday == CLOSED else weekday
        override = self.dates.get(date)
        if override is None:
            return CLOSED_DAY if weekday == CLOSED else _open_day(weekday_hours)
        if override.multiplier == 0:
            return CLOSED_DAY
        hours = override.hours if override.hours is not None else weekday_hours
        return DayRule(override.multiplier, hours, override.outages)


EMPTY_CALENDAR: Final = Calendar()
"""The calendar used without CALENDAR_FILE: every day open all day, multiplier 1."""


class CalendarFileError(ValueError):
    """The calendar file cannot be read or does not describe a valid calendar."""


def _unknown_key(where: str, value: object, allowed: tuple[str, ...]) -> CalendarFileError:
    names = ", ".join(repr(k) for k in allowed)
    return CalendarFileError(f"{where}={value!r}: unknown key; expected only {names}")


def _parse_time(value: object, where: str) -> int:
    if not isinstance(value, str) or not (match := _TIME.fullmatch(value)):
        raise CalendarFileError(f'{where}={value!r}: expected a time "HH:MM" from "00:00" to "24:00"')
    if value == "24:00":
        return MINUTES_PER_DAY
    return int(match.group(1)) * 60 + int(match.group(2))


def _parse_hours(value: object, where: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise CalendarFileError(f"{where}={value!r}: expected {_HOURS_EXPECTED}")
    opening = _parse_time(value[0], f"{where}[0]")
    closing = _parse_time(value[1], f"{where}[1]")
    if opening >= closing:
        raise CalendarFileError(f"{where}={value!r}: expected the closing time after the opening time")
    return opening, closing


def parse_windows(value: object, where: str) -> tuple[tuple[int, int], ...]:
    """A list of ``["HH:MM", "HH:MM"]`` windows (sensor outages) as (start, end) minutes; CalendarFileError if not."""
    if not isinstance(value, list):
        raise CalendarFileError(f'{where}={value!r}: expected a list of ["HH:MM", "HH:MM"] windows')
    return tuple(_parse_hours(item, f"{where}[{i}]") for i, item in enumerate(value))


def _parse_multiplier(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalendarFileError(f"{where}={value!r}: expected a finite number >= 0")
    try:
        multiplier = float(value)
    except OverflowError:  # a JSON integer beyond the float range
        multiplier = math.inf
    if not math.isfinite(multiplier) or multiplier < 0:
        raise CalendarFileError(f"{where}={value!r}: expected a finite number >= 0")
    return multiplier


def _parse_weekday_hours(data: object) -> tuple[WeekdayHours, ...]:
    if not isinstance(data, Mapping):
        raise CalendarFileError(f"hours={data!r}: expected a table with one entry per weekday, Monday to Sunday")
    result: list[WeekdayHours] = [None] * len(WEEKDAYS)
    for name, value in data.items():
        where = f"hours.{name}"
        if name not in WEEKDAYS:
            names = ", ".join(WEEKDAYS)
            raise CalendarFileError(f"{where}={value!r}: unknown key; expected a weekday name, one of {names}")
        if value == CLOSED:
            result[WEEKDAYS.index(name)] = CLOSED
        elif isinstance(value, list):
            result[WEEKDAYS.index(name)] = _parse_hours(value, where)
        else:
            raise CalendarFileError(f'{where}={value!r}: expected {_HOURS_EXPECTED}, or "closed"')
    return tuple(result)


def _parse_date_key(key: str, value: object) -> dt.date:
    where = f'dates."{key}"'
    if _DATE.fullmatch(key):
        try:
            return dt.date.fromisoformat(key)
        except ValueError:
            pass
    raise CalendarFileError(f'{where}={value!r}: the key is not a date; expected a date "YYYY-MM-DD" as the key')


def _parse_date_table(data: Mapping[str, object], where: str) -> DateOverride:
    for key, value in data.items():
        if key not in _DATE_TABLE_KEYS:
            raise _unknown_key(f"{where}.{key}", value, _DATE_TABLE_KEYS)
    if not data:
        raise CalendarFileError(f"{where}={{}}: expected at least one of 'multiplier', 'hours' or 'closed'")
    closed = data.get("closed", False)
    if not isinstance(closed, bool):
        raise CalendarFileError(f"{where}.closed={closed!r}: expected true or false")
    if closed:
        others = [k for k in ("multiplier", "hours") if k in data]
        if others:
            raise CalendarFileError(
                f"{where}.{others[0]}={data[others[0]]!r}: expected no {others[0]!r} on a date with closed = true"
            )
        return CLOSED_DATE
    multiplier = _parse_multiplier(data["multiplier"], f"{where}.multiplier") if "multiplier" in data else 1.0
    hours = _parse_hours(data["hours"], f"{where}.hours") if "hours" in data else None
    outages = parse_windows(data["outages"], f"{where}.outages") if "outages" in data else ()
    return DateOverride(multiplier, hours, outages)


def _parse_date_value(value: object, where: str) -> DateOverride:
    if value == CLOSED:
        return CLOSED_DATE
    if isinstance(value, Mapping):
        return _parse_date_table(value, where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalendarFileError(
            f'{where}={value!r}: expected a multiplier (a number >= 0), "closed", '
            "or a table with 'multiplier' and/or 'hours'"
        )
    return DateOverride(_parse_multiplier(value, where))


def _parse_dates(data: object) -> dict[dt.date, DateOverride]:
    if not isinstance(data, Mapping):
        raise CalendarFileError(f'dates={data!r}: expected a table with one entry per date "YYYY-MM-DD"')
    # "YYYY-MM-DD" spells each date one way and both parsers reject repeated keys, so dates cannot collide.
    return {_parse_date_key(key, value): _parse_date_value(value, f'dates."{key}"') for key, value in data.items()}


def calendar_from_mapping(data: Mapping[str, object]) -> Calendar:
    """Build a calendar from parsed TOML or JSON: ``hours`` and ``dates``, both optional."""
    for key, value in data.items():
        if key not in _TOP_KEYS:
            raise _unknown_key(key, value, _TOP_KEYS)
    weekday_hours = _parse_weekday_hours(data["hours"]) if "hours" in data else EMPTY_CALENDAR.weekday_hours
    dates = _parse_dates(data["dates"]) if "dates" in data else {}
    return Calendar(weekday_hours, dates)
