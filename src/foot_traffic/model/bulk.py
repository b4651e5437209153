"""Many chunks sampled at once, each bit for bit what :meth:`Chunk.sample` draws on its own generator.

A chain's day has a few chunks per store, each of a few dozen arrivals: drawn one by
one, building their generators costs more than their draws. Here the chunks' streams
are seeded together (:func:`~foot_traffic.model.randomness.seed_words`) and drawn together
(:class:`~foot_traffic.model.pcg.Streams`), the draws in each stream's own order: the
instants, the durations' parts, their minutes, then the ids' words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.model import randomness
from foot_traffic.model.arrivals import (
    _CUTS,
    _FIRSTS,
    _ID_KEEP,
    _ID_SET,
    _LASTS,
    Chunk,
    sample_durations,
    sample_ids,
    sample_instants,
)
from foot_traffic.model.pcg import Streams
from foot_traffic.model.plan import DayPlan

BULK_MAX = 2048
"""The largest chunk drawn in bulk: a larger one costs its generator little next to its draws."""

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Drawn:
    """The arrivals of several chunks, flat in the chunks' order, each chunk's sorted by entry."""

    entries_us: I64
    durations_min: I64
    ids: npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Chunks:
    """Chunks to draw, as columns: chunk i is ``n[i]`` arrivals in [low[i], high[i]), density from y[i, 0] to y[i, 1].

    It is drawn on the stream whose key's stem (store, CHUNK, date) is (pools[i], positions[i])
    (:func:`~foot_traffic.model.randomness.day_stem`) and whose key ends with keys[i] (slot, piece, chunk).
    """

    pools: npt.NDArray[np.uint64]
    positions: I64
    keys: I64
    n: I64
    low: I64
    high: I64
    y: npt.NDArray[np.float64]

    def take(self, which: slice | npt.NDArray[np.intp]) -> Chunks:
        """The chunks ``which`` selects, in its order."""
        return Chunks(*(getattr(self, name)[which] for name in Chunks.__slots__))


def draw(chunks: Chunks) -> Drawn:
    """Sample chunks: those of at most BULK_MAX arrivals in bulk, any other on its own generator."""
    c = chunks
    seeds = randomness.seed_words(c.pools, c.positions, c.keys)
    bulk = c.n <= BULK_MAX
    if bulk.all():
        return _bulk(seeds, c.n, c.low, c.high, c.y)
    starts = np.cumsum(c.n) - c.n
    total = int(c.n.sum())
    drawn = Drawn(np.zeros(total, np.int64), np.zeros(total, np.int64), np.zeros((total, 16), np.uint8))
    if bulk.any():
        part = _bulk(seeds[bulk], c.n[bulk], c.low[bulk], c.high[bulk], c.y[bulk])
        at = np.repeat(starts[bulk] - (np.cumsum(c.n[bulk]) - c.n[bulk]), c.n[bulk]) + np.arange(
            part.entries_us.shape[0]
        )
        drawn.entries_us[at], drawn.durations_min[at], drawn.ids[at] = part.entries_us, part.durations_min, part.ids
    for i in np.flatnonzero(~bulk).tolist():
        y0, y1 = c.y[i].tolist()
        _redraw(drawn, int(starts[i]), seeds[i], Chunk(0, 0, 0, int(c.n[i]), int(c.low[i]), int(c.high[i]), y0, y1))
    return drawn


def _bulk(seeds: npt.NDArray[np.uint64], n: I64, low: I64, high: I64, y: npt.NDArray[np.float64]) -> Drawn:
    """Sample chunks in bulk, each on the stream ``seeds[i]`` seeds."""
    streams = Streams(seeds, _budgets(n, high - low, y[:, 0] == y[:, 1]))
    owner = np.repeat(np.arange(n.shape[0]), n)
    flat = y[:, 0] == y[:, 1]
    entries = np.empty(owner.shape[0], dtype=np.int64)
    spans = high - low
    short = spans <= 1 << 32  # drawn on 32 bits; longer spans on 64
    entries[(flat & short)[owner]] = streams.bounded(np.where(flat & short, n, 0), spans)
    if not short.all():
        entries[(flat & ~short)[owner]] = streams.bounded64(np.where(flat & ~short, n, 0), spans)
    if not flat.all():
        y0, y1 = y[owner, 0][~flat[owner]], y[owner, 1][~flat[owner]]
        u = streams.doubles(np.where(flat, 0, n))
        t = (np.sqrt(y0 * y0 + u * (y1 * y1 - y0 * y0)) - y0) / (y1 - y0)
        span = (high - low)[owner][~flat[owner]]
        entries[~flat[owner]] = np.clip(np.floor(t * span).astype(np.int64), 0, span - 1)
    entries = _sorted_within(entries, owner, spans) + low[owner]
    part = _CUTS.searchsorted(streams.doubles(n), side="right")
    durations = _FIRSTS[part] + streams.bounded_each(n, _LASTS[part] - _FIRSTS[part] + 1)
    ids = streams.uint32(4 * n).astype("<u4", copy=False).view(np.uint8).reshape(-1, 16)
    ids &= _ID_KEEP
    ids |= _ID_SET
    drawn = Drawn(entries, durations, ids)
    starts = np.cumsum(n) - n
    for i in np.flatnonzero(streams.over).tolist():  # rare: more rejections than the budget allows
        y0, y1 = y[i].tolist()
        _redraw(drawn, int(starts[i]), seeds[i], Chunk(0, 0, 0, int(n[i]), int(low[i]), int(high[i]), y0, y1))
    return drawn


def _budgets(n: I64, spans: I64, flat: npt.NDArray[np.bool_]) -> I64:
    """How many 64-bit draws each chunk may need, rejections included with a wide margin.

    Its instants' 32-bit words are rejected each with chance (2³² mod span) / 2³², below one half;
    its durations' almost never; its ids' never.
    """
    rate = (np.uint64(1 << 32) % np.clip(spans, 1, 1 << 32).astype(np.uint64)).astype(np.float64) / 4294967296.0
    words = np.ceil(n / (1.0 - rate) + 4 * np.sqrt(n / (1.0 - rate))).astype(np.int64) + 8
    instants = np.where(flat & (spans <= 1 << 32), (words + 1) // 2, n)
    return instants + n + (n + 1) // 2 + 1 + 2 * n + 1


def _redraw(drawn: Drawn, start: int, words: npt.NDArray[np.uint64], chunk: Chunk) -> None:
    """Draw one chunk on its own generator, in place of what :func:`draw` drew of it."""
    rng = randomness.seeded(words)
    stop = start + chunk.n
    drawn.entries_us[start:stop] = sample_instants(rng, chunk.n, chunk.low, chunk.high, y0=chunk.y0, y1=chunk.y1)
    drawn.durations_min[start:stop] = sample_durations(rng, chunk.n)
    drawn.ids[start:stop] = sample_ids(rng, chunk.n)


def _sorted_within(offsets: I64, owner: I64, spans: I64) -> I64:
    """Each chunk's offsets (below its span) sorted, the chunks kept in order."""
    width = int(spans.max(initial=1))
    if width * (spans.shape[0] + 1) >= 1 << 62:
        return offsets[np.lexsort((offsets, owner))]
    keys = owner * width + offsets
    keys.sort()
    return keys - owner * width


def chunk_columns(root: int, plan: DayPlan, chunks: Sequence[Chunk]) -> Chunks:
    """The columns of some of a plan's chunks."""
    pool, position = randomness.day_stem(root, plan.store_key, randomness.CHUNK, plan.date.toordinal())
    k = len(chunks)
    return Chunks(
        np.tile(np.array(pool, dtype=np.uint64), (k, 1)), np.full(k, position, dtype=np.int64), *columns(chunks)
    )


def columns(chunks: Sequence[Chunk]) -> tuple[I64, I64, I64, I64, npt.NDArray[np.float64]]:
    """Chunks' keys (slot, piece, chunk), counts, starts, ends and densities (y0, y1), as columns."""
    return (
        np.array([(c.slot, c.piece, c.chunk) for c in chunks], dtype=np.int64).reshape(-1, 3),
        np.array([c.n for c in chunks], dtype=np.int64),
        np.array([c.low for c in chunks], dtype=np.int64),
        np.array([c.high for c in chunks], dtype=np.int64),
        np.array([(c.y0, c.y1) for c in chunks], dtype=np.float64).reshape(-1, 2),
    )
