"""A chain's stores in bulk: their days planned when reached, their chunks sampled together, window by window.

The loop takes this path for a fixed set of works (a whole run or a static shard)
without imperfections, sensor events or not; a fleet member, whose works change while it
runs, and an imperfect run merge their stores event by event (:mod:`foot_traffic.run.merge`).
The chain hands out, in time order, two kinds of step:

* :class:`Plans`: the plan lines due at one instant, in the stores' order. Planning a
  day turns it into chunks (:func:`~foot_traffic.model.arrivals.slot_chunks`), not yet sampled.
* :class:`Window`: every store's visits due in [t0, t1), ordered once by a stable sort
  on (entry instant, store order). Building it samples every chunk that begins before
  t1, all at once (:func:`~foot_traffic.model.bulk.draw`); what they hold past t1 waits
  for the next window.

A window ends where any store plans its next day, at UNTIL, and at most :data:`WINDOW_US`
after it begins. The order is the one a merge of the stores' own streams gives: by instant;
at one instant plan lines before visits; then by the stores' order (their order in the
stores file); a store's own visits at one instant in their stream's order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from foot_traffic.events.encoding import Group, GroupTable, MixedBatch, encode_mixed
from foot_traffic.model import bulk, randomness
from foot_traffic.model.arrivals import slot_chunks
from foot_traffic.model.grid import US_PER_SECOND
from foot_traffic.model.plan import DayPlan
from foot_traffic.run.ownership import Work
from foot_traffic.run.timeline import DayItem, Note

WINDOW_US = 3600 * US_PER_SECOND
"""The longest window: what one window holds of a chain's visits (its memory) grows with it."""

LEAD_PER_STORE_US = 60
"""How far ahead of the wall clock a live chain starts, per store: about what planning its first day takes."""
LEAD_MAX_US = 30 * US_PER_SECOND
AHEAD_DAYS, AHEAD_CHUNKS = 128, 256
"""The most days planned, or chunks sampled, in one call of :meth:`Chain.ahead`."""
_NEVER = np.iinfo(np.int64).max
_SLOTS = 1 << 12
"""More than any day's slots: a group (a day's slot) is numbered day × _SLOTS + slot."""

I64 = npt.NDArray[np.int64]


def live_start(now_us: int, works: Sequence[Work], rate: float) -> int:
    """The start of a live chain: ``now_us`` plus a lead for planning its stores, on a clock of ``rate``.

    A live run starts now, and its first events are due at once: a chain of thousands of
    stores plans every store and samples their current chunks before the first one can go.
    Starting the chain that much later (the mid-day rule counts from the start) keeps its
    first events on time instead of sending them late in a burst.
    """
    lead = min(LEAD_PER_STORE_US * len(works), LEAD_MAX_US)
    return now_us + int(lead * rate) if 0 < rate < float("inf") else now_us


@dataclass(frozen=True, slots=True)
class Plans:
    """The plan lines due at ``instant``, each with its store's work, in the stores' order."""

    instant: int
    plans: list[tuple[DayPlan, Work]]


@dataclass(frozen=True, slots=True)
class _Planned:
    """A day the chain planned: its plan and store."""

    plan: DayPlan
    order: int
    store_id: str | None


