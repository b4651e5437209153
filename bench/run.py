"""The benchmark suite behind ``make bench``: each figure beside its anchor, measured in the same run.

Writes one table to standard output and to docs/benchmarks.md, with the machine it ran on.
Needs the local broker (``make bench`` starts it) at FOOT_TRAFFIC_BENCH_BROKER, default 127.0.0.1:9092.
BENCH_QUICK=1 makes a smoke run (smaller runs, one of each); BENCH_ROWS=chain,startup (the names in GROUPS)
runs only those groups of rows and prints their table, leaving docs/benchmarks.md as it is.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import resource
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):  # run as a script (make bench): the bench package lives beside src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import chain, pauses, scaleout
from bench.common import (
    BACKFILL_RECORDS,
    BROKER,
    PY,
    QUICK,
    REALTIME_SECONDS,
    REPEATS,
    ROOT,
    Lateness,
    Row,
    backfill_args,
    clean_env,
    equal_weights,
    foot_traffic,
    fresh_topic,
    kafka_backfill,
    lateness,
    lateness_stats,
    percentile,
    timed_child,
    verdict,
)
from bench.notes import NOTES

ONE_SLOT = equal_weights(["00:00"])


def machine() -> str:
    """A description of the machine the numbers come from."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr.splitlines()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM; {platform.platform()}; "
        f"Python {platform.python_version()}; {java}; Apache Kafka 4.1.1 single KRaft node on the same machine"
    )


PERF_DEFAULT: tuple[str, ...] = ()
"""ProducerPerformance's own batching (16 kB batches): the reference row."""
PERF_TUNED = ("batch.size=1048576", "linger.ms=5")
"""ProducerPerformance with large batches: the anchor to beat."""
BACKFILL_RATIO = 1.0
"""Row a's target: the backfill at least this many times the tuned ProducerPerformance."""
INFO_RATIO = 0.6
"""Row a″'s target: the backfill at LOG_LEVEL=INFO at least this many times the same at WARNING."""
GENERATION_TARGET = 1_500_000
"""Row b's target: events per second of steady-state generation to the null sink."""


class Perf(NamedTuple):
    """One ProducerPerformance run as it reports itself; tuples order by records per second first."""

    records_per_s: float
    mb_per_s: float


def producer_performance(topic: str, records: int, size: int, props: tuple[str, ...]) -> Perf:
    """Kafka's own ProducerPerformance on the same broker, acks=all and idempotent."""
    perf = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "kafka.sh"),
            "run",
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={BROKER}",
            "acks=all",
            "enable.idempotence=true",
            *props,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.findall(r"([\d.]+) records/sec \(([\d.]+) MB/sec\)", perf.stdout)
    return Perf(float(match[-1][0]), float(match[-1][1]))


def bench_backfill() -> list[Row]:
    """(a) Backfill to Kafka against ProducerPerformance, tuned and default, REPEATS runs of every side."""
    sample = subprocess.run(
        foot_traffic("run", "--sink", "stdout", *backfill_args(1000)), capture_output=True, check=True, env=clean_env()
    ).stdout.splitlines()
    size = round(statistics.mean(len(line) for line in sample))
    ours: list[float] = []
    tuned: list[Perf] = []
    default: list[Perf] = []
    for _ in range(REPEATS):  # interleaved, so a slow stretch of the machine hits every side alike
        ours.append(kafka_backfill(BACKFILL_RECORDS, "WARNING"))
        tuned.append(producer_performance(fresh_topic(), BACKFILL_RECORDS, size, PERF_TUNED))
        default.append(producer_performance(fresh_topic(), BACKFILL_RECORDS, size, PERF_DEFAULT))
    return backfill_rows(BACKFILL_RECORDS, size, ours, tuned, default)


