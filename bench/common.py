"""What the benchmark modules share: the broker, the run sizes, the result row, and running the producer."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from foot_traffic.config.settings import Settings
from foot_traffic.config.spec import specs

ROOT = Path(__file__).resolve().parents[1]
BROKER = os.environ.get("FOOT_TRAFFIC_BENCH_BROKER", "127.0.0.1:9092")
PY = sys.executable
QUICK = os.environ.get("BENCH_QUICK") == "1"
BACKFILL_RECORDS = 200_000 if QUICK else 1_000_000
REPEATS = 1 if QUICK else 3
"""Throughput figures are the best of this many runs, for ours and for the anchor alike."""
REALTIME_SECONDS = 10 if QUICK else 60
"""How long a real-time row watches its producer."""

_SETTINGS = frozenset(spec.env for spec in specs(Settings))
"""Every setting's variable, from the settings' declarations, so that none leaks into a run from the caller's shell."""


V = TypeVar("V")


def best_interleaved(
    variants: Mapping[str, V], measure: Callable[[V], float], best: Callable[[float, float], float] = max
) -> dict[str, float]:
    """Each variant's best measure of REPEATS rounds, the variants interleaved so a slow stretch hits them alike."""
    found: dict[str, float] = {}
    for _ in range(REPEATS):
        for name, variant in variants.items():
            value = measure(variant)
            found[name] = best(found[name], value) if name in found else value
    return found


def print_variants(title: str, best: Mapping[str, float], figure: Callable[[float], str]) -> None:
    """Print ``title``, then a line per variant: its ``figure`` and its ratio to the first variant's."""
    base = next(iter(best.values()))
    print(title)
    for name, value in best.items():
        print(f"- {name}: {figure(value)}, {value / base:.2f}× the first")


@dataclass
class Row:
    """One line of the results table."""

    measure: str
    ours: str
    anchor: str
    ratio: str
    target: str
    verdict: str


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without foot-traffic settings (KAFKA_PRODUCER_* included), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS and not k.startswith("KAFKA_PRODUCER_")}
    env.update(extra)
    return env


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def equal_weights(slots: Sequence[str]) -> str:
    """A weights file (TOML) of the slots starting at ``slots`` ("HH:MM"), every weight 1 on every weekday."""
    quoted = ", ".join(f'"{start}"' for start in slots)
    row = ", ".join("1" for _ in slots)
    return f"slots = [{quoted}]\n\n[weights]\n" + "".join(f"{day} = [{row}]\n" for day in WEEKDAYS)


def foot_traffic(*args: str) -> list[str]:
    """The command line of the producer."""
    return [PY, "-m", "foot_traffic", *args]


def verdict(ratio: float, target: float) -> str:
    """``met``, or how far below its target a ratio is: at most 0.99×, so a narrow miss never reads 1.00×."""
    return "met" if ratio >= target else f"missed: {min(ratio / target, 0.99):.2f}× of target"


def timed_child(
    cmd: list[str], env: dict[str, str], stdout: int | None = subprocess.DEVNULL, *, quiet_stderr: bool = False
) -> tuple[float, str, int]:
    """Run a command; return wall seconds, its standard error and its peak RSS in KiB (measured in a wrapper).

    ``quiet_stderr`` sends the command's standard error to /dev/null (a run that logs every event).
    """
    err = "subprocess.DEVNULL" if quiet_stderr else "subprocess.PIPE"
    wrapper = (
        "import resource, subprocess, sys, json; "
        f"p = subprocess.run(sys.argv[1:], stderr={err}, text=True); "
        "sys.stderr.write(p.stderr or ''); "
        "print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]), file=sys.stderr)"
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [PY, "-c", wrapper, *cmd], env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False
    )
    wall = time.perf_counter() - started
    *log, last = proc.stderr.rstrip("\n").splitlines()
    rc, rss = json.loads(last)
    if rc != 0:
        raise RuntimeError(f"{cmd} exited {rc}:\n" + "\n".join(log[-20:]))
    return wall, "\n".join(log), int(rss)


def topic_size(topic: str) -> int:
    """Records in a topic: the sum of its partitions' high watermarks (the topic is never compacted or trimmed)."""
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415 - only the Kafka benchmarks need it

    consumer = Consumer({"bootstrap.servers": BROKER, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return sum(int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]) for p in partitions)
    finally:
        consumer.close()


