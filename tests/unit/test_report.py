"""``foot-traffic report``: the producer's own data pass, each kind of skewed data fails its check, bad input exits 2.

Data come from the service with a memory sink and a fixed SEED over a simulated
week, so every assertion is deterministic; the skews are large enough that the
check they target fails for any seed, and small enough to leave the others alone.
"""

from __future__ import annotations

import bisect
import datetime as dt
import io
import json
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest
from confluent_kafka import KafkaError
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from foot_traffic.cli.commands import main
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS
from foot_traffic.events.event import format_instant
from foot_traffic.events.schema import EVENT_AVRO_SCHEMA
from foot_traffic.kafka.reader import batch_records
from foot_traffic.kafka.registry import EventSerializer, RegistryUnavailableError
from foot_traffic.model.grid import DEFAULT_GRID, US_PER_MINUTE, UTC, WEEKDAYS, datetime_to_us
from foot_traffic.model.randomness import root_entropy
from foot_traffic.report import command as report_module
from foot_traffic.report.checks.results import Check, judge
from foot_traffic.report.checks.results import Test as Row
from foot_traffic.report.command import analyse
from foot_traffic.report.document import p_text
from foot_traffic.report.inputs import framing as report_framing
from foot_traffic.report.inputs.events import Chunk, Events, EventsInputError
from foot_traffic.report.inputs.files import file_chunks
from foot_traffic.report.inputs.framing import FramedValues, RegistrySource
from foot_traffic.report.inputs.kafka import kafka_chunk
from foot_traffic.report.inputs.lines import read_events
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink

SEED = "report"
WEEK = {"START": "2025-08-11", "UNTIL": "2025-08-18"}
VOLUME = {"BASE_DAILY_CUSTOMERS": "3000"}
PNG = b"\x89PNG\r\n\x1a\n"
Event = dict[str, Any]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test with none of the settings' variables set."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)


def produce(env: dict[str, str]) -> list[bytes]:
    """The JSON lines a backfill over START–UNTIL emits with these settings and SEED."""
    settings = load_settings({"SEED": SEED, **env})
    assert settings.start_us is not None
    assert settings.until_us is not None
    sink = MemorySink()
    clock = ManualClock(settings.start_us)
    until = settings.until_us
    Service(settings.store_models(), root_entropy(SEED), sink, clock, poll_s=0.5, until_us=until).run()
    return [value for _, value in sink.records]


def read(lines: list[bytes]) -> Events:
    """Parse JSON lines as the report does."""
    return read_events([Chunk(b"\n".join(lines), lambda i, before: f"line {before + i + 1}")])


def verdicts(lines: list[bytes], env: dict[str, str]) -> dict[str, str]:
    """Each check's verdict on these lines under these settings, at the default alpha."""
    analysis = analyse(load_settings(env), read(lines))
    return judge(analysis.checks, 0.001).checks


def decode(lines: list[bytes]) -> list[Event]:
    """JSON lines as dicts."""
    return [json.loads(line) for line in lines]


def encode(events: list[Event]) -> list[bytes]:
    """Compact JSON in the producer's field order (so the report's fast path reads it)."""
    return [json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode() for e in events]


def entry_us(event: Event) -> int:
    """The event's entry instant."""
    return datetime_to_us(dt.datetime.fromisoformat(event["entry_time"]))


def moved(event: Event, entry: int | None = None, duration: int | None = None) -> Event:
    """The event with another entry instant and/or duration, every dependent field kept consistent (UTC)."""
    entry = entry_us(event) if entry is None else entry
    duration = event["trip_duration_minutes"] if duration is None else duration
    moment = dt.datetime.fromtimestamp(entry / 1e6, UTC)
    slot = bisect.bisect_right(DEFAULT_GRID.starts, moment.hour * 60 + moment.minute) - 1
    return {
        **event,
        "entry_time": format_instant(entry),
        "exit_time": format_instant(entry + duration * US_PER_MINUTE),
        "trip_duration_minutes": duration,
        "weekday": WEEKDAYS[moment.weekday()],
        "time_slot": DEFAULT_GRID.labels[slot],
    }


def slot_start(event: Event) -> int:
    """The instant the event's slot begins."""
    date = dt.date.fromisoformat(event["entry_time"][:10])
    return DEFAULT_GRID.boundaries_us(date)[DEFAULT_GRID.labels.index(event["time_slot"])]


def in_slot(event: Event, date: str, slot: int) -> bool:
    """Whether the event entered on this date (UTC), in this slot."""
    return bool(event["entry_time"].startswith(date) and event["time_slot"] == DEFAULT_GRID.labels[slot])


@pytest.fixture(scope="module")
def week() -> list[bytes]:
    """A week of the specification's model, about 21,000 events."""
    return produce({**WEEK, **VOLUME})


EXACT = {"SEED": SEED, **WEEK, **VOLUME}
"""The producer's settings: counts compared with the plan exactly."""
LAWS = dict(VOLUME)
"""No SEED, no range: counts compared with what the model implies given each day's total."""
ALL_PASS = dict.fromkeys(("counts", "positions", "durations", "weekdays", "consistency", "uniqueness"), "pass")


def test_producer_week_passes_exactly(week: list[bytes]) -> None:
    """The producer's week passes every check against the exact plan."""
    assert verdicts(week, EXACT) == ALL_PASS


