"""The exactly-once sink counts events per transaction: delivered at commit, withdrawn at a rewind's abort."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

import pytest
from confluent_kafka import KafkaError, KafkaException

from foot_traffic.cli.run_command import _summary
from foot_traffic.errors import DeliveryError, KafkaUnavailableError
from foot_traffic.kafka.transactions import Held, TransactionalKafkaSink
from foot_traffic.model.plan import Model
from foot_traffic.model.units import Unit
from foot_traffic.retry import Backoff
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.positions import Position, Positions
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink
from tests.unit.fakes import FakeProducer, fake_sink

START = 1_755_000_000_000_000
OK = None
PURGED = KafkaError(KafkaError._PURGE_QUEUE)


class Refusing:
    """A fleet's committer that refuses every commit (an older generation's member), as a fleet would."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, taken: Mapping[Unit, Position], timeout_s: float) -> bool:
        self.calls += 1
        return False


def sink_over_fake() -> tuple[TransactionalKafkaSink, FakeProducer]:
    """A transactional sink over a fake producer that commits only when asked (an hour's interval)."""
    plain, producer = fake_sink(topic="t")
    return TransactionalKafkaSink(plain, commit_interval_s=3600.0, timeout_s=1), producer


def test_events_are_delivered_when_their_transaction_commits() -> None:
    """Acknowledged events are not delivered until their transaction commits; then each counts once."""
    sink, producer = sink_over_fake()
    sink.send("c1", b"{}", None, "s")
    sink.send_to("sensors", "c1", b"{}")
    producer.deliver_all(OK)
    assert (sink.delivered, sink.failed) == (0, 0), "acknowledged inside an open transaction: not yet delivered"
    sink.commit_now()
    assert (sink.delivered, sink.failed, sink.withdrawn) == (2, 0, Held())


def test_a_refused_fleet_commit_withdraws_its_events_neither_delivered_nor_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The committer refuses: the transaction is aborted; its acked and purged events are withdrawn, not counted."""
    sink, producer = sink_over_fake()
    committer = Refusing()
    sink.commit_through(committer, lambda: None)
    sink.send("c1", b"{}", None, "s")
    producer.deliver(OK)  # acknowledged, then aborted: never seen by a read_committed reader
    sink.send("c2", b"{}", None, "s")
    sink.send_to("sensors", "c2", b"{}")
    sink.commit_now()
    producer.deliver_all(PURGED)  # the abort purges what was still queued
    assert committer.calls == 1
    assert producer.calls == ["init", "begin", "abort"]
    assert not sink.is_open
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 0, Held(events=2, others=1))
    assert "Aborted a transaction of 3 event(s); they are sent again" in [r.getMessage() for r in caplog.records]


def test_events_sent_again_after_an_abort_count_once() -> None:
    """A fleet's lost partitions abort the transaction; the rewind sends the events again; each is delivered once."""
    sink, producer = sink_over_fake()
    for key in ("c1", "c2", "c3"):
        sink.send(key, b"{}", None, "s")
    producer.deliver(OK)
    sink.abort()
    producer.deliver_all(PURGED)
    for key in ("c1", "c2", "c3"):  # the rewind
        sink.send(key, b"{}", None, "s")
    sink.commit_now()
    producer.deliver_all(OK)
    assert producer.calls == ["init", "begin", "abort", "begin", "commit"]
    assert (sink.delivered, sink.failed, sink.withdrawn) == (3, 0, Held(events=3))


def test_an_abort_without_an_open_transaction_withdraws_nothing() -> None:
    """Aborting when every transaction is committed changes no count and calls nothing on the client."""
    sink, producer = sink_over_fake()
    sink.send("c1", b"{}", None, "s")
    sink.commit_now()
    sink.abort()
    assert producer.calls == ["init", "begin", "commit"]
    assert (sink.delivered, sink.withdrawn) == (1, Held())


