"""The Kafka adapter's accounting, with an in-memory stand-in for confluent-kafka's Producer.

This proves only the bookkeeping; the integration tests prove delivery to a real broker.
"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from foot_traffic.kafka_sink import producer_config
from tests.unit.fakes import fake_sink


def test_producer_is_durable_and_idempotent() -> None:
    """The producer asks for acks=all and idempotence."""
    _, producer = fake_sink()
    assert producer.config["acks"] == "all"
    assert producer.config["enable.idempotence"] is True
    assert producer_config("x:1")["bootstrap.servers"] == "x:1"


def test_failed_delivery_is_logged_with_its_customer_id_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """A delivery report with an error counts as failed and names the customer."""
    sink, producer = fake_sink()
    sink.send("id-1", b"{}")
    sink.send("id-2", b"{}")
    producer.deliver(None)
    producer.deliver(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert (sink.delivered, sink.failed) == (1, 1)
    assert any("customer_id=id-2" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_full_queue_waits_instead_of_dropping() -> None:
    """BufferError makes the sink poll and retry; the event is queued, not lost."""
    sink, producer = fake_sink()
    producer.full_for = 3
    sink.send("id-1", b"{}")
    assert len(producer.queue) == 1


def test_close_fails_what_is_still_unconfirmed() -> None:
    """Closing with events in flight purges them, and each is counted as failed."""
    sink, producer = fake_sink()
    for i in range(3):
        sink.send(f"id-{i}", b"{}")
    producer.deliver(None)
    assert sink.flush(0) == 2
    sink.close()
    assert producer.purged
    assert (sink.delivered, sink.failed) == (1, 2)


def test_all_brokers_down_is_logged_once_then_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    """An outage gives one warning however often the client reports it, and one on recovery."""
    sink, producer = fake_sink()
    error_cb = producer.config["error_cb"]
    for _ in range(5):
        error_cb(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    sink.send("id-1", b"{}")
    producer.deliver(None)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("are down" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
