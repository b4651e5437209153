"""The Kafka adapter's accounting, with an in-memory stand-in for confluent-kafka's Producer.

This proves only the bookkeeping; the integration tests prove delivery to a real broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from foot_traffic.kafka_sink import KafkaSink, producer_config


class FakeMessage:
    """The part of confluent_kafka.Message the delivery callback reads."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def key(self) -> bytes:
        return self._key


class FakeProducer:
    """Queues produce calls; ``deliver`` fires their callbacks with a chosen error."""

    def __init__(self, config: dict[str, Any], logger: logging.Logger | None = None) -> None:
        self.config = config
        self.queue: list[tuple[bytes, Callable[[KafkaError | None, FakeMessage], None]]] = []
        self.full_for = 0
        self.purged = False

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        if self.full_for:
            self.full_for -= 1
            raise BufferError("queue full")
        self.queue.append((key, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def deliver(self, error: KafkaError | None) -> None:
        key, callback = self.queue.pop(0)
        callback(error, FakeMessage(key))

    def flush(self, timeout: float = 0) -> int:
        return len(self.queue)

    def purge(self) -> None:
        self.purged = True
        while self.queue:
            self.deliver(KafkaError(KafkaError._PURGE_QUEUE))

    def __len__(self) -> int:
        return len(self.queue)


def make_sink() -> tuple[KafkaSink, FakeProducer]:
    """A sink wired to a fake producer."""
    made: list[FakeProducer] = []

    def factory(config: dict[str, Any], logger: logging.Logger | None = None) -> FakeProducer:
        made.append(FakeProducer(config, logger))
        return made[-1]

    sink = KafkaSink("b:9092", "t", producer_factory=factory)  # type: ignore[arg-type]
    return sink, made[0]


def test_producer_is_durable_and_idempotent() -> None:
    """The producer asks for acks=all and idempotence."""
    _, producer = make_sink()
    assert producer.config["acks"] == "all"
    assert producer.config["enable.idempotence"] is True
    assert producer_config("x:1")["bootstrap.servers"] == "x:1"


def test_failed_delivery_is_logged_with_its_customer_id_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """A delivery report with an error counts as failed and names the customer."""
    sink, producer = make_sink()
    sink.send("id-1", b"{}")
    sink.send("id-2", b"{}")
    producer.deliver(None)
    producer.deliver(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert (sink.delivered, sink.failed) == (1, 1)
    assert any("customer_id=id-2" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_full_queue_waits_instead_of_dropping() -> None:
    """BufferError makes the sink poll and retry; the event is queued, not lost."""
    sink, producer = make_sink()
    producer.full_for = 3
    sink.send("id-1", b"{}")
    assert len(producer.queue) == 1


def test_close_fails_what_is_still_unconfirmed() -> None:
    """Closing with events in flight purges them, and each is counted as failed."""
    sink, producer = make_sink()
    for i in range(3):
        sink.send(f"id-{i}", b"{}")
    producer.deliver(None)
    assert sink.flush(0) == 2
    sink.close()
    assert producer.purged
    assert (sink.delivered, sink.failed) == (1, 2)


def test_all_brokers_down_is_logged_once_then_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    """An outage gives one warning however often the client reports it, and one on recovery."""
    sink, producer = make_sink()
    error_cb = producer.config["error_cb"]
    for _ in range(5):
        error_cb(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    sink.send("id-1", b"{}")
    producer.deliver(None)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("are down" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
