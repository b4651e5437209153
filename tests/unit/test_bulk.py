"""Chunks sampled in bulk: the instants, durations and ids each chunk's own generator draws, and the seeds it has."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import numpy as np
import numpy.typing as npt
import pytest

from foot_traffic.model import bulk, randomness
from foot_traffic.model.arrivals import Batch, Chunk
from foot_traffic.model.plan import DayPlan

I64 = npt.NDArray[np.int64]
DATE = dt.date(2025, 8, 12)
LOW = 1_755_000_000_000_000
"""An instant of 2025 in epoch µs: chunks lie where a real day's slots do."""
STORES = [0, 7, 2**32 - 1, 2**32 + 5, 2**45 + 123]
"""Store keys of one 32-bit word and of two."""


@pytest.fixture
def redrawn(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Where each chunk drawn on its own generator starts, in the order they are drawn."""
    starts: list[int] = []
    real = bulk._redraw

    def redraw(drawn: bulk.Drawn, start: int, words: npt.NDArray[np.uint64], chunk: Chunk) -> None:
        starts.append(start)
        real(drawn, start, words, chunk)

    monkeypatch.setattr(bulk, "_redraw", redraw)
    return starts


def _plan(store: int, date: dt.date = DATE) -> DayPlan:
    """A plan carrying what a chunk's stream key takes from it: the store's key and the date."""
    return DayPlan(date, 0, (), (), (), (), (), 0.0, 0.0, store_key=store)


def _chunk(rnd: random.Random, n: int, span: int, *, smooth: bool = False) -> Chunk:
    """A chunk of n arrivals over span µs at a random slot, piece and chunk number, flat or smooth."""
    low = LOW + rnd.randrange(10**9)
    y0, y1 = (rnd.uniform(0.1, 3.0), rnd.uniform(0.1, 3.0)) if smooth else (1.0, 1.0)
    return Chunk(rnd.randrange(96), rnd.randrange(3), rnd.randrange(40), n, low, low + span, y0, y1)


def _columns(root: int, groups: list[tuple[DayPlan, list[Chunk]]]) -> bulk.Chunks:
    """The columns of every group's chunks, the groups one after the other."""
    parts = [bulk.chunk_columns(root, plan, chunks) for plan, chunks in groups]
    return bulk.Chunks(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(bulk.Chunks)))


def _assert_drawn_as_sampled(root: int, groups: list[tuple[DayPlan, list[Chunk]]]) -> bulk.Drawn:
    """Draw the groups' chunks in one call and check them against each chunk's own Chunk.sample."""
    drawn = bulk.draw(_columns(root, groups))
    batches: list[Batch] = [chunk.sample(root, plan) for plan, chunks in groups for chunk in chunks]
    assert drawn.entries_us.tolist() == np.concatenate([b.entries_us for b in batches]).tolist()
    assert drawn.durations_min.tolist() == np.concatenate([b.durations_min for b in batches]).tolist()
    assert drawn.ids.tolist() == np.concatenate([b.ids for b in batches]).tolist()
    return drawn


@pytest.mark.parametrize("span", [3, 20, 1_800_000_000, 3_000_000_000, 3_600_000_000, 2**32])
def test_uniform_chunks_on_32_bit_spans_equal_their_own_draws(span: int) -> None:
    """Flat chunks whose spans fit 32 bits (rejections included) draw what Chunk.sample draws."""
    rnd = random.Random(span)
    chunks = [_chunk(rnd, rnd.randint(2, 300), span) for _ in range(25)]
    _assert_drawn_as_sampled(rnd.getrandbits(128), [(_plan(7), chunks)])


@pytest.mark.parametrize("span", [2**32 + 1, 7_200_000_000, 25_200_000_000])
def test_uniform_chunks_on_spans_above_32_bits_equal_their_own_draws(span: int) -> None:
    """Flat chunks whose spans need 64-bit draws (up to a 7 h slot) draw what Chunk.sample draws."""
    rnd = random.Random(span)
    chunks = [_chunk(rnd, rnd.randint(2, 300), span) for _ in range(25)]
    _assert_drawn_as_sampled(rnd.getrandbits(128), [(_plan(2**32 + 5), chunks)])


