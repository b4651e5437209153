"""A fleet member's ownership: the works of its virtual partitions, handed over exactly once as Kafka Streams does.

:class:`FleetOwnership` is the loop's :class:`~foot_traffic.run.ownership.Ownership` for a
member of fleet FLEET_ID. At each poll it serves the group protocol
(:meth:`Membership.poll`): it stops the works of the partitions revoked or lost, and
starts those of the partitions assigned, each unit from its last committed position
(read back read_committed, so after the previous owner's last transaction). Every
transaction commits through :meth:`Membership.commit`, which carries one offset per
owned partition with the member's group metadata: a member of an older generation (a
zombie) cannot commit, and its events are never read. Before a revocation the open
transaction is committed; when partitions are lost, or a commit is refused, it is
aborted and every owned unit rewinds to its committed position.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException

from foot_traffic.kafka.client import describe_error
from foot_traffic.kafka.fleet import CommitRefusedError, Membership
from foot_traffic.kafka.transactions import TransactionalKafkaSink
from foot_traffic.model.units import Unit, virtual_partition
from foot_traffic.run.ownership import Handover, Work
from foot_traffic.run.positions import Position, Positions, ResumeAfter

log = logging.getLogger(__name__)

CHECK_DONE_EVERY_S = 1.0
"""How often an idle member of a bounded run asks whether the whole fleet's run is complete."""


@dataclass(frozen=True, slots=True)
class FleetRun:
    """What a member knows of its run: every unit, how many virtual partitions, and whether the run ends."""

    units: tuple[Unit, ...]
    partitions: int
    bounded: bool
    timeout_s: float

    def by_partition(self) -> dict[int, list[Unit]]:
        """The run's units of each virtual partition (a partition without units is absent)."""
        grouped: dict[int, list[Unit]] = {}
        for unit in self.units:
            grouped.setdefault(virtual_partition(unit, self.partitions), []).append(unit)
        return grouped


class FleetOwnership:
    """The works of the virtual partitions this member owns, as rebalances move them; commits through the group."""

    def __init__(
        self,
        membership: Membership,
        sink: TransactionalKafkaSink,
        positions: Positions,
        run: FleetRun,
        *,
        read_progress: Callable[[], Mapping[Unit, Position]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.membership = membership
        self.sink = sink
        self.positions = positions
        self.run = run
        self.read_progress = read_progress
        self._monotonic = monotonic
        self._units = run.by_partition()
        self._running: dict[int, list[Work]] = {}
        self._complete: set[Unit] = set()
        self._rewind = False
        self._next_check = 0.0
        membership.before_revoke = self._before_revoke
        sink.commit_through(self._commit, self._rewind_all)

    def poll(self) -> Handover:
        """Serve the group protocol: stop the works of revoked and lost partitions, start the assigned ones'."""
        changes = self.membership.poll(0)
        stop = [w for p in changes.revoked | changes.lost for w in self._running.pop(p, [])]
        assigned = set(changes.assigned)
        if self._rewind:  # the last transaction was aborted: every owned unit goes back to its committed position
            self._rewind = False
            stop += [w for works in self._running.values() for w in works]
            assigned |= set(self._running) & self.membership.owned
            self._running.clear()
        start = self._assign(assigned) if assigned else ()
        return Handover(frozenset(stop), start)

    def finished(self) -> bool:
        """In a bounded run, whether every virtual partition of the fleet is committed done (asked once a second)."""
        if not self.run.bounded:
            return False
        if self.positions.pending() or self.sink.is_open:
            self.sink.commit_now()  # the last units' completion, and so their partitions' marks
        if self._monotonic() < self._next_check:
            return False
        self._next_check = self._monotonic() + CHECK_DONE_EVERY_S
        return self.membership.all_done(self.run.timeout_s)

    def urgent(self) -> bool:
        """Whether a transaction was aborted: the owned works must rewind before another event goes.

        Events sent after the abort but before the rewind would carry positions past the aborted
        events; committed, those positions would make the rewind skip the aborted events for good.
        """
        return self._rewind

    def started(self, work: Work) -> None:
        """Record the hand-over time of the work's partition at its first event."""
        self.membership.started(virtual_partition(work.units[0], self.run.partitions))

    def _assign(self, partitions: Iterable[int]) -> tuple[Work, ...]:
        """The works of newly owned partitions that still have work, each from its unit's committed position."""
        marks = self.membership.committed(partitions, self.run.timeout_s)
        todo = sorted(p for p, mark in marks.items() if not mark.done)
        progress = self.read_progress() if any(p in self._units for p in todo) else {}
        works: list[Work] = []
        for partition in todo:
            mine = []
            for unit in self._units.get(partition, []):
                position = progress.get(unit)
                if position is not None and position.done:
                    self._complete.add(unit)
                    continue
                mine.append(Work.of(unit, None if position is None else ResumeAfter(position.date, position.index)))
            self._running[partition] = mine
            works += mine
        if self.run.bounded and any(self._done(p) for p in todo):
            self.sink.commit_now()  # partitions with nothing left to run are marked done at once
        return tuple(works)

    def _done(self, partition: int) -> bool:
        """Whether every unit of ``partition`` is committed complete (a partition without units always is)."""
        return self.run.bounded and all(unit in self._complete for unit in self._units.get(partition, []))

    def _commit(self, taken: Mapping[Unit, Position], timeout_s: float) -> bool:
        """Commit the open transaction with the fleet's offsets; refused, rewind every owned unit (False: abort)."""
        owned = self.membership.owned
        if not owned:  # nothing of a partition in it (a member that left): its run record, at most
            try:
                self.sink.client.commit_transaction(timeout_s)
            except KafkaException as exc:
                log.warning("Cannot commit a transaction outside the fleet's partitions: %s", describe_error(exc))
                return False
            return True
        completed = {unit for unit, position in taken.items() if position.done}
        self._complete |= completed
        try:
            self.membership.commit(self.sink.client, done={p for p in owned if self._done(p)}, timeout_s=timeout_s)
        except CommitRefusedError as exc:
            self._complete -= completed
            log.warning("%s; resuming the owned units from their committed positions", exc)
            self._rewind_all()
            return False
        return True

    def _before_revoke(self, partitions: frozenset[int], *, lost: bool) -> None:
        """Commit the open transaction before partitions go (abort it when they are lost: others may run them)."""
        if lost:
            self.sink.abort()
            self._rewind_all()
        elif self.sink.is_open or self.positions.pending():
            self.sink.commit_now()

    def _rewind_all(self) -> None:
        """Forget the positions the aborted transaction held: the next poll rewinds the owned units."""
        self.positions.forget(u for works in self._running.values() for w in works for u in w.units)
        self._rewind = True