def backfill_rows(
    records: int, size: int, ours: Sequence[float], tuned: Sequence[Perf], default: Sequence[Perf]
) -> list[Row]:
    """Rows a and a′ from every run's events/s: each side's best, judged against the tuned anchor alone."""
    rate, anchor, reference = max(ours), max(tuned), max(default)
    what = f"{records:,} events of {size} B, acks=all, idempotent (whole process)"
    return [
        Row(
            f"a. backfill to Kafka, {what}",
            f"{rate:,.0f} ev/s, {rate * size / 1e6:.1f} MB/s",
            f"ProducerPerformance, {' '.join(PERF_TUNED)}: {anchor.records_per_s:,.0f} rec/s, "
            f"{anchor.mb_per_s:.1f} MB/s",
            f"{rate / anchor.records_per_s:.2f}×",
            f"≥ {BACKFILL_RATIO:.1f}× the tuned ProducerPerformance",
            verdict(rate / anchor.records_per_s, BACKFILL_RATIO),
        ),
        Row(
            "a′. the same, against ProducerPerformance's default batching (reference)",
            f"{rate:,.0f} ev/s",
            f"ProducerPerformance, default batching: {reference.records_per_s:,.0f} rec/s, "
            f"{reference.mb_per_s:.1f} MB/s",
            f"{rate / reference.records_per_s:.2f}×",
            "",
            "",
        ),
    ]


def bench_logging() -> list[Row]:
    """(a″) The same backfill at the default LOG_LEVEL=INFO (a line per event) against WARNING."""
    records = BACKFILL_RECORDS // 2
    info: list[float] = []
    warning: list[float] = []
    for _ in range(REPEATS):
        info.append(kafka_backfill(records, "INFO"))
        warning.append(kafka_backfill(records, "WARNING"))
    return [logging_row(records, info, warning)]


def logging_row(records: int, info: Sequence[float], warning: Sequence[float]) -> Row:
    """Row a″ from every run's events/s at each level: the best INFO over the best WARNING, judged against 0.6."""
    best_info, best_warning = max(info), max(warning)
    return Row(
        f"a″. backfill to Kafka at LOG_LEVEL=INFO (every event logged), {records:,} events",
        f"{best_info:,.0f} ev/s",
        f"the same at LOG_LEVEL=WARNING: {best_warning:,.0f} ev/s",
        f"{best_info / best_warning:.2f}×",
        f"≥ {INFO_RATIO:g}× the WARNING figure",
        verdict(best_info / best_warning, INFO_RATIO),
    )


GENERATION_RECORDS = 2_000_000 if QUICK else 10_000_000
STARTUP_RECORDS = 1_000
"""A backfill this small is almost all fixed cost: imports, first plan, shutdown."""


def generation_wall(sink: str, records: int) -> float:
    """Seconds from launch to exit of a one-day backfill of ``records`` events to ``sink``."""
    with open(os.devnull, "wb") as devnull:
        wall, _, _ = timed_child(
            foot_traffic("run", "--sink", sink, *backfill_args(records)), clean_env(), stdout=devnull.fileno()
        )
    return wall


def bench_generation() -> list[Row]:
    """(b) Generation alone: steady state (the big run's time less a tiny run's), start-up apart; REPEATS runs each."""
    rows = []
    for sink in ("null", "stdout"):
        big: list[float] = []
        small: list[float] = []
        for _ in range(REPEATS):
            big.append(generation_wall(sink, GENERATION_RECORDS))
            small.append(generation_wall(sink, STARTUP_RECORDS))
        rows.append(generation_row(sink, GENERATION_RECORDS, STARTUP_RECORDS, big, small))
    return rows


def generation_row(sink: str, events: int, tiny: int, big: Sequence[float], small: Sequence[float]) -> Row:
    """Row b from the wall seconds of every run of ``events`` (``big``) and of ``tiny`` events (``small``).

    Each side's fastest run counts; the steady state is (events − tiny) / (big − small seconds), the tiny
    run's time reported apart as the fixed cost; only the null sink is judged, against GENERATION_TARGET.
    """
    big_s, small_s = min(big), min(small)
    steady = (events - tiny) / (big_s - small_s)
    judged = sink == "null"
    return Row(
        f"b. generation, {sink} sink, {events:,} events: steady state (whole process apart)",
        f"{steady:,.0f} ev/s; whole process {events / big_s:,.0f} ev/s; fixed cost {small_s:.2f} s",
        "",
        "",
        f"≥ {GENERATION_TARGET:,} ev/s steady state" if judged else "",
        verdict(steady, GENERATION_TARGET) if judged else "",
    )


REALTIME_P99_MS, REALTIME_MAX_MS = 2.0, 20.0
"""Row c's targets: p99 lateness, and the max beyond the machine's own pauses (see bench/pauses.py)."""


