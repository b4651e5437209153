"""Imperfections against the real broker: entry timestamps on records, and exactly-once through a crash."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, TopicPartition

from foot_traffic.model.grid import datetime_to_us
from tests.integration.conftest import (
    ROOT,
    ProducerProcess,
    base_env,
    consume_committed,
    run_foot_traffic,
    wait_for_a_commit,
)

Start = Callable[..., ProducerProcess]
IMPERFECT = {
    "LATE_EVENTS_PCT": "0.1",
    "LATE_DELAY_MEAN_SECONDS": "900",
    "LATE_DELAY_MAX_SECONDS": "3600",
    "DUPLICATE_EVENTS_PCT": "0.05",
    "SENSOR_OUTAGES_PER_DAY": "4",
}
BACKFILL = ["--speed", "20000", "--start", "2025-08-12", "--until", "2025-08-13"]


def _timestamps(broker: str, topic: str, count: int) -> list[tuple[int, int, bytes]]:
    """(timestamp type, timestamp in ms, value) of the first ``count`` records of partition 0."""
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"ft-test-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    records: list[tuple[int, int, bytes]] = []
    try:
        while len(records) < count:
            msg = consumer.poll(10)
            assert msg is not None, "the topic ended before every record was read"
            assert msg.error() is None
            kind, stamp = msg.timestamp()
            value = msg.value()
            assert isinstance(value, bytes)
            records.append((kind, stamp, value))
    finally:
        consumer.close()
    return records


@pytest.mark.kafka
def test_entry_timestamps_are_each_records_entry_time_in_ms(broker: str, topic: str) -> None:
    """KAFKA_TIMESTAMP=entry: every record's CreateTime is its event's entry_time in ms, late copies included."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, until = now - dt.timedelta(hours=3), now - dt.timedelta(hours=1)
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS="5000", SEED="ts", **IMPERFECT)
    args = ["--kafka-timestamp", "entry", "--speed", "max", "--start", start.isoformat(), "--until", until.isoformat()]
    done = run_foot_traffic("run", *args, "--log-level", "WARNING", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = run_foot_traffic("run", *args, "--sink", "stdout", "--log-level", "WARNING", env=env, timeout=120)
    values = expected.stdout.encode().splitlines()
    records = _timestamps(broker, topic, len(values))
    assert [value for _, _, value in records] == values
    assert {kind for kind, _, _ in records} == {TIMESTAMP_CREATE_TIME}
    for _, stamp, value in records:
        assert stamp == datetime_to_us(dt.datetime.fromisoformat(json.loads(value)["entry_time"])) // 1000
    assert max(Counter(values).values()) == 2, "some events went twice"


@pytest.mark.kafka
def test_entry_timestamps_older_than_the_retention_are_warned_of(broker: str, topic: str) -> None:
    """A START past the topic's retention.ms gets one warning naming KAFKA_TIMESTAMP, the topic and the retention."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS="10", SEED="old")
    args = ["--kafka-timestamp", "entry", "--speed", "max", "--start", "2001-01-01", "--until", "2001-01-02"]
    done = run_foot_traffic("run", *args, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "retention.ms=" in line]
    assert len(warnings) == 1
    assert "WARNING" in warnings[0]
    assert "KAFKA_TIMESTAMP=entry" in warnings[0]
    assert repr(topic) in warnings[0]


@pytest.mark.kafka
def test_an_exactly_once_restart_with_imperfections_commits_the_imperfect_sequence_once(
    broker: str, topic: str, producer_process: Start
) -> None:
    """SIGKILLed mid-backfill and restarted, an EXACTLY_ONCE run commits exactly the imperfect sequence, once."""
    settings = {"DAILY_CUSTOMERS": "20000", "SEED": "eo-imp", **IMPERFECT}
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1", **settings)
    first = producer_process(BACKFILL, env)
    first.wait_for_emitted(3000)
    wait_for_a_commit(broker, topic)
    first.proc.kill()
    first.finish(30)
    final = producer_process(BACKFILL, env)
    assert final.finish(180) == 0
    assert final.lines_with("Resuming after customer_id=")
    expected = subprocess.run(
        [sys.executable, "-m", "foot_traffic", "run", "--sink", "stdout", "--speed", "max", "--log-level", "WARNING",
         "--start", "2025-08-12", "--until", "2025-08-13"],
        capture_output=True, check=True, cwd=ROOT, env=base_env(**settings),
    ).stdout.splitlines()  # fmt: skip
    values = [value for _, value in consume_committed(broker, topic)]
    assert len(values) == len(expected) > 20000
    assert values == expected
