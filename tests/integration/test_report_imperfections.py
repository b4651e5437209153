"""``foot-traffic report`` on imperfect backfills in the real broker: the run's settings make them pass, exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import ProducerProcess, base_env, run_foot_traffic

Start = Callable[..., ProducerProcess]
DAY = ["--start", "2025-08-11", "--until", "2025-08-12"]
IMPERFECT = {
    "SEED": "imperfect-report",
    "BASE_DAILY_CUSTOMERS": "3000",
    "LATE_EVENTS_PCT": "0.1",
    "DUPLICATE_EVENTS_PCT": "0.05",
    "SENSOR_OUTAGES_PER_DAY": "2",
    "LOG_LEVEL": "WARNING",
}


@pytest.mark.kafka
@pytest.mark.parametrize("timestamps", ["emit", "entry"])
def test_an_imperfect_backfill_passes_with_its_settings_and_fails_without(
    broker: str, topic: str, producer_process: Start, tmp_path: Path, timestamps: str
) -> None:
    """A day backfilled with late, duplicated and held events passes 8 checks; read as perfect it fails."""
    env = base_env(
        KAFKA_BROKER=broker, KAFKA_TOPIC=topic, KAFKA_TOPIC_PARTITIONS="3", KAFKA_TIMESTAMP=timestamps, **IMPERFECT
    )
    run = producer_process(["--speed", "max", *DAY], env)
    assert run.finish(180) == 0, "\n".join(run.stderr[-20:])
    done = run_foot_traffic("report", "--output", str(tmp_path / "a"), *DAY, env=env, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("foot-traffic report: PASS (8 checks")
    summary = (tmp_path / "a" / "report.md").read_text("utf-8")
    assert "Judged by arrival order" in summary  # a backfill's record times are wall clock, or entry times
    perfect = {k: v for k, v in env.items() if k not in {"LATE_EVENTS_PCT", "DUPLICATE_EVENTS_PCT"}}
    perfect["SENSOR_OUTAGES_PER_DAY"] = "0"
    failed = run_foot_traffic("report", "--output", str(tmp_path / "b"), *DAY, env=perfect, timeout=180)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Uniqueness of customer ids" in failed.stdout
