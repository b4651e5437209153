"""``foot-traffic run`` end to end against the real local broker."""

from __future__ import annotations

import bisect
import datetime as dt
import json
import re
import signal
import time
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient
from jsonschema import Draft202012Validator

from foot_traffic.events.schema import EVENT_SCHEMA
from foot_traffic.model.grid import DEFAULT_GRID, WEEKDAYS
from tests.integration.conftest import ProducerProcess, base_env, consume_all, free_port, topic_exists

FIELDS = ["event_type", "customer_id", "entry_time", "exit_time", "trip_duration_minutes", "weekday", "time_slot"]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
EMITTED = re.compile(r"Emitted customer_id=([0-9a-f-]{36}) ")
SUMMARY = re.compile(r"Summary: planned=(\d+) emitted=(\d+) delivered=(\d+) failed=(\d+)")
FAST = "20000000"  # customers per day: a couple of hundred events per second

Start = Callable[..., ProducerProcess]


def emitted_ids(process: ProducerProcess) -> list[str]:
    """customer_ids of the per-event log lines, in order."""
    return [m.group(1) for line in process.stderr if (m := EMITTED.search(line))]


def summary(process: ProducerProcess) -> tuple[int, int, int, int]:
    """The numbers of the summary line."""
    (line,) = process.lines_with("Summary:")
    match = SUMMARY.search(line)
    assert match, line
    planned, emitted, delivered, failed = (int(g) for g in match.groups())
    return planned, emitted, delivered, failed


def assert_event_shape(event: dict[str, object]) -> None:
    """The specification's schema, field by field, and the shipped JSON Schema."""
    Draft202012Validator(EVENT_SCHEMA).validate(event)
    assert list(event) == FIELDS
    assert event["event_type"] == "foot_traffic"
    assert isinstance(event["customer_id"], str)
    assert UUID4.match(event["customer_id"])
    entry = dt.datetime.fromisoformat(str(event["entry_time"]))
    exit_ = dt.datetime.fromisoformat(str(event["exit_time"]))
    assert str(event["entry_time"]).endswith("+00:00")
    assert re.search(r"\.\d{6}\+00:00$", str(event["entry_time"]))
    assert isinstance(event["trip_duration_minutes"], int)
    assert 10 <= event["trip_duration_minutes"] <= 75
    assert exit_ - entry == dt.timedelta(minutes=event["trip_duration_minutes"])
    assert event["weekday"] == WEEKDAYS[entry.weekday()]
    slot = bisect.bisect_right(DEFAULT_GRID.starts, entry.hour * 60 + entry.minute) - 1
    assert event["time_slot"] == DEFAULT_GRID.labels[slot]


@pytest.mark.kafka
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_events_reach_kafka_keyed_in_order_and_all_of_them_after_a_signal(
    broker: str, topic: str, producer_process: Start, sig: int
) -> None:
    """Events arrive keyed, in order, with the exact schema, and all of them, once, after a stop signal."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS=FAST, SEED="it")
    process = producer_process([], env)
    process.wait_for_emitted(150)
    assert process.stop(sig) == 0
    ids = emitted_ids(process)
    planned, emitted, delivered, failed = summary(process)
    assert (emitted, delivered, failed) == (len(ids), len(ids), 0)
    assert planned >= emitted
    assert len(process.lines_with("Planned total (from now):")) == 1
    records = consume_all(broker, topic)
    assert [r.key for r in records] == ids
    events = [json.loads(r.value) for r in records]
    assert [e["customer_id"] for e in events] == ids
    for event in events:
        assert_event_shape(event)
    entries = [dt.datetime.fromisoformat(e["entry_time"]) for e in events]
    assert entries == sorted(entries)
    assert len(set(ids)) == len(ids)


@pytest.mark.kafka
def test_missing_topic_is_created_with_the_configured_partitions(
    broker: str, topic: str, producer_process: Start
) -> None:
    """A missing topic is created with KAFKA_TOPIC_PARTITIONS partitions; keyed events spread over them."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS=FAST, KAFKA_TOPIC_PARTITIONS="3")
    process = producer_process([], env)
    process.wait_for_emitted(60)
    assert process.stop() == 0
    metadata = AdminClient({"bootstrap.servers": broker}).list_topics(topic, timeout=30)
    assert len(metadata.topics[topic].partitions) == 3
    records = consume_all(broker, topic)
    assert sorted(r.key for r in records) == sorted(emitted_ids(process))
    assert len({r.partition for r in records}) > 1
    assert process.lines_with(f"Created topic {topic} (3 partition(s), replication factor 1)")


