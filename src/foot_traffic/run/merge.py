"""A time-ordered merge of streams that join and leave while it runs: a fleet member's works as they change.

Each stream is one work's sequence of items, already in time order; the merge hands
out the earliest head of all live streams, ties going to the stream started first
(as :func:`heapq.merge` does with its iterables in order). Stopping a stream drops
it at once: its head stays in the heap, skipped when it comes up.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Generic, TypeVar

from foot_traffic.run.ownership import Work

PLAN, VISIT = 0, 1
"""Kinds of timeline items; at the same instant a day's plan line comes before its visits."""

T = TypeVar("T", bound=tuple[int, int, object, int, object])
"""An item whose first two fields, (instant, kind), order it."""


class Merge(Generic[T]):
    """Streams of items keyed by their work, merged by (instant, kind, order of start)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, T]] = []
        self._live: dict[int, tuple[Work, Iterator[T]]] = {}
        self._tokens: dict[Work, int] = {}
        self._next = 0

    def __len__(self) -> int:
        """The number of live streams."""
        return len(self._live)

    def start(self, work: Work, items: Iterator[T]) -> int:
        """Add ``work``'s stream; return its token (stop the work first if it runs)."""
        token = self._next
        self._next += 1
        self._live[token] = (work, items)
        self._tokens[work] = token
        self._push(token, items)
        return token

    def stop(self, work: Work) -> int | None:
        """Drop ``work``'s stream; return its token, None when it was not running."""
        token = self._tokens.pop(work, None)
        if token is not None:
            del self._live[token]
        return token

    def works(self) -> list[Work]:
        """The works whose streams are live, in the order they started."""
        return [work for work, _ in self._live.values()]

    def peek(self) -> T | None:
        """The earliest item of the live streams, left in place; None when none has one."""
        heap = self._heap
        while heap and heap[0][2] not in self._live:
            heapq.heappop(heap)
        return heap[0][3] if heap else None

    def pop(self) -> tuple[Work, int, T]:
        """Take the earliest item, with its work and token; the caller peeked first."""
        *_, token, item = heapq.heappop(self._heap)
        work, items = self._live[token]
        if not self._push(token, items):
            del self._live[token]
            self._tokens.pop(work, None)
        return work, token, item

    def _push(self, token: int, items: Iterator[T]) -> bool:
        """Push the stream's next item; False when the stream has ended."""
        item = next(items, None)
        if item is None:
            return False
        heapq.heappush(self._heap, (item[0], item[1], token, item))
        return True
