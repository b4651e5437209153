"""The calendar file: weekday hours, per-date overrides, and the rule each date gets."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foot_traffic.config.files import load_calendar_file
from foot_traffic.model.calendar import (
    CLOSED,
    CLOSED_DAY,
    EMPTY_CALENDAR,
    Calendar,
    CalendarFileError,
    DateOverride,
    DayRule,
    WeekdayHours,
)
from foot_traffic.model.grid import WEEKDAYS

# Dates of known weekdays, for reading rules: 2025-12-22 is a Monday.
MON, TUE, SAT, SUN = dt.date(2025, 12, 22), dt.date(2025, 12, 23), dt.date(2025, 12, 27), dt.date(2025, 12, 28)

SPEC_TOML = """
# opening hours per weekday, local wall-clock time; a weekday not listed is open all day
[hours]
Monday = ["09:00", "20:00"]
Sunday = "closed"
# per date: a multiplier of the day's mean total, "closed", or a table with either/both
[dates]
"2025-12-25" = "closed"
"2025-11-28" = 2.5
"2025-12-24" = { multiplier = 1.5, hours = ["09:00", "14:00"] }
"""

SPEC_JSON = json.dumps(
    {
        "hours": {"Monday": ["09:00", "20:00"], "Sunday": "closed"},
        "dates": {
            "2025-12-25": "closed",
            "2025-11-28": 2.5,
            "2025-12-24": {"multiplier": 1.5, "hours": ["09:00", "14:00"]},
        },
    }
)

SPEC_CALENDAR = Calendar(
    (
        (540, 1200),
        None,
        None,
        None,
        None,
        None,
        CLOSED,
    ),
    {
        dt.date(2025, 12, 25): DateOverride(0.0),
        dt.date(2025, 11, 28): DateOverride(2.5),
        dt.date(2025, 12, 24): DateOverride(1.5, (540, 840)),
    },
)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "text"), [("cal.toml", SPEC_TOML), ("cal.json", SPEC_JSON), ("CAL.TOML", SPEC_TOML)])
def test_the_documented_example_loads(tmp_path: Path, name: str, text: str) -> None:
    """The module docstring's example loads to the same calendar from TOML and from JSON."""
    assert load_calendar_file(_write(tmp_path, name, text)) == SPEC_CALENDAR


@pytest.mark.parametrize(
    ("date", "rule"),
    [
        (MON, DayRule(1.0, (540, 1200))),
        (TUE, DayRule(1.0, None)),
        (SAT, DayRule(1.0, None)),
        (SUN, CLOSED_DAY),
        (dt.date(2025, 12, 25), CLOSED_DAY),
        (dt.date(2025, 11, 28), DayRule(2.5, None)),
        (dt.date(2025, 12, 24), DayRule(1.5, (540, 840))),
    ],
)
def test_rules_of_the_documented_example(date: dt.date, rule: DayRule) -> None:
    """Each date gets its weekday's hours, overridden by its own entry."""
    assert SPEC_CALENDAR.rule(date) == rule