@pytest.mark.kafka
def test_topic_that_cannot_be_created_is_a_clear_error(broker: str, topic: str, producer_process: Start) -> None:
    """A replication factor the cluster cannot meet stops the producer with a message saying why."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, KAFKA_TOPIC_REPLICATION_FACTOR="3")
    process = producer_process([], env)
    assert process.finish(90) == 3
    (line,) = process.lines_with("cannot be created")
    assert f"topic '{topic}' does not exist on {broker}" in line
    assert "replication factor 3" in line
    assert "Traceback" not in "\n".join(process.stderr)
    assert not topic_exists(broker, topic)


@pytest.mark.kafka
def test_unreachable_broker_fails_after_the_configured_retries(producer_process: Start) -> None:
    """With nobody listening, the producer tries MAX_RETRIES times, then exits 3 with one line naming the broker."""
    address = f"127.0.0.1:{free_port()}"
    env = base_env(
        KAFKA_BROKER=address, MAX_RETRIES="3", RETRY_BACKOFF_SECONDS="0.3", KAFKA_CONNECT_TIMEOUT_SECONDS="1"
    )
    started = time.monotonic()
    process = producer_process([], env)
    assert process.finish(60) == 3
    elapsed = time.monotonic() - started
    retries = process.lines_with("not reachable (attempt")
    assert [re.search(r"attempt (\d) of 3", line).group(1) for line in retries] == ["1", "2"]  # type: ignore[union-attr]
    (final,) = process.lines_with("cannot reach Kafka")
    assert f"cannot reach Kafka at {address} after 3 attempt(s) 0.3 s apart" in final
    assert "KAFKA_BROKER" in final
    assert elapsed >= 0.6
    assert "Traceback" not in "\n".join(process.stderr)


@pytest.mark.kafka
def test_bad_input_sends_nothing(broker: str, topic: str, producer_process: Start) -> None:
    """An invalid setting exits 2 before anything touches Kafka: the topic is never created."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS=FAST, DISABLE_DAILY_VARIATION="perhaps")
    process = producer_process([], env)
    assert process.finish(30) == 2
    assert process.stderr == [
        "foot-traffic: error: DISABLE_DAILY_VARIATION='perhaps': expected one of 1/0, true/false, yes/no, on/off"
    ]
    assert not topic_exists(broker, topic)


@pytest.mark.parametrize("command", ["run", "report"])
def test_ctrl_c_while_waiting_for_kafka_exits_130_in_one_line(producer_process: Start, command: str) -> None:
    """SIGINT before a run's loop starts (or during a report) ends the command at once: 130, no traceback."""
    env = base_env(
        KAFKA_BROKER=f"127.0.0.1:{free_port()}",
        MAX_RETRIES="5",
        RETRY_BACKOFF_SECONDS="60",
        KAFKA_CONNECT_TIMEOUT_SECONDS="2",
    )
    args = ["--start", "2025-08-12", "--until", "2025-08-13"] if command == "report" else []
    process = producer_process(args, env, command=command)
    process.wait_for(lambda: bool(process.lines_with("not reachable (attempt 1 of 5)")), 60, "the first retry")
    began = time.monotonic()
    assert process.stop(signal.SIGINT, timeout=20) == 130
    assert time.monotonic() - began < 10, "the 60 s backoff is not waited out"
    assert process.stderr[-1].endswith(f"ERROR foot_traffic: Interrupted by SIGINT before {command} finished")
    assert not process.lines_with("Traceback")