def test_a_commit_that_fails_outside_a_fleet_fails_its_events() -> None:
    """Without a fleet nothing sends an aborted transaction again: its events, acked or not, count as failed."""
    sink, producer = sink_over_fake()
    sink.send("c1", b"{}", None, "s")
    sink.send("c2", b"{}", None, "s")
    producer.deliver(OK)
    producer.refuse_commit = KafkaException(KafkaError(KafkaError._FENCED, "fenced"))
    with pytest.raises(DeliveryError, match="the transaction was aborted; restart to resume exactly once"):
        sink.commit_now()
    producer.deliver_all(PURGED)
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 2, Held())


def test_a_refused_event_aborts_the_transaction_and_drops_its_positions() -> None:
    """An event refused outright aborts the open transaction: its events fail, no noted position is committed."""
    sink, producer = sink_over_fake()
    positions = Positions(dated=False, start_us=START)
    sink.carry(None, positions)
    positions.note("a", dt.date(2025, 8, 12), 0, done=False)
    sink.send("c1", b"{}", "a", "s")
    positions.note("a", dt.date(2025, 8, 12), 1, done=False)
    producer.refuse = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"))
    with pytest.raises(DeliveryError, match="cannot produce event c2"):
        sink.send("c2", b"{}", "a", "s")
    assert producer.calls == ["init", "begin", "abort"]
    assert (sink.delivered, sink.failed) == (0, 2)
    assert not positions.pending()
    assert sink.flush(0) == len(producer.queue), "nothing left to commit: no transaction begins"
    assert producer.calls == ["init", "begin", "abort"]


def test_in_a_fleet_an_event_refused_until_an_abort_rewinds_instead_of_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hang outlived the transaction's messages: the refused send aborts, withdraws all 3 events, and rewinds."""
    sink, producer = sink_over_fake()
    rewinds: list[int] = []
    sink.commit_through(Refusing(), lambda: rewinds.append(1))
    sink.send("c1", b"{}", "a", "s")
    sink.send_to("sensors", "c1", b"{}")
    producer.refuse = KafkaException(KafkaError(KafkaError._STATE, "Erroneous state"))
    sink.send("c2", b"{}", "a", "s")  # no exception: the owner sends the transaction's events again
    producer.deliver_all(PURGED)
    assert rewinds == [1]
    assert producer.calls == ["init", "begin", "abort"]
    assert not sink.is_open
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 0, Held(events=2, others=1))
    assert any("aborted the transaction: its 3 event(s) are sent again" in r.getMessage() for r in caplog.records)


def test_outside_a_fleet_an_event_refused_until_an_abort_fails_the_transaction() -> None:
    """Without a fleet nothing rewinds: the same refusal aborts, fails the transaction's events and stops the run."""
    sink, producer = sink_over_fake()
    sink.send("c1", b"{}", "a", "s")
    producer.refuse = KafkaException(KafkaError(KafkaError._STATE, "Erroneous state"))
    with pytest.raises(DeliveryError, match="cannot produce event c2: _STATE"):
        sink.send("c2", b"{}", "a", "s")
    assert producer.calls == ["init", "begin", "abort"]
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 2, Held())


def sink_with_a_position() -> tuple[TransactionalKafkaSink, FakeProducer]:
    """A sink carrying positions, with two events sent and a position noted: its commit writes one position."""
    sink, producer = sink_over_fake()
    positions = Positions(dated=False, start_us=START)
    sink.carry(None, positions)
    sink.send("c1", b"{}", "a", "s")
    sink.send("c2", b"{}", "a", "s")
    positions.note("a", dt.date(2025, 8, 12), 1, done=False)
    return sink, producer


def test_in_a_fleet_a_position_refused_until_an_abort_rewinds_instead_of_stopping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hang outlived the transaction: its commit's position is refused; it aborts, withdraws both events, rewinds."""
    sink, producer = sink_with_a_position()
    rewinds: list[int] = []
    committer = Refusing()
    sink.commit_through(committer, lambda: rewinds.append(1))
    producer.refuse = KafkaException(KafkaError(KafkaError._STATE, "Erroneous state"))
    sink.commit_now()  # no exception: the owner sends the transaction's events again
    producer.deliver_all(PURGED)
    assert (rewinds, committer.calls) == ([1], 0)
    assert producer.calls == ["init", "begin", "abort"]
    assert not sink.is_open
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 0, Held(events=2))
    messages = [r.getMessage() for r in caplog.records]
    assert "Cannot write positions (_STATE: Erroneous state): the transaction was not committed" in messages


