"""Golden hashes: the bytes of plans and backfills stay exactly those recorded, whatever the code's structure.

Each case runs ``foot-traffic`` as a subprocess with no setting in its environment and hashes
its standard output. ``hashes.json`` was recorded before the package was restructured;
``FOOT_TRAFFIC_RECORD_GOLDEN=1`` rewrites it (only for a deliberate change of the output).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
HASHES = HERE / "hashes.json"
WEEK = ("--start", "2025-08-11", "--until", "2025-08-18")
BACKFILL = ("run", "--sink", "stdout", "--speed", "max", "--log-level", "WARNING", "--seed", "golden")
PLAN = ("plan", "--json", "--seed", "golden", "--date", "2025-08-11", "--days", "7")

CASES: dict[str, tuple[str, ...]] = {
    "plan-default-week": PLAN,
    "plan-midday": (*PLAN[:-1], "1", "--now", "2025-08-11T15:30:00+00:00"),
    "plan-dst-rome": (*PLAN[:-4], "--date", "2025-10-24", "--days", "4", "--timezone", "Europe/Rome"),
    "plan-stores-calendar": (
        *PLAN,
        "--stores-file",
        str(HERE / "stores.toml"),
        "--calendar-file",
        str(HERE / "calendar.toml"),
    ),
    "backfill-default-week": (*BACKFILL, *WEEK, "--base-daily-customers", "3000"),
    "backfill-dst-rome": (
        *BACKFILL,
        "--start",
        "2025-10-24",
        "--until",
        "2025-10-28",
        "--timezone",
        "Europe/Rome",
        "--base-daily-customers",
        "2000",
    ),
    "backfill-dst-new-york-spring": (
        *BACKFILL,
        "--start",
        "2025-03-08T12:00",
        "--until",
        "2025-03-10",
        "--timezone",
        "America/New_York",
    ),
    "backfill-stores-calendar": (
        *BACKFILL,
        *WEEK,
        "--stores-file",
        str(HERE / "stores.toml"),
        "--calendar-file",
        str(HERE / "calendar.toml"),
        "--base-daily-customers",
        "500",
    ),
    "backfill-poisson": (*BACKFILL, *WEEK, "--arrival-model", "poisson", "--base-daily-customers", "1500"),
    "backfill-smooth-gamma": (
        *BACKFILL,
        *WEEK,
        "--arrival-model",
        "smooth",
        "--daily-totals",
        "gamma-poisson",
        "--base-daily-customers",
        "1500",
    ),
    "backfill-sensor-events": (
        *BACKFILL,
        "--start",
        "2025-08-12T09:00",
        "--until",
        "2025-08-13",
        "--exit-events-topic",
        "golden_sensors",
    ),
    "plan-chain-dst": (*PLAN[:-4], "--date", "2025-10-25", "--days", "3", "--stores-file", str(HERE / "chain.toml")),
    "backfill-chain-dst": (
        *BACKFILL,
        "--start",
        "2025-10-25",
        "--until",
        "2025-10-27T06:00",
        "--stores-file",
        str(HERE / "chain.toml"),
        "--calendar-file",
        str(HERE / "calendar.toml"),
        "--base-daily-customers",
        "300",
    ),
    "backfill-chain-sensors": (
        *BACKFILL,
        "--start",
        "2025-08-12T09:00",
        "--until",
        "2025-08-13",
        "--stores-file",
        str(HERE / "chain.toml"),
        "--exit-events-topic",
        "golden_sensors",
        "--base-daily-customers",
        "100",
    ),
    "backfill-chain-midday-fixed": (
        *BACKFILL,
        "--start",
        "2025-08-13T11:17:05",
        "--until",
        "2025-08-14T03:00",
        "--stores-file",
        str(HERE / "chain.toml"),
        "--daily-customers",
        "50",
    ),
    "backfill-chain-1000": (
        *BACKFILL,
        "--start",
        "2025-08-14",
        "--until",
        "2025-08-15",
        "--stores-file",
        str(HERE / "chain-1000.toml"),
        "--daily-customers",
        "100",
    ),
    "backfill-midday-fixed": (
        *BACKFILL,
        "--start",
        "2025-08-13T11:17:05",
        "--until",
        "2025-08-14T03:00",
        "--daily-customers",
        "4321",
        "--disable-daily-variation",
        "1",
    ),
}


def _clean_env() -> dict[str, str]:
    """A minimal environment: none of the producer's settings can leak in."""
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}}


def run_case(argv: tuple[str, ...]) -> bytes:
    """Standard output of ``foot-traffic ARGV`` (the command must succeed)."""
    proc = subprocess.run(
        [sys.executable, "-m", "foot_traffic", *argv], capture_output=True, env=_clean_env(), timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc.stdout


def _recorded() -> dict[str, dict[str, object]]:
    return dict(json.loads(HASHES.read_text())) if HASHES.exists() else {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_matches_recorded_hash(name: str) -> None:
    """The command's standard output has the recorded SHA-256 and line count."""
    out = run_case(CASES[name])
    got = {"sha256": hashlib.sha256(out).hexdigest(), "lines": out.count(b"\n")}
    if os.environ.get("FOOT_TRAFFIC_RECORD_GOLDEN") == "1":
        hashes = _recorded()
        hashes[name] = got
        HASHES.write_text(json.dumps(dict(sorted(hashes.items())), indent=2) + "\n")
    assert out.count(b"\n") > 0
    assert _recorded()[name] == got
