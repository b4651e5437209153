"""The Kafka adapter's accounting, with an in-memory stand-in for confluent-kafka's Producer.

This proves only the bookkeeping; the integration tests prove delivery to a real broker.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from foot_traffic.errors import DeliveryError
from foot_traffic.events.encoding import EncodedBatch, encode_batch
from foot_traffic.kafka.client import producer_config
from foot_traffic.kafka.deadletter import DeadLetterFile
from foot_traffic.kafka.producer import FailureLog
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.plan import Model, plan_day
from foot_traffic.run.recording import NoMetrics
from tests.unit.fakes import FakeMessage, fake_sink


def test_producer_is_durable_and_idempotent() -> None:
    """The producer asks for acks=all and idempotence."""
    _, producer = fake_sink()
    assert producer.config["acks"] == "all"
    assert producer.config["enable.idempotence"] is True
    assert producer_config("x:1")["bootstrap.servers"] == "x:1"


def test_failed_delivery_is_logged_with_its_customer_id_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """A delivery report with an error counts as failed and names the customer."""
    sink, producer = fake_sink()
    sink.send("id-1", b"{}", None, "slot")
    sink.send("id-2", b"{}", None, "slot")
    producer.deliver(None)
    producer.deliver(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert (sink.delivered, sink.failed) == (1, 1)
    assert any("customer_id=id-2" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_full_queue_waits_instead_of_dropping() -> None:
    """BufferError makes the sink poll and retry; the event is queued, not lost."""
    sink, producer = fake_sink()
    producer.full_for = 3
    sink.send("id-1", b"{}", None, "slot")
    assert len(producer.queue) == 1


def a_batch(store_id: str | None = None) -> EncodedBatch:
    """The first encoded batch of a day's plan."""
    plan = plan_day(Model(daily_customers=600), 1, dt.date(2025, 1, 6))
    return encode_batch(plan, next(iter(day_batches(1, plan))), store_id)


def test_a_full_queue_during_a_batch_waits_and_keeps_every_event_in_order() -> None:
    """BufferError on a batch's first event: the sink polls and retries; each event is queued once, in order."""
    sink, producer = fake_sink()
    batch = a_batch()
    producer.full_for = 3
    sink.send_batch(batch, 0, 10)
    values = [m.value() for m, _ in producer.queue]
    assert values == [bytes(v) for v in batch.values(0, 10)]
    assert [m.key() for m, _ in producer.queue] == [json.loads(v)["customer_id"].encode() for v in values]


@pytest.mark.parametrize("full_first", [0, 1], ids=["refused", "full-then-refused"])
def test_an_event_of_a_batch_the_client_refuses_stops_the_run(full_first: int) -> None:
    """A refusal, even after waiting for room, counts the event as failed and raises DeliveryError naming it."""
    sink, producer = fake_sink()
    batch = a_batch()
    producer.full_for = full_first
    producer.refuse = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    with pytest.raises(DeliveryError, match=f"cannot produce event {batch.key(0).decode()}: MSG_SIZE_TOO_LARGE"):
        sink.send_batch(batch, 0, 10)
    assert (sink.failed, len(producer.queue)) == (1, 0)


def test_close_fails_what_is_still_unconfirmed() -> None:
    """Closing with events in flight purges them, and each is counted as failed."""
    sink, producer = fake_sink()
    for i in range(3):
        sink.send(f"id-{i}", b"{}", None, "slot")
    producer.deliver(None)
    assert sink.flush(0) == 2
    sink.close()
    assert producer.purged
    assert (sink.delivered, sink.failed) == (1, 2)


