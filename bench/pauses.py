"""The machine's own pauses during the real-time row, and each event's lateness beyond them.

The reference machine is a virtual machine: now and then its host runs neither of its CPUs
for tens of milliseconds, and no process inside can be on time through that. To tell such
pauses from the producer's own lateness, the row runs beside it a small C sleeper
(``wake_probe.c``) on every CPU, pinned and at real-time priority: a late wake of one of
them is time its CPU ran nothing. A pause of the *machine* is time every CPU was paused at
once (the intersection of their pauses): only then could the producer have run nowhere.
An event's lateness *beyond* the machine's pauses is its lateness less the part of it the
machine was paused.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SOURCE = Path(__file__).with_name("wake_probe.c")

Interval = tuple[float, float]
"""[start, end), epoch seconds."""


@dataclass
class Watched:
    """What the probes saw: each CPU's pauses, and whether every probe ran at real-time priority."""

    per_cpu: list[list[Interval]] = field(default_factory=list)
    fifo: bool = False
    pids: list[int] = field(default_factory=list)
    """The probes' processes while they run, one per CPU in order."""

    def machine(self) -> list[Interval]:
        """The times every CPU was paused at once."""
        if not self.per_cpu:
            return []
        both = self.per_cpu[0]
        for other in self.per_cpu[1:]:
            both = intersect(both, other)
        return both


def build(folder: Path) -> Path:
    """Compile the probe into ``folder``; SystemExit with one line when there is no C compiler."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("bench: error: the real-time row needs a C compiler (cc or gcc, or CC=...) for its probe")
    binary = folder / "wake_probe"
    subprocess.run([cc, "-O2", "-o", str(binary), str(SOURCE)], check=True)
    return binary


@contextlib.contextmanager
def watching(binary: Path, folder: Path) -> Iterator[Watched]:
    """Run one probe per CPU for the block; the Watched it yields is filled when the block ends."""
    watched = Watched()
    cpus = sorted(os.sched_getaffinity(0))
    outputs = [folder / f"pauses-{cpu}.txt" for cpu in cpus]
    probes = []
    try:
        for cpu, output in zip(cpus, outputs, strict=True):
            with output.open("wb") as out:
                probes.append(subprocess.Popen([str(binary), str(cpu)], stdout=out))
        watched.pids = [probe.pid for probe in probes]
        yield watched
    finally:
        for probe in probes:
            probe.terminate()
            probe.wait(10)
    seen = [parse(output.read_text()) for output in outputs]
    watched.fifo = all(fifo for fifo, _ in seen)
    watched.per_cpu = [pauses for _, pauses in seen]


def parse(text: str) -> tuple[bool, list[Interval]]:
    """A probe's output: whether it ran at real-time priority, and its pauses (deadline to wake) in order."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("fifo "):
        raise ValueError(f"wake_probe printed {text[:80]!r}: expected a first line 'fifo 0' or 'fifo 1'")
    pauses = []
    for line in lines[1:]:
        start, end = line.split()
        pauses.append((float(start), float(end)))
    return lines[0] == "fifo 1", pauses


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The intersection of two sorted lists of disjoint intervals."""
    found: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            found.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return found


def overlap(start: float, end: float, intervals: Sequence[Interval], ends: Sequence[float] | None = None) -> float:
    """How much of [start, end) sorted disjoint intervals cover (``ends``: their ends, when already at hand)."""
    ends = [e for _, e in intervals] if ends is None else ends
    covered = 0.0
    for k in range(bisect.bisect_right(ends, start), len(intervals)):
        s, e = intervals[k]
        if s >= end:
            break
        covered += min(end, e) - max(start, s)
    return covered


def beyond(entries: Sequence[float], late_ms: Sequence[float], paused: Sequence[Interval]) -> list[float]:
    """Each event's lateness (ms) less the part of [entry, receipt) the machine was paused."""
    ends = [e for _, e in paused]
    return [
        late - 1000 * overlap(entry, entry + late / 1000, paused, ends)
        for entry, late in zip(entries, late_ms, strict=True)
    ]
