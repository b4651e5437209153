"""The bench's rows a, a′, a″ and b from hand-made runs (best of each side, ratios, verdicts), heading, clean env."""

from __future__ import annotations

import datetime as dt

import pytest
from bench.common import clean_env
from bench.run import Perf, backfill_rows, generation_row, heading, logging_row

BEST_FIRST, BEST_MIDDLE, BEST_LAST = 0, 1, 2


def runs(best: float, others: tuple[float, float], where: int) -> list[float]:
    """Three runs' figures with ``best`` at position ``where`` and the two ``others`` around it."""
    found = list(others)
    found.insert(where, best)
    return found


@pytest.mark.parametrize("where", [BEST_FIRST, BEST_MIDDLE, BEST_LAST])
def test_row_a_takes_the_best_run_of_every_side_wherever_it_falls(where: int) -> None:
    """Ours, the tuned and the default anchor each count their fastest run, not their last one."""
    ours = runs(350_000.0, (300_000.0, 320_000.0), where)
    tuned = [Perf(r, r / 4_000) for r in runs(280_000.0, (250_000.0, 260_000.0), (where + 1) % 3)]
    default = [Perf(r, r / 4_000) for r in runs(120_000.0, (100_000.0, 110_000.0), (where + 2) % 3)]
    a, reference = backfill_rows(1_000_000, 250, ours, tuned, default)
    assert a.ours == "350,000 ev/s, 87.5 MB/s"  # 350,000 × 250 B
    assert a.anchor == "ProducerPerformance, batch.size=1048576 linger.ms=5: 280,000 rec/s, 70.0 MB/s"
    assert (a.ratio, a.target, a.verdict) == ("1.25×", "≥ 1.0× the tuned ProducerPerformance", "met")
    assert reference.ours == "350,000 ev/s"
    assert reference.anchor == "ProducerPerformance, default batching: 120,000 rec/s, 30.0 MB/s"
    assert reference.ratio == "2.92×"  # 350 / 120 = 2.916…


def test_row_a_is_judged_against_the_tuned_anchor_only() -> None:
    """Twice the default batching but half the tuned anchor is a miss; the default row carries no verdict."""
    a, reference = backfill_rows(1_000_000, 250, [200_000.0], [Perf(400_000.0, 100.0)], [Perf(100_000.0, 25.0)])
    assert (a.ratio, a.verdict) == ("0.50×", "missed: 0.50× of target")
    assert (reference.ratio, reference.target, reference.verdict) == ("2.00×", "", "")


@pytest.mark.parametrize(
    ("ours", "tuned", "verdict"),
    [
        (300_000.0, 300_000.0, "met"),  # exactly the anchor
        (299_000.0, 300_000.0, "missed: 0.99× of target"),  # 0.9967 would round to 1.00: a miss reads 0.99
        (240_000.0, 300_000.0, "missed: 0.80× of target"),
    ],
)
def test_row_a_meets_its_target_at_one_times_the_tuned_anchor(ours: float, tuned: float, verdict: str) -> None:
    """At or above 1.0× the tuned ProducerPerformance is met; below, the miss says the share of the target."""
    a, _ = backfill_rows(1_000_000, 250, [ours], [Perf(tuned, 75.0)], [Perf(100_000.0, 25.0)])
    assert a.verdict == verdict


def test_row_a_names_the_events_and_their_size() -> None:
    """Row a's measure gives the event count and the mean event size it was run with."""
    a, _ = backfill_rows(200_000, 252, [1.0], [Perf(1.0, 1.0)], [Perf(1.0, 1.0)])
    assert a.measure == "a. backfill to Kafka, 200,000 events of 252 B, acks=all, idempotent (whole process)"


@pytest.mark.parametrize("where", [BEST_FIRST, BEST_MIDDLE, BEST_LAST])
def test_row_a2_sets_the_best_info_run_against_the_best_warning_run(where: int) -> None:
    """a″'s ratio is the fastest INFO run over the fastest WARNING run, wherever each falls among the runs."""
    info = runs(150_000.0, (100_000.0, 120_000.0), where)
    warning = runs(250_000.0, (200_000.0, 240_000.0), (where + 1) % 3)
    row = logging_row(500_000, info, warning)
    assert row.measure == "a″. backfill to Kafka at LOG_LEVEL=INFO (every event logged), 500,000 events"
    assert row.ours == "150,000 ev/s"
    assert row.anchor == "the same at LOG_LEVEL=WARNING: 250,000 ev/s"
    assert (row.ratio, row.target, row.verdict) == ("0.60×", "≥ 0.6× the WARNING figure", "met")