def test_producer_week_passes_without_seed(week: list[bytes]) -> None:
    """Without SEED and range, the counts fit the largest-remainder split of each day's total."""
    assert verdicts(week, LAWS) == ALL_PASS


@pytest.mark.parametrize("model", ["poisson", "smooth"])
@pytest.mark.parametrize("exact", [True, False])
def test_other_arrival_models_pass(model: str, exact: bool) -> None:
    """Poisson and smooth weeks pass, exactly with SEED and by the chi-square given each day's total without."""
    env = {**WEEK, **VOLUME, "ARRIVAL_MODEL": model}
    lines = produce(env)
    given = {**env, "SEED": SEED} if exact else {"ARRIVAL_MODEL": model, **VOLUME}
    assert verdicts(lines, given) == ALL_PASS


@pytest.mark.parametrize(
    "extra",
    [
        {"DAILY_TOTALS": "gamma-poisson"},
        {"DAILY_CUSTOMERS": "2500"},
        {"DISABLE_DAILY_VARIATION": "1"},
        {"TIMEZONE": "Europe/Rome"},
    ],
)
def test_other_day_laws_and_zones_pass(extra: dict[str, str]) -> None:
    """Other day-to-day laws, fixed totals and a local time zone pass, with and without SEED."""
    env = {**WEEK, **VOLUME, **extra}
    lines = produce(env)
    assert verdicts(lines, {**env, "SEED": SEED}) == ALL_PASS
    assert verdicts(lines, {**VOLUME, **extra}) == ALL_PASS


def test_several_stores_calendar_and_hours_pass(tmp_path: Path) -> None:
    """Two stores (one in its own zone) with a calendar of opening hours and a closed day pass; checked per store."""
    stores = tmp_path / "stores.toml"
    stores.write_text('[[store]]\nid = "a"\n[[store]]\nid = "b"\nscale = 0.5\ntimezone = "America/New_York"\n')
    calendar = tmp_path / "calendar.toml"
    calendar.write_text('[hours]\nMonday = ["09:00", "20:00"]\nSunday = "closed"\n[dates]\n"2025-08-13" = 1.5\n')
    env = {**WEEK, **VOLUME, "STORES_FILE": str(stores), "CALENDAR_FILE": str(calendar)}
    lines = produce(env)
    assert {e["store_id"] for e in decode(lines)} == {"a", "b"}
    assert verdicts(lines, {**env, "SEED": SEED}) == ALL_PASS
    assert verdicts(lines, {**VOLUME, "STORES_FILE": str(stores), "CALENDAR_FILE": str(calendar)}) == ALL_PASS
    # the same events read against a single-store configuration name stores it does not know
    assert verdicts(lines, {**VOLUME, "CALENDAR_FILE": str(calendar)})["consistency"] == "FAIL"


@pytest.mark.parametrize("model", ["uniform", "poisson", "smooth"])
def test_partial_days_pass(model: str) -> None:
    """A run that starts and stops mid-day passes, with its START/UNTIL and SEED, and with neither."""
    env = {"START": "2025-08-12T15:30", "UNTIL": "2025-08-15T11:00", "ARRIVAL_MODEL": model, **VOLUME}
    lines = produce(env)
    assert verdicts(lines, {**env, "SEED": SEED}) == ALL_PASS
    assert verdicts(lines, {"ARRIVAL_MODEL": model, **VOLUME}) == ALL_PASS


def test_a_range_cutting_days_passes(week: list[bytes]) -> None:
    """A range that cuts a whole week's first and last days compares only what it covers, and passes."""
    env = {**EXACT, "START": "2025-08-12T09:17", "UNTIL": "2025-08-15T13:30"}
    analysis = analyse(load_settings(env), read(week))
    assert judge(analysis.checks, 0.001).checks == ALL_PASS
    assert (analysis.whole_days, analysis.partial_days) == (2, 2)
    assert analysis.in_range < analysis.events


def skewed(week: list[bytes], change: Callable[[list[Event]], list[Event]]) -> list[bytes]:
    """The week's lines after a change to its events."""
    return encode(change(decode(week)))


def to_slot_starts(events: list[Event]) -> list[Event]:
    """Every tenth arrival moved to within a second of its slot's start."""
    return [moved(e, slot_start(e) + i % 1_000_000) if i % 10 == 0 else e for i, e in enumerate(events)]


def sixty_minutes(events: list[Event]) -> list[Event]:
    """Every visit lasting 60 minutes."""
    return [moved(e, duration=60) for e in events]


def between_slots(events: list[Event]) -> list[Event]:
    """Ten of Wednesday's 10:00–13:59 arrivals moved to random instants of 14:00–16:59."""
    rng = np.random.default_rng(7)
    start, end = DEFAULT_GRID.boundaries_us(dt.date(2025, 8, 13))[3:5]
    picked = [i for i, e in enumerate(events) if in_slot(e, "2025-08-13", 2)][:10]
    result = list(events)
    for i in picked:
        result[i] = moved(events[i], int(rng.integers(start, end)))
    return result


def without_a_slot(events: list[Event]) -> list[Event]:
    """Thursday's 14:00–16:59 visits dropped."""
    return [e for e in events if not in_slot(e, "2025-08-14", 3)]