@pytest.mark.parametrize(
    ("text", "date", "rule"),
    [
        # a number keeps the weekday's hours
        ('[hours]\nMonday = ["09:00", "20:00"]\n[dates]\n"2025-12-22" = 3', MON, DayRule(3.0, (540, 1200))),
        # a number on a closed weekday opens it all day
        ('[hours]\nSunday = "closed"\n[dates]\n"2025-12-28" = 0.5', SUN, DayRule(0.5, None)),
        # a table with hours only opens a closed weekday with multiplier 1
        (
            '[hours]\nSunday = "closed"\n[dates]\n"2025-12-28" = { hours = ["10:00", "13:00"] }',
            SUN,
            DayRule(1, (600, 780)),
        ),
        # a table with a multiplier only keeps the weekday's hours
        (
            '[hours]\nMonday = ["09:00", "20:00"]\n[dates]\n"2025-12-22" = { multiplier = 2 }',
            MON,
            DayRule(2, (540, 1200)),
        ),
        # hours of a date replace the weekday's
        (
            '[hours]\nMonday = ["09:00", "20:00"]\n[dates]\n"2025-12-22" = { hours = ["00:00", "24:00"] }',
            MON,
            DayRule(1, (0, 1440)),
        ),
        # closed = true, "closed" and a multiplier of 0 all close the day
        ('[dates]\n"2025-12-22" = { closed = true }', MON, CLOSED_DAY),
        ('[dates]\n"2025-12-22" = "closed"', MON, CLOSED_DAY),
        ('[dates]\n"2025-12-22" = 0', MON, CLOSED_DAY),
        ('[dates]\n"2025-12-22" = { multiplier = 0, hours = ["09:00", "10:00"] }', MON, CLOSED_DAY),
        # closed = false opens a closed weekday
        ('[hours]\nSunday = "closed"\n[dates]\n"2025-12-28" = { closed = false }', SUN, DayRule(1, None)),
        # a weekday can be open until midnight and from midnight, to the minute
        ('[hours]\nMonday = ["00:00", "00:01"]', MON, DayRule(1, (0, 1))),
        ('[hours]\nMonday = ["23:59", "24:00"]', MON, DayRule(1, (1439, 1440))),
        # a bare date key is a string key in TOML
        ("[dates]\n2025-12-22 = 1.25", MON, DayRule(1.25, None)),
        # an empty file, and empty tables, are the empty calendar
        ("", MON, DayRule(1, None)),
        ("[hours]\n[dates]", SUN, DayRule(1, None)),
    ],
)
def test_date_entries_override_weekday_hours(tmp_path: Path, text: str, date: dt.date, rule: DayRule) -> None:
    """A date entry sets the multiplier and/or hours, falling back to its weekday's hours."""
    assert load_calendar_file(_write(tmp_path, "cal.toml", text)).rule(date) == rule


def test_the_empty_calendar_opens_every_day_all_day() -> None:
    """Without a calendar file every day is open all day with multiplier 1."""
    assert {EMPTY_CALENDAR.rule(MON + dt.timedelta(days=i)) for i in range(7)} == {DayRule(1.0, None)}


def test_calendars_compare_equal_whatever_the_order_of_their_dates() -> None:
    """Dates are stored sorted and read-only, so equal entries make equal, hashable calendars."""
    a = Calendar(dates={MON: DateOverride(2.0), SUN: DateOverride(0.0)})
    b = Calendar(dates={SUN: DateOverride(0.0), MON: DateOverride(2.0)})
    assert a == b
    assert hash(a) == hash(b)
    assert list(b.dates) == [MON, SUN]
    with pytest.raises(TypeError):
        b.dates[TUE] = DateOverride()  # type: ignore[index]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DayRule(-1.0, None), "multiplier"),
        (lambda: DayRule(float("nan"), None), "multiplier"),
        (lambda: DayRule(1.0, (600, 600)), "hours"),
        (lambda: DayRule(1.0, (0, 1441)), "hours"),
        (lambda: DateOverride(float("inf")), "multiplier"),
        (lambda: DateOverride(1.0, (-1, 60)), "hours"),
        (lambda: Calendar((None,) * 6), "7 entries"),
        (lambda: Calendar(((700, 600), None, None, None, None, None, None)), "hours"),
    ],
)
def test_invalid_values_are_rejected_on_construction(build: Callable[[], object], message: str) -> None:
    """The dataclasses refuse values the file format could never produce."""
    with pytest.raises(ValueError, match=message):
        build()