def bench_realtime(weights: Path, folder: Path) -> list[Row]:
    """(c) Lateness at about 200 events/s, against the specification's polling loop (SLEEP=0.5).

    A probe on every CPU watches the machine meanwhile: the max is judged beyond its pauses.
    """
    env = clean_env(WEIGHTS_FILE=str(weights), DAILY_CUSTOMERS="17280000", LOG_LEVEL="WARNING", SEED="rt")
    probe = pauses.build(folder)
    with pauses.watching(probe, folder) as watched:
        ours = lateness(foot_traffic("run", "--sink", "stdout"), env, REALTIME_SECONDS)
    polling = lateness([PY, str(ROOT / "bench" / "polling_loop.py")], env, REALTIME_SECONDS)
    return [realtime_row(ours, polling, watched)]


def realtime_row(ours: Lateness, polling: Lateness, watched: pauses.Watched) -> Row:
    """Row c: p50/p99/max against the polling loop's; p99 judged as is, the max beyond the machine's pauses."""
    p99 = percentile(ours.late, 99)
    paused = watched.machine()
    worst = max(pauses.beyond(ours.entries, ours.late, paused))
    longest = max((end - start for start, end in paused), default=0.0) * 1000
    how = "" if watched.fifo else " (real-time priority refused: its pauses include other work)"
    failed = [f"p99 {p99:.2f} ms"] if p99 > REALTIME_P99_MS else []
    failed += [f"max {worst:.2f} ms beyond the pauses"] if worst > REALTIME_MAX_MS else []
    return Row(
        f"c. real-time lateness, ~200 ev/s for {REALTIME_SECONDS} s",
        f"{lateness_stats(ours)}; beyond the machine's pauses, max {worst:.2f} ms",
        f"polling loop, SLEEP=0.5: {lateness_stats(polling)}; the machine, a C sleeper per CPU{how}: "
        f"every CPU paused at once {len(paused)} time(s), the longest {longest:.2f} ms",
        f"{percentile(polling.late, 99) / p99:.0f}× lower p99",
        f"p99 ≤ {REALTIME_P99_MS:.0f} ms, max ≤ {REALTIME_MAX_MS:.0f} ms beyond the machine's pauses",
        "met" if not failed else "missed: " + ", ".join(failed),
    )


def startup(daily: int, mode: str) -> float:
    """Seconds from launch to the 'Producing to' line (live: ready) or to the first event on stdout (backfill)."""
    args = ["--sink", "stdout", "--daily-customers", str(daily), "--log-level", "INFO"]
    if mode == "backfill":
        args += ["--speed", "max", "--start", "2025-08-12"]
    started = time.perf_counter()
    proc = subprocess.Popen(foot_traffic("run", *args), env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    ready: float | None = None
    first: float | None = None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "out")
    selector.register(proc.stderr, selectors.EVENT_READ, "err")
    deadline = started + 60
    wanted = "ready" if mode == "live" else "first"
    while (ready if wanted == "ready" else first) is None and time.perf_counter() < deadline:
        for key, _ in selector.select(timeout=0.5):
            data = os.read(key.fileobj.fileno(), 1 << 16)  # type: ignore[union-attr]
            now = time.perf_counter() - started
            if key.data == "err" and b"Producing to" in data and ready is None:
                ready = now
            if key.data == "out" and data and first is None:
                first = now
    proc.kill()
    proc.wait()
    found = ready if wanted == "ready" else first
    if found is None:
        raise RuntimeError(f"no {wanted} within 60 s ({daily}/day, {mode})")
    return found


def bench_startup() -> list[Row]:
    """(d) Start-up time for 100 and 10,000,000 customers a day."""
    rows = []
    for daily in (100, 10_000_000):
        ready = startup(daily, "live")
        first = startup(daily, "backfill")
        ok = ready <= 1.0
        rows.append(
            Row(
                f"d. start-up, {daily:,} customers/day",
                f"ready {ready:.2f} s; first event (backfill) {first:.2f} s",
                "",
                "",
                "ready ≤ 1 s",
                "met" if ok else f"missed: {ready:.2f} s",
            )
        )
    return rows


