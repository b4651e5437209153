"""A chain's stores in bulk: their visits gathered window by window, ordered once, and encoded as one batch.

The loop takes this path for a fixed set of works (a whole run or a static shard)
without imperfections, sensor events or not; a fleet member, whose works change while it
runs, and an imperfect run merge their stores event by event (:mod:`foot_traffic.run.merge`).
Each store keeps its own lazy stream (:func:`~foot_traffic.run.timeline.timeline`: at
most one sampled batch ahead), and the chain hands out, in time order, two kinds of step:

* :class:`Plans`: the plan lines due at one instant, in the stores' order;
* :class:`Window`: every store's visits due in [t0, t1), ordered once by a stable sort
  on (entry instant, store order), encoded and noted a due range at a time.

A window ends where any store may plan its next day (the end of its current day, or
its next plan), at UNTIL, and at most :data:`WINDOW_US` after its first visit: plan lines
come before the visits at their instant, and memory stays bounded. The order is the one a
merge of the stores' streams gives: by instant; at one instant plan lines before visits;
then by the stores' order (their order in the stores file); a store's own visits at one
instant in their stream's order.

Building a window samples the next batch of every store it reaches, at once: in real
time, the events due while a window of thousands of stores is built leave that much late.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.events.encoding import Group, MixedBatch, encode_mixed
from foot_traffic.model.grid import US_PER_SECOND
from foot_traffic.model.plan import DayPlan
from foot_traffic.run.merge import PLAN, VISIT
from foot_traffic.run.ownership import Work
from foot_traffic.run.timeline import Item, Note, Visits

WINDOW_US = 3600 * US_PER_SECOND
"""The longest window: what one window holds of a chain's visits (its memory) grows with it."""

_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class Plans:
    """The plan lines due at ``instant``, each with its store's work, in the stores' order."""

    instant: int
    plans: list[tuple[DayPlan, Work]]


Part = tuple[int, Visits, int, int, Group]
"""(store order, sampled batch, start, stop, its group): the visits [start, stop) of a batch that fall in a window."""


class Window:
    """The visits of several stores due in one window, in the order they are sent."""

    def __init__(self, parts: list[Part]) -> None:
        parts.sort(key=lambda part: part[0])  # stable: a store's parts stay in stream order
        sizes = [stop - start for _, _, start, stop, _ in parts]
        entries = np.concatenate([v.batch.entries_us[a:b] for _, v, a, b, _ in parts])
        order = np.argsort(entries, kind="stable")
        self.entries_us: npt.NDArray[np.int64] = entries[order]
        self._durations = np.concatenate([v.batch.durations_min[a:b] for _, v, a, b, _ in parts])[order]
        self._ids = np.concatenate([v.batch.ids[a:b] for _, v, a, b, _ in parts])[order]
        self._groups = np.repeat(np.arange(len(parts), dtype=np.intp), sizes)[order]
        self._order = order
        self._index: npt.NDArray[np.int64] | None = None
        self._parts = parts
        self._infos = [group for *_, group in parts]
        self._owners = np.array([order for order, *_ in parts], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.entries_us.shape[0])

    def encode(self, start: int, stop: int) -> MixedBatch:
        """Encode visits [start, stop) as one batch (its groups: the parts among them)."""
        groups, infos = self._groups[start:stop], self._infos
        if stop - start < len(self):
            used, groups = np.unique(groups, return_inverse=True)
            infos = [infos[g] for g in used.tolist()]
        entries, durations, ids = self.entries_us[start:stop], self._durations[start:stop], self._ids[start:stop]
        return encode_mixed(entries, durations, ids, groups, infos)

    def notes(self, start: int, stop: int) -> list[Note]:
        """The positions to note before visits [start, stop) go: each store's last visit among them."""
        if self._index is None:  # each visit's index among its day's: its part's first, plus its rank in the part
            sizes = np.array([b - a for _, _, a, b, _ in self._parts], dtype=np.int64)
            firsts = np.array([v.first + a for _, v, a, _, _ in self._parts], dtype=np.int64)
            starts = np.cumsum(sizes) - sizes
            groups = np.repeat(np.arange(len(self._parts)), sizes)
            self._index = (firsts[groups] + np.arange(int(sizes.sum())) - starts[groups])[self._order]
        groups = self._groups[start:stop]
        owners = self._owners[groups]
        _, back = np.unique(owners[::-1], return_index=True)
        notes = []
        for at in (stop - 1 - back).tolist():
            plan = self._parts[int(self._groups[at])][1].plan
            index = int(self._index[at])
            notes.append((self._infos[int(self._groups[at])].store_id, plan.date, index, index + 1 == plan.total))
        return notes


