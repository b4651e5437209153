"""A fleet member's transactional producer that the real broker fences is replaced; the run goes on, exactly once.

The broker aborts a transaction that outlives the producer's transaction.timeout.ms (the process hung)
and bumps the producer's epoch: every later transaction call of that producer fails for good.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from foot_traffic.kafka.producer import KafkaSink
from foot_traffic.kafka.transactions import Held, TransactionalKafkaSink
from foot_traffic.model.units import Unit
from foot_traffic.run.positions import Position
from tests.integration.conftest import consume_committed
from tests.integration.test_delivery_reports import create

pytestmark = pytest.mark.kafka


def log_end(broker: str, topic: str, isolation: str) -> int:
    """The end of partition 0 of ``topic`` for a reader of ``isolation``: read_committed's is the last stable offset."""
    consumer = Consumer(
        {"bootstrap.servers": broker, "group.id": f"ft-test-{uuid.uuid4().hex}", "isolation.level": isolation}
    )
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1])
    finally:
        consumer.close()


def wait_until_no_transaction_is_open(broker: str, topic: str, timeout: float = 60) -> None:
    """Block until no open transaction holds ``topic`` back: its last stable offset is its log end."""
    deadline = time.monotonic() + timeout
    while log_end(broker, topic, "read_committed") != log_end(broker, topic, "read_uncommitted"):
        assert time.monotonic() < deadline, f"a transaction on {topic} still open after {timeout:g} s"
        time.sleep(0.2)


def test_a_member_whose_transaction_the_broker_aborted_replaces_its_producer(
    broker: str, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two events, then a hang past transaction.timeout.ms: the commit is refused for good; a new producer sends on.

    The aborted events are withdrawn and the owner rewinds once; the two events sent after are the only ones
    a read_committed reader sees.
    """
    create(broker, topic, 1)
    plain = KafkaSink(
        broker, topic, extra={"transactional.id": f"ft-test-{uuid.uuid4().hex}", "transaction.timeout.ms": 1000}
    )
    sink = TransactionalKafkaSink(plain, commit_interval_s=3600.0, timeout_s=10)
    rewinds: list[int] = []

    def commit(taken: Mapping[Unit, Position], timeout_s: float) -> bool:  # a fleet's committer, without offsets
        try:
            sink.client.commit_transaction(timeout_s)
        except KafkaException:
            rewinds.append(1)
            return False
        return True

    sink.commit_through(commit, lambda: rewinds.append(1))
    for key in ("lost-1", "lost-2"):
        sink.send(key, b'{"n":1}', None, "s")
    assert sink.client.flush(10) == 0, "both acknowledged inside the open transaction"
    wait_until_no_transaction_is_open(broker, topic)  # the hang: the broker aborts the transaction
    sink.commit_now()
    assert rewinds == [1]
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 0, Held(events=2))
    replaced = [r.getMessage() for r in caplog.records if r.getMessage().startswith("The producer failed for good")]
    assert len(replaced) == 1, replaced
    for key in ("kept-1", "kept-2"):
        sink.send(key, b'{"n":2}', None, "s")
    assert sink.flush(10) == 0
    sink.close()
    assert (sink.delivered, sink.failed) == (2, 0)
    assert [key for key, _ in consume_committed(broker, topic)] == ["kept-1", "kept-2"]
