"""Determinism: the same configuration and SEED give the same bytes, whatever the clock, sink, range or store order."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS
from foot_traffic.model.grid import datetime_to_us
from foot_traffic.model.randomness import root_entropy
from foot_traffic.run.clock import AcceleratedClock, Clock, ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink

SEED = "determinism"
VOLUME = "2000"
WEEK = ("2025-08-11", "2025-08-18")
DAY = ("2025-08-12", "2025-08-13")


def _us(day: str, zone: str = "UTC") -> int:
    """Epoch microseconds of a date's local midnight."""
    return datetime_to_us(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=ZoneInfo(zone)))


DAY_US = (_us(DAY[0]), _us(DAY[1]))


def cli_run(start: str, until: str, *flags: str, speed: str = "max", seed: str = SEED) -> bytes:
    """Run ``foot-traffic run --sink stdout`` in a subprocess with no setting in its environment; return stdout."""
    env = {k: v for k, v in os.environ.items() if k not in {spec.env for spec in SPECS}}
    argv = [sys.executable, "-m", "foot_traffic", "run", "--sink", "stdout", "--speed", speed, "--seed", seed]
    argv += ["--start", start, "--until", until, "--log-level", "WARNING", "--base-daily-customers", VOLUME, *flags]
    proc = subprocess.run(argv, capture_output=True, check=True, env=env, timeout=120)
    assert proc.stdout.endswith(b"\n")
    return proc.stdout


def memory_run(
    start_us: int, until_us: int, env: dict[str, str] | None = None, *, seed: str = SEED, clock: Clock | None = None
) -> list[tuple[str, bytes]]:
    """Run the service in-process into a memory sink (a manual clock unless given); return (key, bytes) pairs."""
    model = load_settings({"BASE_DAILY_CUSTOMERS": VOLUME, **(env or {})}).model()
    sink = MemorySink()
    clock = clock or ManualClock(start_us)
    Service(model, root_entropy(seed), sink, clock, poll_s=0.5, until_us=until_us).run()
    return sink.records


def lines(records: list[tuple[str, bytes]]) -> bytes:
    """The JSON lines the stdout sink writes for these records."""
    return b"".join(value + b"\n" for _, value in records)


@pytest.fixture(scope="module")
def week_stdout() -> bytes:
    """A backfilled week on standard output at --speed max."""
    return cli_run(*WEEK)


def test_same_seed_gives_identical_bytes(week_stdout: bytes) -> None:
    """Two runs of the same week with the same SEED write identical bytes."""
    assert week_stdout.count(b"\n") > 10_000
    assert cli_run(*WEEK) == week_stdout


def test_different_seed_gives_different_events() -> None:
    """Another SEED gives other bytes: no customer_id and no entry_time in common."""
    one, other = memory_run(*DAY_US), memory_run(*DAY_US, seed=SEED + "-other")
    assert lines(one) != lines(other)
    assert not {key for key, _ in one} & {key for key, _ in other}
    entries = {json.loads(value)["entry_time"] for _, value in one}
    assert not entries & {json.loads(value)["entry_time"] for _, value in other}


def test_stdout_sink_writes_the_memory_sink_bytes(week_stdout: bytes) -> None:
    """The CLI's stdout sink writes exactly the bytes the in-process memory sink receives, one line each."""
    records = memory_run(_us(WEEK[0]), _us(WEEK[1]))
    assert week_stdout == lines(records)
    assert [key for key, _ in records] == [json.loads(value)["customer_id"] for _, value in records]


def test_accelerated_clock_emits_the_max_speed_bytes() -> None:
    """In-process, an accelerated clock at 10⁶× emits the same events as the manual (max speed) clock."""
    accelerated = memory_run(*DAY_US, clock=AcceleratedClock(DAY_US[0], 1e6))
    assert accelerated
    assert accelerated == memory_run(*DAY_US)


def test_cli_accelerated_speed_emits_the_max_speed_bytes() -> None:
    """`run --speed 200000` over one day writes the bytes of `run --speed max` over the same range."""
    fast = cli_run(*DAY, speed="max")
    assert fast
    assert cli_run(*DAY, speed="200000") == fast


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"ARRIVAL_MODEL": "poisson"},
        {"ARRIVAL_MODEL": "smooth"},
        {"DAILY_TOTALS": "gamma-poisson", "DAILY_DISPERSION": "0.2"},
        {"TIMEZONE": "Europe/Rome", "ARRIVAL_MODEL": "smooth"},
    ],
    ids=["uniform", "poisson", "smooth", "gamma-poisson", "rome-smooth"],
)
def test_a_day_inside_a_longer_run_equals_that_day_run_alone(env: dict[str, str]) -> None:
    """The events of a local date in a 3-day backfill are the bytes of that date run alone."""
    zone = env.get("TIMEZONE", "UTC")
    alone = memory_run(_us(DAY[0], zone), _us(DAY[1], zone), env)
    longer = memory_run(_us("2025-08-11", zone), _us("2025-08-14", zone), env)
    # entry_time is local wall-clock time, so its date is the local date.
    inside = [(key, value) for key, value in longer if json.loads(value)["entry_time"].startswith(DAY[0])]
    assert len(longer) > len(inside) > 0
    assert inside == alone


def _stores_file(folder: Path, name: str, stores: list[tuple[str, float, str | None]]) -> Path:
    text = ""
    for store_id, scale, zone in stores:
        text += f'[[store]]\nid = "{store_id}"\nscale = {scale}\n'
        if zone is not None:
            text += f'timezone = "{zone}"\n'
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def per_store(stdout: bytes) -> dict[str, list[bytes]]:
    """Each store's lines, in emission order."""
    streams: dict[str, list[bytes]] = defaultdict(list)
    for line in stdout.splitlines():
        streams[json.loads(line)["store_id"]].append(line)
    return dict(streams)


def test_store_streams_depend_on_the_store_id_only(tmp_path: Path) -> None:
    """Reordering the stores file, or changing the other stores, leaves each store's events byte-identical."""
    north, south, east = ("north", 1.0, None), ("south", 0.5, "Europe/Rome"), ("east", 2.0, None)
    first = _stores_file(tmp_path, "first.toml", [north, south, east])
    second = _stores_file(tmp_path, "second.toml", [east, ("west", 1.0, None), south, north])
    one, other = (per_store(cli_run(*DAY, "--stores-file", str(path))) for path in (first, second))
    assert set(one) == {"north", "south", "east"}
    assert set(other) == {"north", "south", "east", "west"}
    for store in ("north", "south", "east"):
        assert one[store]
        assert one[store] == other[store]
    assert [json.loads(line)["entry_time"] for line in one["north"]] != [
        json.loads(line)["entry_time"] for line in other["west"]
    ]
