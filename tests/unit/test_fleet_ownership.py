"""A fleet member's ownership without a broker: assignments start works, revocations commit, losses rewind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from typing import Any, cast

from foot_traffic.kafka.client import ProducerClient
from foot_traffic.kafka.fleet import CommitRefusedError, Membership
from foot_traffic.kafka.fleet_ledger import Changes, Mark
from foot_traffic.kafka.fleet_run import CHECK_DONE_EVERY_S, FleetOwnership, FleetRun
from foot_traffic.kafka.transactions import Held, TransactionalKafkaSink
from foot_traffic.model.units import Unit
from foot_traffic.run.ownership import Work
from foot_traffic.run.positions import Position, Positions, ResumeAfter
from tests.unit.fakes import FakeProducer, fake_sink

START = 1_754_989_200_000_000
D12, D13 = dt.date(2025, 8, 12), dt.date(2025, 8, 13)
A12, A13, B12, C13 = Unit("a", D12), Unit("a", D13), Unit("b", D12), Unit("c", D13)
"""With 4 virtual partitions: A12 and A13 fall in 2, B12 in 1, C13 in 0; partition 3 has no unit (hand-computed)."""
RUN = FleetRun((A12, A13, B12, C13), partitions=4, bounded=True, timeout_s=1.0)


class FakeMembership:
    """The part of Membership an ownership uses, driven by the test: assign, revoke, lose, refuse commits."""

    def __init__(self) -> None:
        self.before_revoke: Any = None
        self.owned: frozenset[int] = frozenset()
        self.marks: dict[int, Mark] = {}
        self.commits: list[frozenset[int]] = []
        self.refuse = False
        self.everything_done = False
        self.done_asked = 0
        self.started_partitions: list[int] = []
        self._changes = Changes()

    def poll(self, timeout_s: float = 0) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    def committed(self, partitions: Iterable[int] | None = None, timeout_s: float = 30.0) -> dict[int, Mark]:
        return {p: self.marks.get(p, Mark()) for p in partitions or ()}

    def commit(self, client: ProducerClient, *, done: Collection[int] = (), timeout_s: float) -> None:
        if self.refuse:
            raise CommitRefusedError("fleet f: the transaction was not committed (ILLEGAL_GENERATION); abort it")
        client.commit_transaction(timeout_s)
        self.commits.append(frozenset(done))

    def started(self, partition: int) -> None:
        self.started_partitions.append(partition)

    def all_done(self, timeout_s: float = 30.0) -> bool:
        self.done_asked += 1
        return self.everything_done

    def assign(self, *partitions: int) -> None:
        """The group gives this member ``partitions``."""
        self.owned |= set(partitions)
        self._changes = Changes(assigned=frozenset(partitions))

    def revoke(self, *partitions: int, lost: bool = False) -> None:
        """The group takes ``partitions`` back (``lost``: the member was dropped), after the hook."""
        self.before_revoke(frozenset(partitions), lost=lost)
        self.owned -= set(partitions)
        gone = frozenset(partitions)
        self._changes = Changes(lost=gone) if lost else Changes(revoked=gone)


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def member(
    progress: Mapping[Unit, Position] | None = None,
) -> tuple[FleetOwnership, FakeMembership, TransactionalKafkaSink, FakeProducer, Positions, Clock]:
    """An ownership over a fake membership and a transactional sink on a fake producer."""
    plain, producer = fake_sink(topic="t")
    sink = TransactionalKafkaSink(plain, commit_interval_s=3600.0, timeout_s=1)
    positions = Positions(dated=True, start_us=START)
    sink.carry(None, positions)
    membership = FakeMembership()
    clock = Clock()
    committed = dict(progress or {})
    ownership = FleetOwnership(
        cast(Membership, membership), sink, positions, RUN, read_progress=lambda: committed, monotonic=clock
    )
    return ownership, membership, sink, producer, positions, clock


def test_assigned_partitions_start_their_units_after_their_committed_positions() -> None:
    """Each unit of an assigned partition starts after its committed position; complete units do not start."""
    progress = {A12: Position(D12, 4, False, START), A13: Position(D13, 9, True, START)}
    ownership, membership, *_ = member(progress)
    membership.assign(1, 2)
    handover = ownership.poll()
    assert handover.stop == frozenset()
    assert handover.start == (Work("b", (D12,)), Work("a", (D12,)))
    assert [w.resume for w in handover.start] == [None, ResumeAfter(D12, 4)]
    assert ownership.poll().start == (), "nothing new: nothing to start"


def test_a_partition_committed_done_is_skipped_and_one_without_units_is_marked_done_at_once() -> None:
    """A done mark starts nothing; a partition with no unit commits done at its assignment, so the run can end."""
    ownership, membership, _, producer, *_ = member()
    membership.marks[0] = Mark(3, True)
    membership.assign(0, 3)
    assert ownership.poll().start == ()
    assert producer.calls == ["init", "begin", "commit"]
    assert membership.commits == [frozenset({3})], "partition 0's mark is done already, and stays so"


def test_a_revocation_commits_the_open_transaction_and_stops_the_works() -> None:
    """Before partitions go, the open transaction commits (its events delivered); the next poll stops their works."""
    ownership, membership, sink, producer, positions, _ = member()
    membership.assign(1, 2)
    started = ownership.poll().start
    positions.note("b", D12, 0, done=False)
    sink.send("c1", b"{}", "b", "s")
    membership.revoke(1)
    assert producer.calls == ["init", "begin", "commit"]
    assert (sink.delivered, sink.withdrawn) == (1, Held())
    handover = ownership.poll()
    assert handover.stop == frozenset({Work("b", (D12,))})
    assert handover.start == ()
    assert Work("a", (D12,)) in started
    assert not ownership.urgent()


def test_a_loss_aborts_and_rewinds_every_owned_unit_to_its_committed_position() -> None:
    """Dropped from the group: the transaction is aborted, its events withdrawn; the kept units restart as committed."""
    progress = {A12: Position(D12, 4, False, START)}
    ownership, membership, sink, producer, positions, _ = member(progress)
    membership.assign(0, 1, 2)
    ownership.poll()
    positions.note("a", D12, 7, done=False)
    sink.send("c1", b"{}", "a", "s")
    membership.revoke(0, lost=True)
    assert producer.calls == ["init", "begin", "abort"]
    assert (sink.delivered, sink.failed, sink.withdrawn) == (0, 0, Held(events=1))
    assert ownership.urgent(), "no event may go before the rewind"
    assert not positions.pending(), "the aborted position is forgotten"
    handover = ownership.poll()
    assert handover.stop == {Work("c", (D13,)), Work("b", (D12,)), Work("a", (D12,)), Work("a", (D13,))}
    assert handover.start == (Work("b", (D12,)), Work("a", (D12,)), Work("a", (D13,)))
    assert handover.start[1].resume == ResumeAfter(D12, 4), "back to the committed position, not the aborted one"
    assert not ownership.urgent()


def test_a_refused_commit_aborts_withdraws_and_rewinds() -> None:
    """The group refuses the commit (a zombie's): abort, withdraw its events, rewind at the next poll."""
    ownership, membership, sink, producer, _, _ = member()
    membership.assign(1)
    ownership.poll()
    sink.send("c1", b"{}", "b", "s")
    membership.refuse = True
    sink.commit_now()
    assert producer.calls == ["init", "begin", "abort"]
    assert (sink.delivered, sink.withdrawn) == (0, Held(events=1))
    assert ownership.urgent()
    handover = ownership.poll()
    assert handover.stop == {Work("b", (D12,))}
    assert handover.start == (Work("b", (D12,)),)


def test_a_bounded_member_is_finished_once_the_whole_fleet_is_done_asked_once_a_second() -> None:
    """finished() commits what is pending, and asks the fleet whether every partition is done at most once a second."""
    ownership, membership, _, producer, positions, clock = member()
    membership.assign(1)
    ownership.poll()
    positions.note("b", D12, 5, done=True)
    assert not ownership.finished()
    assert producer.calls == ["init", "begin", "commit"]
    assert membership.commits == [frozenset({1})], "its only unit complete: the partition is committed done"
    membership.everything_done = True
    clock.now = CHECK_DONE_EVERY_S / 2
    assert not ownership.finished(), "asked less than a second ago"
    clock.now = CHECK_DONE_EVERY_S
    assert ownership.finished()
    assert membership.done_asked == 2


def test_the_first_event_of_a_work_records_its_partitions_hand_over() -> None:
    """started() names the work's virtual partition to the membership (its hand-over time)."""
    ownership, membership, *_ = member()
    ownership.started(Work("c", (D13,)))
    ownership.started(Work("a", (D12,)))
    assert membership.started_partitions == [0, 2]
