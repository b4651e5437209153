"""Sampling of arrivals: entry instants, visit durations and customer ids, slot by slot.

A slot's arrivals are drawn lazily in chunks so memory and start-up time stay
bounded whatever the daily volume: the slot's interval is cut into equal
sub-intervals, a multinomial draw decides how many arrivals fall in each
(exactly the law of uniform points), and each chunk is then sampled and sorted
on its own stream. The concatenation is the sorted sample of the whole slot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.model import randomness
from foot_traffic.model.plan import DayPlan

CHUNK_TARGET = 16_384
"""Largest expected number of arrivals per chunk."""

DURATION_MIXTURE: tuple[tuple[float, int, int], ...] = ((0.35, 10, 29), (0.39, 30, 44), (0.26, 45, 75))
"""Visit duration law: (probability, first minute, last minute), each part uniform on whole minutes."""

_CUTS = np.cumsum([p for p, _, _ in DURATION_MIXTURE[:-1]])
"""Where each part of the mixture ends on [0, 1): a uniform draw u falls in part searchsorted(u, "right")."""
_FIRSTS = np.array([first for _, first, _ in DURATION_MIXTURE], dtype=np.int64)
_LASTS = np.array([last for _, _, last in DURATION_MIXTURE], dtype=np.int64)

# An id is 16 random bytes with the version (byte 6: 0100xxxx) and variant (byte 8: 10xxxxxx) bits forced.
_ID_KEEP = np.full(16, 0xFF, dtype=np.uint8)
_ID_KEEP[6], _ID_KEEP[8] = 0x0F, 0x3F
_ID_SET = np.zeros(16, dtype=np.uint8)
_ID_SET[6], _ID_SET[8] = 0x40, 0x80


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

    def slice(self, start: int, stop: int) -> Batch:
        """Arrivals [start, stop) of the batch."""
        return Batch(self.slot, self.entries_us[start:stop], self.durations_min[start:stop], self.ids[start:stop])


def sample_durations(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    """Draw ``n`` visit durations in whole minutes from the mixture."""
    part = _CUTS.searchsorted(rng.random(n), side="right")
    return rng.integers(_FIRSTS[part], _LASTS[part], endpoint=True, dtype=np.int64)


def sample_ids(rng: np.random.Generator, n: int) -> npt.NDArray[np.uint8]:
    """Draw ``n`` random 16-byte ids with the version-4 and RFC 4122 variant bits set.

    The bytes are ``rng.bytes(16 * n)``, drawn as that method does (little-endian 32-bit words) without its
    copies; like it, no ids still draw one word.
    """
    words = rng.integers(0, 1 << 32, size=4 * n or 1, dtype=np.uint32).astype("<u4", copy=False)
    ids = words.view(np.uint8)[: 16 * n].reshape(n, 16)
    ids &= _ID_KEEP
    ids |= _ID_SET
    return ids


def chunk_edges(low: int, high: int, count: int) -> list[int]:
    """Cut [low, high) into equal integer sub-intervals holding about CHUNK_TARGET arrivals each."""
    pieces = max(1, min(-(-count // CHUNK_TARGET), high - low))
    return [low + (j * (high - low)) // pieces for j in range(pieces + 1)]


def sample_instants(
    rng: np.random.Generator, n: int, low: int, high: int, *, y0: float = 1.0, y1: float = 1.0
) -> npt.NDArray[np.int64]:
    """Draw ``n`` sorted instants in [low, high) with density linear from ``y0`` to ``y1``.

    Constant density: uniform on the microseconds. Otherwise the inverse of the
    quadratic distribution function: t = (√(y0² + u·(y1² − y0²)) − y0) / (y1 − y0).
    """
    if y0 == y1:
        instants = rng.integers(low, high, size=n, dtype=np.int64)
        instants.sort()
        return instants
    u = rng.random(n)
    t = (np.sqrt(y0 * y0 + u * (y1 * y1 - y0 * y0)) - y0) / (y1 - y0)
    instants = low + np.floor(t * (high - low)).astype(np.int64)
    return np.sort(np.clip(instants, low, high - 1))


def _split(rng: np.random.Generator, count: int, masses: list[float]) -> list[int]:
    total = math.fsum(masses)
    return [int(c) for c in rng.multinomial(count, [m / total for m in masses])]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk of a slot, not yet sampled: ``n`` arrivals in [low, high), density linear from ``y0`` to ``y1``.

    It is drawn on the stream (store, CHUNK, date, slot, piece, chunk) of its plan.
    """

    slot: int
    piece: int
    chunk: int
    n: int
    low: int
    high: int
    y0: float
    y1: float

    def sample(self, root: int, plan: DayPlan) -> Batch:
        """Draw the chunk on its own generator."""
        key = (plan.store_key, randomness.CHUNK, plan.date.toordinal(), self.slot, self.piece, self.chunk)
        rng = randomness.generator(root, *key)
        entries = sample_instants(rng, self.n, self.low, self.high, y0=self.y0, y1=self.y1)
        return Batch(self.slot, entries, sample_durations(rng, self.n), sample_ids(rng, self.n))


def slot_chunks(root: int, plan: DayPlan, slot: int) -> Iterator[Chunk]:
    """Yield one slot's chunks in entry order: its count split over its pieces, and each piece's over chunks."""
    count = plan.counts[slot]
    pieces = plan.pieces[slot]
    if count <= 0 or not pieces:
        return
    store, ordinal = plan.store_key, plan.date.toordinal()
    per_piece = [count]
    if len(pieces) > 1:
        splitter = randomness.generator(root, store, randomness.SLOT, ordinal, slot)
        per_piece = _split(splitter, count, [p.mass for p in pieces])
    for k, (piece, n) in enumerate(zip(pieces, per_piece, strict=True)):
        if n == 0:
            continue
        edges = chunk_edges(piece.low, piece.high, n)
        values = [piece.at(e) for e in edges]
        per_chunk = [n]
        if len(edges) > 2:
            splitter = randomness.generator(root, store, randomness.SLOT, ordinal, slot, k + 1)
            masses = [
                (b - a) * (va + vb) / 2 for a, b, va, vb in zip(edges, edges[1:], values, values[1:], strict=False)
            ]
            per_chunk = _split(splitter, n, masses)
        for j, m in enumerate(per_chunk):
            if m:
                yield Chunk(slot, k, j, m, edges[j], edges[j + 1], values[j], values[j + 1])


def slot_batches(root: int, plan: DayPlan, slot: int) -> Iterator[Batch]:
    """Yield one slot's arrivals in entry order, drawn from the slot's pieces."""
    for chunk in slot_chunks(root, plan, slot):
        yield chunk.sample(root, plan)


def day_batches(root: int, plan: DayPlan) -> Iterator[Batch]:
    """Yield a day's arrivals in entry order, slot by slot."""
    for slot in range(len(plan.counts)):
        yield from slot_batches(root, plan, slot)
