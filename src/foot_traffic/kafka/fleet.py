"""A fleet's membership on Kafka's group protocol: which virtual partitions this process runs, fenced as in KIP-447.

Every member of fleet FLEET_ID joins the consumer group ``foot-traffic.<FLEET_ID>``
on the control topic ``<KAFKA_TOPIC>.foot-traffic-fleet``, which has FLEET_PARTITIONS
partitions and is never written to: its partitions are the run's virtual partitions.
The cooperative-sticky assignor spreads them, and a join or a leave moves only the
partitions that must move. Rebalance callbacks become :class:`Changes` that the loop
takes when it polls; a revocation first calls the loop's ``before_revoke`` hook, so
the open transaction is committed (or, when the partitions were lost, aborted)
before anything is given up.

Every transaction of a member carries, through ``send_offsets_to_transaction``
with the member's current group metadata, one offset per owned virtual partition
(:meth:`Membership.commit`): a count of its commits that only grows, and in the
metadata whether the partition's units are all done. The group coordinator
refuses those offsets from a member of an older generation (a zombie dropped from
the group), so its transaction aborts and a read_committed reader never sees its
events. See :class:`Timeouts` for how fast a dead member's partitions move.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from foot_traffic.errors import ConfigError, DeliveryError, KafkaUnavailableError
from foot_traffic.kafka.admin import create_topic
from foot_traffic.kafka.client import ProducerClient, admin_config, client_log, describe_error
from foot_traffic.kafka.fleet_ledger import Changes, Ledger, Mark
from foot_traffic.run.recording import NO_METRICS, Recorder

log = logging.getLogger(__name__)

CONTROL_SUFFIX = ".foot-traffic-fleet"
GROUP_PREFIX = "foot-traffic."


def control_topic(topic: str) -> str:
    """The control topic whose partitions are the virtual partitions of the fleets that write ``topic``."""
    return topic + CONTROL_SUFFIX


def group_id(fleet_id: str) -> str:
    """The consumer group of fleet ``fleet_id``."""
    return GROUP_PREFIX + fleet_id


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The group's and the transactions' timeouts: a SIGKILLed member's partitions move within about session + 1 s.

    * ``session_ms``: the coordinator drops a member whose heartbeats stop this long (SIGKILL, a frozen
      host) and gives its partitions to the others; the broker's group.min.session.timeout.ms (6 s by
      default) is the floor.
    * ``heartbeat_ms``: how often a member heartbeats, so how late a survivor learns of a rebalance.
    * ``max_poll_interval_ms``: a member whose loop has not polled this long leaves the group by itself
      (its heartbeats go on in the background); it bounds the loop's longest stall, a commit included.
    * ``transaction_ms``: the transactional producer's transaction.timeout.ms. The coordinator aborts a
      dead member's open transaction this long after it began (checked every
      transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s by default), and until then
      read_committed readers, the new owner's resume included, wait behind it. No longer than the session,
      so that it has expired by the time the partitions move.
    """

    session_ms: int = 10_000
    heartbeat_ms: int = 1_000
    max_poll_interval_ms: int = 30_000
    transaction_ms: int = 10_000

    def consumer_properties(self) -> dict[str, int]:
        """The membership consumer's timeout properties."""
        return {
            "session.timeout.ms": self.session_ms,
            "heartbeat.interval.ms": self.heartbeat_ms,
            "max.poll.interval.ms": self.max_poll_interval_ms,
        }

    def producer_properties(self) -> dict[str, int]:
        """The properties a member's transactional producer takes from the fleet."""
        return {"transaction.timeout.ms": self.transaction_ms}


FAST_ENV = "FOOT_TRAFFIC_TEST_FLEET_FAST"
"""Test-only: when "1", the group's shortest timeouts (a 6 s session), so that tests move partitions in seconds."""
FAST = Timeouts(session_ms=6000, heartbeat_ms=500, max_poll_interval_ms=30_000, transaction_ms=6000)


def timeouts(env: Mapping[str, str]) -> Timeouts:
    """The fleet's timeouts: the defaults, or the tests' short ones."""
    return FAST if env.get(FAST_ENV) == "1" else Timeouts()


class BeforeRevoke(Protocol):
    """The loop's hook, called before partitions are given up, on the thread that polls the membership."""

    def __call__(self, partitions: frozenset[int], *, lost: bool) -> None:
        """End the open transaction: commit it, or abort it when ``lost`` (this member left the group)."""
        ...


class CommitRefusedError(DeliveryError):
    """A member's transaction could not be committed with the fleet's offsets; the caller must abort it."""


