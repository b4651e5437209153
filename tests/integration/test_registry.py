"""Schema Registry serialisation end to end: the real broker and a real schema registry (``make test`` starts both).

Values are read back with confluent-kafka's own deserializers and a client of
their own, never with foot-traffic's code, and compared with the plain JSON of
a ``SINK=stdout`` run of the same SEED.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.conftest import (
    ROOT,
    ProducerProcess,
    base_env,
    consume_all,
    consume_committed,
    free_port,
    run_foot_traffic,
    topic_exists,
    wait_for_a_commit,
)

DATA = Path(__file__).resolve().parent / "data"
DAY = ["--speed", "max", "--start", "2025-08-12", "--until", "2025-08-13"]

Start = Callable[..., ProducerProcess]


def plain_run(env: dict[str, str]) -> list[bytes]:
    """The JSON lines of the same run on standard output (no Kafka, no registry)."""
    stdout_env = {k: v for k, v in env.items() if not k.startswith(("SCHEMA_REGISTRY_", "KAFKA_"))}
    done = subprocess.run(
        [sys.executable, "-m", "foot_traffic", "run", *DAY],
        env={**stdout_env, "SINK": "stdout", "LOG_LEVEL": "WARNING"},
        capture_output=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    return done.stdout.splitlines()


def decoded(fmt: str, url: str, topic: str, values: list[bytes]) -> list[dict[str, Any]]:
    """Values decoded by confluent-kafka's ``fmt`` deserializer on a client of its own (null store_id left out)."""
    events = []
    with SchemaRegistryClient({"url": url}) as client:
        if fmt == "avro":
            deserializer: Any = AvroDeserializer(client)
        else:
            deserializer = JSONDeserializer(None, schema_registry_client=client)
        for value in values:
            event = deserializer(value, SerializationContext(topic, MessageField.VALUE))
            assert isinstance(event, dict)
            events.append({k: v for k, v in event.items() if not (k == "store_id" and v is None)})
    return events


def latest_schema(url: str, topic: str) -> tuple[int, str]:
    """The id and type of the newest schema the registry holds under ``<topic>-value``."""
    with SchemaRegistryClient({"url": url}) as client:
        assert f"{topic}-value" in client.get_subjects()
        registered = client.get_latest_version(f"{topic}-value")
        return int(registered.schema_id), str(registered.schema.schema_type)


@pytest.mark.kafka
@pytest.mark.registry
@pytest.mark.parametrize(
    ("fmt", "stores"),
    [("json", None), ("avro", None), ("avro", "stores_two.toml"), ("json", "stores_two.toml")],
    ids=["json", "avro", "avro-two-stores", "json-two-stores"],
)
def test_framed_events_decode_to_the_plain_runs_events(
    broker: str, schema_registry: str, topic: str, fmt: str, stores: str | None
) -> None:
    """Every value is magic byte 0 + the id registered under <topic>-value, and decodes to the plain run's event."""
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, DAILY_CUSTOMERS="3000", SEED=f"sr-{fmt}")
    if stores is not None:
        env["STORES_FILE"] = str(DATA / stores)
    plain = plain_run(env)
    env.update(SCHEMA_REGISTRY_URL=schema_registry, SCHEMA_REGISTRY_FORMAT=fmt, LOG_LEVEL="WARNING")
    done = run_foot_traffic("run", *DAY, env=env)
    assert done.returncode == 0, done.stderr
    schema_id, schema_type = latest_schema(schema_registry, topic)
    assert schema_type == {"json": "JSON", "avro": "AVRO"}[fmt]
    records = consume_all(broker, topic)
    assert len(records) == len(plain) > 1000
    events = decoded(fmt, schema_registry, topic, [r.value for r in records])
    for record in records:
        assert record.value[0] == 0
        assert int.from_bytes(record.value[1:5], "big") == schema_id
    assert events == [json.loads(line) for line in plain]
    assert [r.key for r in records] == [e["customer_id"] for e in events]
    assert any("store_id" in e for e in events) == (stores is not None)
    if fmt == "json":
        assert [r.value[5:] for r in records] == plain


@pytest.mark.kafka
@pytest.mark.registry
@pytest.mark.parametrize("fmt", ["json", "avro"])
def test_same_seed_and_schema_id_give_the_same_bytes(broker: str, schema_registry: str, fmt: str) -> None:
    """Two runs of one SEED into two topics: the registry gives the schema one id, the values are equal bytes."""
    topics = [f"ft-test-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in topics:
        env = base_env(
            KAFKA_BROKER=broker,
            KAFKA_TOPIC=name,
            DAILY_CUSTOMERS="500",
            SEED="same",
            SCHEMA_REGISTRY_URL=schema_registry,
            SCHEMA_REGISTRY_FORMAT=fmt,
        )
        done = run_foot_traffic("run", *DAY, env=env)
        assert done.returncode == 0, done.stderr
    ids = {latest_schema(schema_registry, name)[0] for name in topics}
    assert len(ids) == 1
    first, second = ([r.value for r in consume_all(broker, name)] for name in topics)
    assert len(first) == 500
    assert first == second


@pytest.mark.kafka
def test_unreachable_registry_is_exit_3_and_nothing_is_produced(broker: str, topic: str) -> None:
    """With no registry at the URL: exit 3, one error line naming it, no topic created, no event sent."""
    url = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        SCHEMA_REGISTRY_URL=url,
        MAX_RETRIES="2",
        RETRY_BACKOFF_SECONDS="0.2",
        DAILY_CUSTOMERS="500",
    )
    done = run_foot_traffic("run", *DAY, env=env)
    assert done.returncode == 3
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert f"cannot reach the schema registry at {url} after 2 attempt(s)" in errors[0]
    assert done.stdout == ""
    assert not topic_exists(broker, topic)


@pytest.mark.kafka
@pytest.mark.registry
def test_exactly_once_resumes_from_framed_events_after_sigkill(
    broker: str, schema_registry: str, topic: str, producer_process: Start
) -> None:
    """EXACTLY_ONCE, Avro: SIGKILL mid-run; the restart reads the framed tail back; the topic holds the plan once."""
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        EXACTLY_ONCE="1",
        DAILY_CUSTOMERS="20000",
        SEED="eo-sr",
        SCHEMA_REGISTRY_URL=schema_registry,
        SCHEMA_REGISTRY_FORMAT="avro",
    )
    backfill = ["--speed", "20000", "--start", "2025-08-12", "--until", "2025-08-13"]
    first = producer_process(backfill, env)
    first.wait_for_emitted(1500)
    wait_for_a_commit(broker, topic)
    first.proc.kill()
    first.finish(30)
    final = producer_process(backfill, env)
    assert final.finish(180) == 0
    assert final.lines_with("Resuming after customer_id=")
    plain = plain_run({k: v for k, v in env.items() if k != "EXACTLY_ONCE"})
    records = consume_committed(broker, topic)
    assert decoded("avro", schema_registry, topic, [value for _, value in records]) == [
        json.loads(line) for line in plain
    ]
    assert [key for key, _ in records] == [json.loads(line)["customer_id"] for line in plain]
