"""Sampling of arrivals: entry instants, visit durations and customer ids, slot by slot.

A slot's arrivals are drawn lazily in chunks so memory and start-up time stay
bounded whatever the daily volume: the slot's interval is cut into equal
sub-intervals, a multinomial draw decides how many arrivals fall in each
(exactly the law of uniform points), and each chunk is then sampled and sorted
on its own stream. The concatenation is the sorted sample of the whole slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic import randomness
from foot_traffic.plan import DayPlan

CHUNK_TARGET = 65_536
"""Largest expected number of arrivals per chunk."""

DURATION_MIXTURE: tuple[tuple[float, int, int], ...] = ((0.35, 10, 29), (0.39, 30, 44), (0.26, 45, 75))
"""Visit duration law: (probability, first minute, last minute), each part uniform on whole minutes."""

_CUT_1 = DURATION_MIXTURE[0][0]
_CUT_2 = DURATION_MIXTURE[0][0] + DURATION_MIXTURE[1][0]


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive arrivals of one slot, sorted by entry instant."""

    slot: int
    entries_us: npt.NDArray[np.int64]
    durations_min: npt.NDArray[np.int64]
    ids: npt.NDArray[np.uint8]
    """One row of 16 bytes per arrival: a version-4-shaped UUID."""

    def __len__(self) -> int:
        return int(self.entries_us.shape[0])


def sample_durations(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    """Draw ``n`` visit durations in whole minutes from the mixture."""
    u = rng.random(n)
    first = np.where(u < _CUT_1, 10, np.where(u < _CUT_2, 30, 45))
    last = np.where(u < _CUT_1, 29, np.where(u < _CUT_2, 44, 75))
    return rng.integers(first, last, endpoint=True, dtype=np.int64)


def sample_ids(rng: np.random.Generator, n: int) -> npt.NDArray[np.uint8]:
    """Draw ``n`` random 16-byte ids with the version-4 and RFC 4122 variant bits set."""
    ids = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    ids[:, 6] = (ids[:, 6] & 0x0F) | 0x40
    ids[:, 8] = (ids[:, 8] & 0x3F) | 0x80
    return ids


def chunk_edges(low: int, high: int, count: int) -> list[int]:
    """Cut [low, high) into equal integer sub-intervals holding about CHUNK_TARGET arrivals each."""
    pieces = max(1, min(-(-count // CHUNK_TARGET), high - low))
    return [low + (j * (high - low)) // pieces for j in range(pieces + 1)]


def slot_batches(root: int, plan: DayPlan, slot: int, store: int = 0) -> Iterator[Batch]:
    """Yield one slot's arrivals in entry order, uniform on the microseconds of [low, end)."""
    count = plan.counts[slot]
    low, high = plan.lows[slot], plan.bounds[slot + 1]
    if count <= 0 or high <= low:
        return
    ordinal = plan.date.toordinal()
    edges = chunk_edges(low, high, count)
    if len(edges) == 2:
        per_chunk = [count]
    else:
        lengths = np.diff(np.asarray(edges, dtype=np.int64)).astype(np.float64)
        splitter = randomness.generator(root, store, randomness.SLOT, ordinal, slot)
        per_chunk = splitter.multinomial(count, lengths / lengths.sum()).tolist()
    for j, n in enumerate(per_chunk):
        if n == 0:
            continue
        rng = randomness.generator(root, store, randomness.CHUNK, ordinal, slot, j)
        entries = np.sort(rng.integers(edges[j], edges[j + 1], size=n, dtype=np.int64))
        yield Batch(slot, entries, sample_durations(rng, n), sample_ids(rng, n))


def day_batches(root: int, plan: DayPlan, store: int = 0) -> Iterator[Batch]:
    """Yield a day's arrivals in entry order, slot by slot."""
    for slot in range(len(plan.counts)):
        yield from slot_batches(root, plan, slot, store)