@pytest.mark.parametrize("span", [1, 2])
def test_chunks_of_one_and_two_microseconds_equal_their_own_draws(span: int) -> None:
    """A span of one µs draws no instants, one of two µs a bit each: both as Chunk.sample, however many arrivals."""
    rnd = random.Random(span)
    chunks = [_chunk(rnd, n, span) for n in (1, 2, 5, 64, 500)]
    drawn = _assert_drawn_as_sampled(rnd.getrandbits(128), [(_plan(3), chunks)])
    starts = np.cumsum([c.n for c in chunks]) - [c.n for c in chunks]
    for chunk, start in zip(chunks, starts.tolist(), strict=True):
        assert set(drawn.entries_us[start : start + chunk.n].tolist()) <= set(range(chunk.low, chunk.high))


def test_smooth_chunks_equal_their_own_draws() -> None:
    """Chunks whose density runs from y0 to y1 (rising or falling, on short and long spans) draw as Chunk.sample."""
    rnd = random.Random(12)
    spans = [2, 1_000, 900_000_000, 3_600_000_000, 25_200_000_000]
    chunks = [_chunk(rnd, rnd.randint(1, 300), rnd.choice(spans), smooth=True) for _ in range(30)]
    assert all(c.y0 != c.y1 for c in chunks)
    _assert_drawn_as_sampled(rnd.getrandbits(128), [(_plan(11), chunks)])


def test_chunks_of_one_arrival_equal_their_own_draws() -> None:
    """Chunks of a single arrival, flat and smooth, on every kind of span, draw what Chunk.sample does."""
    rnd = random.Random(13)
    spans = [1, 2, 31, 1_800_000_000, 2**32, 25_200_000_000]
    chunks = [_chunk(rnd, 1, span, smooth=smooth) for span in spans for smooth in (False, True)]
    _assert_drawn_as_sampled(rnd.getrandbits(128), [(_plan(5), chunks)])


def test_chunks_above_bulk_max_are_drawn_one_by_one_as_their_own(redrawn: list[int]) -> None:
    """Chunks just above BULK_MAX and well above it go to their own generators, one of BULK_MAX stays in bulk."""
    rnd = random.Random(14)
    chunks = [
        _chunk(rnd, bulk.BULK_MAX + 1, 1_800_000_000),
        _chunk(rnd, bulk.BULK_MAX, 1_800_000_000),
        _chunk(rnd, 3 * bulk.BULK_MAX, 25_200_000_000, smooth=True),
    ]
    _assert_drawn_as_sampled(rnd.getrandbits(128), [(_plan(9), chunks)])
    assert redrawn == [0, 2 * bulk.BULK_MAX + 1]


def test_a_mixture_of_every_kind_in_one_call_equals_their_own_draws() -> None:
    """Stores with one- and two-word keys, several dates, every kind of chunk interleaved, in one call."""
    rnd = random.Random(15)
    spans = [1, 2, 20, 1_800_000_000, 3_000_000_000, 2**32, 7_200_000_000, 25_200_000_000]
    groups = []
    for store in STORES:
        for date in (DATE, DATE + dt.timedelta(days=rnd.randint(1, 400))):
            chunks = [
                _chunk(
                    rnd,
                    rnd.choice([1, rnd.randint(2, 200), bulk.BULK_MAX, bulk.BULK_MAX + 1]),
                    rnd.choice(spans),
                    smooth=rnd.random() < 0.3,
                )
                for _ in range(rnd.randint(1, 6))
            ]
            groups.append((_plan(store, date), chunks))
    assert any(c.n > bulk.BULK_MAX for _, chunks in groups for c in chunks)
    _assert_drawn_as_sampled(rnd.getrandbits(128), groups)


