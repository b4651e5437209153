"""The report with real-world imperfections: duplicates expected, counts on distinct visits, delays against their law.

The imperfect streams are made here, independently of the producer: a clean
backfill's events, a fraction sent late by min(Exp(mean), cap), a fraction sent
twice up to a minute apart, all written in the order they are sent. Every random
draw has a fixed seed, so each verdict is deterministic.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foot_traffic.cli.commands import main
from foot_traffic.config.resolve import load_settings
from foot_traffic.model.grid import WEEKDAYS, datetime_to_us
from foot_traffic.model.imperfections import Imperfections, decide, outages
from foot_traffic.model.plan import plan_day
from foot_traffic.model.randomness import root_entropy
from foot_traffic.report.analysis import Scope, analyse
from foot_traffic.report.checks.lateness import arrival_lateness, delay_cdf
from foot_traffic.report.checks.results import judge
from foot_traffic.report.inputs.events import Chunk, Events
from foot_traffic.report.inputs.kafka import kafka_chunk
from foot_traffic.report.inputs.lines import read_events
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink

SEED = "imperfect"
ENV = {"SEED": SEED, "START": "2025-08-11", "UNTIL": "2025-08-18", "BASE_DAILY_CUSTOMERS": "3000"}
CONFIGURED = Imperfections(late_pct=0.05, duplicate_pct=0.02)


class Message:
    """The part of confluent_kafka.Message the report's Kafka input reads."""

    def __init__(self, partition: int, offset: int, timestamp_ms: int) -> None:
        self._partition, self._offset, self._timestamp_ms = partition, offset, timestamp_ms

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return 1, self._timestamp_ms


@pytest.fixture(scope="module")
def clean() -> list[bytes]:
    """A backfilled week of about 21,000 events, in entry order."""
    settings = load_settings(ENV)
    assert settings.start_us is not None
    sink = MemorySink()
    clock = ManualClock(settings.start_us)
    Service(settings.store_models(), root_entropy(SEED), sink, clock, poll_s=0.5, until_us=settings.until_us).run()
    return [value for _, value in sink.records]


def entry_of(line: bytes) -> int:
    """A line's entry instant in epoch µs."""
    return datetime_to_us(dt.datetime.fromisoformat(json.loads(line)["entry_time"]))


def sent(
    lines: list[bytes],
    *,
    late: float,
    mean_s: float = 300,
    cap_s: float = 3600,
    dup: float = 0.0,
    held: list[tuple[int, int]] | None = None,
    seed: int = 1,
) -> list[tuple[int, bytes]]:
    """Each copy's send instant (µs) and line, in the order sent: late visits delayed, duplicates sent twice.

    A visit entering in one of the ``held`` windows [start, end) goes at its end at the earliest.
    """
    rng = np.random.default_rng(seed)
    entries = np.array([entry_of(line) for line in lines], dtype=np.int64)
    delay_s = np.minimum(rng.exponential(mean_s, entries.size), cap_s)
    first = entries + np.where(rng.random(entries.size) < late, (delay_s * 1e6).astype(np.int64), 0)
    for start, end in held or []:
        first = np.where((entries >= start) & (entries < end), np.maximum(first, end), first)
    copies = [(int(t), line) for t, line in zip(first.tolist(), lines, strict=True)]
    again = rng.random(entries.size) < dup
    gap = (rng.uniform(0, 60, entries.size) * 1e6).astype(np.int64)
    copies += [(int(first[i] + gap[i]), lines[i]) for i in np.flatnonzero(again).tolist()]
    return sorted(copies, key=lambda c: c[0])


def as_file(copies: list[tuple[int, bytes]]) -> Events:
    """The copies as a JSON-lines file, in the order sent."""
    return read_events([Chunk(b"\n".join(line for _, line in copies), lambda i, before: f"line {i}")])