HOURS_EXPECTED = 'expected a list of two times ["HH:MM", "HH:MM"], opening then closing'
TIME_EXPECTED = 'expected a time "HH:MM" from "00:00" to "24:00"'
DATE_VALUE_EXPECTED = "expected a multiplier (a number >= 0), \"closed\", or a table with 'multiplier' and/or 'hours'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # the top level
        ("holidays = 1", "holidays=1: unknown key; expected only 'hours', 'dates'"),
        ('hours = "9-5"', "hours='9-5': expected a table with one entry per weekday, Monday to Sunday"),
        ("dates = [1]", 'dates=[1]: expected a table with one entry per date "YYYY-MM-DD"'),
        # weekday names and hours
        (
            '[hours]\nmonday = ["09:00", "20:00"]',
            "hours.monday=['09:00', '20:00']: unknown key; expected a weekday name, one of " + ", ".join(WEEKDAYS),
        ),
        ('[hours]\nMonday = "open"', f"hours.Monday='open': {HOURS_EXPECTED}, or \"closed\""),
        ("[hours]\nMonday = 8", f'hours.Monday=8: {HOURS_EXPECTED}, or "closed"'),
        ('[hours]\nMonday = ["09:00"]', f"hours.Monday=['09:00']: {HOURS_EXPECTED}"),
        (
            '[hours]\nMonday = ["09:00", "12:00", "20:00"]',
            f"hours.Monday=['09:00', '12:00', '20:00']: {HOURS_EXPECTED}",
        ),
        ('[hours]\nMonday = ["9:00", "20:00"]', f"hours.Monday[0]='9:00': {TIME_EXPECTED}"),
        ('[hours]\nMonday = ["09:00", "24:01"]', f"hours.Monday[1]='24:01': {TIME_EXPECTED}"),
        ('[hours]\nMonday = ["09:60", "20:00"]', f"hours.Monday[0]='09:60': {TIME_EXPECTED}"),
        ('[hours]\nMonday = ["09:00", 20]', f"hours.Monday[1]=20: {TIME_EXPECTED}"),
        ('[hours]\nMonday = ["09:00", "20:00\\n"]', f"hours.Monday[1]='20:00\\n': {TIME_EXPECTED}"),
        (
            '[hours]\nMonday = ["20:00", "09:00"]',
            "hours.Monday=['20:00', '09:00']: expected the closing time after the opening time",
        ),
        (
            '[hours]\nMonday = ["09:00", "09:00"]',
            "hours.Monday=['09:00', '09:00']: expected the closing time after the opening time",
        ),
        (
            '[hours]\nMonday = ["24:00", "24:00"]',
            "hours.Monday=['24:00', '24:00']: expected the closing time after the opening time",
        ),
        # date keys
        (
            '[dates]\n"2025-13-01" = 2',
            'dates."2025-13-01"=2: the key is not a date; expected a date "YYYY-MM-DD" as the key',
        ),
        (
            '[dates]\n"25-12-01" = 2',
            'dates."25-12-01"=2: the key is not a date; expected a date "YYYY-MM-DD" as the key',
        ),
        (
            '[dates]\n"20251201" = 2',
            'dates."20251201"=2: the key is not a date; expected a date "YYYY-MM-DD" as the key',
        ),
        (
            '[dates]\n"2025-02-29" = "closed"',
            'dates."2025-02-29"=\'closed\': the key is not a date; expected a date "YYYY-MM-DD" as the key',
        ),
        # date values
        ('[dates]\n"2025-12-24" = -1', 'dates."2025-12-24"=-1: expected a finite number >= 0'),
        ('[dates]\n"2025-12-24" = nan', 'dates."2025-12-24"=nan: expected a finite number >= 0'),
        ('[dates]\n"2025-12-24" = inf', 'dates."2025-12-24"=inf: expected a finite number >= 0'),
        ('[dates]\n"2025-12-24" = true', f'dates."2025-12-24"=True: {DATE_VALUE_EXPECTED}'),
        ('[dates]\n"2025-12-24" = "open"', f"dates.\"2025-12-24\"='open': {DATE_VALUE_EXPECTED}"),
        ('[dates]\n"2025-12-24" = "2.5"', f"dates.\"2025-12-24\"='2.5': {DATE_VALUE_EXPECTED}"),
        ('[dates]\n"2025-12-24" = [1]', f'dates."2025-12-24"=[1]: {DATE_VALUE_EXPECTED}'),
        # date tables
        (
            '[dates]\n"2025-12-24" = {}',
            "dates.\"2025-12-24\"={}: expected at least one of 'multiplier', 'hours' or 'closed'",
        ),
        (
            '[dates]\n"2025-12-24" = { multiplier = 1, open = "09:00" }',
            "dates.\"2025-12-24\".open='09:00': unknown key; expected only 'multiplier', 'hours', 'closed', 'outages'",
        ),
        (
            '[dates]\n"2025-12-24" = { multiplier = -0.5 }',
            'dates."2025-12-24".multiplier=-0.5: expected a finite number >= 0',
        ),
        (
            '[dates]\n"2025-12-24" = { multiplier = false }',
            'dates."2025-12-24".multiplier=False: expected a finite number >= 0',
        ),
        (
            '[dates]\n"2025-12-24" = { multiplier = "2" }',
            "dates.\"2025-12-24\".multiplier='2': expected a finite number >= 0",
        ),
        (
            '[dates]\n"2025-12-24" = { hours = ["09:00"] }',
            f"dates.\"2025-12-24\".hours=['09:00']: {HOURS_EXPECTED}",
        ),
        (
            '[dates]\n"2025-12-24" = { hours = "closed" }',
            f"dates.\"2025-12-24\".hours='closed': {HOURS_EXPECTED}",
        ),
        (
            '[dates]\n"2025-12-24" = { hours = ["14:00", "09:00"] }',
            "dates.\"2025-12-24\".hours=['14:00', '09:00']: expected the closing time after the opening time",
        ),
        (
            '[dates]\n"2025-12-24" = { hours = ["09:00", "25:00"] }',
            f"dates.\"2025-12-24\".hours[1]='25:00': {TIME_EXPECTED}",
        ),
        (
            '[dates]\n"2025-12-24" = { closed = "yes" }',
            "dates.\"2025-12-24\".closed='yes': expected true or false",
        ),
        (
            '[dates]\n"2025-12-24" = { closed = true, multiplier = 2 }',
            "dates.\"2025-12-24\".multiplier=2: expected no 'multiplier' on a date with closed = true",
        ),
        (
            '[dates]\n"2025-12-24" = { closed = true, hours = ["09:00", "10:00"] }',
            "dates.\"2025-12-24\".hours=['09:00', '10:00']: expected no 'hours' on a date with closed = true",
        ),
    ],
)
def test_malformed_toml_is_rejected_naming_key_value_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    """Each malformed entry is reported with its key path, its value and what is expected."""
    with pytest.raises(CalendarFileError) as caught:
        load_calendar_file(_write(tmp_path, "cal.toml", text))
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected a table (TOML) or an object (JSON) at the top level"),
        ('"closed"', "expected a table (TOML) or an object (JSON) at the top level"),
        ('{"dates": {"2025-12-24": NaN}}', 'dates."2025-12-24"=nan: expected a finite number >= 0'),
        ('{"dates": {"2025-12-24": 1e999}}', 'dates."2025-12-24"=inf: expected a finite number >= 0'),
        (
            '{"dates": {"2025-12-24": {"multiplier": 1' + "0" * 400 + "}}}",
            'dates."2025-12-24".multiplier=1' + "0" * 400 + ": expected a finite number >= 0",
        ),
        ('{"dates": {"2025-12-24": null}}', f'dates."2025-12-24"=None: {DATE_VALUE_EXPECTED}'),
        ('{"hours": {"Friday": null}}', f'hours.Friday=None: {HOURS_EXPECTED}, or "closed"'),
        ('{"hours": null}', "hours=None: expected a table with one entry per weekday, Monday to Sunday"),
        (
            '{"dates": {"2025-12-24": 2, "2025-12-24": 3}}',
            "cannot parse it: the key '2025-12-24' appears twice in one object",
        ),
        ('{"hours": {}, "hours": {}}', "cannot parse it: the key 'hours' appears twice in one object"),
    ],
)
def test_malformed_json_is_rejected_naming_key_value_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    """JSON-only mistakes (null, NaN, huge numbers, repeated keys, a non-object) are reported precisely."""
    with pytest.raises(CalendarFileError) as caught:
        load_calendar_file(_write(tmp_path, "cal.json", text))
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("cal.toml", b'[dates\n"2025-12-24" = 2'),
        ("cal.toml", b'[dates]\n"2025-12-24" = 2\n"2025-12-24" = 3'),
        ("cal.json", b"{hours: {}}"),
        ("cal.toml", b"\xff\xfe"),
        ("cal.json", b"\xff\xfe\xfd"),
    ],
)
def test_unparsable_files_are_rejected(tmp_path: Path, name: str, content: bytes) -> None:
    """Syntax errors, repeated TOML keys and bad encodings are reported as parse errors."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CalendarFileError, match=r"^cannot parse it: "):
        load_calendar_file(path)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    """A file that cannot be read is reported with the system's reason."""
    with pytest.raises(CalendarFileError) as caught:
        load_calendar_file(tmp_path / "nowhere.toml")
    assert str(caught.value) == "cannot read it: No such file or directory"