def ensure_control_topic(
    bootstrap: str,
    extra: Mapping[str, Any] | None,
    topic: str,
    *,
    partitions: int,
    replication_factor: int,
    timeout_s: float,
) -> str:
    """Create the control topic of ``topic`` with ``partitions`` partitions if it is missing; return its name.

    Raises ConfigError when it exists with another partition count (FLEET_PARTITIONS is fixed for the life
    of a run), KafkaUnavailableError when it cannot be read or created.
    """
    control = control_topic(topic)
    admin = AdminClient(admin_config(bootstrap, extra), logger=client_log)
    try:
        # every topic's metadata: asking for this one alone could make a broker auto-create it with 1 partition
        found = admin.list_topics(timeout=timeout_s).topics.get(control)
        if found is None or found.error is not None:
            create_topic(
                admin, control, partitions=partitions, replication_factor=replication_factor, timeout_s=timeout_s
            )
            return control
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"cannot create the fleet's control topic {control!r}: {describe_error(exc)}"
        ) from None
    if len(found.partitions) != partitions:
        raise ConfigError(
            [
                f"FLEET_PARTITIONS={partitions}: expected {len(found.partitions)}, the partition count of the control "
                f"topic {control!r} (fixed for the life of a run; use that value, or another KAFKA_TOPIC)"
            ]
        )
    return control


