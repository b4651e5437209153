"""The real-time row's watch on the machine: each CPU's pauses, their intersection, lateness beyond them, row c."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bench.common import Lateness
from bench.pauses import Watched, beyond, build, intersect, overlap, parse, watching
from bench.run import realtime_row

# every figure below is a sum of powers of two: float arithmetic on them is exact


def test_a_probes_output_gives_its_priority_and_its_pauses_in_order() -> None:
    """The first line says whether real-time priority was granted; each other line is one pause, deadline to wake."""
    assert parse("fifo 1\n1.5 1.75\n2.0 2.5\n") == (True, [(1.5, 1.75), (2.0, 2.5)])
    assert parse("fifo 0\n") == (False, [])
    with pytest.raises(ValueError, match="expected a first line 'fifo 0' or 'fifo 1'"):
        parse("")


def test_the_machine_is_paused_only_where_every_cpu_is() -> None:
    """Pauses of one CPU alone do not count: the producer could run on the other."""
    cpu0 = [(1.0, 1.5), (2.0, 3.0), (4.0, 4.25)]
    cpu1 = [(1.25, 2.25), (2.5, 2.75), (5.0, 6.0)]
    assert intersect(cpu0, cpu1) == [(1.25, 1.5), (2.0, 2.25), (2.5, 2.75)]
    assert intersect(cpu1, cpu0) == [(1.25, 1.5), (2.0, 2.25), (2.5, 2.75)]
    assert Watched([cpu0, cpu1, [(2.125, 2.625)]]).machine() == [(2.125, 2.25), (2.5, 2.625)]
    assert Watched([cpu0]).machine() == cpu0
    assert Watched().machine() == []


def test_overlap_counts_the_covered_part_of_a_span() -> None:
    """Intervals inside, across either end, and outside [start, end) count for what they cover."""
    intervals = [(0.5, 1.25), (1.5, 1.75), (2.0, 3.0), (4.0, 5.0)]
    assert overlap(1.0, 2.5, intervals) == 0.25 + 0.25 + 0.5
    assert overlap(3.0, 4.0, intervals) == 0.0
    assert overlap(0.0, 10.0, intervals) == 0.75 + 0.25 + 1.0 + 1.0


def test_lateness_beyond_the_pauses_is_lateness_less_the_paused_part_of_the_wait() -> None:
    """An event that waited through a pause is late only by the rest; one outside any pause keeps its lateness."""
    paused = [(8.0078125, 8.0390625)]  # 31.25 ms, from 7.8125 ms after the first event's entry
    found = beyond([8.0, 9.0, 8.03125], [62.5, 1.5, 15.625], paused)
    assert found == [62.5 - 31.25, 1.5, 15.625 - 7.8125]  # the third waited from 8.03125 to 8.046875


def lateness_of(late: list[float], entries: list[float] | None = None) -> Lateness:
    """A run's lateness figures: entries one second apart unless given, no CPU wait."""
    entries = entries if entries is not None else [float(i) for i in range(len(late))]
    return Lateness(entries, late, [0.0] * len(late), [0.0] * len(late))


POLLING = lateness_of([250.0] * 99 + [500.0])
"""The polling loop: p99 500 ms."""


def test_row_c_judges_the_max_beyond_the_machines_pauses() -> None:
    """A 35 ms event that waited 30 ms of it through a pause of every CPU meets the 20 ms max; p99 is judged as is."""
    ours = lateness_of([0.25] * 99 + [35.0], [float(i) for i in range(100)])
    watched = Watched([[(99.0, 99.03125)], [(98.5, 99.03)]], fifo=True)  # every CPU paused from 99.0 to 99.03
    row = realtime_row(ours, POLLING, watched)
    assert row.ours.startswith("p50 0.25 / p99 35.00 / max 35.00 ms")
    assert row.ours.endswith("; beyond the machine's pauses, max 5.00 ms")
    assert row.anchor.endswith("every CPU paused at once 1 time(s), the longest 30.00 ms")
    assert row.target == "p99 ≤ 2 ms, max ≤ 20 ms beyond the machine's pauses"
    assert row.verdict == "missed: p99 35.00 ms"  # one event in 100 is the p99 here


def test_row_c_is_met_at_its_targets_and_missed_beyond_them() -> None:
    """p99 2 ms and a max 20 ms beyond the pauses are met; a pause of one CPU alone is not subtracted."""
    met = lateness_of([2.0] * 200 + [20.0])
    assert realtime_row(met, POLLING, Watched([[], []], fifo=True)).verdict == "met"
    one_cpu = Watched([[(200.0, 200.03)], []], fifo=True)
    missed = lateness_of([2.0] * 200 + [30.0])
    assert realtime_row(missed, POLLING, one_cpu).verdict == "missed: max 30.00 ms beyond the pauses"
    assert realtime_row(missed, POLLING, one_cpu).ratio == "250× lower p99"  # 500 / 2


def test_row_c_says_when_the_probes_ran_without_real_time_priority() -> None:
    """Without real-time priority a probe's late wakes include other work: the row says so."""
    row = realtime_row(lateness_of([1.0] * 10), POLLING, Watched([[], []], fifo=False))
    assert "a C sleeper per CPU (real-time priority refused: its pauses include other work)" in row.anchor


def test_the_probe_sees_a_pause_it_is_put_through(tmp_path: Path) -> None:
    """The compiled probe, stopped for 50 ms, reports one pause on its CPU spanning that stop."""
    probe = build(tmp_path)
    with watching(probe, tmp_path) as watched:
        first = tmp_path / f"pauses-{min(os.sched_getaffinity(0))}.txt"
        _started(first)
        pid = watched.pids[0]
        os.kill(pid, signal.SIGSTOP)
        stopped = time.time()
        time.sleep(0.05)  # the pause put through: not a wait for a condition
        os.kill(pid, signal.SIGCONT)
        resumed = time.time()
        _reported(first, 0.04)
    long = [(s, e) for s, e in watched.per_cpu[0] if e - s >= 0.04]
    assert len(long) == 1
    start, end = long[0]
    assert stopped - 0.002 <= start <= resumed
    assert resumed - 0.002 <= end
    assert end - start <= resumed - stopped + 0.002 + 0.05  # at most the stop, its 1 ms period and the wake


def _started(output: Path) -> None:
    """Wait until the probe writing ``output`` has printed its first line."""
    _wait(lambda: output.read_text().startswith("fifo "), "printed nothing")


def _reported(output: Path, seconds: float) -> None:
    """Wait until the probe writing ``output`` has reported a pause of at least ``seconds``."""
    _wait(
        lambda: any(end - start >= seconds for start, end in parse(_whole_lines(output))[1]),
        f"reported no pause of {seconds} s",
    )


def _wait(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` every ms for at most 10 s."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"the probe {what} in 10 s"
        time.sleep(0.001)


def _whole_lines(output: Path) -> str:
    """The lines the probe has written whole (it may be writing the last one)."""
    text = output.read_text()
    return text[: text.rfind("\n") + 1]