@dataclass(slots=True)
class _Stream:
    """One store's stream: its work, its items, and where it stands."""

    order: int
    work: Work
    items: Iterator[Item]
    head: DayPlan | Visits | None = None
    """The next plan line, the batch being sent, or None once the stream has ended."""
    at: int = 0
    """The head's instant (a plan line), or its next visit (a batch)."""
    bound: int = 0
    """No plan line of the stream comes before this instant."""
    group: Group | None = None
    """What the head batch's lines end with (its store, slot, weekday and zone)."""


class Chain:
    """The plan lines and windows of visits of several works' streams, in time order, up to ``until_us``."""

    def __init__(self, streams: Sequence[tuple[Work, Iterator[Item]]], until_us: int | None) -> None:
        self._streams = [_Stream(order, work, items) for order, (work, items) in enumerate(streams)]
        self._heap: list[tuple[int, int, int]] = []  # (instant, kind, order) of each live stream's head
        self._bounds: list[tuple[int, int]] = []  # (bound, order); an entry no longer its stream's bound is stale
        self._until = _NEVER if until_us is None else until_us
        for stream in self._streams:
            self._advance(stream)
            self._schedule(stream)

    def live(self) -> list[Work]:
        """The works whose streams have not ended, in order."""
        return [stream.work for stream in self._streams if stream.head is not None]

    def step(self) -> Plans | Window | None:
        """The next plan lines or window of visits; None when nothing is left before UNTIL."""
        heap = self._heap
        if not heap or heap[0][0] >= self._until:
            return None
        instant, kind, _ = heap[0]
        if kind == PLAN:
            plans = []
            while heap and heap[0][0] == instant and heap[0][1] == PLAN:
                stream = self._streams[heapq.heappop(heap)[2]]
                assert isinstance(stream.head, DayPlan)  # noqa: S101 - a PLAN entry's head is its plan
                plans.append((stream.head, stream.work))
                self._bound(stream, stream.head.end_us)
                self._advance(stream)
                self._schedule(stream)
            return Plans(instant, plans)
        end = min(instant + WINDOW_US, self._until, self._next_bound())
        parts: list[Part] = []
        while heap and heap[0][0] < end:
            self._take(self._streams[heapq.heappop(heap)[2]], end, parts)
        return Window(parts)

    def _take(self, stream: _Stream, end: int, parts: list[Part]) -> None:
        """Add the stream's visits before ``end`` to ``parts``; move the stream on and schedule it."""
        while isinstance(stream.head, Visits):
            entries = stream.head.batch.entries_us
            stop = int(entries.searchsorted(end))
            if stop > stream.at:
                assert stream.group is not None  # noqa: S101 - set with the batch
                parts.append((stream.order, stream.head, stream.at, stop, stream.group))
            if stop < entries.shape[0]:
                stream.at = stop
                break
            self._advance(stream)
        self._schedule(stream)

    def _advance(self, stream: _Stream) -> None:
        """Move the stream to its next item, or end it."""
        item = next(stream.items, None)
        if item is None:
            stream.head = None
            return
        instant, kind, head = item
        stream.head = head
        stream.at = instant if kind == PLAN else 0
        if isinstance(head, Visits):
            plan = head.plan
            stream.group = Group(head.store_id, plan.labels[head.batch.slot], plan.weekday, plan.tz)
        else:
            self._bound(stream, instant)

    def _schedule(self, stream: _Stream) -> None:
        """Put the stream's head in the heap at its instant (a live stream only)."""
        head = stream.head
        if isinstance(head, DayPlan):
            heapq.heappush(self._heap, (stream.at, PLAN, stream.order))
        elif head is not None:
            heapq.heappush(self._heap, (int(head.batch.entries_us[stream.at]), VISIT, stream.order))

    def _bound(self, stream: _Stream, instant: int) -> None:
        """Note that ``stream`` plans nothing before ``instant`` (older notes of it are skipped when they come up)."""
        stream.bound = instant
        heapq.heappush(self._bounds, (instant, stream.order))

    def _next_bound(self) -> int:
        """The earliest instant a live stream may plan its next day."""
        bounds, streams = self._bounds, self._streams
        while bounds and (streams[bounds[0][1]].head is None or streams[bounds[0][1]].bound != bounds[0][0]):
            heapq.heappop(bounds)
        return bounds[0][0] if bounds else _NEVER