def test_chunks_over_spans_this_wide_sort_each_on_its_own() -> None:
    """Spans near 2**60 (chunk and offset overflow one 64-bit key) still give each chunk's sorted draws."""
    rnd = random.Random(16)
    chunks = [Chunk(0, 0, j, rnd.randint(1, 50), 0, 2**60 + j, 1.0, 1.0) for j in range(12)]
    _assert_drawn_as_sampled(rnd.getrandbits(128), [(_plan(1), chunks)])


def test_streams_over_their_budget_are_redrawn_as_their_own(
    monkeypatch: pytest.MonkeyPatch, redrawn: list[int]
) -> None:
    """With every other chunk given a budget of one draw, those chunks are redrawn and all still equal Chunk.sample."""
    rnd = random.Random(17)
    real_budgets = bulk._budgets

    def budgets(n: I64, spans: I64, flat: npt.NDArray[np.bool_]) -> I64:
        tiny: I64 = np.where(np.arange(n.shape[0]) % 2 == 0, 1, real_budgets(n, spans, flat))
        return tiny

    monkeypatch.setattr(bulk, "_budgets", budgets)
    spans = [2, 31, 1_800_000_000, 3_000_000_000, 25_200_000_000]
    chunks = [_chunk(rnd, rnd.randint(2, 60), rnd.choice(spans), smooth=rnd.random() < 0.3) for _ in range(21)]
    _assert_drawn_as_sampled(rnd.getrandbits(128), [(_plan(4), chunks)])
    starts = (np.cumsum([c.n for c in chunks]) - [c.n for c in chunks]).tolist()
    assert sorted(redrawn) == starts[::2]


def test_seed_words_are_the_seeds_of_each_keys_generator() -> None:
    """Rows of seed_words seed what generator and numpy's SeedSequence give each key, stores of one or two words."""
    rnd = random.Random(18)
    root = rnd.getrandbits(128)
    keys = [
        (store, randomness.CHUNK, (DATE + dt.timedelta(days=rnd.randrange(500))).toordinal(), *tail)
        for store in STORES
        for tail in [(0, 0, 0), (95, 2, 39), (rnd.randrange(2**32), rnd.randrange(64), rnd.randrange(2**32))]
    ]
    rnd.shuffle(keys)
    stems = [randomness.day_stem(root, *key[:3]) for key in keys]
    rows = randomness.seed_words(
        np.array([pool for pool, _ in stems], dtype=np.uint64),
        np.array([position for _, position in stems], dtype=np.int64),
        np.array([key[3:] for key in keys], dtype=np.int64),
    )
    for row, key in zip(rows, keys, strict=True):
        ours, theirs = randomness.seeded(row), randomness.generator(root, *key)
        numpys = np.random.Generator(np.random.PCG64(np.random.SeedSequence(root, spawn_key=key)))
        assert ours.bit_generator.state == theirs.bit_generator.state == numpys.bit_generator.state
        draws = [g.integers(0, 2**63, size=4).tolist() for g in (ours, theirs, numpys)]
        assert draws[0] == draws[1] == draws[2]


def test_seed_words_of_tails_of_any_length_match_their_keys() -> None:
    """Tails of no value, one value and four values give the seeds of the keys they end."""
    root = randomness.root_entropy("tails")
    for tail in [(), (3,), (1, 2, 3, 2**32 - 1)]:
        stem = randomness.day_stem(root, 2**33, randomness.SLOT, DATE.toordinal())
        rows = randomness.seed_words(
            np.array([stem[0]], dtype=np.uint64),
            np.array([stem[1]], dtype=np.int64),
            np.array([tail], dtype=np.int64).reshape(1, len(tail)),
        )
        key = (2**33, randomness.SLOT, DATE.toordinal(), *tail)
        assert randomness.seeded(rows[0]).random(3).tolist() == randomness.generator(root, *key).random(3).tolist()
