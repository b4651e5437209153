"""The windowed consumer example against the broker: on an imperfect backfill its counts are plan --json's.

A day is backfilled with late events, duplicates and sensor outages (a run with
UNTIL sends the late copies of the visits before it too). The example
then reads the topic to its end: with an allowed lateness covering the longest
delay and the duplicate gap, and deduplication on, its windows of that day hold
exactly the plan's slot counts, however the reads of the 3 partitions interleave;
without deduplication it counts the copies and exceeds the plan. With no lateness
it drops late events and falls short: checked on a one-partition copy of the day,
since on several partitions which late events are dropped depends on how the
partitions' reads interleave (a partition not read yet holds the watermark back).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import ROOT, ProducerProcess, base_env, run_foot_traffic

Start = Callable[..., ProducerProcess]
DAY = "2025-08-11"
IMPERFECT = {
    "SEED": "windows",
    "BASE_DAILY_CUSTOMERS": "3000",
    "LATE_EVENTS_PCT": "0.1",
    "LATE_DELAY_MAX_SECONDS": "1800",
    "DUPLICATE_EVENTS_PCT": "0.05",
    "DUPLICATE_DELAY_MAX_SECONDS": "60",
    "SENSOR_OUTAGES_PER_DAY": "2",
    "LOG_LEVEL": "WARNING",
}


def windows(broker: str, topic: str, lateness_s: float, *, dedupe: bool = True) -> dict[str, Any]:
    """The example's JSON summary of the topic, read to its end."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "windowed_consumer.py"),
            "--broker",
            broker,
            "--topic",
            topic,
            "--allowed-lateness-seconds",
            str(lateness_s),
            "--dedupe" if dedupe else "--no-dedupe",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def instant(text: str) -> dt.datetime:
    """An ISO-8601 instant of plan --json."""
    return dt.datetime.fromisoformat(text)


def of_day(summary: dict[str, Any]) -> dict[str, int]:
    """The example's counts of DAY, by slot label."""
    return {w["slot"]: w["count"] for w in summary["windows"] if w["date"] == DAY}


@pytest.mark.kafka
def test_counts_equal_the_plan_when_the_lateness_covers_the_delays(
    broker: str, topic: str, producer_process: Start
) -> None:
    """Lateness ≥ longest delay + duplicate gap with dedupe: the plan's counts; less, or no dedupe: not."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, KAFKA_TOPIC_PARTITIONS="3", **IMPERFECT)
    single = f"{topic}-one"
    for where in (env, {**env, "KAFKA_TOPIC": single, "KAFKA_TOPIC_PARTITIONS": "1"}):
        run = producer_process(["--speed", "max", "--start", DAY, "--until", "2025-08-12"], where)
        assert run.finish(180) == 0, "\n".join(run.stderr[-20:])
    planned = run_foot_traffic("plan", "--json", "--date", DAY, "--days", "1", env=env, timeout=60)
    assert planned.returncode == 0, planned.stderr
    day = json.loads(planned.stdout.splitlines()[0])
    expected = {slot["label"]: slot["count"] for slot in day["slots"]}
    held_s = [(instant(o["end"]) - instant(o["start"])).total_seconds() for o in day.get("outages", [])]
    longest = max([float(IMPERFECT["LATE_DELAY_MAX_SECONDS"]), *held_s])
    enough = longest + float(IMPERFECT["DUPLICATE_DELAY_MAX_SECONDS"]) + 1

    covered = windows(broker, topic, enough)
    assert of_day(covered) == expected
    assert covered["dropped_late"] == 0
    assert covered["duplicates"] > 0

    strict = windows(broker, single, 0)
    assert of_day(windows(broker, single, enough)) == expected, "the same day on one partition"
    assert strict["dropped_late"] > 0
    assert sum(of_day(strict).values()) < sum(expected.values())

    copies = windows(broker, topic, enough, dedupe=False)
    assert sum(of_day(copies).values()) > sum(expected.values())
    assert all(of_day(copies)[label] >= count for label, count in expected.items())
