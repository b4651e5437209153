"""``foot-traffic report`` on topics of the real local broker: a backfilled week passes, skewed extra events fail."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from foot_traffic.events.event import Event
from foot_traffic.model.grid import DEFAULT_GRID, datetime_to_us
from tests.integration.conftest import ProducerProcess, base_env, consume_all, free_port, run_foot_traffic

Start = Callable[..., ProducerProcess]
RANGE = ["--start", "2025-08-11", "--until", "2025-08-18"]
BACKFILL = ["--speed", "max", *RANGE]
VOLUME = {"SEED": "report", "BASE_DAILY_CUSTOMERS": "2000", "LOG_LEVEL": "WARNING"}


def report(env: dict[str, str], output: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``foot-traffic report`` to completion."""
    return run_foot_traffic("report", "--output", str(output), *args, env=env, timeout=180)


def backfill(producer_process: Start, env: dict[str, str], *extra: str) -> None:
    """Backfill the week into the env's topic; the producer must exit 0."""
    process = producer_process([*BACKFILL, *extra], env)
    assert process.finish(180) == 0, "\n".join(process.stderr[-20:])


def long_visits_on_wednesday(broker: str, topic: str, count: int) -> None:
    """Produce ``count`` extra, well-formed visits into Wednesday's 10:00–13:59 slot, each lasting 60 minutes."""
    rng = np.random.default_rng(11)
    date = dt.date(2025, 8, 13)
    start, end = DEFAULT_GRID.boundaries_us(date)[2:4]
    producer = Producer({"bootstrap.servers": broker})
    for i in range(count):
        entry = int(rng.integers(start, end))
        event = Event(f"00000000-0000-4000-8000-{i:012d}", entry, 60, "Wednesday", DEFAULT_GRID.labels[2])
        producer.produce(topic, event.encode(), key=event.customer_id)
    assert producer.flush(30) == 0


@pytest.mark.kafka
def test_backfilled_week_passes_and_skewed_extra_events_fail(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """A week backfilled into a 3-partition topic passes (exit 0); the same week plus skewed events exits 1."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, KAFKA_TOPIC_PARTITIONS="3", **VOLUME)
    backfill(producer_process, env)
    done = report(env, tmp_path / "good", *RANGE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("foot-traffic report: PASS (6 checks over ")
    summary = (tmp_path / "good" / "report.md").read_text()
    assert f"Kafka topic `{topic}` on `{broker}`" in summary
    assert "7 whole day(s) and 0 partial day(s)" in summary
    assert "| exact plan, 7 whole day(s) | 0 of 42 slot counts differ |" in summary

    skewed = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=f"{topic}-skewed", **VOLUME)
    backfill(producer_process, skewed)
    long_visits_on_wednesday(broker, f"{topic}-skewed", 400)
    done = report(skewed, tmp_path / "bad", *RANGE)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("foot-traffic report: FAIL: Counts per date and slot, Visit durations")
    assert "| 2025-08-13 | Wednesday | whole day |" in (tmp_path / "bad" / "report.md").read_text()


@pytest.mark.kafka
def test_transactional_topic_is_read_to_its_end_offsets(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """An exactly-once backfill (transaction markers take offsets, never delivered) is read whole and passes."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1", **VOLUME)
    backfill(producer_process, env, "--start", "2025-08-14", "--daily-customers", "3000")
    done = report(env, tmp_path / "out", "--start", "2025-08-14", "--daily-customers", "3000")
    assert done.returncode == 0, done.stderr
    assert "checks over 12,000 events" in done.stdout


@pytest.mark.kafka
def test_missing_topic_exits_2(broker: str, topic: str, tmp_path: Path) -> None:
    """A topic that does not exist is bad input: exit 2 naming it, nothing written."""
    done = report(base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic), tmp_path / "out")
    assert done.returncode == 2
    assert f"KAFKA_TOPIC='{topic}': no such topic on {broker}; expected an existing topic" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.kafka
def test_unreachable_kafka_exits_3(tmp_path: Path) -> None:
    """Nothing listening at KAFKA_BROKER: exit 3 after MAX_RETRIES attempts, naming the broker."""
    address = f"127.0.0.1:{free_port()}"
    env = base_env(KAFKA_BROKER=address, MAX_RETRIES="1", KAFKA_CONNECT_TIMEOUT_SECONDS="1")
    started = datetime_to_us(dt.datetime.now(dt.UTC))
    done = report(env, tmp_path / "out")
    assert done.returncode == 3, done.stderr
    assert f"cannot reach Kafka at {address} after 1 attempt(s)" in done.stderr
    assert datetime_to_us(dt.datetime.now(dt.UTC)) - started < 30_000_000


def summary_without(folder: Path, topic: str) -> str:
    """The Markdown summary with the topic's name taken out (the one line where two runs' summaries may differ)."""
    return (folder / "report.md").read_text().replace(f"`{topic}`", "`TOPIC`")


@pytest.mark.kafka
@pytest.mark.registry
def test_avro_framed_week_gives_the_plain_json_weeks_report(
    broker: str, schema_registry: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """A week backfilled as Avro reads, with SCHEMA_REGISTRY_URL, to the same report as the same SEED in plain JSON.

    Without the URL the Avro values are bad input (exit 2, naming the setting); with a URL where nothing listens,
    the registry is unreachable (exit 3, one line naming it).
    """
    avro = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        KAFKA_TOPIC_PARTITIONS="3",
        SCHEMA_REGISTRY_URL=schema_registry,
        SCHEMA_REGISTRY_FORMAT="avro",
        **VOLUME,
    )
    backfill(producer_process, avro)
    plain = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=f"{topic}-plain", KAFKA_TOPIC_PARTITIONS="3", **VOLUME)
    backfill(producer_process, plain)
    first = consume_all(broker, topic)[0].value
    assert first[0] == 0
    assert first[5:6] == b"\x00"  # the Avro payload: event_type's enum index, not JSON

    from_avro = report(avro, tmp_path / "avro", *RANGE)
    assert from_avro.returncode == 0, from_avro.stderr
    from_plain = report(plain, tmp_path / "plain", *RANGE)
    assert from_plain.returncode == 0, from_plain.stderr
    assert from_avro.stdout.startswith("foot-traffic report: PASS (6 checks over ")
    assert from_avro.stdout.split("; details in ")[0] == from_plain.stdout.split("; details in ")[0]
    summary = summary_without(tmp_path / "avro", topic)
    assert summary == summary_without(tmp_path / "plain", f"{topic}-plain")
    assert "| exact plan, 7 whole day(s) | 0 of 42 slot counts differ |" in summary

    without_url = {k: v for k, v in avro.items() if k != "SCHEMA_REGISTRY_URL"}
    done = report(without_url, tmp_path / "no-url", *RANGE)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"foot-traffic: error: KAFKA_TOPIC='{topic}' partition ")
    assert "such as Avro; expected SCHEMA_REGISTRY_URL to be set to the registry holding schema id" in line
    assert not (tmp_path / "no-url").exists()

    url = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    unreachable = {**avro, "SCHEMA_REGISTRY_URL": url, "MAX_RETRIES": "2", "RETRY_BACKOFF_SECONDS": "0.2"}
    done = report(unreachable, tmp_path / "down", *RANGE)
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert f"cannot reach the schema registry at {url} after 2 attempt(s) 0.2 s apart: " in errors[0]
    assert errors[0].endswith("; check SCHEMA_REGISTRY_URL")
    assert done.stdout == ""