def more_saturdays(events: list[Event]) -> list[Event]:
    """Saturday's visits plus a copy of every third one (new customer ids)."""
    copies = [
        {**e, "customer_id": f"{i:08x}-0000-4000-8000-000000000000"}
        for i, e in enumerate(events)
        if e["weekday"] == "Saturday" and i % 3 == 0
    ]
    return events + copies


def wrong_weekdays(events: list[Event]) -> list[Event]:
    """One Monday visit labelled Sunday."""
    return [{**e, "weekday": "Sunday"} if i == 5 else e for i, e in enumerate(events)]


@pytest.mark.parametrize(
    ("change", "failing", "env"),
    [
        (to_slot_starts, "positions", EXACT),
        (sixty_minutes, "durations", EXACT),
        (between_slots, "counts", EXACT),
        (between_slots, "counts", LAWS),
        (without_a_slot, "counts", EXACT),
        (more_saturdays, "weekdays", LAWS),
        (wrong_weekdays, "consistency", EXACT),
    ],
)
def test_skewed_data_fail_their_check(
    week: list[bytes], change: Callable[[list[Event]], list[Event]], failing: str, env: dict[str, str]
) -> None:
    """Each kind of skew fails the check that looks for it; the positions and durations of the rest still pass."""
    result = verdicts(skewed(week, change), env)
    assert result[failing] == "FAIL"
    untouched = {"to_slot_starts": "durations", "sixty_minutes": "positions"}.get(change.__name__, "durations")
    assert result[untouched] == "pass"
    if change in (to_slot_starts, sixty_minutes, between_slots):
        assert [key for key, verdict in result.items() if verdict == "FAIL"] == [failing]


def uniqueness(lines: list[bytes], env: dict[str, str]) -> tuple[dict[str, str], Check]:
    """Each check's verdict, and the uniqueness check itself."""
    analysis = analyse(load_settings(env), read(lines))
    (check,) = (c for c in analysis.checks if c.key == "uniqueness")
    return judge(analysis.checks, 0.001).checks, check


def test_uniqueness_passes_the_producer_week(week: list[bytes]) -> None:
    """The producer's ids are all distinct: both conditions hold with no example listed."""
    result, check = uniqueness(week, EXACT)
    assert result == ALL_PASS
    assert [t.statistic for t in check.tests] == ["0 repeated event(s)", "0 event(s) under the id of another visit"]
    assert check.tables == ()
    assert f"carry {len(week):,} distinct customer ids" in check.notes[0]


def test_repeated_lines_fail_uniqueness_as_repeats(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, week: list[bytes]
) -> None:
    """Lines read twice (a replayed dead-letter file): the uniqueness check counts them as repeats and names them.

    The extra events also change the slot counts, so the exact plan fails too; the
    positions, durations, weekday totals and fields still fit.
    """
    picked = [week[i] for i in (10, 5000, 12000)] + [week[5000]]  # one of them read three times
    result, check = uniqueness(week + picked, EXACT)
    assert result["uniqueness"] == result["counts"] == "FAIL"
    assert result["positions"] == result["durations"] == result["weekdays"] == result["consistency"] == "pass"
    assert [t.statistic for t in check.tests] == ["4 repeated event(s)", "0 event(s) under the id of another visit"]
    assert "3 id(s) appear more than once, on 4 extra event(s)" in check.notes[0]
    (examples,) = check.tables
    repeated = sorted((entry_us(e), e["customer_id"]) for e in decode([week[i] for i in (10, 5000, 12000)]))
    copies = {decode([week[5000]])[0]["customer_id"]: "3"}
    assert [row[:4] for row in examples.rows] == [
        (i, "same visit repeated", copies.get(i, "2"), "1") for _, i in repeated
    ]  # earliest entry first
    status, out, _, folder = report(capsys, tmp_path, week + picked, *ARGS)
    assert status == 1
    assert out.startswith("foot-traffic report: FAIL: Counts per date and slot, Uniqueness of customer ids (2 of 6")
    summary = (folder / "report.md").read_text()
    assert "| no visit read twice (same customer_id, entry_time, duration, store and slot) | 4 repeated" in summary
    assert f"| {repeated[0][1]} | same visit repeated |" in summary


def test_colliding_ids_fail_uniqueness_only(week: list[bytes]) -> None:
    """Different visits given one id (and ids that are not UUIDs) fail the uniqueness check, and nothing else."""

    def collide(events: list[Event]) -> list[Event]:
        result = [
            {**e, "customer_id": events[0]["customer_id"]} if i in (7, 900, 3000) else e for i, e in enumerate(events)
        ]
        result[20]["customer_id"] = result[40]["customer_id"] = "visit-20"  # not UUIDs: read by the slow path
        upper = result[60]["customer_id"].upper()  # a UUID in capitals is another id
        result[61]["customer_id"] = upper
        return result

    result, check = uniqueness(skewed(week, collide), EXACT)
    assert [key for key, verdict in result.items() if verdict == "FAIL"] == ["uniqueness"]
    assert [t.statistic for t in check.tests] == ["0 repeated event(s)", "4 event(s) under the id of another visit"]
    (examples,) = check.tables
    first = json.loads(week[0])["customer_id"]
    assert [row[:4] for row in examples.rows] == [
        (first, "different visits", "4", "4"),
        ("visit-20", "different visits", "2", "2"),
    ]


