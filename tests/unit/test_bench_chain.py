"""The bench's chain rows and its row selection: verdicts from hand-made figures, BENCH_ROWS read strictly."""

from __future__ import annotations

import pytest
from bench.chain import ONE_STORE, backfill_rows, live_row, realtime_row
from bench.run import GROUPS, selected

T0 = 1_765_000_000.0
"""An entry time (epoch seconds) the hand-made events start from."""


def test_lateness_after_the_first_second_leaves_out_the_events_due_within_it() -> None:
    """The first event's lateness is its own; the percentiles count only events due 1 s or more after it."""
    seen = [(T0, 30.0), (T0 + 0.5, 9.0), (T0 + 0.99, 8.0), (T0 + 1.0, 1.0), (T0 + 2.0, 1.5), (T0 + 3.0, 0.5)]
    row = realtime_row(seen)
    assert row.ours.startswith("first event 30.0 ms late; after the first second p50 1.00 / p99 1.50 / max 1.50 ms")
    assert row.ours.endswith("(3 of 6 ev)")
    assert row.verdict == "met"


@pytest.mark.parametrize(
    ("seen", "verdict"),
    [
        ([(T0, 50.1), (T0 + 1, 1.0)], "missed: first 50.1 ms"),
        ([(T0, 1.0), (T0 + 1, 2.5)], "missed: p99 2.50 ms"),
        ([(T0, 60.0), (T0 + 1, 3.0)], "missed: first 60.0 ms, p99 3.00 ms"),
        ([(T0, 1.0)], "missed: p99 nan ms"),  # nothing after the first second: no p99 to meet its target
        ([], "missed: no event"),
    ],
)
def test_the_real_time_verdict_names_each_missed_target(seen: list[tuple[float, float]], verdict: str) -> None:
    """First event over 50 ms, p99 over 2 ms, or no events: each miss is named with its figure."""
    assert realtime_row(seen).verdict == verdict


@pytest.mark.parametrize(
    ("ready", "rss", "verdict"),
    [
        (0.8, 140.0, "met"),
        (1.2, 140.0, "missed: ready 1.20 s"),
        (0.8, 215.0, "missed: peak RSS 215 MiB"),
        (9.5, 215.0, "missed: ready 9.50 s, peak RSS 215 MiB"),
    ],
)
def test_the_live_chain_is_judged_on_one_worker(ready: float, rss: float, verdict: str) -> None:
    """Start-up over 1 s or peak RSS over 150 MB with one worker is a miss; two workers are reported only."""
    row = live_row({ONE_STORE: 0.3, 1: ready, 2: 30.0}, {ONE_STORE: [70.0], 1: [rss], 2: [400.0, 400.0]})
    assert row.verdict == verdict
    assert row.ratio == f"{rss / 70:.2f}× the RSS"
    assert "peak RSS per worker 400 and 400 MiB" in row.ours


def test_the_backfill_rows_set_the_chain_against_one_store() -> None:
    """Rows j and j′ give each side's events per second, their ratio and a verdict against 0.7."""
    null, kafka = backfill_rows(10_000, 560_000.0, 800_000.0, 120.0, {"chain": 100_000.0, "one": 200_000.0})
    assert (null.ratio, null.verdict) == ("0.70×", "met")
    assert null.ours == "560,000 ev/s; peak RSS 120 MiB"
    assert null.anchor == "one store × 1,000,000/day: 800,000 ev/s"
    assert (kafka.ratio, kafka.verdict) == ("0.50×", "missed: 0.71× of target")


@pytest.mark.parametrize(
    ("spec", "groups"),
    [
        ("", set(GROUPS)),
        ("chain", {"chain"}),
        (" chain , startup,", {"chain", "startup"}),
    ],
)
def test_bench_rows_selects_groups(spec: str, groups: set[str]) -> None:
    """BENCH_ROWS names groups, comma-separated, spaces aside; empty means every group."""
    assert selected(spec) == groups


def test_bench_rows_refuses_an_unknown_group() -> None:
    """An unknown name is refused, naming it and the known ones."""
    with pytest.raises(ValueError, match=r"^BENCH_ROWS='chain,chains': unknown chains; expected some of generation, "):
        selected("chain,chains")