def bench_memory() -> list[Row]:
    """(e) Peak RSS for a day of 10,000,000 customers, in real time and in backfill."""
    _, _, backfill_rss = timed_child(foot_traffic("run", "--sink", "null", *backfill_args(10_000_000)), clean_env())
    wrapper = (
        "import resource, subprocess, sys, signal, time; "
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "time.sleep(8); p.send_signal(signal.SIGTERM); p.wait(); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    live_rss = int(
        subprocess.run(
            [
                PY,
                "-c",
                wrapper,
                *foot_traffic("run", "--sink", "null", "--daily-customers", "10000000", "--log-level", "WARNING"),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout
    )
    worst = max(backfill_rss, live_rss) / 1024
    return [
        Row(
            "e. peak RSS, 10,000,000 customers/day",
            f"real time {live_rss / 1024:.0f} MB; backfill {backfill_rss / 1024:.0f} MB",
            "",
            "",
            "≤ 150 MB",
            "met" if worst <= 150 else f"missed: {worst:.0f} MB",
        )
    ]


def bench_idle_cpu() -> list[Row]:
    """(f) CPU used by a real-time run between rare events (100 customers a day)."""
    seconds = 5 if QUICK else 20
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        foot_traffic("run", "--sink", "null", "--daily-customers", "100"),
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2)  # start-up is measured in (d); only the idle part counts here
    mid = time.perf_counter()
    usage_mid = _proc_cpu(proc.pid)
    time.sleep(seconds)
    usage_end = _proc_cpu(proc.pid)
    wall = time.perf_counter() - mid
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    del before
    share = (usage_end - usage_mid) / wall
    return [
        Row(
            f"f. idle CPU between events, real time, over {seconds} s",
            f"{share:.3%} of one core",
            "",
            "",
            "≈ 0",
            "met" if share < 0.005 else f"missed: {share:.2%}",
        )
    ]


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


GROUPS = ("generation", "backfill", "logging", "realtime", "startup", "memory", "idle", "workers", "chain", "handover")
"""The groups of rows BENCH_ROWS may name, in the order the table gives them."""


def benches(folder: Path) -> list[tuple[str, Callable[[], list[Row]]]]:
    """Every benchmark with its group, in the table's order; ``folder`` holds the files they write."""
    weights = folder / "one-slot.toml"
    weights.write_text(ONE_SLOT)
    return [
        ("generation", bench_generation),
        ("backfill", bench_backfill),
        ("logging", bench_logging),
        ("realtime", lambda: bench_realtime(weights, folder)),
        ("startup", bench_startup),
        ("memory", bench_memory),
        ("idle", bench_idle_cpu),
        ("workers", scaleout.bench_workers),
        ("chain", lambda: chain.bench_live(folder)),
        ("handover", lambda: scaleout.bench_handover(folder)),
        ("chain", lambda: chain.bench_backfills(folder)),
        ("chain", lambda: chain.bench_realtime(folder)),
        ("chain", lambda: chain.bench_edge(folder)),
    ]


def selected(spec: str) -> frozenset[str]:
    """The groups a BENCH_ROWS value names (comma-separated; empty: all); ValueError naming an unknown one."""
    names = frozenset(name.strip() for name in spec.split(",") if name.strip())
    unknown = sorted(names - set(GROUPS))
    if unknown:
        raise ValueError(f"BENCH_ROWS={spec!r}: unknown {', '.join(unknown)}; expected some of {', '.join(GROUPS)}")
    return names or frozenset(GROUPS)


def table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    header = "| measure | foot-traffic | anchor (same run) | ratio | target | verdict |\n|---|---|---|---|---|---|\n"
    return header + "".join(
        f"| {r.measure} | {r.ours} | {r.anchor} | {r.ratio} | {r.target} | {r.verdict} |\n" for r in rows
    )


def heading(began: dt.datetime, where: str) -> str:
    """docs/benchmarks.md's heading: when the run started (UTC, as the README quotes it) and on what machine."""
    started = began.astimezone(dt.UTC)
    return f"# Benchmarks\n\nProduced by `make bench` started at {started:%Y-%m-%d %H:%M} UTC.\n\nMachine: {where}.\n\n"


def main() -> int:
    """Run the rows BENCH_ROWS selects (all by default) and print the table; all rows also write docs/benchmarks.md."""
    try:
        groups = selected(os.environ.get("BENCH_ROWS", ""))
    except ValueError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    began = dt.datetime.now(dt.UTC)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for group, bench in benches(Path(tmp)):
            if group in groups:
                rows.extend(bench())
    print(table(rows))
    if groups != frozenset(GROUPS):
        print("(a subset of the rows: docs/benchmarks.md left as it is)")
        return 0
    text = heading(began, machine()) + table(rows) + NOTES + scaleout.NOTES + chain.NOTES
    (ROOT / "docs" / "benchmarks.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
