"""Which units of work the loop runs, and how that changes while it runs: the seam between the loop and a fleet.

A static shard (or an unsharded run) owns a fixed set of units, decided once at the
start (:class:`Fixed`). A fleet member's units change at every rebalance: its
:class:`Ownership` tells the loop, each time the loop asks, which works to stop and
which to start, each with the position to resume after. The loop asks between
batches and while it waits, at least once per poll interval, and knows nothing of
Kafka: the fleet's ownership lives in the Kafka adapter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from foot_traffic.model.grid import local_date
from foot_traffic.model.plan import StoreModel
from foot_traffic.model.units import Shard, Unit
from foot_traffic.run.positions import ResumeAfter


@dataclass(frozen=True, slots=True)
class Work:
    """Units the loop runs as one stream: a store's ``dates`` in time order (None: every date from the start on).

    ``resume``: the position to pick the stream up after (None: from its beginning).
    Two works are the same work when they name the same store and dates, whatever their resume.
    """

    store_id: str | None
    dates: tuple[dt.date, ...] | None = None
    resume: ResumeAfter | None = field(default=None, compare=False)

    @property
    def units(self) -> list[Unit]:
        """The units of work this work runs."""
        if self.dates is None:
            return [Unit(self.store_id)]
        return [Unit(self.store_id, date) for date in self.dates]

    @staticmethod
    def of(unit: Unit, resume: ResumeAfter | None = None) -> Work:
        """The work that runs ``unit`` alone."""
        return Work(unit.store_id, None if unit.date is None else (unit.date,), resume)


@dataclass(frozen=True, slots=True)
class Handover:
    """What the loop must change: stop ``stop`` (drop what it holds of them), then start ``start``."""

    stop: frozenset[Work] = frozenset()
    start: tuple[Work, ...] = ()

    def __bool__(self) -> bool:
        """True when anything changes."""
        return bool(self.stop or self.start)


class Ownership(Protocol):
    """The works a loop runs, as they change: polled from the loop's thread, between batches and while it waits."""

    def poll(self) -> Handover:
        """What changed since the last poll (the first poll gives the works to start with)."""
        ...

    def finished(self) -> bool:
        """Whether no work will come any more, so the loop may end once it has none left (a bounded run)."""
        ...

    def urgent(self) -> bool:
        """Whether the loop must poll before its next event (a transaction was aborted: its works rewind now)."""
        ...

    def started(self, work: Work) -> None:
        """The loop sent the first event of ``work`` since it started it."""
        ...


class Fixed:
    """The ownership of a static shard, or of a whole run: the same works from the start to the end."""

    def __init__(self, works: Sequence[Work]) -> None:
        self.works = tuple(works)
        self._given = False

    def poll(self) -> Handover:
        """Every work at the first poll; nothing after."""
        if self._given:
            return Handover()
        self._given = True
        return Handover(start=self.works)

    def urgent(self) -> bool:
        """Never: a fixed set of works does not change."""
        return False

    def finished(self) -> bool:
        """True: nothing ever comes after the first poll."""
        return True

    def started(self, work: Work) -> None:
        """Nothing to record."""


def run_units(stores: Sequence[StoreModel], start_us: int, until_us: int | None) -> Iterator[Unit]:
    """The units of a run: its stores without an end; with one (UNTIL), each store's dates from start to end.

    A store's dates are local to its own time zone.
    """
    for store in stores:
        if until_us is None:
            yield Unit(store.store_id)
            continue
        tz = store.model.tz
        first, last = local_date(start_us, tz), local_date(until_us - 1, tz)
        for offset in range((last - first).days + 1):
            yield Unit(store.store_id, first + dt.timedelta(days=offset))


def shard_works(
    stores: Sequence[StoreModel],
    owns: Callable[[Unit], bool] | None,
    start_us: int,
    until_us: int | None,
    resume: Callable[[str | None], ResumeAfter | None],
) -> list[Work]:
    """A static shard's works: one per store with units ``owns`` accepts, its owned dates chained in time order.

    A whole run (``owns`` None) runs every store's every date, up to the end if it has one.
    """
    if owns is None:
        return [Work(store.store_id, None, resume(store.store_id)) for store in stores]
    dates: dict[str | None, list[dt.date]] = {}
    for unit in run_units(stores, start_us, until_us):
        if owns(unit):
            dates.setdefault(unit.store_id, [])
            if unit.date is not None:
                dates[unit.store_id].append(unit.date)
    dated = until_us is not None
    return [Work(s, tuple(d) if dated else None, resume(s)) for s, d in dates.items()]


def shard_owns(shard: Shard, partitions: int) -> Callable[[Unit], bool] | None:
    """The ownership test of ``shard`` in a run of ``partitions`` virtual partitions (None: the whole run's)."""
    if shard.count == 1:
        return None
    return lambda unit: shard.owns(unit, partitions)