class Membership:
    """A process's membership of a fleet: the virtual partitions Kafka's group protocol assigns it.

    Poll it often (:meth:`poll`), from the loop's thread: the rebalance callbacks, ``before_revoke``
    included, run inside the poll.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        fleet_id: str,
        partitions: int,
        *,
        extra: Mapping[str, Any] | None = None,
        timeouts: Timeouts = Timeouts(),
        before_revoke: BeforeRevoke | None = None,
        metrics: Recorder = NO_METRICS,
        wall: Callable[[], float] = time.time,
        factory: Callable[..., Consumer] = Consumer,
    ) -> None:
        self.fleet_id = fleet_id
        self.control = control_topic(topic)
        self.partitions = partitions
        self.before_revoke = before_revoke
        self._ledger = Ledger()
        self._marks: dict[int, Mark] = {}
        self._unstarted: set[int] = set()
        self._metrics = metrics
        self._wall = wall
        config = {
            **admin_config(bootstrap, extra),
            "group.id": group_id(fleet_id),
            "client.id": "foot-traffic-fleet",
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # committed() then waits for open transactions' offsets instead of reading past them (KIP-447)
            "isolation.level": "read_committed",
            "error_cb": self._on_error,
            **timeouts.consumer_properties(),
        }
        self._consumer = factory(config, logger=client_log)
        self._consumer.subscribe(
            [self.control], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    @property
    def owned(self) -> frozenset[int]:
        """The virtual partitions this member owns now."""
        return frozenset(self._ledger.owned)

    def poll(self, timeout_s: float = 0) -> Changes:
        """Serve the group protocol for up to ``timeout_s`` and take what changed since the last poll.

        A member that does not poll within max.poll.interval.ms leaves the group.
        """
        message = self._consumer.poll(timeout_s)
        error = None if message is None else message.error()
        if error is not None:
            log.warning("Fleet %s: %s: %s", self.fleet_id, error.name(), error.str())
        return self._ledger.take()

    def group_metadata(self) -> Any:
        """The member's current group metadata (group, generation, member id), for send_offsets_to_transaction."""
        return self._consumer.consumer_group_metadata()

    def committed(self, partitions: Iterable[int] | None = None, timeout_s: float = 30.0) -> dict[int, Mark]:
        """The committed marks of ``partitions`` (by default all the fleet's), once no open transaction holds them.

        Raises KafkaUnavailableError when they cannot be read within ``timeout_s``.
        """
        wanted = range(self.partitions) if partitions is None else sorted(partitions)
        try:
            found = self._consumer.committed([TopicPartition(self.control, p) for p in wanted], timeout=timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailableError(
                f"cannot read the committed progress of fleet {self.fleet_id}: {describe_error(exc)}"
            ) from None
        marks: dict[int, Mark] = {}
        for entry in found:
            if entry.error is not None:
                raise KafkaUnavailableError(
                    f"cannot read the committed progress of fleet {self.fleet_id} "
                    f"[{entry.partition}]: {entry.error.str()}"
                )
            marks[entry.partition] = Mark.parse(entry.offset, entry.metadata)
        self._marks.update((p, m) for p, m in marks.items() if p in self._ledger.owned)
        return marks

    def all_done(self, timeout_s: float = 30.0) -> bool:
        """True when every virtual partition of the fleet is committed done, by this member or by another."""
        return all(mark.done for mark in self.committed(None, timeout_s).values())

    def commit(self, client: ProducerClient, *, done: Collection[int] = (), timeout_s: float) -> None:
        """Commit ``client``'s open transaction with one offset per owned virtual partition, fenced by generation.

        Each owned partition's offset is its count of commits plus one; ``done`` names owned partitions whose
        units are now all complete (a partition once done stays done). Raises CommitRefusedError when the group
        refuses this member's offsets (an older generation) or the commit fails: the caller aborts.
        """
        owned = sorted(self._ledger.owned)
        if not owned:
            raise CommitRefusedError(f"fleet {self.fleet_id}: this member owns no virtual partition to commit")
        missing = [p for p in owned if p not in self._marks]
        if missing:
            self.committed(missing, timeout_s)
        now_ms = int(self._wall() * 1000)
        marks = {p: self._marks[p].next(done=p in done, at_ms=now_ms) for p in owned}
        offsets = [TopicPartition(self.control, p, mark.commits, mark.metadata()) for p, mark in marks.items()]
        try:
            client.send_offsets_to_transaction(offsets, self._consumer.consumer_group_metadata(), timeout_s)
            client.commit_transaction(timeout_s)
        except KafkaException as exc:
            raise CommitRefusedError(
                f"fleet {self.fleet_id}: the transaction was not committed ({describe_error(exc)}); abort it"
            ) from None
        self._marks.update(marks)

    def started(self, partition: int) -> None:
        """The loop sent the first event of ``partition`` since it was assigned: record the hand-over time.

        It runs from the last commit of the partition (its previous owner's, on revocation or just before
        a crash; from the mark :meth:`committed` read) to now, on the two members' wall clocks.
        """
        if partition not in self._unstarted:
            return
        self._unstarted.discard(partition)
        mark = self._marks.get(partition)
        if mark is not None and mark.at_ms is not None:
            self._metrics.fleet_handed_over(max(0.0, self._wall() - mark.at_ms / 1000))

    def close(self) -> None:
        """Leave the group: the owned partitions are revoked (``before_revoke`` first) and go to the others.

        The hook runs before the consumer closes, while the member's group metadata can still be read
        for its last commit.
        """
        self._release(frozenset(self._ledger.owned), lost=False)
        self._consumer.close()

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """A rebalance completed: record the partitions it gave this member (often none)."""
        given = {entry.partition for entry in partitions}
        # from the end: the control topic holds no record, and its committed offsets are commit counts
        self._consumer.incremental_assign([TopicPartition(self.control, p, OFFSET_END) for p in sorted(given)])
        self._ledger.assign(given)
        self._unstarted |= given
        for partition in given:
            self._marks.pop(partition, None)  # another member may have committed it since this one last did
        self._metrics.fleet_rebalanced(len(self._ledger.owned))
        if given:
            self._log_change(given, set())

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions move to another member: let the loop commit its transaction, then give them up."""
        self._release(frozenset(entry.partition for entry in partitions) & self._ledger.owned, lost=False)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The member was dropped from the group: let the loop abort its transaction; the partitions are gone."""
        self._release(frozenset(entry.partition for entry in partitions) & self._ledger.owned, lost=True)

    def _release(self, taken: frozenset[int], *, lost: bool) -> None:
        try:
            if taken and self.before_revoke is not None:
                self.before_revoke(taken, lost=lost)
        finally:
            (self._ledger.lose if lost else self._ledger.revoke)(taken)
            self._unstarted -= taken
            for partition in taken:
                self._marks.pop(partition, None)
            self._metrics.fleet_owned(len(self._ledger.owned))
            if taken and lost:
                log.warning(
                    "Fleet %s: lost %s (dropped from the group: its open transaction is aborted); "
                    "now owning %d partition(s)",
                    self.fleet_id,
                    sorted(taken),
                    len(self._ledger.owned),
                )
            elif taken:
                self._log_change(set(), taken)

    def _log_change(self, assigned: Iterable[int], revoked: Iterable[int]) -> None:
        log.info(
            "Fleet %s: assigned %s, revoked %s; now owning %d partition(s)",
            self.fleet_id,
            sorted(assigned),
            sorted(revoked),
            len(self._ledger.owned),
        )

    def _on_error(self, error: KafkaError) -> None:
        log.warning("Fleet %s: %s: %s", self.fleet_id, error.name(), error.str())