def test_poisson_counts_moved_between_slots_fail_the_chi_square() -> None:
    """Without SEED, poisson slot counts skewed towards one slot fail the chi-square given each day's total."""
    env = {**WEEK, **VOLUME, "ARRIVAL_MODEL": "poisson"}
    events = decode(produce(env))
    rng = np.random.default_rng(3)
    result = []
    for i, event in enumerate(events):
        if event["time_slot"] == DEFAULT_GRID.labels[2] and i % 5 == 0:  # a fifth of 10:00–13:59 to 14:00–16:59
            start, end = DEFAULT_GRID.boundaries_us(dt.date.fromisoformat(event["entry_time"][:10]))[3:5]
            result.append(moved(event, int(rng.integers(start, end))))
        else:
            result.append(event)
    got = verdicts(encode(result), {"ARRIVAL_MODEL": "poisson", **VOLUME})
    assert got["counts"] == "FAIL"
    assert got["positions"] == got["durations"] == got["consistency"] == "pass"


def test_bonferroni_shares_alpha_between_statistical_tests() -> None:
    """Three p-values are each held to alpha / 3; exact conditions and skipped tests do not count."""
    tests = (
        Row("a", "", p_value=0.0005),
        Row("b", "", p_value=0.5),
        Row("c", "", p_value=0.9),
        Row("exact", "", condition="holds", passed=True),
        Row("none", "", skipped="no data"),
    )
    passing = judge([Check("k", "K", "", tests)], 0.001)
    assert passing.level == pytest.approx(0.001 / 3)
    assert passing.passed
    failing = judge([Check("k", "K", "", (Row("a", "", p_value=0.0003), *tests[1:]))], 0.001)
    assert failing.checks == {"k": "FAIL"}
    assert failing.verdicts[("k", "none")] == "skipped"
    assert not judge([Check("k", "K", "", (Row("x", "", condition="c", passed=False),))], 0.5).passed


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.5, "0.5"), (0.012345, "0.0123"), (1.0, "1"), (1e-300, "1e-300"), (9.99e-301, "< 1e-300"), (0.0, "< 1e-300")],
)
def test_p_values_are_written_with_three_digits_and_a_bound_below_1e_300(p: float, text: str) -> None:
    """Every p-value of the summary (judged tests and per-slot tables alike) is written by one rule."""
    assert p_text(p) == text


# --- reading -----------------------------------------------------------------------------------------


def columns(events: Events) -> list[tuple[int, ...]]:
    """Every event as a sorted, comparable row."""
    labels = [events.labels[i] for i in events.label.tolist()]
    rows = zip(events.entry_us.tolist(), events.duration_min.tolist(), labels, events.local_day.tolist(), strict=True)
    return sorted((e, d, hash(label), day) for e, d, label, day in rows)


def test_fast_and_json_paths_read_the_same_events(week: list[bytes]) -> None:
    """Lines in any other JSON layout (spaces, other key order) read exactly as the producer's own layout."""
    fast = read(week[:3000])
    other = [json.dumps(dict(reversed(list(e.items())))).encode() for e in decode(week[:3000])]
    slow = read(other)
    assert len(fast) == len(slow) == 3000
    assert columns(fast) == columns(slow)
    assert fast.stats.weekday_mismatch == slow.stats.weekday_mismatch == 0
    assert fast.stats.exit_mismatch == slow.stats.exit_mismatch == 0


def test_blank_lines_and_sensor_events_are_skipped_and_counted() -> None:
    """Blank lines and entry/exit sensor events are counted, not read as visits."""
    settings = load_settings({"START": "2025-08-11", "UNTIL": "2025-08-12", "DAILY_CUSTOMERS": "50", "SEED": SEED})
    assert settings.start_us is not None
    sink = MemorySink()
    clock = ManualClock(settings.start_us)
    service = Service(settings.model(), 1, sink, clock, poll_s=0.5, until_us=settings.until_us, sensor_topic="x")
    service.run()
    visits, sensors = [v for _, v in sink.records], [v for _, v in sink.other["x"]]
    assert len(visits) == 50
    assert len(sensors) > 50
    events = read([*visits[:10], b"", b"   ", *sensors, *visits[10:]])
    assert len(events) == 50
    assert events.stats.sensor == len(sensors)
    assert events.stats.blank == 2


def test_file_chunks_cut_at_line_ends_and_name_lines(tmp_path: Path) -> None:
    """Blocks end at newlines whatever their size, and a bad line is named by its number in the file."""
    lines = produce({"START": "2025-08-11", "UNTIL": "2025-08-12", "DAILY_CUSTOMERS": "300"})
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with path.open("rb") as stream:
        assert len(read_events(file_chunks(stream, "f", block_bytes=1000))) == 300
    path.write_bytes(b"\n".join([*lines[:250], b'{"event_type":"foot_traffic"', *lines[250:]]))
    with path.open("rb") as stream, pytest.raises(EventsInputError, match=r"^f line 251: not JSON"):
        read_events(file_chunks(stream, "f", block_bytes=1000))


# --- the command -------------------------------------------------------------------------------------


