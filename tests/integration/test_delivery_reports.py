"""The Kafka sink's cheaper produce path against the real broker: only failures reported, and the partition named.

Without metrics, the sink asks for failed delivery reports only and derives the delivered count; a
one-partition topic's messages name partition 0. Neither may lose an event silently or move a record.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from foot_traffic.events.encoding import EncodedBatch, encode_batch
from foot_traffic.kafka.deadletter import DeadLetterFile
from foot_traffic.kafka.producer import KafkaSink
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.plan import Model, plan_day
from tests.integration.conftest import consume_all, topic_exists

pytestmark = pytest.mark.kafka


def create(broker: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions and wait until it exists."""
    admin = AdminClient({"bootstrap.servers": broker})  # kept alive until the creation is done
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def first_batch(daily: int) -> EncodedBatch:
    """The first encoded batch of a day of ``daily`` customers."""
    plan = plan_day(Model(daily_customers=daily), 1, dt.date(2025, 8, 12))
    return encode_batch(plan, next(iter(day_batches(1, plan))))


def test_failed_deliveries_are_counted_and_dead_lettered_and_delivered_is_the_rest(
    broker: str, topic: str, tmp_path: Path
) -> None:
    """A batch to a topic and 5 events to a missing one: 5 failed (each dead-lettered), delivered = queued − 5."""
    create(broker, topic, 1)
    missing = f"{topic}-missing"
    dead = tmp_path / "dead.jsonl"
    sink = KafkaSink(
        broker,
        topic,
        extra={"allow.auto.create.topics": False, "topic.metadata.propagation.max.ms": 1000},
        dead_letters=DeadLetterFile(dead),
    )
    assert sink.only_errors
    batch = first_batch(20_000)
    half = len(batch) // 2
    sink.send_batch(batch, 0, half)
    lost = [f"lost-{i}" for i in range(5)]
    for key in lost:
        sink.send_to(missing, key, b'{"lost":true}')
    sink.send_batch(batch, half, len(batch))
    assert sink.flush(60) == 0
    sink.close()
    assert (sink.delivered, sink.failed) == (len(batch) + 5 - 5, 5)
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert sorted(letter["key"] for letter in letters) == lost
    assert {letter["topic"] for letter in letters} == {missing}
    assert len(consume_all(broker, topic)) == len(batch)
    assert not topic_exists(broker, missing)


def placement(broker: str, topic: str) -> dict[str, int]:
    """Each record's key and the partition it is in."""
    return {record.key: record.partition for record in consume_all(broker, topic)}


@pytest.mark.parametrize("partitions", [1, 3])
def test_records_land_where_the_clients_own_partitioner_puts_them(broker: str, topic: str, partitions: int) -> None:
    """The sink's records sit in the partitions a default confluent-kafka Producer gives the same keys."""
    ours, theirs = f"{topic}-ours", f"{topic}-theirs"
    create(broker, ours, partitions)
    create(broker, theirs, partitions)
    batch = first_batch(20_000)
    sink = KafkaSink(broker, ours)
    sink.send_batch(batch, 0, len(batch))
    assert sink.flush(60) == 0
    sink.close()
    reference = Producer({"bootstrap.servers": broker})
    for i in range(len(batch)):
        reference.produce(theirs, batch.value(i), batch.key(i))
    assert reference.flush(60) == 0
    placed = placement(broker, ours)
    assert len(placed) == len(batch)
    assert placed == placement(broker, theirs)
    assert len(set(placed.values())) == partitions
