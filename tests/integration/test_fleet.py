"""Fleet membership against the real broker: the split, cooperative moves, hand-over on leave, and KIP-447 fencing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from foot_traffic.errors import ConfigError
from foot_traffic.kafka.admin import create_topic
from foot_traffic.kafka.client import ProducerClient
from foot_traffic.kafka.fleet import CommitRefusedError, Membership, Timeouts, ensure_control_topic
from foot_traffic.kafka.fleet_ledger import Changes
from tests.integration.conftest import consume_committed

pytestmark = pytest.mark.kafka

FAST = Timeouts(session_ms=6000, heartbeat_ms=500, max_poll_interval_ms=30_000, transaction_ms=6000)
"""Short group timeouts, so that tests run in seconds (6 s is the broker's shortest session)."""
SETTLE_S = 60.0
"""Longest wait for the group to reach a state; the tests wait for conditions, never for a time."""


@dataclass
class Member:
    """A Membership under test, with every change it reported and every call of its before_revoke hook."""

    membership: Membership
    changes: list[Changes] = field(default_factory=list)
    released: list[tuple[frozenset[int], bool]] = field(default_factory=list)
    on_release: Callable[[frozenset[int]], None] | None = None

    def poll(self) -> None:
        """Serve the group protocol briefly, keeping what changed."""
        changes = self.membership.poll(0.05)
        if changes:
            self.changes.append(changes)

    def before_revoke(self, partitions: frozenset[int], *, lost: bool) -> None:
        """Record the call, then run the test's own action while the partitions are still owned."""
        self.released.append((partitions, lost))
        if self.on_release is not None:
            self.on_release(partitions)

    def forget(self) -> None:
        """Drop what was recorded so far: what follows is the test's."""
        self.changes.clear()
        self.released.clear()

    def total(self, kind: str) -> set[int]:
        """Every partition reported under ``kind`` (assigned, revoked or lost) since the last reset."""
        return {p for changes in self.changes for p in getattr(changes, kind)}


@dataclass
class Fleet:
    """The members of one fleet of a fresh topic, closed at the end of the test."""

    broker: str
    topic: str
    fleet_id: str
    partitions: int
    members: list[Member] = field(default_factory=list)

    def join(self, timeouts: Timeouts = FAST) -> Member:
        """Start one more member of the fleet."""
        membership = Membership(self.broker, self.topic, self.fleet_id, self.partitions, timeouts=timeouts)
        member = Member(membership)
        membership.before_revoke = member.before_revoke
        self.members.append(member)
        return member

    def settle(self, condition: Callable[[], bool], what: str, members: list[Member] | None = None) -> None:
        """Poll ``members`` (all by default) until ``condition`` holds."""
        deadline = time.monotonic() + SETTLE_S
        while not condition():
            if time.monotonic() > deadline:
                owned = [sorted(m.membership.owned) for m in self.members]
                pytest.fail(f"the group did not reach {what} within {SETTLE_S:g} s: {owned}")
            for member in self.members if members is None else members:
                member.poll()

    def settle_split(self, *members: Member) -> None:
        """Poll until ``members`` share the partitions fairly, then forget how they got there."""
        self.settle(lambda: self.split(*members), f"a fair split between {len(members)} members")
        for member in members:
            member.forget()

    def split(self, *members: Member) -> bool:
        """Whether ``members`` own every partition between them, each its fair share, none twice."""
        owned = [m.membership.owned for m in members]
        fair = {self.partitions // len(members), -(-self.partitions // len(members))}
        return sum(map(len, owned)) == self.partitions == len(set().union(*owned)) and {len(o) for o in owned} <= fair


@pytest.fixture
def fleet(broker: str, topic: str) -> Iterator[Fleet]:
    """A fleet of 64 virtual partitions on a fresh topic's control topic, its members closed at the end."""
    ensure_control_topic(broker, None, topic, partitions=64, replication_factor=1, timeout_s=30)
    made = Fleet(broker, topic, f"test-{uuid.uuid4().hex[:8]}", 64)
    yield made
    for member in made.members:
        member.membership.close()


def transactional(broker: str, timeouts: Timeouts = FAST) -> ProducerClient:
    """A transactional producer client with a fresh transactional id, as a fleet member's loop would hold."""

    def fail(error: KafkaError) -> None:
        if error.fatal():
            pytest.fail(f"fatal producer error: {error.str()}")

    extra = {"transactional.id": f"ft-test-{uuid.uuid4().hex}", **timeouts.producer_properties()}
    client = ProducerClient(broker, extra, fail)
    client.init_transactions(30)
    return client


def test_two_members_split_the_partitions(fleet: Fleet) -> None:
    """Two members end up with 32 virtual partitions each, between them all 64, none owned twice."""
    first, second = fleet.join(), fleet.join()
    fleet.settle(lambda: fleet.split(first, second), "a 32/32 split")
    assert [len(first.membership.owned), len(second.membership.owned)] == [32, 32]
    assert first.membership.owned | second.membership.owned == set(range(64))
    for member in (first, second):
        assert member.total("assigned") - member.total("revoked") == member.membership.owned
        assert member.total("lost") == set()


def test_a_third_member_takes_only_what_must_move(fleet: Fleet) -> None:
    """A joining member gets partitions each revoked from exactly one member; nothing else changes hands.

    Each revoking member commits a transaction in its before_revoke hook, so the moved partitions carry
    a commit made by their previous owner at its revocation, with the generation of that moment.
    """
    first, second = fleet.join(), fleet.join()
    fleet.settle_split(first, second)
    before = {id(m): m.membership.owned for m in (first, second)}
    for member in (first, second):
        client = transactional(fleet.broker)
        member.on_release = _commit_on_release(member, client, fleet.topic)
    third = fleet.join()
    fleet.settle(lambda: fleet.split(first, second, third), "a 22/21/21 split")
    moved = third.membership.owned
    revoked = [first.total("revoked"), second.total("revoked")]
    assert revoked[0] | revoked[1] == moved
    assert revoked[0].isdisjoint(revoked[1])
    for member, gone in zip((first, second), revoked, strict=True):
        assert member.membership.owned == before[id(member)] - gone
        assert member.total("assigned") == member.total("lost") == set()
        assert {p for partitions, _ in member.released for p in partitions} == gone
        assert all(not lost for _, lost in member.released)
    marks = third.membership.committed(moved)
    assert {p for p, mark in marks.items() if mark.commits >= 1 and mark.at_ms is not None} == moved
    assert all(not mark.done for mark in marks.values())


def _commit_on_release(member: Member, client: ProducerClient, topic: str) -> Callable[[frozenset[int]], None]:
    """A hook action that commits one event in a transaction carrying the member's offsets, as the loop would."""

    def commit(partitions: frozenset[int]) -> None:
        assert partitions <= member.membership.owned, "the partitions are still owned while the hook runs"
        client.begin_transaction()
        client.produce(topic, b"revoked " + repr(sorted(partitions)).encode(), b"hook", None)
        member.membership.commit(client, timeout_s=30)

    return commit


def test_a_member_that_leaves_hands_its_partitions_over(fleet: Fleet) -> None:
    """Closing a member revokes its partitions (its hook runs first) and the other member takes all of them."""
    first, second = fleet.join(), fleet.join()
    fleet.settle_split(first, second)
    leaving = first.membership.owned
    first.membership.close()
    fleet.members.remove(first)
    assert first.released == [(leaving, False)]
    assert first.membership.owned == frozenset()
    fleet.settle(lambda: len(second.membership.owned) == 64, "one member owning all 64")
    assert second.total("assigned") == leaving
    assert second.total("revoked") == second.total("lost") == set()


def test_a_zombie_member_is_fenced_and_its_events_never_seen(fleet: Fleet) -> None:
    """A member dropped for not polling cannot commit (stale group metadata); only the new owner's events show.

    KIP-447: the transaction's offsets carry the member's generation, which the coordinator checks.
    """
    create_topic(AdminClient({"bootstrap.servers": fleet.broker}), fleet.topic, partitions=1, replication_factor=1,
                 timeout_s=30)  # fmt: skip
    zombie = fleet.join(Timeouts(session_ms=6000, heartbeat_ms=500, max_poll_interval_ms=6000, transaction_ms=6000))
    owner = fleet.join()
    fleet.settle_split(zombie, owner)
    stale = zombie.membership.group_metadata()
    zombie_client, owner_client = transactional(fleet.broker), transactional(fleet.broker)
    fleet.settle(lambda: len(owner.membership.owned) == 64, "the owner alone, the zombie dropped", [owner])

    zombie_client.begin_transaction()
    zombie_client.produce(fleet.topic, b"zombie, stale metadata", b"zombie", None)
    offsets = [TopicPartition(zombie.membership.control, p, 1) for p in sorted(zombie.membership.owned)]
    with pytest.raises(KafkaException) as refused:
        zombie_client.send_offsets_to_transaction(offsets, stale, 30)
    assert refused.value.args[0].code() in {KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION}
    with pytest.raises(KafkaException):
        zombie_client.commit_transaction(30)  # the transaction can only be aborted now
    zombie_client.abort_transaction(30)
    zombie_client.begin_transaction()
    zombie_client.produce(fleet.topic, b"zombie, through the membership", b"zombie", None)
    with pytest.raises(CommitRefusedError):
        zombie.membership.commit(zombie_client, timeout_s=30)
    zombie_client.abort_transaction(30)

    owner_client.begin_transaction()
    owner_client.produce(fleet.topic, b"new owner", b"owner", None)
    owner.membership.commit(owner_client, timeout_s=30)
    assert consume_committed(fleet.broker, fleet.topic) == [("owner", b"new owner")]
    assert {mark.commits for mark in owner.membership.committed().values()} == {1}

    lost = zombie.membership.owned
    fleet.settle(lambda: bool(zombie.total("lost")), "the zombie noticing its loss", [zombie])
    assert zombie.total("lost") == lost
    assert zombie.released == [(lost, True)]


def test_a_control_topic_of_another_partition_count_is_refused(broker: str, topic: str) -> None:
    """FLEET_PARTITIONS other than the control topic's partition count is a configuration error naming both."""
    assert ensure_control_topic(broker, None, topic, partitions=4, replication_factor=1, timeout_s=30)
    with pytest.raises(ConfigError) as info:
        ensure_control_topic(broker, None, topic, partitions=8, replication_factor=1, timeout_s=30)
    (problem,) = info.value.problems
    assert problem.startswith("FLEET_PARTITIONS=8: expected 4, the partition count of the control topic")
