"""The loop with imperfections: the same base events, sent late, twice or held, the same way at any speed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foot_traffic.cli.commands import main
from foot_traffic.cli.summary import Counts, log_summary
from foot_traffic.events.encoding import Encoded, encode_batch
from foot_traffic.events.event import batch_events
from foot_traffic.model import randomness
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.grid import US_PER_DAY, datetime_to_us
from foot_traffic.model.imperfections import NONE, Imperfections, decide
from foot_traffic.model.plan import Model, StoreModel, plan_day
from foot_traffic.model.units import Unit
from foot_traffic.run import imperfect
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.imperfect import copy_at
from foot_traffic.run.ownership import Fixed, Work
from foot_traffic.run.positions import Position, Positions, ResumeAfter, resume_points
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink
from tests.unit.fakes import SteppedClock, fake_sink

ROOT = randomness.root_entropy("s")
DATE = dt.date(2025, 8, 12)
MIDNIGHT = datetime_to_us(dt.datetime.combine(DATE, dt.time(), tzinfo=dt.UTC))
UNTIL = MIDNIGHT + 2 * US_PER_DAY
MODEL = Model(daily_customers=1500)
HEAVY = Imperfections(late_pct=0.5, late_mean_s=1800, late_max_s=3600, duplicate_pct=0.05)
IMP = Imperfections(late_pct=0.1, duplicate_pct=0.05, outages_per_day=3, late_mean_s=600, late_max_s=1800)


def _run(imp: Imperfections, clock: ManualClock | SteppedClock | None = None) -> list[bytes]:
    sink = MemorySink()
    clock = clock or ManualClock(MIDNIGHT)
    stop = clock.stop if isinstance(clock, SteppedClock) else None
    Service(MODEL, ROOT, sink, clock, poll_s=60, until_us=UNTIL, imperfections=imp, stop=stop).run()
    return [value for _, value in sink.records]


def _entry(value: bytes) -> int:
    return datetime_to_us(dt.datetime.fromisoformat(json.loads(value)["entry_time"]))


def test_no_imperfection_sends_exactly_the_plain_run() -> None:
    """Every percentage 0: the same bytes in the same order as a run without imperfections."""
    assert _run(Imperfections(late_pct=0, duplicate_pct=0, outages_per_day=0)) == _run(NONE)


def test_the_distinct_events_are_the_plain_runs_and_duplicates_are_byte_equal() -> None:
    """With imperfections the set of distinct events is the plain run's; extra copies repeat an event's bytes."""
    plain = _run(NONE)
    imperfect = _run(IMP)
    assert set(imperfect) == set(plain)
    assert len(set(plain)) == len(plain)
    twice = [value for value, n in Counter(imperfect).items() if n > 1]
    assert all(n <= 2 for n in Counter(imperfect).values())
    expected = 0
    for date in (DATE, DATE + dt.timedelta(days=1)):
        plan = plan_day(MODEL, ROOT, date)
        entries = np.concatenate([b.entries_us for b in day_batches(ROOT, plan)])
        expected += int(decide(IMP, ROOT, MODEL, plan, entries).duplicated.sum())
    assert len(twice) == expected == len(imperfect) - len(plain)


def test_same_bytes_at_any_speed() -> None:
    """A backfill (a clock that never waits) and a real-time run (a stepped clock) send the same sequence."""
    assert _run(IMP) == _run(IMP, SteppedClock(MIDNIGHT))


def test_each_copy_goes_once_its_send_instant_is_due_in_real_time() -> None:
    """On a stepped clock no copy leaves before its send instant: a late one waits its delay."""
    clock = SteppedClock(MIDNIGHT)
    sent: list[tuple[int, int]] = []

    class Probe(MemorySink):
        def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
            sent.extend((int(batch.entries_us[i]), clock.now_us()) for i in range(start, stop))
            super().send_batch(batch, start, stop)

    Service(MODEL, ROOT, Probe(), clock, poll_s=60, until_us=UNTIL, imperfections=IMP, stop=clock.stop).run()
    assert all(now >= entry for entry, now in sent)
    assert sum(now - entry > 60 * 10**6 for entry, now in sent) > 0


def test_late_copies_break_the_entry_order() -> None:
    """First copies that come after a later-entered event number at least half the late visits."""
    values = _run(IMP)
    entries = [_entry(v) for v in values]
    seen: set[bytes] = set()
    latest = -1
    out_of_order = 0
    for value, entry in zip(values, entries, strict=True):
        if entry < latest:
            out_of_order += 1
        elif value not in seen:
            latest = entry
        seen.add(value)
    late = 0
    for date in (DATE, DATE + dt.timedelta(days=1)):
        plan = plan_day(MODEL, ROOT, date)
        entries_day = np.concatenate([b.entries_us for b in day_batches(ROOT, plan)])
        late += int(decide(IMP, ROOT, MODEL, plan, entries_day).late.sum())
    # a late visit's mean delay (600 s) is 14 times the mean gap between visits: most pass a later visit
    assert out_of_order >= late // 2


def test_a_late_copy_of_a_day_goes_after_midnight_and_the_run_sends_all_before_ending() -> None:
    """Late copies of the last day's visits are sent after UNTIL: nothing of a visit before UNTIL is dropped."""
    values = _run(IMP)
    assert _entry(values[-1]) < UNTIL
    assert len(values) == len(_run(NONE)) + sum(n - 1 for n in Counter(values).values())


