"""A store's events in the order they are sent when imperfections are on: late, twice, or held back.

Each (store, date) unit's copies are decided at once (:func:`foot_traffic.model.imperfections.decide`)
when its plan line falls due, and sent in the unit's send order; the days of a store
overlap (a late copy of date D may go after D+1's midnight and still belongs to
(store, D)), so a store's stream merges its open days by (instant, kind, date, rank).

A unit's position is the rank of its last copy sent in that order (-1: its plan line).
The merged order is total, so a restart from a store's last position skips exactly the
items at or before it: every day that could still spill past it is drawn again and its
copies up to that point are left out.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.events.encoding import EncodedBatch, encode_batch
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.grid import days_from, local_date
from foot_traffic.model.imperfections import Imperfections, Sending, decide, entries_of
from foot_traffic.model.plan import DayPlan, Model, StoreModel, plan_day
from foot_traffic.run.merge import PLAN, VISIT
from foot_traffic.run.positions import Position, ResumeAfter

US_PER_DAY = 86_400_000_000


Key = tuple[int, int, int, int]
"""(instant, kind, date's ordinal, rank): the total order of a store's items (rank -1: the plan line)."""


@dataclass(eq=False, slots=True)
class Day:
    """One (store, date) unit's copies in send order, their encoded batches, and how many have been sent."""

    plan: DayPlan
    store_id: str | None
    at_us: int
    """The instant of the plan line: the day's start, or the run's start on its first day."""
    sending: Sending
    batches: list[EncodedBatch]
    offsets: npt.NDArray[np.int64]
    """The index of each batch's first visit among the day's."""
    ranks: npt.NDArray[np.int64]
    """The ranks this run sends, in send order: the copies of the visits before UNTIL."""
    sent: int = 0
    """How many of ``ranks`` have been sent (in this run, or before a restart)."""

    @property
    def count(self) -> int:
        """The number of copies this run sends of the day."""
        return int(self.ranks.shape[0])

    def key(self, rank: int) -> Key:
        """The order key of copy ``rank`` (-1: the plan line)."""
        if rank < 0:
            return self.at_us, PLAN, self.plan.date.toordinal(), -1
        return int(self.sending.send_us[rank]), VISIT, self.plan.date.toordinal(), rank

    def item(self, rank: int) -> tuple[EncodedBatch, int]:
        """The encoded batch holding copy ``rank``'s visit, and the visit's index in it."""
        visit = int(self.sending.visit[rank])
        b = int(np.searchsorted(self.offsets, visit, side="right")) - 1
        return self.batches[b], visit - int(self.offsets[b])

    def held(self, now_us: int) -> int:
        """Copies of visits entered by ``now_us`` (and before UNTIL) not sent yet: late, held or second ones."""
        return max(0, min(self.sending.due(now_us), self.count) - self.sent)

    def skip_to(self, after: Key) -> None:
        """Count as sent every copy at or before ``after`` in the store's order (what went before a restart)."""
        send = self.sending.send_us[self.ranks]
        ordinal = self.plan.date.toordinal()
        later = (VISIT, ordinal) > after[1:3]
        same = (VISIT, ordinal) == after[1:3]
        before = (send < after[0]) | ((send == after[0]) & (not later) & (not same or self.ranks <= after[3]))
        self.sent = int(np.count_nonzero(before))


@dataclass(frozen=True, slots=True)
class Copy:
    """Copy ``rank`` of a day, in the day's send order, and whether it is the last the run sends of the day."""

    day: Day
    rank: int
    last: bool


Single = tuple[int, int, DayPlan | EncodedBatch, int, Day | Copy]
"""(instant, kind, payload, index, tag): a day's plan line and its Day, or a copy and where its bytes are."""


def open_day(
    store: StoreModel, root: int, imp: Imperfections, plan: DayPlan, *, at_us: int, until_us: int | None
) -> Day:
    """Decide and encode a day's copies."""
    batches = list(day_batches(root, plan))
    entries = entries_of(batches)
    sending = decide(imp, root, store.model, plan, entries)
    sizes = np.array([len(b) for b in batches], dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    kept = np.ones(len(sending), dtype=np.bool_)
    if until_us is not None:
        kept = entries[sending.visit] < until_us
    encoded = [encode_batch(plan, b, store.store_id) for b in batches]
    return Day(plan, store.store_id, at_us, sending, encoded, offsets, np.flatnonzero(kept).astype(np.int64))


def _copies(day: Day) -> Iterator[tuple[Key, Single]]:
    """A day's copies not sent yet, in its send order, each with its key."""
    last = day.count - 1
    for i in range(day.sent, day.count):
        rank = int(day.ranks[i])
        batch, index = day.item(rank)
        key = day.key(rank)
        yield key, (key[0], VISIT, batch, index, Copy(day, rank, i == last))


def store_items(
    store: StoreModel,
    root: int,
    imp: Imperfections,
    start_us: int,
    *,
    resume: ResumeAfter | None = None,
    dates: Iterable[dt.date] | None = None,
    until_us: int | None = None,
) -> Iterator[Single]:
    """A store's plan lines and copies from ``start_us`` on (after ``resume``), in send order, day after day.

    A day is drawn when its plan line falls due; on a restart, the days that may still
    spill past the resume position are drawn again, and their copies up to it skipped.
    """
    model = store.model
    first = local_date(start_us, model.tz)
    spill_days = math.ceil(imp.spill_us / US_PER_DAY) + 1
    earliest = None if resume is None else resume.date - dt.timedelta(days=spill_days)
    days = (d for d in (days_from(first) if dates is None else dates) if earliest is None or d >= earliest)
    heap: list[tuple[Key, Single, Iterator[tuple[Key, Single]]]] = []
    after = None if resume is None else _resume_key(store, root, imp, resume, start_us)
    pending = _next_plan(model, root, first, start_us, days)
    while pending is not None or heap:
        if pending is not None and until_us is not None and pending[0] >= until_us:
            pending = None  # the days from UNTIL on are not the run's
            continue
        if pending is not None and (not heap or (pending[0], PLAN) <= heap[0][0][:2]):
            at_us, plan = pending
            pending = _next_plan(model, root, first, start_us, days)
            day = open_day(store, root, imp, plan, at_us=at_us, until_us=until_us)
            if after is not None:
                day.skip_to(after)
            if resume is None or plan.date >= resume.date:
                yield at_us, PLAN, plan, 0, day
            _push(heap, _copies(day))
            continue
        _, item, rest = heapq.heappop(heap)
        yield item
        _push(heap, rest)


def _resume_key(store: StoreModel, root: int, imp: Imperfections, resume: ResumeAfter, start_us: int) -> Key:
    """The order key of the item a restart resumes after: its day drawn again."""
    return _drawn(store, root, imp, resume.date, start_us).key(resume.index)


def _drawn(store: StoreModel, root: int, imp: Imperfections, date: dt.date, start_us: int) -> Day:
    """A day of a run that started at ``start_us``, drawn again (all its copies: UNTIL aside)."""
    first = local_date(start_us, store.model.tz)
    plan = plan_day(store.model, root, date, now_us=start_us if date == first else None)
    return open_day(store, root, imp, plan, at_us=max(plan.start_us, start_us), until_us=None)


def later(store: StoreModel, root: int, imp: Imperfections, a: Position, b: Position) -> bool:
    """Whether position ``a`` of a store comes after ``b`` in the order its copies are sent."""
    key_a = _resume_key(store, root, imp, ResumeAfter(a.date, a.index), a.start_us)
    return key_a > _resume_key(store, root, imp, ResumeAfter(b.date, b.index), b.start_us)


def copy_at(store: StoreModel, root: int, imp: Imperfections, position: Position) -> tuple[str | None, int] | None:
    """The customer id and entry instant of the copy at ``position`` (-1: none, and its day's start); None past it."""
    day = _drawn(store, root, imp, position.date, position.start_us)
    if position.index < 0:
        return None, day.at_us
    if position.index >= len(day.sending):
        return None
    batch, index = day.item(position.index)
    return batch.key(index).decode(), int(batch.entries_us[index])


def _push(heap: list[tuple[Key, Single, Iterator[tuple[Key, Single]]]], items: Iterator[tuple[Key, Single]]) -> None:
    head = next(items, None)
    if head is not None:
        heapq.heappush(heap, (head[0], head[1], items))


def _next_plan(
    model: Model, root: int, first: dt.date, start_us: int, days: Iterator[dt.date]
) -> tuple[int, DayPlan] | None:
    """The next day's plan and the instant of its plan line; None when no day is left."""
    date = next(days, None)
    if date is None:
        return None
    plan = plan_day(model, root, date, now_us=start_us if date == first else None)
    return max(plan.start_us, start_us), plan