def backfill_args(
    records: int, log_level: str = "WARNING", start: str = "2025-08-12", until: str = "2025-08-13"
) -> list[str]:
    """A backfill of ``records`` events a day from ``start`` to ``until`` (one day by default)."""
    return [
        "--speed",
        "max",
        "--start",
        start,
        "--until",
        until,
        "--daily-customers",
        str(records),
        "--seed",
        "bench",
        "--log-level",
        log_level,
    ]


def fresh_topic() -> str:
    """A topic name no run has used."""
    return f"bench-{uuid.uuid4().hex[:8]}"


def kafka_backfill(
    records: int, log_level: str, *, args: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> float:
    """Events per second of a backfill to a fresh topic, launch to exit; the topic must then hold ``records``.

    The backfill is one day of ``records`` events unless ``args`` (the flags after ``run``) say otherwise;
    ``env`` adds variables (KAFKA_PRODUCER_*, ...).
    """
    topic = fresh_topic()
    wall, _, _ = timed_child(
        foot_traffic("run", *(backfill_args(records, log_level) if args is None else args)),
        clean_env(KAFKA_BROKER=BROKER, KAFKA_TOPIC=topic, **(env or {})),
        quiet_stderr=log_level == "INFO",
    )
    events = topic_size(topic)
    if events != records:
        raise RuntimeError(f"the topic holds {events} events, not {records}")
    return events / wall


ENTRY_TIME = b'"entry_time":"'


@dataclass
class Lateness:
    """Each event's entry time and lateness, and how long each side of the pipe waited for a CPU before its read."""

    entries: list[float]
    """Each event's entry_time, epoch seconds, in the order received."""
    late: list[float]
    """Receipt − entry_time, ms."""
    producer_wait: list[float]
    """ms the producer's main thread was runnable but not running, from the previous read to this event's."""
    reader_wait: list[float]
    """The same for the reader's thread."""


def run_delay_ms(fd: int) -> float:
    """A thread's total time runnable but not running, in ms: run_delay, the second field of its schedstat."""
    return int(os.pread(fd, 128, 0).split()[1]) / 1e6


def lateness(cmd: list[str], env: dict[str, str], seconds: float) -> Lateness:
    """Run a real-time producer writing JSON lines; return each event's lateness (receipt − entry_time) in ms.

    The reader only slices out each entry_time (no JSON parsing: nothing it allocates per line is a
    container, and the collector is off while it reads) and notes, at every read, how long it and the
    producer have waited for a CPU since the previous one: the scheduler's run_delay from /proc.
    """
    found = Lateness([], [], [], [])
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        fds = (os.open(f"/proc/{proc.pid}/schedstat", os.O_RDONLY), os.open("/proc/thread-self/schedstat", os.O_RDONLY))
        gc.disable()
        try:
            _read_lateness(proc.stdout.fileno(), fds, seconds, found)
        finally:
            gc.enable()
            for fd in fds:
                os.close(fd)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return found


def _read_lateness(out: int, fds: tuple[int, int], seconds: float, found: Lateness) -> None:
    """Read lines from ``out`` for ``seconds`` or until it ends, noting each event's lateness and the CPU waits."""
    waited = [run_delay_ms(fd) for fd in fds]
    buffer = b""
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(out, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                continue
            chunk = os.read(out, 1 << 16)
            received = time.time()
            if not chunk:
                return
            now = [run_delay_ms(fd) for fd in fds]
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                start = line.index(ENTRY_TIME) + len(ENTRY_TIME)
                entry = dt.datetime.fromisoformat(line[start : line.index(b'"', start)].decode()).timestamp()
                found.entries.append(entry)
                found.late.append((received - entry) * 1000)
            found.producer_wait += [now[0] - waited[0]] * len(lines)
            found.reader_wait += [now[1] - waited[1]] * len(lines)
            waited = now


def lateness_stats(found: Lateness) -> str:
    """p50, p99 and max, and how long each side had waited for a CPU before the max was read."""
    worst = max(range(len(found.late)), key=found.late.__getitem__)
    return (
        f"p50 {percentile(found.late, 50):.2f} / p99 {percentile(found.late, 99):.2f} / max {found.late[worst]:.2f} ms "
        f"({len(found.late):,} ev; before the max, the producer waited {found.producer_wait[worst]:.1f} ms "
        f"and the reader {found.reader_wait[worst]:.1f} ms for a CPU)"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]