def _stopped(imp: Imperfections, cut: int, positions: Positions) -> list[bytes]:
    """What a backfill sends before it is stopped after ``cut`` copies, its positions noted in ``positions``."""
    stop = threading.Event()

    class StopAfter(MemorySink):
        def send_batch(self, batch: Encoded, start: int, stop_at: int) -> None:
            super().send_batch(batch, start, stop_at)
            if len(self.records) >= cut:
                stop.set()

    sink = StopAfter()
    Service(
        MODEL, ROOT, sink, ManualClock(MIDNIGHT), poll_s=60, until_us=UNTIL, imperfections=imp, stop=stop,
        positions=positions, start_us=MIDNIGHT,
    ).run()  # fmt: skip
    return [value for _, value in sink.records]


def _resumed(imp: Imperfections, position: Position) -> list[bytes]:
    """What a backfill restarted after ``position`` sends to its end."""
    sink = MemorySink()
    Service(
        MODEL, ROOT, sink, ManualClock(MIDNIGHT), poll_s=60, until_us=UNTIL, imperfections=imp, start_us=MIDNIGHT,
        resume={None: ResumeAfter(position.date, position.index)},
    ).run()  # fmt: skip
    return [value for _, value in sink.records]


@pytest.mark.parametrize("cut", [1, 700, 1499, 1600, 2900])
def test_a_resumed_run_sends_exactly_what_was_not_sent(cut: int) -> None:
    """Stopped after ``cut`` copies and resumed from the last noted position, a run sends the rest, no more, no less."""
    positions = Positions(dated=False, start_us=MIDNIGHT)
    first = _stopped(IMP, cut, positions)
    (position,) = positions.take().values()
    assert first + _resumed(IMP, position) == _run(IMP)


def test_a_stopped_run_reports_what_it_still_held() -> None:
    """Stopped mid-day, the copies of visits already entered but not sent are counted as held."""
    clock = SteppedClock(MIDNIGHT)
    stop_at = MIDNIGHT + 13 * 3600 * 10**6

    class StopAtNoon(MemorySink):
        def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
            super().send_batch(batch, start, stop)
            if clock.now_us() >= stop_at:
                clock.stop.set()

    sink = StopAtNoon()
    service = Service(MODEL, ROOT, sink, clock, poll_s=60, until_us=UNTIL, imperfections=IMP, stop=clock.stop)
    counters = service.run()
    now = clock.now_us()
    plan = plan_day(MODEL, ROOT, DATE)
    entries = np.concatenate([b.entries_us for b in day_batches(ROOT, plan)])
    sending = decide(IMP, ROOT, MODEL, plan, entries)
    assert counters.held == sending.due(now) - counters.emitted
    assert counters.held > 0