@pytest.mark.parametrize("every_report", [False, True])
def test_all_brokers_down_is_logged_once_then_recovery_once(
    caplog: pytest.LogCaptureFixture, every_report: bool
) -> None:
    """An outage gives one warning however often the client reports it, and one on recovery (seen at a poll)."""
    sink, producer = fake_sink(extra={"delivery.report.only.error": False} if every_report else None)
    error_cb = producer.config["error_cb"]
    for _ in range(5):
        error_cb(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    sink.send("id-1", b"{}", None, "slot")
    producer.deliver(None)
    sink.poll()
    sink.poll()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("are down" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]


def test_a_long_streak_of_failures_is_condensed_but_every_one_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """The first failures get a line each; the rest are summed in one line per interval and at the end."""
    clock = _Clock()
    failures = FailureLog("; each is in dead.jsonl", first=3, interval_s=10.0, clock=clock)
    for i in range(3):
        failures.failed(f"id-{i}", "_MSG_TIMED_OUT: Local: Message timed out")
    assert _errors(caplog) == [
        f"Delivery failed for customer_id=id-{i}: _MSG_TIMED_OUT: Local: Message timed out" for i in range(3)
    ]
    for i in range(3, 50):  # 47 more within the interval: held back
        clock.now = i * 0.1
        failures.failed(f"id-{i}", "_MSG_TIMED_OUT: Local: Message timed out")
    assert len(_errors(caplog)) == 3
    clock.now = 10.3  # the interval since the first held-back failure has passed: the next one releases them all
    failures.failed("id-50", "_MSG_TIMED_OUT: Local: Message timed out")
    assert _errors(caplog)[3] == (
        "Delivery failed for 48 more event(s) in the last 10 s "
        "(last error: _MSG_TIMED_OUT: Local: Message timed out); each is in dead.jsonl"
    )
    failures.failed("id-51", "_MSG_TIMED_OUT: Local: Message timed out")
    failures.delivered()  # the outage is over: the held-back one is reported, the streak starts again
    assert _errors(caplog)[4].startswith("Delivery failed for 1 more event(s)")
    failures.failed("id-52", "_MSG_TIMED_OUT: Local: Message timed out")
    assert _errors(caplog)[5] == "Delivery failed for customer_id=id-52: _MSG_TIMED_OUT: Local: Message timed out"
    failures.release()
    assert len(_errors(caplog)) == 6  # nothing held back: no empty summary


def test_the_sink_counts_every_failure_and_reports_the_rest_when_flushed(caplog: pytest.LogCaptureFixture) -> None:
    """25 timed-out events: 25 failed, 10 lines naming an id, the other 15 in one line at flush."""
    sink, producer = fake_sink()
    for i in range(25):
        sink.send(f"id-{i}", b"{}", None, "slot")
    for _ in range(25):
        producer.deliver(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert sink.failed == 25
    assert len(_errors(caplog)) == 10
    sink.flush(0)
    (summary,) = _errors(caplog)[10:]
    assert summary.startswith("Delivery failed for 15 more event(s)")
    logged = sum(1 for m in _errors(caplog) if "customer_id=" in m) + 15
    assert logged == sink.failed


class _Counted(NoMetrics):
    """A recorder that counts (metrics served): confirmations are counted per store and slot."""

    enabled = True


@pytest.mark.parametrize(
    ("options", "only_errors"),
    [
        ({}, True),
        ({"metrics": _Counted()}, False),
        ({"extra": {"transactional.id": "t-1"}}, False),
        ({"extra": {"delivery.report.only.error": False}}, False),
    ],
    ids=["plain", "metrics", "transactional", "opted-out"],
)
def test_only_failures_are_reported_where_the_counts_allow_it(options: dict[str, Any], only_errors: bool) -> None:
    """A plain sink asks for failed reports only; with metrics, a transactional id or an explicit false, for all."""
    sink, producer = fake_sink(**options)
    assert sink.only_errors is only_errors
    assert producer.config.get("delivery.report.only.error", False) is only_errors


def test_with_only_failures_reported_delivered_is_queued_less_pending_less_failed(tmp_path: Path) -> None:
    """10 events: 3 confirmed, 1 failed (logged, dead-lettered), 6 in flight give 3; all settled, 10 − 1 = 9."""
    dead = DeadLetterFile(tmp_path / "dead.jsonl")
    sink, producer = fake_sink(dead_letters=dead)
    batch = a_batch()
    sink.send_batch(batch, 0, 10)
    assert (sink.delivered, sink.failed) == (0, 0)
    for error in (None, None, None, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)):
        producer.deliver(error)
    sink.poll()
    assert (sink.delivered, sink.failed, sink.pending()) == (3, 1, 6)
    for _ in range(6):
        producer.deliver(None)
    assert sink.flush(0) == 0
    sink.close()
    assert (sink.delivered, sink.failed) == (9, 1)
    (line,) = (tmp_path / "dead.jsonl").read_text().splitlines()
    assert json.loads(line)["key"] == batch.key(3).decode()


def test_with_only_failures_reported_an_event_refused_mid_batch_is_not_counted_as_queued() -> None:
    """The client takes 4 events of 10 and refuses the 5th: once the 4 are confirmed, 4 delivered and 1 failed."""
    sink, producer = fake_sink()
    batch = a_batch()
    producer.refuse, producer.accept_first = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)), 4
    with pytest.raises(DeliveryError, match=f"cannot produce event {batch.key(4).decode()}"):
        sink.send_batch(batch, 0, 10)
    for _ in range(4):
        producer.deliver(None)
    sink.close()
    assert (sink.delivered, sink.failed) == (4, 1)


def test_with_only_failures_reported_a_confirmation_ends_a_streak_at_the_next_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """12 failures (10 lines, 2 held back), then a confirmation: the next poll reports the 2 held back."""
    sink, producer = fake_sink()
    for i in range(13):
        sink.send(f"id-{i}", b"{}", None, "slot")
    for _ in range(12):
        producer.deliver(KafkaError(KafkaError._MSG_TIMED_OUT))
    producer.deliver(None)
    assert len(_errors(caplog)) == 10
    sink.poll()
    assert _errors(caplog)[10].startswith("Delivery failed for 2 more event(s)")
    assert (sink.delivered, sink.failed) == (1, 12)


@pytest.mark.parametrize(("partitions", "named"), [(1, 0), (3, -1), (None, -1)], ids=["one", "three", "unknown"])
def test_the_partition_is_named_only_when_the_topic_has_one(partitions: int | None, named: int) -> None:
    """One partition: every message names partition 0; more, or no metadata: the partitioner chooses (-1)."""
    sink, producer = fake_sink(partitions=partitions)
    sink.send_batch(a_batch(), 0, 3)
    sink.send("id-1", b"{}", None, "slot")
    sink.send_to("exits", "id-2", b"{}")
    assert [m.partition for m, _ in producer.queue] == [named, named, named, named, -1]


def test_a_full_queue_keeps_the_named_partition() -> None:
    """BufferError on a one-partition topic: the retried event still names partition 0."""
    sink, producer = fake_sink(partitions=1)
    producer.full_for = 2
    sink.send_batch(a_batch(), 0, 2)
    assert [m.partition for m, _ in producer.queue] == [0, 0]


def test_with_only_failures_reported_the_delivered_count_never_goes_back() -> None:
    """3 of 5 confirmed; the client's length then grows by an event that is no message: delivered stays 3."""
    sink, producer = fake_sink()
    for i in range(5):
        sink.send(f"id-{i}", b"{}", None, "slot")
    for _ in range(3):
        producer.deliver(None)
    assert sink.delivered == 3
    producer.queue.append((FakeMessage("t", b"", b""), lambda err, msg: None))  # e.g. an error event, queued
    assert sink.delivered == 3