@st.composite
def _hours(draw: st.DrawFn) -> tuple[int, int]:
    opening = draw(st.integers(0, 1439))
    return opening, draw(st.integers(opening + 1, 1440))


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _hours_json(hours: tuple[int, int]) -> list[str]:
    return [_hhmm(hours[0]), _hhmm(hours[1])]


_WEEKDAY_HOURS: st.SearchStrategy[WeekdayHours] = st.one_of(st.none(), st.just(CLOSED), _hours())
_MULTIPLIERS = st.one_of(
    st.integers(0, 10**6).map(float),
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
)


@st.composite
def _date_entry(draw: st.DrawFn) -> tuple[DateOverride, object]:
    """Draw an override and one of the ways the file can spell it."""
    multiplier = draw(_MULTIPLIERS)
    hours = draw(st.one_of(st.none(), _hours()))
    spellings: list[object] = [{"multiplier": multiplier, **({"hours": _hours_json(hours)} if hours else {})}]
    if hours is None:
        spellings.append(multiplier)
    else:
        spellings.append({"hours": _hours_json(hours)} if multiplier == 1 else {"multiplier": multiplier})
    if multiplier == 0 and hours is None:
        spellings += ["closed", {"closed": True}]
    if multiplier == 1 and hours is None:
        spellings.append({"closed": False})
    spelling = draw(st.sampled_from(spellings))
    if isinstance(spelling, dict) and "hours" not in spelling:
        hours = None
    return DateOverride(multiplier, hours), spelling