def as_topic(copies: list[tuple[int, bytes]], partitions: int = 3, lag_ms: int = 2) -> Events:
    """The copies as records of a topic in real time: keyed to a partition, record timestamp = send time + lag."""
    values = [line for _, line in copies]
    messages: list[Any] = [
        Message(int(json.loads(line)["customer_id"][:8], 16) % partitions, i, t // 1000 + lag_ms)
        for i, (t, line) in enumerate(copies)
    ]
    return read_events([kafka_chunk("t", values, messages)])


def verdicts(events: Events, imperfections: Imperfections, *, seeded: bool = False) -> dict[str, str]:
    """Each check's verdict on these events with the week's settings and these imperfections.

    ``seeded``: the imperfections are the run's own draws from SEED; the streams made here
    by :func:`sent` are not, so by default the report is told the plan alone is SEED's.
    """
    settings = load_settings(ENV)
    scope = Scope(settings.start_us, settings.until_us, root_entropy(SEED), seeded, imperfections)
    return judge(analyse(events, settings.store_models(), scope).checks, 0.001).checks


def run_like(clean: list[bytes], imperfections: Imperfections) -> list[tuple[int, bytes]]:
    """The copies the run sends with these imperfections, in send order: its own decisions, drawn from SEED."""
    settings = load_settings(ENV)
    model = settings.store_models()[0].model
    by_day: dict[str, list[bytes]] = {}
    for line in clean:
        by_day.setdefault(json.loads(line)["entry_time"][:10], []).append(line)
    copies = []
    for day, lines in by_day.items():
        plan = plan_day(model, root_entropy(SEED), dt.date.fromisoformat(day))
        entries = np.array([entry_of(line) for line in lines], dtype=np.int64)
        sending = decide(imperfections, root_entropy(SEED), model, plan, entries)
        copies += [(int(t), lines[v]) for t, v in zip(sending.send_us.tolist(), sending.visit.tolist(), strict=True)]
    return sorted(copies, key=lambda c: c[0])


def test_an_imperfect_week_passes_with_its_settings(clean: list[bytes]) -> None:
    """Late events and duplicates as configured pass every check, the lateness judged by arrival order."""
    got = verdicts(as_file(sent(clean, late=0.05, dup=0.02)), CONFIGURED)
    assert set(got.values()) == {"pass"}
    assert "lateness" in got


def test_without_the_settings_the_same_week_fails_counts_and_uniqueness(clean: list[bytes]) -> None:
    """Read as a perfect stream, the duplicates break the exact counts and uniqueness."""
    got = verdicts(as_file(sent(clean, late=0.05, dup=0.02)), Imperfections())
    assert (got["counts"], got["uniqueness"]) == ("FAIL", "FAIL")
    assert "lateness" not in got


def test_clean_data_fit_late_settings_but_not_duplicate_settings(clean: list[bytes]) -> None:
    """Nothing overtaken is within the one-sided lateness bounds; no repeat at all fails the duplicates' binomial."""
    got = verdicts(as_file(sent(clean, late=0.0)), Imperfections(late_pct=0.05))
    assert set(got.values()) == {"pass"}
    got = verdicts(as_file(sent(clean, late=0.0)), Imperfections(duplicate_pct=0.02))
    assert got["uniqueness"] == "FAIL"


@pytest.mark.parametrize(
    ("stream", "failing"),
    [
        ({"late": 0.05, "dup": 0.06}, "uniqueness"),  # three times the configured duplicates
        ({"late": 0.20}, "lateness"),  # four times the configured late fraction
        ({"late": 0.05, "mean_s": 2000, "cap_s": 7200}, "lateness"),  # delays beyond the cap
    ],
)
def test_imperfections_beyond_the_settings_fail_their_check(
    clean: list[bytes], stream: dict[str, Any], failing: str
) -> None:
    """Too many duplicates fail uniqueness; too many late events, or delays past the cap, fail lateness."""
    got = verdicts(as_file(sent(clean, **stream)), CONFIGURED)
    assert got[failing] == "FAIL"
    assert got["counts"] == "pass"


def test_delays_longer_than_the_law_fail_the_one_sided_ks(clean: list[bytes]) -> None:
    """A fifth of the visits late by a mean of 900 s where the law says 300 s (same cap) fails only the KS test."""
    events = as_file(sent(clean, late=0.2, mean_s=900))
    settings = load_settings(ENV)
    scope = Scope(
        settings.start_us, settings.until_us, root_entropy(SEED), imperfections=replace(CONFIGURED, late_pct=0.2)
    )
    analysis = analyse(events, settings.store_models(), scope)
    judgement = judge(analysis.checks, 0.001)
    lateness = {name: v for (key, name), v in judgement.verdicts.items() if key == "lateness"}
    failed = [name for name, verdict in lateness.items() if verdict == "FAIL"]
    assert len(failed) == 1
    assert "KS" in failed[0]


def test_real_time_records_are_judged_by_record_time(clean: list[bytes]) -> None:
    """Records stamped with their sending time in real time pass by record time, both ways."""
    events = as_topic(sent(clean, late=0.05, dup=0.02))
    settings = load_settings(ENV)
    scope = Scope(settings.start_us, settings.until_us, root_entropy(SEED), seeded=False, imperfections=CONFIGURED)
    analysis = analyse(events, settings.store_models(), scope)
    lateness = next(c for c in analysis.checks if c.key == "lateness")
    assert "Judged by record time" in lateness.description
    assert set(judge(analysis.checks, 0.001).checks.values()) == {"pass"}


@pytest.mark.parametrize(("late", "mean_s"), [(0.025, 300), (0.05, 150)])
def test_record_time_finds_too_few_or_too_short_delays(clean: list[bytes], late: float, mean_s: float) -> None:
    """Half the late fraction, or half the mean delay, fails by record time (which arrival order cannot see)."""
    got = verdicts(as_topic(sent(clean, late=late, mean_s=mean_s)), CONFIGURED)
    assert got["lateness"] == "FAIL"


def test_entry_timestamps_are_judged_by_arrival_order(clean: list[bytes]) -> None:
    """With KAFKA_TIMESTAMP=entry the record times say nothing of the delay: arrival order is used."""
    events = as_topic(sent(clean, late=0.05), lag_ms=0)
    settings = load_settings(ENV)
    scope = Scope(settings.start_us, settings.until_us, None, imperfections=CONFIGURED, kafka_timestamp="entry")
    analysis = analyse(events, settings.store_models(), scope)
    lateness = next(c for c in analysis.checks if c.key == "lateness")
    assert "Judged by arrival order" in lateness.description


def test_visits_held_by_outages_are_left_out_of_the_law_when_seed_tells_them(clean: list[bytes]) -> None:
    """Outages drawn from SEED: their held visits are left out and the rest pass; without SEED the law is skipped."""
    settings = load_settings(ENV)
    configured = replace(CONFIGURED, outages_per_day=2.0, outage_mean_min=60.0)
    model = settings.store_models()[0].model
    days = [plan_day(model, root_entropy(SEED), dt.date(2025, 8, 11 + d)) for d in range(7)]
    windows = [w for plan in days for w in outages(configured, root_entropy(SEED), model, plan)]
    assert windows
    events = as_topic(sent(clean, late=0.05, dup=0.02, held=windows))
    got = verdicts(events, configured, seeded=True)
    assert got.pop("ground-truth") == "FAIL"  # late and duplicate draws made here are not the run's
    assert set(got.values()) == {"pass"}
    unheld = verdicts(events, replace(configured, outages_per_day=0.0))
    assert unheld["lateness"] == "FAIL"  # by record time, as if nothing were held: the bursts are far too late
    scope = Scope(settings.start_us, settings.until_us, None, imperfections=configured)
    analysis = analyse(events, settings.store_models(), scope)
    lateness = next(c for c in analysis.checks if c.key == "lateness")
    assert sum(1 for t in lateness.tests if t.skipped) == 3


def test_the_runs_own_draws_pass_the_ground_truth(clean: list[bytes]) -> None:
    """The run's decisions from SEED (late, duplicated, held) pass every check, the ground truth included."""
    configured = replace(CONFIGURED, outages_per_day=2.0, outage_mean_min=60.0)
    copies = run_like(clean, configured)
    got = verdicts(as_file(copies), configured, seeded=True)
    assert set(got.values()) == {"pass"}
    assert {"lateness", "ground-truth"} <= set(got)


def test_the_ground_truth_finds_a_missing_copy_and_an_overtaken_on_time_visit(clean: list[bytes]) -> None:
    """One duplicate's second copy lost, or one on-time visit sent an hour late, fails the ground truth."""
    copies = run_like(clean, CONFIGURED)
    seen: dict[bytes, int] = {}
    for i, (_, line) in enumerate(copies):
        seen.setdefault(line, i)
    second = next(i for i, (_, line) in enumerate(copies) if seen[line] != i)
    lost = verdicts(as_file(copies[:second] + copies[second + 1 :]), CONFIGURED, seeded=True)
    assert lost["ground-truth"] == "FAIL"
    order = [line for _, line in copies]
    on_time = next(i for i, (t, line) in enumerate(copies) if t == entry_of(line) and order.count(line) == 1)
    hour = next(i for i, (t, _) in enumerate(copies) if t > copies[on_time][0] + 3_600_000_000)
    moved = [*copies[:on_time], *copies[on_time + 1 : hour], copies[on_time], *copies[hour:]]
    got = verdicts(as_file(moved), CONFIGURED, seeded=True)
    assert got["ground-truth"] == "FAIL"


def test_a_third_copy_fails_uniqueness(clean: list[bytes]) -> None:
    """Duplicates are sent twice at most: a visit read three times fails."""
    copies = sent(clean, late=0.0, dup=0.02)
    copies.append(copies[-1])
    copies.append(copies[-1])
    got = verdicts(as_file(copies), Imperfections(duplicate_pct=0.02))
    assert got["uniqueness"] == "FAIL"


def test_arrival_lateness_is_the_latest_entry_read_before_in_the_sequence() -> None:
    """Per partition, store and date, in read order: the running maximum of entry times less the event's own."""
    base = 1_754_870_400_000_000  # 2025-08-11T00:00Z
    rows = [  # (seconds after base, partition, store): store b and the next day are sequences of their own
        (0, 0, "a"), (10, 0, "a"), (5, 0, "a"), (20, 0, "a"), (3, 1, "a"), (7, 1, "a"),
        (1, 0, "b"), (86_400, 0, "a"), (8, 0, "a"), (86_300, 0, "a"),
    ]  # fmt: skip
    lines, messages = [], []
    for i, (seconds, partition, store) in enumerate(rows):
        instant = base + seconds * 1_000_000
        stamp = np.datetime_as_string(np.datetime64(instant, "us"), unit="us") + "+00:00"
        event = {
            "event_type": "foot_traffic",
            "customer_id": f"00000000-0000-4000-8000-{i:012d}",
            "entry_time": stamp,
            "exit_time": stamp,
            "trip_duration_minutes": 10,
            "weekday": WEEKDAYS[dt.datetime.fromtimestamp(instant / 1e6, dt.UTC).weekday()],
            "time_slot": "00:00–06:59",
            "store_id": store,
        }
        lines.append(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
        messages.append(Message(partition, i, 0))
    events = read_events([kafka_chunk("t", lines, messages)])
    by_order = dict(zip(events.order.tolist(), arrival_lateness(events).tolist(), strict=True))
    # the last one, read after the next day's first, would be 100 s late in one sequence
    assert [by_order[i] // 1_000_000 for i in range(len(rows))] == [0, 0, 5, 0, 0, 0, 0, 0, 12, 0]
    assert events.partition is not None
    assert sorted(zip(events.order.tolist(), events.partition.tolist(), strict=True)) == [
        (i, p) for i, (_, p, _) in enumerate(rows)
    ]


def test_read_order_follows_the_lines_through_both_parsers(clean: list[bytes]) -> None:
    """Lines read by the fast and the json path alike keep their line numbers; blank lines take theirs."""
    odd = json.dumps(json.loads(clean[1]), indent=None).encode()  # spaces: only json reads it
    events = read_events([Chunk(b"\n".join([clean[0], odd, b"", clean[2]]), lambda i, before: f"line {i}")])
    expected = {entry_of(clean[0]): 0, entry_of(clean[1]): 1, entry_of(clean[2]): 3}
    assert dict(zip(events.entry_us.tolist(), events.order.tolist(), strict=True)) == expected
    assert events.partition is None
    assert events.record_ms is None


def test_the_delay_law_is_the_capped_exponential() -> None:
    """F(x) = 1 − exp(−x/mean) below the cap, 1 from the cap on, 0 below 0."""
    law = Imperfections(late_mean_s=300, late_max_s=600)
    x = np.array([-1.0, 0.0, 300.0, 599.0, 600.0, 1e6])
    expected = [0.0, 0.0, 1 - np.exp(-1), 1 - np.exp(-599 / 300), 1.0, 1.0]
    assert delay_cdf(law, x).tolist() == pytest.approx(expected)
    expected[4] = 1 - np.exp(-2)  # just before the cap: the atom of the exponential's tail is not reached
    assert delay_cdf(law, x, left=True).tolist() == pytest.approx(expected)


def test_the_command_reads_the_imperfection_settings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clean: list[bytes]
) -> None:
    """`report` with the run's flags expects its duplicates and late events; without them the same file fails."""
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(line for _, line in run_like(clean, CONFIGURED)) + b"\n")
    flags = [f"--{k.lower().replace('_', '-')}={v}" for k, v in ENV.items()]
    base = ["report", "--input", str(source), "--log-level", "WARNING", *flags]
    imperfect = ["--late-events-pct", "0.05", "--duplicate-events-pct", "0.02"]
    assert main([*base, "--output", str(tmp_path / "a"), *imperfect]) == 0
    passed = capsys.readouterr().out
    assert passed.startswith("foot-traffic report: PASS (8 checks")
    summary = (tmp_path / "a" / "report.md").read_text("utf-8")
    assert "## Late events" in summary
    assert "## Imperfections against the run's draws" in summary
    assert "Judged by arrival order" in summary
    assert main([*base, "--output", str(tmp_path / "b")]) == 1
    failed = capsys.readouterr().out
    assert "FAIL: Counts per date and slot, " in failed  # the duplicates counted as visits
    assert "Uniqueness of customer ids (" in failed
