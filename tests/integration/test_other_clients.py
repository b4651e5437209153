"""Clients other than foot-traffic's own read what ``run`` wrote, and the bytes agree everywhere.

kafka-python (the client of the original deployment) and Kafka's own console consumer,
run from the jars ``make kafka-up`` fetched, read plain, exactly-once and registry-framed
Avro topics; the Avro values are decoded by fastavro from the raw bytes, with the schema
fetched from the registry over HTTP. Whatever the reader, the events equal those that a
``SINK=stdout`` run of the same SEED and range prints, byte for byte.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import subprocess
import time
import urllib.request
from typing import Any

import fastavro
import pytest

from tests.integration.conftest import ROOT, base_env, consume_all, run_foot_traffic

# kafka-python, imported by name: for mypy the repository's kafka/ folder (the broker's configuration) shadows it.
kafka_python: Any = importlib.import_module("kafka")
DAY = ("--speed", "max", "--start", "2025-08-12", "--until", "2025-08-13")
JAVA = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
CONSOLE_CONSUMER = (
    JAVA,
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    f"-Dlog4j2.configurationFile={ROOT / 'kafka' / 'tools-log4j2.xml'}",
    "-cp",
    f"{ROOT / '.kafka' / 'lib'}/*",
    "org.apache.kafka.tools.consumer.ConsoleConsumer",
)
# Kafka's BytesDeserializer prints printable ASCII as itself and every other byte (and the backslash) as \xNN.
BYTES_ESCAPE = re.compile(rb"\\x([0-9A-F]{2})")
EMITTED = re.compile(r"Emitted customer_id=(\S+) entry_time=(\S+) time_slot=(\S+)$")


def stdout_run(env: dict[str, str]) -> list[bytes]:
    """The event lines a ``SINK=stdout`` run of the same settings prints (no Kafka, no registry)."""
    plain = {k: v for k, v in env.items() if not k.startswith(("KAFKA_", "SCHEMA_REGISTRY_", "EXACTLY_ONCE"))}
    done = run_foot_traffic("run", *DAY, env={**plain, "SINK": "stdout", "LOG_LEVEL": "WARNING"}, timeout=120)
    assert done.returncode == 0, done.stderr
    return [line.encode() for line in done.stdout.splitlines()]


def kafka_run(env: dict[str, str]) -> list[str]:
    """Run the day into Kafka; return the standard-error lines (its logs)."""
    done = run_foot_traffic("run", *DAY, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def console_consume(broker: str, topic: str, count: int, *options: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` records as Kafka's console consumer prints them, read_committed, from the start."""
    done = subprocess.run(
        [
            *CONSOLE_CONSUMER,
            *("--bootstrap-server", broker, "--topic", topic, "--from-beginning"),
            *("--isolation-level", "read_committed", "--max-messages", str(count), "--timeout-ms", "30000"),
            *("--property", "print.key=true", "--property", "key.separator=\t", *options),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert f"Processed a total of {count} messages".encode() in done.stderr
    lines = done.stdout.split(b"\n")
    assert lines[-1] == b""
    pairs = [line.split(b"\t", 1) for line in lines[:-1]]
    assert all(len(pair) == 2 for pair in pairs)
    return [(key, value) for key, value in pairs]


def kafka_python_records(broker: str, topic: str, timeout: float = 60) -> list[tuple[bytes, bytes]]:
    """(key, value) of every record of the topic, read with kafka-python up to the current end of each partition."""
    consumer = kafka_python.KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, group_id=None)
    try:
        partitions = [kafka_python.TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"kafka-python sees no partition of {topic}"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"kafka-python read {len(records)} records of {topic} in {timeout} s"
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend((record.key, record.value) for record in batch)
        return records
    finally:
        consumer.close()


@pytest.mark.kafka
def test_kafka_python_reads_every_event_keyed_by_customer_id(broker: str, topic: str) -> None:
    """kafka-python reads keys equal to customer_id, values that parse, and exactly the stdout run's events."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS="2000", SEED="kafka-python")
    kafka_run({**env, "KAFKA_TOPIC_PARTITIONS": "3"})
    records = kafka_python_records(broker, topic)
    assert len(records) == 2000
    for key, value in records:
        assert isinstance(key, bytes)
        assert key.decode() == json.loads(value)["customer_id"]
    assert sorted(value for _, value in records) == sorted(stdout_run(env))


@pytest.mark.kafka
@pytest.mark.parametrize("exactly_once", [False, True], ids=["plain", "exactly-once"])
def test_kafkas_console_consumer_reads_the_stdout_runs_events(broker: str, topic: str, exactly_once: bool) -> None:
    """Kafka's console consumer (read_committed) prints the stdout run's lines, keyed by customer_id."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS="1500", SEED="console")
    kafka_run({**env, "EXACTLY_ONCE": "1"} if exactly_once else env)
    expected = stdout_run(env)
    records = console_consume(broker, topic, len(expected))
    assert [value for _, value in records] == expected  # one partition: the emission order
    assert [key.decode() for key, _ in records] == [json.loads(line)["customer_id"] for line in expected]


def registry_schema(url: str, schema_id: int) -> dict[str, Any]:
    """The schema the registry holds under ``schema_id``, fetched over HTTP without any client library."""
    with urllib.request.urlopen(f"{url}/schemas/ids/{schema_id}", timeout=30) as response:  # noqa: S310 - test URL
        schema = json.loads(json.loads(response.read())["schema"])
    assert isinstance(schema, dict)
    return schema


@pytest.mark.kafka
@pytest.mark.registry
def test_console_consumer_bytes_decoded_by_fastavro_are_the_json_events(
    broker: str, schema_registry: str, topic: str
) -> None:
    """Avro values printed by Kafka's console consumer, decoded by fastavro past the 5-byte header, are the events."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS="1000", SEED="fastavro")
    expected = [json.loads(line) for line in stdout_run(env)]
    kafka_run({**env, "SCHEMA_REGISTRY_URL": schema_registry, "SCHEMA_REGISTRY_FORMAT": "avro"})
    deserializer = "value.deserializer=org.apache.kafka.common.serialization.BytesDeserializer"
    records = console_consume(broker, topic, len(expected), "--property", deserializer)
    values = [BYTES_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value) for _, value in records]
    assert {value[0] for value in values} == {0}
    (schema_id,) = {int.from_bytes(value[1:5], "big") for value in values}
    schema = fastavro.parse_schema(registry_schema(schema_registry, schema_id))
    events = []
    for value in values:
        body = io.BytesIO(value[5:])
        event = fastavro.schemaless_reader(body, schema, None)
        assert body.read() == b"", "the record holds exactly one Avro datum"
        assert isinstance(event, dict)
        events.append({k: v for k, v in event.items() if not (k == "store_id" and v is None)})
    assert events == expected
    assert [key.decode() for key, _ in records] == [e["customer_id"] for e in expected]


@pytest.mark.kafka
def test_stdout_kafka_values_and_log_lines_quote_the_same_bytes(broker: str, topic: str) -> None:
    """Stdout lines equal the Kafka values byte for byte, in the README's form, and each log line quotes its event."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS="800", SEED="bytes")
    logs = kafka_run(env)
    lines = stdout_run(env)
    assert [record.value for record in consume_all(broker, topic)] == lines
    quoted = [match.groups() for line in logs if (match := EMITTED.search(line))]
    events = [json.loads(line) for line in lines]
    assert quoted == [(e["customer_id"], e["entry_time"], e["time_slot"]) for e in events]
    # the README's byte form: compact separators, fields in order, the en dash as raw UTF-8, no escapes
    form = re.compile(
        rb'\{"event_type":"foot_traffic","customer_id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",'
        rb'"entry_time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00","exit_time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00",'
        rb'"trip_duration_minutes":\d\d,"weekday":"Tuesday","time_slot":"\d\d:\d\d\xe2\x80\x93\d\d:\d\d"\}'
    )
    assert all(form.fullmatch(line) for line in lines)
    for line, event in zip(lines, events, strict=True):
        assert line == json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        assert b" " not in line
        assert b"\\" not in line  # no escape at all: the en dash of time_slot is raw UTF-8, not \u2013
