"""The bench's chain rows and its row selection: verdicts from hand-made figures, BENCH_ROWS read strictly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from bench.chain import ONE_STORE, backfill_rows, edge_grid, edge_row, live_row, realtime_row
from bench.common import equal_weights
from bench.run import GROUPS, ONE_SLOT, selected

from foot_traffic.config.files import load_weights_file

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


def at(hms: str, day: int = 15) -> dt.datetime:
    """An instant of 2026-06-``day`` (UTC) given as HH:MM:SS[.ffffff]."""
    return dt.datetime.fromisoformat(f"2026-06-{day:02d}T{hms}+00:00")


@pytest.mark.parametrize(
    ("now", "edge", "slots"),
    [
        (at("12:00:39.999999"), at("12:01:00"), ["00:00", "12:00", "12:01", "12:02"]),
        (at("12:00:40"), at("12:01:00"), ["00:00", "12:00", "12:01", "12:02"]),  # exactly 20 s ahead
        (at("12:00:40.000001"), at("12:02:00"), ["00:00", "12:01", "12:02", "12:03"]),
        (at("12:01:00"), at("12:02:00"), ["00:00", "12:01", "12:02", "12:03"]),
        (at("23:58:30"), at("23:59:00"), ["00:00", "23:58", "23:59"]),  # no slot at 24:00
        (at("23:59:39"), at("00:01:00", 16), ["00:00", "00:01", "00:02"]),  # midnight starts a day: a minute on
        (at("23:59:41"), at("00:01:00", 16), ["00:00", "00:01", "00:02"]),
        (at("00:00:50"), at("00:02:00"), ["00:00", "00:01", "00:02", "00:03"]),
        (dt.datetime.fromisoformat("2026-06-15T14:00:50+02:00"), at("12:02:00"), ["00:00", "12:01", "12:02", "12:03"]),
    ],
)
def test_the_edge_is_the_first_whole_minute_20_s_ahead_with_a_minute_slot_either_side(
    now: dt.datetime, edge: dt.datetime, slots: list[str]
) -> None:
    """Row k′'s edge: the next UTC minute at least 20 s on (not midnight); slots at 00:00 and the minutes around it."""
    assert edge_grid(now) == (edge, slots)


@pytest.mark.parametrize("now", [at("12:00:40"), at("23:58:30"), at("23:59:41"), at("00:00:50")])
def test_the_edge_grid_is_a_weights_file_the_producer_reads(now: dt.datetime, tmp_path: Path) -> None:
    """The edge's slots written with equal weights load as a table with a slot starting at the edge, weight 1 each."""
    edge, slots = edge_grid(now)
    path = tmp_path / "edge.toml"
    path.write_text(equal_weights(slots))
    table = load_weights_file(path)
    assert table.grid.starts == tuple(int(s[:2]) * 60 + int(s[3:]) for s in slots)
    assert edge.hour * 60 + edge.minute in table.grid.starts
    assert table.weights == ((1.0,) * len(slots),) * 7


def test_one_slot_of_equal_weights_is_row_cs_file() -> None:
    """Row c's one-slot file: slots ["00:00"] and a weight of 1 on each of the seven weekdays."""
    assert ONE_SLOT == (
        'slots = ["00:00"]\n\n[weights]\nMonday = [1]\nTuesday = [1]\nWednesday = [1]\nThursday = [1]\n'
        "Friday = [1]\nSaturday = [1]\nSunday = [1]\n"
    )


EDGE = T0 + 30
"""Row k′'s hand-made edge, 30 s after the first event."""


def test_the_edges_figure_is_the_max_of_the_events_due_in_the_2_s_from_it() -> None:
    """Only events due in [edge, edge + 2 s) count for the edge's max; the rest of the row is row k's."""
    seen = [(T0, 5.0), (T0 + 1, 1.0), (EDGE - 0.001, 40.0), (EDGE, 1.5), (EDGE + 1.999, 0.8), (EDGE + 2, 30.0)]
    row = edge_row(seen, EDGE, ["00:00", "12:00", "12:01", "12:02"], 38.0)
    assert row.measure.endswith("slots 00:00, 12:00, 12:01, 12:02 of equal weight, 38 s (30 s to the edge)")
    assert row.ours == (
        "first event 5.0 ms late; after the first second p50 1.50 / p99 40.00 / max 40.00 ms (5 of 6 ev); "
        "the 2 ev due in the 2 s from the edge: max 1.50 ms"
    )
    assert row.verdict == "missed: p99 40.00 ms"


@pytest.mark.parametrize(
    ("seen", "verdict"),
    [
        ([(T0, 1.0), (T0 + 1, 1.0), (EDGE + 0.5, 2.0)], "met"),
        ([(T0, 1.0), (T0 + 1, 1.0)], "missed: no event at the edge"),
        ([(T0, 51.0), (T0 + 1, 1.0), (EDGE + 2.5, 1.0)], "missed: first 51.0 ms, no event at the edge"),
        ([], "missed: no event"),
    ],
)
def test_the_edge_verdict_is_row_ks_and_needs_an_event_at_the_edge(
    seen: list[tuple[float, float]], verdict: str
) -> None:
    """Row k′ meets row k's targets, and misses when no event is due in the 2 s from its edge."""
    assert edge_row(seen, EDGE, ["00:00"], 38.0).verdict == verdict


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