def report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lines: list[bytes], *args: str
) -> tuple[int, str, str, Path]:
    """Run ``foot-traffic report`` in process on these lines; return status, stdout, stderr and the output folder."""
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    status = main(["report", "--input", str(source), "--output", str(out), "--log-level", "WARNING", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err, out


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    data = path.read_bytes()
    assert data[:8] == PNG
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


ARGS = ("--seed", SEED, "--start", WEEK["START"], "--until", WEEK["UNTIL"], "--base-daily-customers", "3000")


def test_report_writes_markdown_with_tables_and_real_pngs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, week: list[bytes]
) -> None:
    """A passing week: exit 0, a PASS line, a Markdown table per check, and four real PNG plots."""
    status, out, err, folder = report(capsys, tmp_path, week, *ARGS)
    assert status == 0, err
    assert out.startswith(f"foot-traffic report: PASS (6 checks over {len(week):,} events, alpha 0.001); details in")
    assert err == ""
    summary = (folder / "report.md").read_text()
    assert summary.startswith("# foot-traffic report: PASS")
    assert summary.count("| Test | Statistic | p-value | Threshold | Verdict |") == 6
    titles = ("Counts per date and slot", "Arrival positions inside slots", "Visit durations")
    for title in (*titles, "Uniqueness of customer ids"):
        assert f"| {title} |" in summary
        assert f"## {title}" in summary
    assert "| 2025-08-13 | Wednesday | whole day |" in summary
    assert "alpha / 3 = 0.000333 (Bonferroni)" in summary
    names = ("arrivals-per-hour.png", "weekday-totals.png", "durations.png", "occupancy.png")
    for name in names:
        assert f"]({name})" in summary
        assert (folder / name).stat().st_size > 10_000
        assert png_size(folder / name) == (900, 450)


def test_report_html_and_failing_exit_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, week: list[bytes]
) -> None:
    """HTML holds the same tables; skewed data give exit 1 and a FAIL line naming the check."""
    lines = skewed(week, sixty_minutes)
    status, out, _, folder = report(capsys, tmp_path, lines, *ARGS, "--format", "html", "--alpha", "0.01")
    assert status == 1
    assert out.startswith("foot-traffic report: FAIL: Visit durations (1 of 6 checks over")
    page = (folder / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<th>Test</th><th>Statistic</th><th>p-value</th><th>Threshold</th><th>Verdict</th>") == 6
    assert '<td class="FAIL">FAIL</td>' in page
    assert '<img src="durations.png"' in page
    assert "alpha = 0.01 " in page
    assert png_size(folder / "durations.png") == (900, 450)


def test_partial_range_is_said_in_the_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, week: list[bytes]
) -> None:
    """The summary says which range was compared, how many days were partial, and what was skipped."""
    args = ("--seed", SEED, "--start", "2025-08-12T09:17", "--until", "2025-08-15T13:30", "--base-daily-customers")
    status, _, _, folder = report(capsys, tmp_path, week, *args, "3000")
    assert status == 0
    summary = (folder / "report.md").read_text()
    assert "from 2025-08-12T09:17:00+00:00 to 2025-08-15T13:30:00+00:00 (exclusive)" in summary
    assert "2 whole day(s) and 2 partial day(s)" in summary
    assert "| 2025-08-12 | Tuesday | partial (4 slots compared) |" in summary
    assert "outside the range" in summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "pdf"), "--format='pdf': expected md or html"),
        (("--alpha", "2"), "--alpha='2': expected a number between 0 and 1 (exclusive)"),
        (("--alpha", "often"), "--alpha='often': expected a number between 0 and 1"),
        (("--arrival-model", "chaotic"), "--arrival-model='chaotic': expected one of uniform, poisson, smooth"),
        (("--start", "noon"), "--start='noon': expected an ISO-8601 date or instant"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, week: list[bytes], args: tuple[str, ...], message: str
) -> None:
    """A bad option value: exit 2, one error line naming it, its value and what is expected, nothing written."""
    status, out, err, folder = report(capsys, tmp_path, week[:100], *args)
    assert status == 2
    assert out == ""
    assert f"foot-traffic: error: {message}" in err
    assert not folder.exists()


BAD_LINES = [
    (b'{"event_type":"foot_traffic","customer_id":', "line 3: not JSON (Expecting value)"),
    (b"[1, 2]", "line 3: [1, 2]; expected a JSON object"),
    (b'{"temperature": 21}', "line 3: event_type=None; expected 'foot_traffic'"),
    (b'{"event_type":"foot_traffic","customer_id":"x"}', "line 3: entry_time=None; expected a string"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_LINES)
def test_bad_lines_exit_2_naming_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, week: list[bytes], bad: bytes, message: str
) -> None:
    """A line that is not a foot_traffic event: exit 2, naming the file, the line and what is expected."""
    status, out, err, _ = report(capsys, tmp_path, [week[0], week[1], bad, week[2]])
    assert status == 2
    assert out == ""
    assert err.startswith("foot-traffic: error: --input=")
    assert message in err


def test_wrongly_typed_fields_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, week: list[bytes]) -> None:
    """A duration that is not an integer, or a time without an offset, is bad input too."""
    event = decode(week[:1])[0]
    for change, message in [
        ({"trip_duration_minutes": "40"}, "trip_duration_minutes='40'; expected an integer"),
        ({"entry_time": "2025-08-11T10:00:00"}, "entry_time='2025-08-11T10:00:00'; expected an ISO-8601 instant"),
    ]:
        status, _, err, _ = report(capsys, tmp_path, encode([{**event, **change}]))
        assert status == 2
        assert message in err


