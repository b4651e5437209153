"""The scale-out rows of ``make bench``: one worker against two, a fleet's hand-over.

Each pair of figures is taken in the same run, best of REPEATS for both sides alike, the runs interleaved.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    BACKFILL_RECORDS,
    BROKER,
    QUICK,
    REPEATS,
    Row,
    backfill_args,
    clean_env,
    foot_traffic,
    kafka_backfill,
    timed_child,
    verdict,
)

SPAN = ("2025-07-01", "2025-07-15")
"""Fourteen days of one store: fourteen units of work, which SHARD 0/2 and 1/2 split seven and seven."""
DAYS = 14
WORKER_EVENTS = 2_000_000 if QUICK else 40_000_000
"""Enough events that each process's fixed cost (imports, first plan: about 0.25 s) is a small share of the row."""
SESSION_TIMEOUT_S = 10.0
"""The fleet's session timeout (README, *Fleet*): the hand-over target is this + 2 s."""
HANDOVER_STORES = 16
HANDOVER_DAILY = 1_728_000
"""Customers a day per store: 20 events/s per store in real time, so a store's first event comes within 50 ms."""
SIDES = (1, 2)
"""The worker counts compared, in the order each repeat runs them."""


def planned(daily: int) -> int:
    """The events SPAN's backfill of ``daily`` customers a day plans, summed from ``foot-traffic plan``."""
    out = subprocess.run(
        foot_traffic("plan", "--date", SPAN[0], "--days", str(DAYS), "--daily-customers", str(daily), "--json"),
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout
    return sum(json.loads(line)["total"] for line in out.splitlines())


def span_args(daily: int, workers: int, sink: str) -> list[str]:
    """SPAN's backfill of ``daily`` customers a day, with ``workers`` workers, to ``sink``."""
    return [*backfill_args(daily, "WARNING", *SPAN), "--workers", str(workers), "--sink", sink]


def null_generation(daily: int, workers: int) -> float:
    """Seconds from launch to exit of SPAN's backfill to the null sink with ``workers`` workers.

    The broker and a fresh topic are given, though the null sink needs neither, so that the row also runs
    when the workers form a fleet, which meets on the broker.
    """
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    wall, _, _ = timed_child(
        foot_traffic("run", *span_args(daily, workers, "null")), clean_env(KAFKA_BROKER=BROKER, KAFKA_TOPIC=topic)
    )
    return wall


def bench_workers() -> list[Row]:
    """(g) Generation to the null sink and backfill to Kafka, --workers 2 against --workers 1."""
    daily = WORKER_EVENTS // DAYS
    events = planned(daily)
    walls = {1: math.inf, 2: math.inf}
    for _ in range(REPEATS):  # interleaved, so a slow stretch of the machine hits both sides alike
        for workers in SIDES:
            walls[workers] = min(walls[workers], null_generation(daily, workers))
    kafka_daily = BACKFILL_RECORDS // DAYS
    kafka_events = planned(kafka_daily)
    rates = {1: 0.0, 2: 0.0}
    for _ in range(REPEATS):
        for workers in SIDES:
            args = span_args(kafka_daily, workers, "kafka")
            rates[workers] = max(rates[workers], kafka_backfill(kafka_events, "WARNING", args=args))
    one, two = events / walls[1], events / walls[2]
    what = f"{DAYS} days of one store, {events:,} events (whole process: launch to exit)"
    return [
        Row(
            f"g. generation, null sink, {what}: --workers 2",
            f"{two:,.0f} ev/s ({walls[2]:.2f} s)",
            f"--workers 1: {one:,.0f} ev/s ({walls[1]:.2f} s)",
            f"{two / one:.2f}×",
            "≥ 1.7× on 2 cores",
            verdict(two / one, 1.7),
        ),
        Row(
            f"g′. backfill to Kafka, {DAYS} days, {kafka_events:,} events, acks=all, idempotent: --workers 2",
            f"{rates[2]:,.0f} ev/s",
            f"--workers 1: {rates[1]:,.0f} ev/s",
            f"{rates[2] / rates[1]:.2f}×",
            "reported (the broker shares the 2 cores)",
            "",
        ),
    ]


@dataclass
class Lines:
    """A child's standard error, read line by line on a thread of its own, with each line's time of receipt.

    Read all the time, not only while it is watched: a child whose pipe fills blocks in its next log
    write, and a fleet member blocked there stops polling its group and is dropped from it.
    """

    proc: subprocess.Popen[bytes]
    lines: list[tuple[float, str]] = field(default_factory=list)
    closed: bool = False
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def drain(self) -> None:
        """Read the child's standard error until it closes (the body of the reading thread)."""
        assert self.proc.stderr is not None
        partial = b""
        while data := os.read(self.proc.stderr.fileno(), 1 << 16):
            received = time.perf_counter()
            *whole, partial = (partial + data).split(b"\n")
            with self.arrived:
                self.lines.extend((received, line.decode(errors="replace")) for line in whole)
                self.arrived.notify_all()
        with self.arrived:
            self.closed = True
            self.arrived.notify_all()

    def read(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for more lines; False once the child closed its standard error."""
        with self.arrived:
            if not self.closed:
                self.arrived.wait(timeout)
            return not self.closed

    def wait_for(self, found: int, pattern: str, timeout: float, since: float = 0.0) -> float | None:
        """The receipt time of the ``found``-th line matching ``pattern`` from ``since`` on; None after ``timeout``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            hits = [at for at, line in list(self.lines) if at >= since and re.search(pattern, line)]
            if len(hits) >= found:
                return hits[found - 1]
            if not self.read(0.2):
                break
        return None

    def expect(self, found: int, pattern: str, timeout: float, since: float = 0.0) -> float:
        """As :meth:`wait_for`, but a RuntimeError when the line does not come."""
        at = self.wait_for(found, pattern, timeout, since)
        if at is None:
            raise RuntimeError(f"no {found} line(s) matching {pattern!r} within {timeout} s:\n" + self.tail())
        return at

    def tail(self) -> str:
        """The last lines read, for an error message."""
        return "\n".join(line for _, line in self.lines[-20:])


@contextmanager
def started(cmd: list[str], env: dict[str, str]) -> Iterator[Lines]:
    """A child whose standard error is read line by line; SIGTERMed (then killed) when the block ends."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = Lines(proc)
    reader = threading.Thread(target=lines.drain, name="stderr-reader", daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(5)  # the pipe closes with the child (a grandchild holding it open is not waited for)
        if proc.stderr is not None and not reader.is_alive():
            proc.stderr.close()


def handover_stores(folder: Path) -> Path:
    """A stores file of HANDOVER_STORES busy stores."""
    path = folder / "handover.toml"
    path.write_text("".join(f'[[store]]\nid = "h{i:02d}"\n\n' for i in range(HANDOVER_STORES)))
    return path


def events_by_store(lines: list[tuple[float, str]], since: float) -> dict[str, float]:
    """The receipt time of each store's first per-event log line (JSON) received at or after ``since``."""
    first: dict[str, float] = {}
    for at, line in lines:
        if at < since or '"store_id"' not in line or '"Emitted ' not in line:
            continue
        store = json.loads(line)["store_id"]
        first.setdefault(store, at)
    return first


def handover(folder: Path) -> tuple[float, float]:
    """SIGKILL one of two fleet members: seconds to the survivor's assignment, and to its first event of a store.

    The store is one the killed member ran.
    """
    fleet = f"bench-{uuid.uuid4().hex[:8]}"
    env = clean_env(
        STORES_FILE=str(handover_stores(folder)),
        DAILY_CUSTOMERS=str(HANDOVER_DAILY),
        KAFKA_BROKER=BROKER,
        KAFKA_TOPIC=fleet,
        FLEET_ID=fleet,
        EXACTLY_ONCE="1",  # a fleet hands its units over in transactions
        SEED="bench",
        START=dt.datetime.now(dt.UTC).isoformat(),  # a fleet needs START: live from the launch, on a 1× clock
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
    )
    given = rf"Fleet {fleet}: assigned \[\d"  # a change that gives partitions (a revocation says "assigned []")
    with started(foot_traffic("run"), env) as victim:
        victim.expect(1, given, 30)
        with started(foot_traffic("run"), env) as survivor:
            joined = survivor.expect(1, given, 60)
            deadline = joined + 3.0  # the rebalance settles; both run their stores
            while time.perf_counter() < deadline:
                victim.read(0.1)
                survivor.read(0.1)
            theirs = set(events_by_store(victim.lines, joined + 1.0)) - set(events_by_store(survivor.lines, joined))
            if not theirs:
                raise RuntimeError("the member to kill runs no store of its own:\n" + victim.tail())
            killed = time.perf_counter()
            victim.proc.kill()
            assigned = survivor.expect(1, given, SESSION_TIMEOUT_S + 60, since=killed)
            while not theirs & set(events_by_store(survivor.lines, killed)):
                if not survivor.read(0.2):
                    raise RuntimeError("the survivor ended:\n" + survivor.tail())
            first = min(at for store, at in events_by_store(survivor.lines, killed).items() if store in theirs)
            return assigned - killed, first - killed


def bench_handover(folder: Path) -> list[Row]:
    """(i) The hand-over of a SIGKILLed fleet member's stores to the survivor (live, real time, EXACTLY_ONCE)."""
    measure = f"i. fleet hand-over after a member's SIGKILL, live, {HANDOVER_STORES} stores, 2 members"
    target = f"≤ session timeout + 2 s = {SESSION_TIMEOUT_S + 2:.0f} s"
    try:
        measured = handover(folder)
    except RuntimeError as exc:  # the rest of the table still gets written; the row says what went wrong
        tail = str(exc).strip().splitlines()
        failure = f"failed: {tail[0]} … {tail[-1]}".replace("|", "\\|")  # a table cell
        return [Row(measure, failure, "", "", target, "failed")]
    assigned, first = measured
    ok = first <= SESSION_TIMEOUT_S + 2
    return [
        Row(
            measure,
            f"{first:.2f} s to the survivor's first event of a taken-over store ({assigned:.2f} s to its assignment)",
            "",
            "",
            target,
            "met" if ok else f"missed: {first:.2f} s",
        )
    ]


NOTES = """
The scale-out rows (bench/scaleout.py):

- g, g′: a backfill of 14 days of one store (g: 40 M events, so that the fixed costs below are a
  small share now that generation runs at about 5 M events/s; g′: 1 M events; 14 units of work,
  a store and a date each, which `SHARD=0/2` and `1/2` split seven and seven; a fleet's
  assignment may split them otherwise), launch
  to exit, `--workers 1` (one process) against `--workers 2` (a parent and two workers), best of
  three each, interleaved. g: to the null sink, the broker and a fresh topic given so that the row
  also runs when the workers form a fleet; the events counted are the plan's (`foot-traffic plan
  --json`), every run exiting 0. g′: to a fresh topic, its records counted. What bounds g: each
  worker pays the fixed cost of a run (imports, first plan, about 0.3 s) and the parent its own, in
  front of and beside the work; the work splits only as evenly as its units; and two workers have
  two cores only when nothing else runs (the machine is shared). g′: one process already keeps a
  core busy and the broker about 40 % of the other (see a), so a second producer process competes
  with the broker for the same two cores.
- i: two fleet members (one FLEET_ID, EXACTLY_ONCE=1, START the launch instant, 16 stores at 20 events/s each
  at speed 1, the Kafka sink, LOG_FORMAT=json), started one after the other; 3 s after the second got its
  partitions, the first is SIGKILLed. The figure runs from the kill to the receipt of the
  survivor's first per-event line for a store the killed member ran (in brackets: to its
  assignment line, after the session timeout). Between the two, the new owner reads the units'
  positions with read_committed, behind the dead member's open transaction until the broker
  aborts it (`transaction.timeout.ms`). Each member's standard error is read on a thread of
  its own, so no member ever waits on a full pipe (one that did stopped polling its group).
"""