@pytest.mark.parametrize(
    ("info", "verdict"),
    [
        (180_000.0, "met"),  # 0.6 × 300,000
        (150_000.0, "missed: 0.83× of target"),  # 0.5 / 0.6
        (45_000.0, "missed: 0.25× of target"),  # 0.15 / 0.6: every event a logging call
    ],
)
def test_row_a2_meets_its_target_at_six_tenths_of_warning(info: float, verdict: str) -> None:
    """INFO at 0.6× WARNING or more is met; below, the miss is the ratio's share of 0.6."""
    assert logging_row(500_000, [info], [300_000.0]).verdict == verdict


def test_row_b_steady_state_is_the_big_runs_time_less_the_tiny_runs() -> None:
    """(N − n) / (fastest big − fastest tiny) is the steady state; the tiny run's time is the fixed cost."""
    row = generation_row("null", 10_000_000, 1_000, [6.5, 6.25, 6.4], [0.3, 0.35, 0.25])
    # 9,999,000 events / (6.25 − 0.25) s; whole process 10,000,000 / 6.25 s
    assert row.ours == "1,666,500 ev/s; whole process 1,600,000 ev/s; fixed cost 0.25 s"
    assert row.measure == "b. generation, null sink, 10,000,000 events: steady state (whole process apart)"
    assert (row.target, row.verdict) == ("≥ 1,500,000 ev/s steady state", "met")


@pytest.mark.parametrize(
    ("big", "small", "verdict"),
    [
        ([7.0], [1.0], "met"),  # 9,000,000 / 6 = 1,500,000 exactly
        ([8.0], [1.0], "missed: 0.86× of target"),  # 9,000,000 / 7 = 1,285,714
        ([6.0, 8.0], [2.0, 1.0], "met"),  # fastest of each: 9,000,000 / (6 − 1) = 1,800,000
    ],
)
def test_row_b_meets_its_target_at_one_and_a_half_million_steady(
    big: list[float], small: list[float], verdict: str
) -> None:
    """The null sink's steady state is judged against 1,500,000 ev/s; below, the miss is its share of it."""
    assert generation_row("null", 9_001_000, 1_000, big, small).verdict == verdict


def test_row_b_reports_the_stdout_sink_without_a_verdict() -> None:
    """The stdout sink's row gives the same figures but no target and no verdict."""
    row = generation_row("stdout", 9_001_000, 1_000, [8.0], [1.0])
    assert row.ours == "1,285,714 ev/s; whole process 1,125,125 ev/s; fixed cost 1.00 s"
    assert (row.target, row.verdict) == ("", "")


def test_the_heading_gives_the_runs_start_in_utc() -> None:
    """docs/benchmarks.md says when make bench started, in UTC to the minute, and on what machine."""
    began = dt.datetime(2026, 12, 3, 19, 51, 59, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert heading(began, "two cores") == (
        "# Benchmarks\n\nProduced by `make bench` started at 2026-12-03 18:51 UTC.\n\nMachine: two cores.\n\n"
    )


def test_a_bench_run_inherits_no_setting_from_the_callers_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """clean_env drops every declared setting and KAFKA_PRODUCER_* property, keeps the rest, then adds extras."""
    for name, value in [
        ("CONFIG_FILE", "mine.toml"),
        ("LATE_EVENTS_PCT", "5"),
        ("SCHEMA_REGISTRY_URL", "http://registry"),
        ("LOG_LEVEL", "DEBUG"),
        ("KAFKA_PRODUCER_LINGER_MS", "50"),
        ("BENCH_UNRELATED", "kept"),
    ]:
        monkeypatch.setenv(name, value)
    env = clean_env(LOG_LEVEL="WARNING")
    assert env["BENCH_UNRELATED"] == "kept"
    assert env["LOG_LEVEL"] == "WARNING"
    assert not {"CONFIG_FILE", "LATE_EVENTS_PCT", "SCHEMA_REGISTRY_URL", "KAFKA_PRODUCER_LINGER_MS"} & set(env)