@st.composite
def _calendars(draw: st.DrawFn) -> tuple[Calendar, dict[str, object]]:
    """Draw a valid calendar and a JSON document that describes it."""
    weekday_hours = tuple(draw(_WEEKDAY_HOURS) for _ in WEEKDAYS)
    entries = draw(
        st.dictionaries(st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)), _date_entry())
    )
    document: dict[str, object] = {}
    hours_table = {
        name: (hours if hours == CLOSED else _hours_json(hours))
        for name, hours in zip(WEEKDAYS, weekday_hours, strict=True)
        if hours is not None
    }
    write_empty_hours, write_empty_dates = draw(st.booleans()), draw(st.booleans())
    if hours_table or write_empty_hours:
        document["hours"] = hours_table
    if entries or write_empty_dates:
        document["dates"] = {date.isoformat(): spelling for date, (_, spelling) in entries.items()}
    calendar = Calendar(weekday_hours, {date: override for date, (override, _) in entries.items()})
    return calendar, document


@settings(max_examples=200, deadline=None)
@given(_calendars())
def test_any_valid_calendar_written_as_json_loads_back_equal(case: tuple[Calendar, dict[str, object]]) -> None:
    """Every valid calendar, however its dates are spelled in JSON, loads back to the same value."""
    calendar, document = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "calendar.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        loaded = load_calendar_file(path)
    assert loaded == calendar
    for date in calendar.dates:
        assert loaded.rule(date) == calendar.rule(date)