def _plan_json(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    argv = ["plan", "--date", "2025-08-12", "--days", "2", "--json", "--seed", "s", "--daily-customers", "1500"]
    assert main([*argv, *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_plan_json_has_no_ground_truth_keys_when_every_imperfection_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    """With every imperfection at 0, plan --json prints exactly what it printed without them."""
    plain = _plan_json(capsys)
    assert _plan_json(capsys, "--late-events-pct", "0", "--kafka-timestamp", "entry") == plain
    assert all("outages" not in day and all("late" not in s for s in day["slots"]) for day in plain)


def test_the_runs_copies_match_plan_jsons_ground_truth(capsys: pytest.CaptureFixture[str]) -> None:
    """The run's second copies, and its visits sent after their outage, are the counts plan --json gives."""
    flags = ["--late-events-pct", "0.1", "--duplicate-events-pct", "0.05", "--sensor-outages-per-day", "3"]
    flags += ["--late-delay-mean-seconds", "600", "--late-delay-max-seconds", "1800"]
    days = _plan_json(capsys, *flags)
    plan_dups = sum(int(s["duplicated"]) for day in days for s in day["slots"])
    values = _run(IMP)
    assert plan_dups == sum(n - 1 for n in Counter(values).values())
    for day in days:
        for outage in day["outages"]:
            start, end = (datetime_to_us(dt.datetime.fromisoformat(outage[k])) for k in ("start", "end"))
            inside = {v for v in values if start <= _entry(v) < end}
            assert len(inside) == outage["held"]
    assert any(day["outages"] for day in days)


def test_the_summary_line_reports_held_copies_only_when_there_are_some(caplog: pytest.LogCaptureFixture) -> None:
    """A stopped run's held copies show as ``held=`` on the summary line; a line without any is unchanged."""
    caplog.set_level(logging.INFO, logger="foot_traffic")
    log_summary(Counts(planned=10, emitted=7, delivered=7, held=3), sensors=False)
    log_summary(Counts(planned=10, emitted=10, delivered=10), sensors=False)
    assert [r.getMessage() for r in caplog.records] == [
        "Summary: planned=10 emitted=7 delivered=7 failed=0 held=3",
        "Summary: planned=10 emitted=10 delivered=10 failed=0",
    ]


@pytest.mark.parametrize("entry", [False, True])
def test_kafka_timestamp_entry_stamps_each_record_with_its_entry_time_in_ms(entry: bool) -> None:
    """KAFKA_TIMESTAMP=entry gives each record its entry_time in ms, one by one or in batches; emit leaves 0 (now)."""
    sink, producer = fake_sink(entry_timestamps=entry)
    plan = plan_day(MODEL, ROOT, DATE)
    batch = next(iter(day_batches(ROOT, plan)))
    encoded = encode_batch(plan, batch)
    sink.send_batch(encoded, 0, 40)
    event = next(iter(batch_events(plan, batch.slice(40, 41))))
    sink.send(event.customer_id, event.encode(), None, encoded.time_slot)
    expected = [int(us) // 1000 for us in batch.entries_us[:41]] if entry else [0] * 41
    assert producer.timestamps == expected


def test_a_dated_restart_resumes_after_the_last_copy_sent_even_when_a_late_one_crossed_midnight() -> None:
    """Stopped on a late copy of day 1 sent after day 2 began, a restart from the units' positions sends the rest."""
    whole = _run(HEAVY)  # half the visits late by up to an hour: day 1's late copies mingle with day 2's
    day_two = datetime_to_us(dt.datetime.combine(DATE + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))
    entries = [_entry(v) for v in whole]
    started = next(i for i, e in enumerate(entries) if e >= day_two)
    cut = next(i for i in range(started, len(entries)) if entries[i] < day_two) + 1
    positions = Positions(dated=True, start_us=MIDNIGHT)
    first = _stopped(HEAVY, cut, positions)
    progress = positions.take()
    assert len(progress) == 2
    store = StoreModel(MODEL)
    by_date = resume_points(progress, lambda _: True)[None]
    by_send = resume_points(progress, lambda _: True, lambda _, a, b: imperfect.later(store, ROOT, HEAVY, a, b))[None]
    assert (by_date.date, by_send.date) == (DATE + dt.timedelta(days=1), DATE)
    assert first + _resumed(HEAVY, by_send) == whole
    assert copy_at(store, ROOT, HEAVY, by_send) == (json.loads(whole[cut - 1])["customer_id"], entries[cut - 1])


def test_a_calendar_outage_alone_holds_its_visits_in_run_and_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With every law at 0, a calendar date's outage holds its visits until it ends, and plan --json shows it."""
    calendar = tmp_path / "calendar.toml"
    calendar.write_text('[dates]\n"2025-08-12" = { outages = [["12:00", "13:30"]] }\n')
    common = ["--seed", "s", "--daily-customers", "1500", "--calendar-file", str(calendar)]
    assert main(["plan", "--date", "2025-08-12", "--json", *common]) == 0
    (outage,) = json.loads(capsys.readouterr().out)["outages"]
    assert (outage["start"], outage["end"]) == ("2025-08-12T12:00:00.000000+00:00", "2025-08-12T13:30:00.000000+00:00")
    run = ["run", "--sink", "stdout", "--speed", "max", "--start", "2025-08-12", "--until", "2025-08-13"]
    assert main([*run, *common, "--log-level", "WARNING"]) == 0
    values = capsys.readouterr().out.encode().splitlines()
    assert main([*run, "--seed", "s", "--daily-customers", "1500", "--log-level", "WARNING"]) == 0
    assert sorted(values) == sorted(capsys.readouterr().out.encode().splitlines())
    noon, half_past_one = MIDNIGHT + 12 * 3600 * 10**6, MIDNIGHT + 27 * 1800 * 10**6
    held = [i for i, v in enumerate(values) if noon <= _entry(v) < half_past_one]
    assert len(held) == outage["held"] > 0
    assert held == list(range(held[0], held[0] + len(held))), "one burst"
    assert all(_entry(v) < half_past_one for v in values[: held[0]])


def test_each_unit_is_done_after_its_last_copy_and_a_day_with_none_before_until_at_its_plan_line() -> None:
    """Under an ownership, day 1 is done with its last copy; day 2, its visits all past UNTIL, at its plan line."""
    until = MIDNIGHT + US_PER_DAY + 500_000
    positions = Positions(dated=True, start_us=MIDNIGHT)
    work = Work(None, (DATE, DATE + dt.timedelta(days=1)))
    Service(
        MODEL, ROOT, MemorySink(), ManualClock(MIDNIGHT), poll_s=60, until_us=until, imperfections=IMP,
        positions=positions, start_us=MIDNIGHT, ownership=Fixed([work]),
    ).run()  # fmt: skip
    progress = positions.take()
    assert progress[Unit(None, DATE + dt.timedelta(days=1))] == Position(
        DATE + dt.timedelta(days=1), -1, True, MIDNIGHT
    )
    assert progress[Unit(None, DATE)].done
