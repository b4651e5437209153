"""A transactional producer that failed for good (fenced): a fleet member replaces it, a run alone stops.

The broker aborts a transaction that outlives transaction.timeout.ms (a hung process) and bumps the
producer's epoch: the producer is fenced, and the Python client raises its fatal error from the next
call that meets it: a poll, a produce, a commit or an abort.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

import pytest
from confluent_kafka import KafkaError, KafkaException

from foot_traffic.errors import DeliveryError
from foot_traffic.kafka.transactions import Held, TransactionalKafkaSink
from foot_traffic.model.units import Unit
from foot_traffic.run.positions import Position, Positions
from tests.unit.fakes import FakeProducer, fake_sink

START = 1_755_000_000_000_000
DAY = dt.date(2025, 8, 12)
REPLACED = "The producer failed for good (_FENCED: Failed to end transaction: fenced by a newer instance)"


class Member:
    """A fleet member's sink over fake producers: its committer commits through the client and, refused, rewinds."""

    def __init__(self, *, positions: bool) -> None:
        plain, self.first = fake_sink(topic="t")
        self.sink = TransactionalKafkaSink(plain, commit_interval_s=3600.0, timeout_s=1)
        self.rewinds = 0
        self.positions = Positions(dated=False, start_us=START)
        if positions:
            self.sink.carry(None, self.positions)
        self.sink.commit_through(self._commit, self._rewind)

    def _commit(self, taken: Mapping[Unit, Position], timeout_s: float) -> bool:
        try:
            self.sink.client.commit_transaction(timeout_s)
        except KafkaException:
            self._rewind()
            return False
        return True

    def _rewind(self) -> None:
        self.rewinds += 1

    def send_two(self) -> None:
        """Two events of store a, acknowledged inside the open transaction, and the position after them."""
        self.sink.send("c1", b"{}", "a", "s")
        self.sink.send("c2", b"{}", "a", "s")
        self.positions.note("a", DAY, 1, done=False)
        self.latest.deliver_all()

    @property
    def latest(self) -> FakeProducer:
        return self.first.made[-1]


def meets_it_at(where: str, member: Member) -> None:
    """The call at which the fenced producer's fatal error surfaces."""
    if where == "poll":
        member.sink.poll()
    elif where == "send":  # the fatal error already served: the produce call meets it
        member.sink.send("c3", b"{}", "a", "s")
    else:  # "positions" (the commit writes them first) and "commit"
        member.sink.commit_now()


@pytest.mark.parametrize(
    ("where", "positions", "withdrawn"),
    [("poll", True, 2), ("send", True, 3), ("positions", True, 2), ("commit", False, 2)],
)
def test_in_a_fleet_a_fenced_producer_is_replaced_and_its_transaction_sent_again(
    where: str, positions: bool, withdrawn: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Wherever the fatal error surfaces: one new producer, the events withdrawn, one rewind, and the run goes on."""
    member = Member(positions=positions)
    member.send_two()
    member.first.fence(served=where == "send")
    meets_it_at(where, member)
    assert len(member.first.made) == 2, "one new producer"
    assert member.latest.calls == ["init"]
    assert member.rewinds == 1
    assert not member.sink.is_open
    sink = member.sink
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 0, Held(events=withdrawn))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(w.startswith(REPLACED) for w in warnings) == 1
    assert any(f"{withdrawn} event(s)" in w and w.endswith("sent again") for w in warnings)
    sink.send("c1", b"{}", "a", "s")  # the rewind sends the events again, on the new producer
    sink.commit_now()
    assert member.latest.calls == ["init", "begin", "commit"]
    assert (sink.delivered, sink.failed) == (1, 0)


def test_in_a_fleet_a_producer_fenced_between_transactions_is_replaced_without_a_rewind() -> None:
    """Nothing was open: the new producer begins the next transaction; nothing is withdrawn or rewound."""
    member = Member(positions=True)
    member.send_two()
    member.sink.commit_now()
    member.first.fence(served=True)  # served before the begin
    member.sink.send("c3", b"{}", "a", "s")
    member.sink.commit_now()
    assert member.first.calls == ["init", "begin", "commit"]
    assert member.latest.calls == ["init", "begin", "commit"]
    assert (member.rewinds, member.sink.delivered, member.sink.withdrawn) == (0, 3, Held())


def alone() -> tuple[TransactionalKafkaSink, FakeProducer, Positions]:
    """A run alone (no fleet): two events sent in an open transaction, with their position noted."""
    plain, producer = fake_sink(topic="t")
    sink = TransactionalKafkaSink(plain, commit_interval_s=3600.0, timeout_s=1)
    positions = Positions(dated=False, start_us=START)
    sink.carry(None, positions)
    sink.send("c1", b"{}", "a", "s")
    sink.send("c2", b"{}", "a", "s")
    positions.note("a", DAY, 1, done=False)
    producer.deliver_all()
    return sink, producer, positions


def test_alone_a_fenced_producer_stops_the_run_once_with_one_line() -> None:
    """A newer instance of its transactional id may have fenced it: its events fail, nothing more is sent."""
    sink, producer, positions = alone()
    producer.fence()
    with pytest.raises(
        DeliveryError, match=r"^the producer failed for good: _FENCED: .*; this process sends nothing more"
    ):
        sink.poll()
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 2, Held())
    assert not positions.pending(), "no position of the failed transaction is ever committed"
    with pytest.raises(DeliveryError, match=r"^the producer failed"):
        sink.send("c3", b"{}", "a", "s")
    sink.commit_now()
    assert sink.flush(0) == 0
    sink.close()
    assert producer.made == [producer], "no new producer"
    assert producer.calls == ["init", "begin"]
    assert (sink.delivered, sink.failed) == (0, 2)


def test_alone_a_fenced_begin_stops_the_run_once() -> None:
    """A fatal begin raises one DeliveryError; later commits and the flush try nothing and raise nothing."""
    sink, producer, _ = alone()
    sink.commit_now()
    producer.deliver_all()
    producer.refuse_begin = KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))
    with pytest.raises(DeliveryError, match="cannot begin a transaction: _FENCED: fenced; this process sends nothing"):
        sink.send("c3", b"{}", "a", "s")
    sink.commit_now()
    assert sink.flush(0) == 0
    sink.close()
    assert producer.calls == ["init", "begin", "commit"]
    assert (sink.delivered, sink.failed, sink.withdrawn) == (2, 0, Held())


def test_alone_a_fatal_error_met_by_the_last_flush_is_one_error_line(caplog: pytest.LogCaptureFixture) -> None:
    """Everything committed, the flush meets the fatal error: it logs one line and leaves nothing unconfirmed."""
    sink, producer, _ = alone()
    sink.commit_now()
    producer.deliver_all()
    producer.fence()
    assert sink.flush(0) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("the producer failed for good: _FENCED")
    assert (sink.delivered, sink.failed) == (2, 0)


def test_a_plain_sink_whose_producer_failed_for_good_stops_the_run_with_one_line() -> None:
    """Outside transactions (an idempotent producer's fatal error): the poll raises a DeliveryError, the loop's kind."""
    sink, producer = fake_sink(topic="t")
    sink.send("c1", b"{}", None, "s")
    producer.fence()
    with pytest.raises(DeliveryError, match=r"^the producer failed for good: _FENCED: .*; this process sends nothing"):
        sink.poll()
    assert sink.flush(0) == 1, "the unconfirmed event is left to the summary's failed count"