@dataclass(slots=True)
class _Visits:
    """Sampled visits, flat: each with its store's order, its group (day × _SLOTS + slot) and its index in its day."""

    entries: I64
    durations: I64
    ids: npt.NDArray[np.uint8]
    owners: I64
    groups: I64
    index: I64

    @staticmethod
    def empty() -> _Visits:
        """No visits."""
        none = np.zeros(0, dtype=np.int64)
        return _Visits(none, none, np.zeros((0, 16), dtype=np.uint8), none, none, none)

    def take(self, which: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> _Visits:
        """The visits ``which`` selects, in its order."""
        return _Visits(
            self.entries[which],
            self.durations[which],
            self.ids[which],
            self.owners[which],
            self.groups[which],
            self.index[which],
        )

    @staticmethod
    def join(parts: Sequence[_Visits]) -> _Visits:
        """The visits of ``parts``, one after the other."""
        return _Visits(*(np.concatenate([getattr(p, name) for p in parts]) for name in _Visits.__slots__))


class Window:
    """The visits of several stores due in one window, in the order they are sent."""

    def __init__(
        self, visits: _Visits, rows: npt.NDArray[np.intp], table: GroupTable, days: dict[int, _Planned]
    ) -> None:
        self._visits = visits
        self.entries_us: I64 = visits.entries
        self._rows = rows
        """Each visit's group's row in ``table``."""
        self._table = table
        self._days = days

    def __len__(self) -> int:
        return int(self.entries_us.shape[0])

    def encode(self, start: int, stop: int) -> MixedBatch:
        """Encode visits [start, stop) as one batch (its groups: the window's)."""
        v = self._visits
        return encode_mixed(
            v.entries[start:stop], v.durations[start:stop], v.ids[start:stop], self._rows[start:stop], self._table
        )

    def notes(self, start: int, stop: int) -> list[Note]:
        """The positions to note before visits [start, stop) go: each store's last visit among them."""
        owners = self._visits.owners[start:stop]
        _, back = np.unique(owners[::-1], return_index=True)
        notes = []
        for at in (stop - 1 - back).tolist():
            day = self._days[int(self._visits.groups[at]) // _SLOTS]
            index = int(self._visits.index[at])
            notes.append((day.store_id, day.plan.date, index, index + 1 == day.plan.total))
        return notes


def _group(day: _Planned, slot: int) -> Group:
    """What the visits of a day's slot end their lines with."""
    return Group(day.store_id, day.plan.labels[slot], day.plan.weekday, day.plan.tz)


@dataclass(slots=True)
class _Store:
    """One store's days: its work, its planned days to come, and its next plan line."""

    order: int
    work: Work
    days: Iterator[DayItem]
    head: DayItem | None = None
    plan: DayPlan | None = None
    """The head day's plan, once made (ahead of its line, or when its line is due)."""
    following: DayItem | None = None
    fetched: bool = False
    """Whether ``following``, the day after the head (None: none), is known: it is fetched when the head is planned."""


@dataclass(slots=True)
class _Pending:
    """Chunks planned and not yet sampled, by their start: columns to draw, and each one's day, first index and skip."""

    chunks: bulk.Chunks | None = None
    groups: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    firsts: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    skips: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    owners: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def first_start(self) -> int:
        """The earliest start of a pending chunk."""
        return _NEVER if self.chunks is None or not self.chunks.n.shape[0] else int(self.chunks.low[0])


class Chain:
    """The plan lines and windows of visits of several works, in time order, up to ``until_us``."""

    def __init__(self, root: int, stores: Sequence[tuple[Work, Iterator[DayItem]]], until_us: int | None) -> None:
        self._root = root
        self._stores = [_Store(order, work, days) for order, (work, days) in enumerate(stores)]
        self._due: dict[int, list[int]] = {}  # the stores (orders) whose next plan line is due at each instant
        self._instants: list[int] = []  # those instants, a heap
        self._unplanned: dict[int, list[int]] = {}  # the same, for days not planned yet (some may be since)
        self._unplanned_at: list[int] = []  # their instants, a heap (some may be gone since)
        self._end = 0  # the last window's end
        self._until = _NEVER if until_us is None else until_us
        self._days: dict[int, _Planned] = {}
        self._table = GroupTable.of([])  # the groups sent so far, a row each: made when first sent
        self._known = np.zeros(0, dtype=np.int64)  # their numbers, sorted
        self._rows = np.zeros(0, dtype=np.intp)  # the row of each
        self._next_day = 0
        self._pending = _Pending()
        self._fresh: list[_NewDay] = []  # days planned whose chunks are not pending yet
        self._carry = _Visits.empty()
        for store in self._stores:
            self._advance(store)
        self._end = self._plan_at() if self._instants else 0

    def live(self) -> list[Work]:
        """The works with days still to plan or visits still to send, in order."""
        busy = set(np.concatenate((self._pending.owners, self._carry.owners)).tolist())
        return [s.work for s in self._stores if s.head is not None or s.order in busy]

    def next_instant(self) -> int | None:
        """When the next step is due (a plan line, or a window's start); None when nothing is left before UNTIL."""
        start = min(self._plan_at(), self._visit_at())
        return None if start >= self._until else start

    def step(self) -> Plans | Window:
        """The next plan lines, or window of visits (it may hold none): call it once :meth:`next_instant` is due."""
        plan_at, visit_at = self._plan_at(), self._visit_at()
        if plan_at <= visit_at:
            return self._plans(plan_at)
        return self._window(visit_at, min(visit_at + WINDOW_US, self._until, plan_at))

    def _plan_at(self) -> int:
        return self._instants[0] if self._instants else _NEVER

    def _visit_at(self) -> int:
        return min(self._pending.first_start(), int(self._carry.entries.min(initial=_NEVER)))

    def ahead(self) -> bool:
        """Do a little of the work the next window needs, while the loop waits: False when none is left.

        Plan the days whose plan lines come before the next window's end (their lines still
        go when due: their chunks begin at or after them), or sample the pending chunks that
        begin before it (their visits wait in the carry): at most AHEAD_DAYS days or
        AHEAD_CHUNKS chunks a call, a few milliseconds.
        """
        horizon = min(max(self._end, self._visit_at()) + WINDOW_US, self._until)  # the next window's end at most
        planned = 0
        while planned < AHEAD_DAYS and (store := self._unplanned_before(horizon)) is not None:
            self._plan(store, self._fresh)
            planned += 1
        self._settle()
        if planned:
            return True
        pending = self._pending
        if pending.chunks is None or not pending.chunks.n.shape[0] or int(pending.chunks.low[0]) >= horizon:
            return False
        taken = min(AHEAD_CHUNKS, int(np.searchsorted(pending.chunks.low, horizon, side="left")))
        sampled = self._sample(pending, taken)
        self._rows_of(sampled.groups)  # their groups' rows made now, not when they are due
        self._carry = _Visits.join([self._carry, sampled])
        self._pending = _take_pending(pending, slice(taken, None))
        return True

    def _settle(self) -> None:
        """Add the chunks of the days planned since the last call to the pending ones (one sort for them all)."""
        if self._fresh:
            self._pending = _merge(self._pending, _new_chunks(self._root, self._fresh))
            self._fresh = []

    def _unplanned_before(self, horizon: int) -> _Store | None:
        """A store whose next day comes before ``horizon`` and is not planned yet (the earliest day first), if any."""
        while self._unplanned_at and self._unplanned_at[0] < horizon:
            instant = self._unplanned_at[0]
            orders = self._unplanned.get(instant)
            if not orders:  # planned when due, or all planned ahead
                self._unplanned.pop(instant, None)
                heapq.heappop(self._unplanned_at)
                continue
            store = self._stores[orders.pop()]
            if store.head is not None and store.head[0] == instant and store.plan is None:
                return store
        return None

    def _advance(self, store: _Store) -> None:
        """Move the store to its next day (fetched ahead, or now), and schedule its plan line and its planning."""
        store.head = store.following if store.fetched else next(store.days, None)
        store.plan, store.following, store.fetched = None, None, False
        if store.head is None:
            return
        instant = store.head[0]
        for due, heap in ((self._due, self._instants), (self._unplanned, self._unplanned_at)):
            orders = due.get(instant)
            if orders is None:
                due[instant] = [store.order]
                heapq.heappush(heap, instant)
            else:
                orders.append(store.order)

    def _plan(self, store: _Store, days: list[_NewDay]) -> DayPlan:
        """Plan the store's next day (once): its chunks go to ``days``."""
        if store.plan is not None:
            return store.plan
        assert store.head is not None  # noqa: S101 - a scheduled store has a day
        _, planned, skip = store.head
        plan = store.plan = planned()
        store.following, store.fetched = next(store.days, None), True  # the day after, for when this one's line goes
        template = _template(self._root, plan)
        if len(template.n):
            day = self._next_day
            self._next_day += 1
            self._days[day] = _Planned(plan, store.order, store.work.store_id)
            days.append(_NewDay(template, plan.store_key, plan.date.toordinal(), day, store.order, skip))
        return plan

    def _plans(self, instant: int) -> Plans:
        """The plan lines due at ``instant`` (their days planned now if not yet): their chunks join the pending ones."""
        plans: list[tuple[DayPlan, Work]] = []
        heapq.heappop(self._instants)
        self._unplanned.pop(instant, None)  # all planned now (its entry in the heap goes when reached)
        for order in sorted(self._due.pop(instant)):
            store = self._stores[order]
            plans.append((self._plan(store, self._fresh), store.work))
            self._advance(store)
        self._settle()
        return Plans(instant, plans)

    def _window(self, start: int, end: int) -> Window:
        """The visits due in [start, end): the pending chunks that begin before ``end`` sampled, with those carried."""
        self._settle()
        pending = self._pending
        taken = 0 if pending.chunks is None else int(np.searchsorted(pending.chunks.low, end, side="left"))
        parts = [self._carry]
        if taken:
            parts.append(self._sample(pending, taken))
            self._pending = _take_pending(pending, slice(taken, None))
        visits = _Visits.join(parts)
        due = visits.entries < end
        self._carry = visits.take(~due)
        due_at = np.flatnonzero(due)
        key = (visits.entries[due_at] - start) * len(self._stores) + visits.owners[due_at]
        visits = visits.take(due_at[np.argsort(key, kind="stable")])
        window = Window(visits, self._rows_of(visits.groups), self._table, self._days)
        self._end = end
        self._forget()
        return window

    def _rows_of(self, groups: I64) -> npt.NDArray[np.intp]:
        """The table's rows of ``groups`` (numbers day × _SLOTS + slot), those new to it added."""
        used, inverse = np.unique(groups, return_inverse=True)
        at = np.searchsorted(self._known, used)
        found = np.zeros(used.shape[0], dtype=bool)
        inside = at < self._known.shape[0]
        found[inside] = self._known[at[inside]] == used[inside]
        new = used[~found]
        if new.shape[0]:
            base = len(self._table.infos)
            self._table = self._table.extend([_group(self._days[g // _SLOTS], g % _SLOTS) for g in new.tolist()])
            known = np.concatenate((self._known, new))
            rows = np.concatenate((self._rows, np.arange(base, base + new.shape[0], dtype=np.intp)))
            order = np.argsort(known, kind="stable")
            self._known, self._rows = known[order], rows[order]
        rows_of_used: npt.NDArray[np.intp] = self._rows[np.searchsorted(self._known, used)]
        return rows_of_used[inverse]

    def _sample(self, pending: _Pending, taken: int) -> _Visits:
        """Sample the first ``taken`` pending chunks; drop the visits a resume skips."""
        c = pending.chunks
        assert c is not None  # noqa: S101 - some chunks are taken
        head = c.take(slice(None, taken))
        drawn = bulk.draw(head)
        n = head.n
        row = np.repeat(np.arange(taken), n)
        rank = np.arange(row.shape[0]) - np.repeat(np.cumsum(n) - n, n)
        visits = _Visits(
            drawn.entries_us,
            drawn.durations_min,
            drawn.ids,
            pending.owners[:taken][row],
            pending.groups[:taken][row],
            pending.firsts[:taken][row] + rank,
        )
        skips = pending.skips[:taken]
        return visits if not skips.any() else visits.take(rank >= skips[row])

    def _forget(self) -> None:
        """Forget the days none of whose visits are left to send (once they are many: a store has two or so alive)."""
        if len(self._days) > 4 * len(self._stores) + 64:
            alive = set((np.concatenate((self._pending.groups, self._carry.groups)) // _SLOTS).tolist())
            self._days = {day: planned for day, planned in self._days.items() if day in alive}
            kept = np.isin(self._known // _SLOTS, np.array(sorted(alive), dtype=np.int64))
            self._table = self._table.keep(self._rows[kept])
            self._known, self._rows = self._known[kept], np.arange(int(kept.sum()), dtype=np.intp)


@dataclass(frozen=True, slots=True)
class _Template:
    """A plan's chunks as columns, without their stream's stem: (slot, piece, chunk), n, low, high, y, first index."""

    keys: I64
    n: I64
    low: I64
    high: I64
    y: npt.NDArray[np.float64]
    firsts: I64


@dataclass(frozen=True, slots=True)
class _NewDay:
    """A day just planned: its chunks' template, its store's key and date, its number, its store's order and skip."""

    template: _Template
    store_key: int
    ordinal: int
    day: int
    order: int
    skip: int


_TEMPLATES: dict[tuple[int, int], tuple[object, object, _Template]] = {}
"""Templates of plans whose chunks need no draw to split (one piece per slot, one chunk per piece).

Such a plan's chunks depend on its counts and pieces only, which plans of one profile, zone
and date share (as objects): keyed by their identities, each entry keeping them alive.
"""
_TEMPLATES_MAX = 4096


def _template(root: int, plan: DayPlan) -> _Template:
    """The plan's chunks as columns (cached when they take no draw)."""
    key = (id(plan.pieces), id(plan.counts))
    cached = _TEMPLATES.get(key)
    if cached is not None and cached[0] is plan.pieces and cached[1] is plan.counts:
        return cached[2]
    chunks = [c for slot, count in enumerate(plan.counts) if count for c in slot_chunks(root, plan, slot)]
    keys, n, low, high, y = bulk.columns(chunks)
    template = _Template(keys, n, low, high, y, np.cumsum(n) - n)
    if all(len(plan.pieces[c.slot]) == 1 and c.n == plan.counts[c.slot] for c in chunks):  # no split drawn
        if len(_TEMPLATES) >= _TEMPLATES_MAX:
            _TEMPLATES.clear()
        _TEMPLATES[key] = (plan.pieces, plan.counts, template)
    return template


def _new_chunks(root: int, days: list[_NewDay]) -> _Pending:
    """The chunks of days just planned, as pending columns (ordered by day, then by start)."""
    sizes = np.array([len(d.template.n) for d in days], dtype=np.int64)
    stores = np.array([d.store_key for d in days], dtype=np.int64)
    pools, positions = randomness.day_stems(root, stores, randomness.CHUNK, np.array([d.ordinal for d in days]))
    keys = np.concatenate([d.template.keys for d in days])
    firsts = np.concatenate([d.template.firsts for d in days])
    chunks = bulk.Chunks(
        np.repeat(pools, sizes, axis=0),
        np.repeat(positions, sizes),
        keys,
        np.concatenate([d.template.n for d in days]),
        np.concatenate([d.template.low for d in days]),
        np.concatenate([d.template.high for d in days]),
        np.concatenate([d.template.y for d in days]),
    )
    groups = np.repeat(np.array([d.day for d in days], dtype=np.int64) * _SLOTS, sizes) + keys[:, 0]
    skips = np.clip(np.repeat(np.array([d.skip for d in days], dtype=np.int64), sizes) - firsts, 0, None)
    owners = np.repeat(np.array([d.order for d in days], dtype=np.int64), sizes)
    return _Pending(chunks, groups, firsts, skips, owners)


def _merge(pending: _Pending, new: _Pending) -> _Pending:
    """The pending chunks with new ones, ordered by start (each day's chunks kept in order): a linear merge."""
    assert new.chunks is not None  # noqa: S101 - new chunks are given
    order = np.argsort(new.chunks.low, kind="stable")
    if pending.chunks is None or not pending.chunks.n.shape[0]:
        return _take_pending(new, order)
    total = pending.chunks.n.shape[0] + order.shape[0]
    into = np.searchsorted(pending.chunks.low, new.chunks.low[order], side="right") + np.arange(order.shape[0])
    old = np.ones(total, dtype=bool)
    old[into] = False

    def put(mine: npt.NDArray[Any], theirs: npt.NDArray[Any]) -> npt.NDArray[Any]:
        out = np.empty((total, *mine.shape[1:]), dtype=mine.dtype)
        out[old], out[into] = mine, theirs[order]
        return out

    columns = bulk.Chunks(
        *(put(getattr(pending.chunks, name), getattr(new.chunks, name)) for name in bulk.Chunks.__slots__)
    )
    rest = [put(getattr(pending, name), getattr(new, name)) for name in ("groups", "firsts", "skips", "owners")]
    return _Pending(columns, *rest)


def _take_pending(pending: _Pending, which: slice | npt.NDArray[np.intp]) -> _Pending:
    """The pending chunks ``which`` selects, in its order."""
    assert pending.chunks is not None  # noqa: S101 - chunks are given
    rest = [getattr(pending, name)[which] for name in ("groups", "firsts", "skips", "owners")]
    return _Pending(pending.chunks.take(which), *rest)