def test_missing_file_empty_file_and_file_as_output_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, week: list[bytes]
) -> None:
    """No such input, an input with no event, or an output that is a file: exit 2 with a clear message."""
    assert main(["report", "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert f"--input='{tmp_path / 'nope.jsonl'}': expected a readable file" in capsys.readouterr().err
    status, _, err, _ = report(capsys, tmp_path, [b""])
    assert status == 2
    assert "no foot_traffic event to check" in err
    status, _, err, _ = report(capsys, tmp_path, week[:10], "--output", str(tmp_path / "events.jsonl"))
    assert status == 2
    assert "expected a folder" in err


def test_missing_extra_exits_2_telling_how_to_install(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, week: list[bytes]
) -> None:
    """Without scipy (or matplotlib) the report exits 2 with one line naming the extra to install."""
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    status, out, err, _ = report(capsys, tmp_path, week[:10])
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "pip install 'foot-traffic[report]'" in err


@pytest.fixture
def week_file(tmp_path: Path, week: list[bytes]) -> Path:
    """The week as a JSON-lines file."""
    path = tmp_path / "week.jsonl"
    path.write_bytes(b"\n".join(week) + b"\n")
    return path


def test_standard_input_and_no_traceback(tmp_path: Path, week_file: Path) -> None:
    """In a real process: events on standard input pass; a malformed line gives exit 2 and no traceback."""
    command = [sys.executable, "-m", "foot_traffic", "report", "--input", "-", "--output", str(tmp_path / "o"), *ARGS]
    with week_file.open("rb") as stdin:
        done = subprocess.run(command, stdin=stdin, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith("foot-traffic report: PASS")
    bad = subprocess.run(command, input=b"{oops\n", capture_output=True, timeout=120, check=False)
    assert bad.returncode == 2
    assert bad.stdout == b""
    assert bad.stderr.decode().splitlines() == [
        "foot-traffic: error: --input='-' line 1: not JSON (Expecting property name enclosed in double quotes); "
        "expected one foot_traffic event per line"
    ]


class FakeMessage:
    """The part of confluent_kafka.Message the reader uses."""

    def __init__(
        self, partition: int, offset: int, value: bytes | None, error: object = None, timestamp_ms: int = 0
    ) -> None:
        self._partition, self._offset, self._value, self._error = partition, offset, value, error
        self._timestamp_ms = timestamp_ms

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> object:
        return self._error

    def timestamp(self) -> tuple[int, int]:
        return 1, self._timestamp_ms  # TIMESTAMP_CREATE_TIME


class EndOfPartition:
    """A _PARTITION_EOF error as the consumer reports it."""

    def code(self) -> int:
        return int(KafkaError._PARTITION_EOF)


@pytest.mark.parametrize("with_eof", [False, True])
def test_kafka_records_stop_at_the_end_offsets_captured_at_start(with_eof: bool) -> None:
    """Records written after reading began (offset >= end) are left out, and each partition is done at its end."""
    ends = {0: 3, 1: 5}
    messages = [FakeMessage(0, offset, f"p0-{offset}".encode()) for offset in range(5)]
    messages += [FakeMessage(1, offset, f"p1-{offset}".encode()) for offset in range(2)]
    if with_eof:
        messages.append(FakeMessage(1, 2, None, EndOfPartition()))
    pending = {0, 1}
    values, kept = batch_records(messages, "t", ends, pending)
    assert values == [b"p0-0", b"p0-1", b"p0-2", b"p1-0", b"p1-1"]
    assert [m.offset() for m in kept] == [0, 1, 2, 0, 1]
    assert pending == (set() if with_eof else {1})


def test_kafka_values_in_registry_json_framing_read_as_plain_events(week: list[bytes]) -> None:
    """A magic byte and a 4-byte schema id before the JSON are dropped; a newline inside a value is refused."""
    framed = [b"\x00\x00\x00\x00\x07" + line for line in week[:100]]
    messages = [FakeMessage(0, offset, value) for offset, value in enumerate(framed)]
    events = read_events([kafka_chunk("t", framed, messages)])
    assert columns(events) == columns(read(week[:100]))
    with pytest.raises(
        EventsInputError, match=r"^KAFKA_TOPIC='t' partition 0 offset 1: a record value holds a newline"
    ):
        kafka_chunk("t", [b"{}", b"{\n}"], [FakeMessage(0, 0, b"{}"), FakeMessage(0, 1, b"{\n}")])


# --- Schema Registry framing: JSON and Avro payloads -------------------------------------------------


def mock_registry(name: str) -> Any:
    """A fresh in-memory registry client (confluent-kafka's own mock), standing in for SCHEMA_REGISTRY_URL's."""
    return SchemaRegistryClient.new_client({"url": f"mock://report-{name}"})


def on_mock(client: Any, sleep: Callable[[float], None] = time.sleep) -> FramedValues:
    """Framed values looked up in a mock registry, as the report does with SCHEMA_REGISTRY_URL set."""
    return FramedValues(RegistrySource("mock://report", attempts=3, backoff_s=0.5), client=client, sleep=sleep)


def as_kafka(values: list[bytes], framing: FramedValues | None = None, batch: int = 5000) -> Events:
    """Values read as the report reads a topic's records, in batches (partition 0, offsets 0…)."""
    messages = [FakeMessage(0, offset, value) for offset, value in enumerate(values)]
    return read_events(
        kafka_chunk("t", values[i : i + batch], messages[i : i + batch], framing) for i in range(0, len(values), batch)
    )


def same_events(got: Events, expected: Events) -> None:
    """Every column, code table and count equal, in the same order (read in the same batches)."""
    for name in ("entry_us", "duration_min", "store", "label", "local_day", "customer"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name
    assert (got.store_ids, got.labels, got.stats, dict(got.id_texts)) == (
        expected.store_ids,
        expected.labels,
        expected.stats,
        dict(expected.id_texts),
    )


def rows(events: Events) -> list[tuple[Any, ...]]:
    """Every event as a sorted row of its values (codes replaced by what they stand for), whatever the read order."""
    stores = [events.store_ids[i] or "" for i in events.store.tolist()]
    labels = [events.labels[i] for i in events.label.tolist()]
    keys = [events.customer_id(row.tobytes()) for row in events.customer]
    columns = (events.entry_us.tolist(), events.duration_min.tolist(), stores, labels, events.local_day.tolist(), keys)
    return sorted(zip(*columns, strict=True))


def with_stores(week: list[bytes], count: int) -> list[bytes]:
    """The first ``count`` events, two in three with a store_id (a quote, non-ASCII), in the producer's layout."""
    ids = ["a-1", 'b"2', "cé\\3"]
    return encode([{**e, "store_id": ids[i % 3]} if i % 3 else e for i, e in enumerate(decode(week[:count]))])


def test_avro_values_decode_to_the_same_columns_as_their_json(week: list[bytes]) -> None:
    """Events framed by the project's own Avro serializer read exactly as their JSON lines, store ids included."""
    client = mock_registry("round-trip")
    serializer = EventSerializer(client, "t", "avro")
    serializer.register()
    for lines in (week, with_stores(week, 3000)):
        framed = [serializer(line) for line in lines]
        assert all(value[0] == 0 for value in framed)
        same_events(as_kafka(framed, on_mock(client)), as_kafka(lines))
    assert verdicts(week, EXACT) == ALL_PASS


def test_own_schema_formatting_equals_the_generic_json() -> None:
    """The fast writer of foot-traffic's own Avro records gives the bytes json gives (escapes, non-ASCII, nulls)."""
    base = {
        "event_type": "foot_traffic",
        "customer_id": "00000000-0000-4000-8000-000000000001",
        "entry_time": "2025-08-12T17:52:24.442703+02:00",
        "exit_time": "2025-08-12T18:52:24.442703+02:00",
        "trip_duration_minutes": 60,
        "weekday": "Tuesday",
        "time_slot": "17:00–19:59",
    }
    for store in (None, "a-1", 'q"\\\n\u2028é'):
        for customer in (base["customer_id"], 'x"\\\t\x01ü'):
            record = {**base, "customer_id": customer, "store_id": store}
            assert report_framing._event_json(record) == report_framing._any_json(record)
            expected = {k: v for k, v in record.items() if v is not None}
            assert json.loads(report_framing._event_json(record)) == expected


def test_a_batch_mixing_plain_json_and_avro_framings_is_read_whole(week: list[bytes]) -> None:
    """Plain values, JSON-framed and Avro-framed ones (two schema ids) in one batch: each read as its own kind."""
    client = mock_registry("mixed")
    as_avro, as_json = EventSerializer(client, "t", "avro"), EventSerializer(client, "t-json", "json")
    assert as_avro.register() != as_json.register()
    lines = week[:900]
    values = [(line, as_json(line), as_avro(line))[i % 3] for i, line in enumerate(lines)]
    same_events(as_kafka(values, on_mock(client), batch=400), as_kafka(lines, batch=400))


def test_avro_values_without_a_registry_exit_2_naming_the_setting(
    week: list[bytes], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without SCHEMA_REGISTRY_URL, JSON payloads still read; an Avro one is bad input naming the setting (exit 2)."""
    client = mock_registry("no-url")
    as_avro, as_json = EventSerializer(client, "t", "avro"), EventSerializer(client, "t-json", "json")
    as_avro.register()
    as_json.register()
    same_events(as_kafka([as_json(line) for line in week[:100]]), as_kafka(week[:100]))
    values = [as_json(week[0]), as_avro(week[1])]
    with pytest.raises(EventsInputError) as info:
        as_kafka(values)
    assert str(info.value).startswith(
        "KAFKA_TOPIC='t' partition 0 offset 1: a value in the Schema Registry framing (schema id "
    )
    assert "whose payload is not JSON, such as Avro; expected SCHEMA_REGISTRY_URL to be set" in str(info.value)

    def chunks(settings: Any, options: Any) -> Iterator[Chunk]:
        messages = [FakeMessage(0, offset, value) for offset, value in enumerate(values)]
        yield kafka_chunk("t", values, messages)

    monkeypatch.setattr(report_module, "_chunks", chunks)
    assert main(["report", "--output", str(tmp_path / "out"), "--log-level", "WARNING"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("foot-traffic: error: KAFKA_TOPIC='t' partition 0 offset 1: ")
    assert "SCHEMA_REGISTRY_URL" in err


def test_schema_ids_are_looked_up_once_each(week: list[bytes]) -> None:
    """The registry is asked once per schema id, whatever the number of batches and values."""
    client = mock_registry("once")
    serializer = EventSerializer(client, "t", "avro")
    serializer.register()
    asked: list[int] = []
    real = client.get_schema

    def get_schema(schema_id: int, *args: Any, **kwargs: Any) -> Any:
        asked.append(schema_id)
        return real(schema_id, *args, **kwargs)

    client.get_schema = get_schema
    assert len(as_kafka([serializer(line) for line in week[:2000]], on_mock(client), batch=300)) == 2000
    assert asked == [serializer.schema_id]


def free_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def framed_with(schema_id: int, payload: bytes) -> bytes:
    """A value in the Confluent wire format."""
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def test_another_writer_schema_is_read_by_its_own_fields(week: list[bytes]) -> None:
    """Avro values of another writer schema (fields reordered, one more, long duration) read the same events."""
    fields = {f["name"]: f for f in EVENT_AVRO_SCHEMA["fields"]}
    other = {
        "type": "record",
        "name": "Visit",
        "namespace": "elsewhere",
        "fields": [
            {"name": "note", "type": "string"},
            *(fields[name] for name in ("store_id", "time_slot", "weekday", "exit_time", "entry_time")),
            {"name": "trip_duration_minutes", "type": "long"},
            fields["customer_id"],
            fields["event_type"],
        ],
    }
    client = mock_registry("other")
    schema_id = client.register_schema("t-value", Schema(json.dumps(other), "AVRO"))
    parsed = fastavro.parse_schema(other)
    lines = with_stores(week, 600)
    values = []
    for event in decode(lines):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, {"note": "hi", "store_id": None, **event})
        values.append(framed_with(schema_id, out.getvalue()))
    got, expected = as_kafka(values, on_mock(client)), as_kafka(lines)
    assert rows(got) == rows(expected)
    assert len(got) == 600
    assert got.stats == expected.stats


def test_bad_avro_records_exit_2_naming_partition_and_offset(week: list[bytes]) -> None:
    """A truncated record, bytes after a record, a schema id the registry lacks or of another kind: bad input."""
    client = mock_registry("bad")
    serializer = EventSerializer(client, "t", "avro")
    serializer.register()
    good = [serializer(line) for line in week[:3]]
    protobuf = client.register_schema("p-value", Schema('syntax = "proto3"; message M {}', "PROTOBUF"))
    cases = [
        (good[2][:-4], "offset 2: not an Avro record of schema id "),
        (good[2] + b"\x02", "offset 2: 1 byte(s) after the Avro record of schema id "),
        (framed_with(999, good[2][5:]), "offset 2: schema id 999 is not in the schema registry at mock://report"),
        (framed_with(protobuf, b"\x08\x01"), f"offset 2: schema id {protobuf} is a PROTOBUF schema in the registry"),
        (b"\x00\x00", "offset 2: 2 byte(s) starting with the magic byte 0, shorter than the Schema Registry framing"),
    ]
    for bad, message in cases:
        with pytest.raises(EventsInputError, match=f"^KAFKA_TOPIC='t' partition 0 {re.escape(message)}"):
            as_kafka([*good[:2], bad], on_mock(client))


class RefusingClient:
    """A registry client whose every request fails with one error."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def get_schema(self, schema_id: int) -> Any:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "calls", "message"),
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            3,
            "cannot reach the schema registry at mock://report after 3 attempt(s) 0.5 s apart: "
            "ConnectionRefusedError: [Errno 111] Connection refused; check SCHEMA_REGISTRY_URL",
        ),
        (
            SchemaRegistryError(503, 50301, "down for maintenance"),
            3,
            "after 3 attempt(s) 0.5 s apart: HTTP 503: down for maintenance; check SCHEMA_REGISTRY_URL",
        ),
        (
            SchemaRegistryError(401, 40101, "Unauthorized"),
            1,
            "cannot read schema id 7 from the schema registry at mock://report: HTTP 401: Unauthorized; "
            "check SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        ),
        (
            SchemaRegistryError(404, 404, "RESTEASY003210: Could not find resource"),
            1,
            "HTTP 404: RESTEASY003210: Could not find resource; check SCHEMA_REGISTRY_URL (the base of the ",
        ),
    ],
    ids=["refused", "unavailable", "unauthorized", "wrong-path"],
)
def test_an_unreachable_or_refusing_registry_is_exit_3_naming_the_url(
    error: Exception, calls: int, message: str
) -> None:
    """Transport errors and 5xx are retried MAX_RETRIES times RETRY_BACKOFF_SECONDS apart; refusals stop at once."""
    client = RefusingClient(error)
    slept: list[float] = []
    with pytest.raises(RegistryUnavailableError) as info:
        as_kafka([framed_with(7, b"\x00")], on_mock(client, slept.append))
    assert message in str(info.value)
    assert info.value.exit_status == 3
    assert client.calls == calls
    assert slept == [0.5] * (calls - 1)


def test_a_registry_nothing_listens_at_is_exit_3_from_the_real_client() -> None:
    """With the real client and nothing at the URL: one attempt, RegistryUnavailableError naming the URL."""
    url = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    framing = FramedValues(RegistrySource(url, attempts=1, timeout_s=2))
    try:
        with pytest.raises(RegistryUnavailableError, match=f"^cannot reach the schema registry at {re.escape(url)} "):
            as_kafka([framed_with(7, b"\x00")], framing)
    finally:
        framing.close()