@pytest.mark.parametrize("fleet", [False, True], ids=["alone", "fleet"])
def test_a_position_refused_for_good_or_outside_a_fleet_fails_the_transaction(fleet: bool) -> None:
    """Nothing rewinds without a fleet, nor after a refusal an abort cannot mend: the events fail, the run stops."""
    sink, producer = sink_with_a_position()
    rewinds: list[int] = []
    if fleet:
        sink.commit_through(Refusing(), lambda: rewinds.append(1))
    code = KafkaError.MSG_SIZE_TOO_LARGE if fleet else KafkaError._STATE
    producer.refuse = KafkaException(KafkaError(code, "refused"))
    with pytest.raises(DeliveryError, match=r"cannot commit a transaction: .*refused; the transaction was aborted"):
        sink.commit_now()
    assert rewinds == []
    assert producer.calls == ["init", "begin", "abort"]
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 2, Held())


def test_the_summary_counts_events_sent_again_once() -> None:
    """The summary leaves the withdrawn events out of emitted: emitted and sensor events add up to delivered."""
    service = Service(Model(), 1, MemorySink(), ManualClock(START), poll_s=0.1)
    service.counters.planned, service.counters.emitted, service.counters.sensor_emitted = 10, 13, 4
    sink = MemorySink(keep=False)
    sink.delivered = 13  # a fleet member's: 10 visit events and 3 sensor events committed
    counts = _summary(service, sink, Held(events=3, others=1))
    assert (counts.planned, counts.emitted, counts.delivered, counts.failed, counts.sensor_events) == (10, 10, 13, 0, 3)


LOADING = KafkaException(
    KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, "Coordinator load in progress", retriable=True)
)
"""A broker just started: its transaction coordinator is still loading."""


def test_initialising_transactions_is_tried_again_while_its_error_may_pass(caplog: pytest.LogCaptureFixture) -> None:
    """Two retriable refusals, then success: three attempts, two warnings, the sleeps between them; the sink opens."""
    plain, producer = fake_sink(topic="t")
    producer.refuse_init = [LOADING, LOADING]
    slept: list[float] = []
    sink = TransactionalKafkaSink(plain, commit_interval_s=3600.0, timeout_s=1, backoff=Backoff(3, 2.5, slept.append))
    assert producer.calls == ["init", "init", "init"]
    assert slept == [2.5, 2.5]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0].startswith("The transaction coordinator of Kafka at b:9092 not reachable (attempt 1 of 3): ")
    assert len(warnings) == 2
    sink.send("c1", b"{}", None, "s")
    sink.commit_now()
    assert producer.calls[3:] == ["begin", "commit"]


@pytest.mark.parametrize(
    ("errors", "tries", "message"),
    [
        ([LOADING, LOADING], 2, "after 2 attempt(s) 0.5 s apart: COORDINATOR_LOAD_IN_PROGRESS"),
        ([KafkaException(KafkaError(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "denied"))], 5, ": denied"),
    ],
    ids=["retries-used-up", "final-at-once"],
)
def test_initialising_transactions_stops_when_tries_are_used_up_or_the_error_is_final(
    errors: list[KafkaException], tries: int, message: str
) -> None:
    """KafkaUnavailableError (exit 3) naming the broker: after the last attempt, or at once for an error that stays."""
    plain, producer = fake_sink(topic="t")
    producer.refuse_init = list(errors)
    with pytest.raises(KafkaUnavailableError, match="cannot initialise transactions on b:9092") as raised:
        TransactionalKafkaSink(plain, commit_interval_s=1.0, timeout_s=1, backoff=Backoff(tries, 0.5, lambda _: None))
    assert message in str(raised.value)
    assert producer.calls == ["init"] * len(errors), "one attempt an error: the retries used up, or the first final"
