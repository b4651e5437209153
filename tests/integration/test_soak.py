"""Soak: a simulated month at full speed, with the process's resident memory sampled throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from foot_traffic.config.settings import SPECS

ROOT = Path(__file__).resolve().parents[2]
DAYS = 30
START = "2025-08-01"
UNTIL = "2025-08-31"
BASE_DAILY_CUSTOMERS = 1_000_000
"""About 30 million events over the month: 8 to 30 s of generation on the 2-core reference machine."""
SAMPLE_EVERY_S = 0.1
STARTED_AFTER_S = 1.0
"""The 'start' figure is the first sample after this: imports and the first plan take about half of it."""
GROWTH_ALLOWED_MB = 20.0
TIMEOUT_S = 280.0
"""Under pytest's per-test timeout (300 s), so a hung run fails here with its figures rather than by a kill."""


def settings_env(**overrides: str) -> dict[str, str]:
    """The current environment without any setting, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in {s.env for s in SPECS}}
    env.update(overrides)
    return env


def rss_mb(pid: int) -> float | None:
    """VmRSS of a live process in MB; None once it has exited (a zombie has no VmRSS line)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def planned_events(env: dict[str, str]) -> int:
    """The month's events, from ``plan --json`` with the same settings: the run emits exactly the plan."""
    done = subprocess.run(
        [sys.executable, "-m", "foot_traffic", "plan", "--json", "--date", START, "--days", str(DAYS)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    )
    return sum(json.loads(line)["total"] for line in done.stdout.splitlines())


@pytest.mark.slow
# the figures go to user_properties for any reporter; only a junit-xml "xunit2" report has no place for them
@pytest.mark.filterwarnings("ignore:record_property is incompatible:pytest.PytestWarning")
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="samples memory from /proc/<pid>/status")
def test_a_simulated_month_keeps_memory_flat(
    record_property: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """Thirty days at --speed max to the null sink exit 0 with resident memory flat from the first week on.

    Criterion: the largest RSS of the last half of the run is at most the largest RSS of
    its first quarter plus 20 MB. The loop plans one day at a time and samples arrivals in
    chunks of about 16,384, so its working set after the first day is bounded by one day's
    plan and one chunk, whatever the number of days or events already emitted. The first
    quarter (about a week) covers start-up, the first plan and the allocator's warm-up, so
    its peak is the steady state; anything the process keeps per event or per day shows up
    as growth between that quarter and the last half. With about 22 million events and 22
    days after the first quarter, 20 MB catches a leak of about 1 byte per event or 1 MB
    per day, while staying above the allocator's ordinary jitter.
    """
    env = settings_env(
        SEED="soak",
        BASE_DAILY_CUSTOMERS=str(BASE_DAILY_CUSTOMERS),
        LOG_LEVEL="WARNING",  # INFO logs one line per event, which would measure logging, not the loop
    )
    args = ["run", "--sink", "null", "--speed", "max", "--start", START, "--until", UNTIL]
    with tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "foot_traffic", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        samples: list[float] = []
        start_mb: float | None = None
        try:
            while proc.poll() is None:
                if time.monotonic() - started > TIMEOUT_S:
                    pytest.fail(f"the soak run did not finish in {TIMEOUT_S:.0f} s ({len(samples)} RSS samples)")
                rss = rss_mb(proc.pid)
                if rss is not None:
                    samples.append(rss)
                    if start_mb is None and time.monotonic() - started >= STARTED_AFTER_S:
                        start_mb = rss
                time.sleep(SAMPLE_EVERY_S)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        elapsed = time.monotonic() - started
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
    assert proc.returncode == 0, errors[-3000:]
    assert len(samples) >= 20, f"only {len(samples)} RSS samples in {elapsed:.1f} s: the run is too short to judge"
    events = planned_events(env)
    first_quarter = max(samples[: len(samples) // 4])
    last_half = max(samples[len(samples) // 2 :])
    start_mb = samples[0] if start_mb is None else start_mb
    peak_mb, end_mb = max(samples), samples[-1]
    line = (
        f"soak: {DAYS} days, {events:,} events in {elapsed:.1f} s ({events / elapsed:,.0f} events/s), "
        f"RSS start/peak/end {start_mb:.0f}/{peak_mb:.0f}/{end_mb:.0f} MB "
        f"(first-quarter peak {first_quarter:.1f} MB, last-half peak {last_half:.1f} MB, {len(samples)} samples)"
    )
    for name, value in [
        ("soak_days", DAYS),
        ("soak_events", events),
        ("soak_seconds", round(elapsed, 1)),
        ("soak_rss_start_mb", round(start_mb, 1)),
        ("soak_rss_peak_mb", round(peak_mb, 1)),
        ("soak_rss_end_mb", round(end_mb, 1)),
        ("soak_rss_first_quarter_peak_mb", round(first_quarter, 1)),
        ("soak_rss_last_half_peak_mb", round(last_half, 1)),
    ]:
        record_property(name, value)
    with capsys.disabled():
        print(f"\n{line}")
    assert last_half <= first_quarter + GROWTH_ALLOWED_MB, line
