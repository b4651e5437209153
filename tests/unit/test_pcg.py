"""Many PCG64 streams at once: every draw equals numpy's own Generator(PCG64) on the same seed, value for value."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from foot_traffic.model import randomness
from foot_traffic.model.pcg import Streams

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Op = Callable[[np.random.Generator, int], list[float]]

SPANS32 = [1, 2, 20, 31, 1_800_000_000, 3_600_000_000, 2**31, 2**32]
"""Spans drawn on 32-bit words: one value, tiny, the duration parts, half an hour and an hour of µs, the edges."""
SPANS64 = [2**32 + 1, 7_200_000_000, 25_200_000_000]
"""Spans drawn on 64-bit outputs: just past 32 bits, two hours and seven hours of µs."""


def _rows(rnd: random.Random, k: int) -> U64:
    """Random seeds: k rows of four 64-bit words."""
    return np.array([[rnd.getrandbits(64) for _ in range(4)] for _ in range(k)], dtype=np.uint64).reshape(k, 4)


def _counts(rnd: random.Random, k: int, most: int) -> I64:
    """Random counts up to ``most``, one of them 0."""
    counts = [rnd.randint(0, most) for _ in range(k)]
    counts[rnd.randrange(k)] = 0  # a stream drawing nothing sits among the others
    return np.array(counts, dtype=np.int64)


def _reference(rows: U64) -> list[np.random.Generator]:
    """The numpy generator of every seed row."""
    return [randomness.seeded(row) for row in rows]


def _flat(gens: list[np.random.Generator], counts: I64, op: Op) -> list[float]:
    """What ``op`` draws from each generator, counts[i] from generator i, one after the other."""
    out: list[float] = []
    for gen, n in zip(gens, counts.tolist(), strict=True):
        out += op(gen, n)
    return out


def _words_taken(row: npt.NDArray[np.uint64], gen: np.random.Generator, most: int) -> int:
    """How many 32-bit words ``gen`` (seeded by ``row``) has drawn, found by stepping a fresh copy word by word."""
    target = gen.bit_generator.state
    fresh = randomness.seeded(row)
    for k in range(most + 1):
        state = fresh.bit_generator.state
        if state["state"] == target["state"] and state["has_uint32"] == target["has_uint32"]:
            return k
        fresh.integers(0, 1 << 32, dtype=np.uint32)
    raise AssertionError(f"more than {most} words drawn")


def test_doubles_equal_numpys_random_with_budgets_just_enough() -> None:
    """random(n) of many streams with different counts (0 among them), each budget exactly its count."""
    rnd = random.Random(1)
    for _ in range(5):
        rows, counts = _rows(rnd, 12), _counts(rnd, 12, 40)
        streams = Streams(rows, counts.copy())
        got = streams.doubles(counts).tolist()
        assert got == _flat(_reference(rows), counts, lambda g, n: g.random(n).tolist())
        assert not streams.over.any()


def test_uint32_equals_numpys_32_bit_integers_with_budgets_just_enough() -> None:
    """integers(0, 2**32, uint32) of many streams, odd and even counts, each budget half its count rounded up."""
    rnd = random.Random(2)
    for _ in range(5):
        rows, counts = _rows(rnd, 12), _counts(rnd, 12, 41)
        streams = Streams(rows, (counts + 1) // 2)
        got = streams.uint32(counts).tolist()
        want = _flat(_reference(rows), counts, lambda g, n: g.integers(0, 1 << 32, size=n, dtype=np.uint32).tolist())
        assert got == want
        assert not streams.over.any()


@pytest.mark.parametrize(("kind", "span"), [*(("bounded", s) for s in SPANS32), *(("bounded64", s) for s in SPANS64)])
def test_bounded_draws_equal_numpys_integers_below_one_span(kind: str, span: int) -> None:
    """integers(0, span, size=n) of many streams with different counts; a 64-bit span's budgets are just its counts."""
    rnd = random.Random(span)
    rows, counts = _rows(rnd, 16), _counts(rnd, 16, 60)
    streams = Streams(rows, counts.copy() if kind == "bounded64" else 2 * counts + 40)
    got = getattr(streams, kind)(counts, np.full(16, span, dtype=np.int64)).tolist()
    assert got == _flat(_reference(rows), counts, lambda g, n: g.integers(0, span, size=n).tolist())
    assert not streams.over.any()


def test_bounded_takes_each_streams_own_span_in_one_call() -> None:
    """One call with every stream on its own 32-bit span (3_000_000_000 rejects about 30% of words) equals numpy."""
    rnd = random.Random(3)
    spans = np.array([*SPANS32, 3_000_000_000] * 3, dtype=np.int64)
    rows, counts = _rows(rnd, spans.shape[0]), _counts(rnd, spans.shape[0], 50)
    streams = Streams(rows, 2 * counts + 40)
    got = streams.bounded(counts, spans).tolist()
    want: list[int] = []
    for gen, n, span in zip(_reference(rows), counts.tolist(), spans.tolist(), strict=True):
        want += gen.integers(0, span, size=n).tolist()
    assert got == want
    assert not streams.over.any()


@pytest.mark.parametrize(
    ("kind", "span", "words"),
    [("bounded64", 2**62 + 1, 2), ("bounded_each", 3_000_000_000, 1)],
    ids=["bounded64, a quarter rejected", "bounded_each, 30% rejected"],
)
def test_a_rejection_marks_over_exactly_the_streams_numpy_retried(kind: str, span: int, words: int) -> None:
    """Over is set where numpy's draw took more 32-bit words than ``words`` per value; the other streams equal numpy."""
    rnd = random.Random(span)
    rows, counts = _rows(rnd, 40), _counts(rnd, 40, 3)
    streams, gens = Streams(rows, counts + 2), _reference(rows)
    if kind == "bounded64":
        got = streams.bounded64(counts, np.full(40, span, dtype=np.int64))
        values = [gen.integers(0, span, size=n).tolist() for gen, n in zip(gens, counts.tolist(), strict=True)]
    else:
        got = streams.bounded_each(counts, np.full(int(counts.sum()), span, dtype=np.int64))
        values = [
            gen.integers(np.zeros(n, np.int64), span).tolist() for gen, n in zip(gens, counts.tolist(), strict=True)
        ]
    retried = [
        _words_taken(row, gen, 4 * n + 64) > words * n for row, gen, n in zip(rows, gens, counts.tolist(), strict=True)
    ]
    assert streams.over.tolist() == retried
    assert 0 < sum(retried) < 40
    starts = np.cumsum(counts) - counts
    for i, n in enumerate(counts.tolist()):
        if not retried[i]:
            assert got[starts[i] : starts[i] + n].tolist() == values[i]


def test_a_kept_half_outlives_doubles_between_32_bit_draws() -> None:
    """uint32 leaving a kept half, then doubles, then uint32 again: numpy's kept half comes first, as numpy draws."""
    rows = _rows(random.Random(7), 5)
    first, middle, last = (np.array(c, dtype=np.int64) for c in ([1, 3, 0, 2, 1], [2, 1, 3, 0, 0], [3, 2, 2, 1, 1]))
    streams = Streams(rows, np.full(5, 12, dtype=np.int64))
    gens = _reference(rows)
    words = _flat(gens, first, lambda g, n: g.integers(0, 1 << 32, size=n, dtype=np.uint32).tolist())
    assert streams.uint32(first).tolist() == words
    assert streams.doubles(middle).tolist() == _flat(gens, middle, lambda g, n: g.random(n).tolist())
    words = _flat(gens, last, lambda g, n: g.integers(0, 1 << 32, size=n, dtype=np.uint32).tolist())
    assert streams.uint32(last).tolist() == words
    assert streams.kept.tolist() == [g.bit_generator.state["has_uint32"] == 1 for g in gens]
    assert not streams.over.any()


def _mixed_op(rnd: random.Random, streams: Streams, gens: list[np.random.Generator]) -> tuple[list[float], list[float]]:
    """Make one random kind of draw on every stream, and the same draw on each numpy generator."""
    k = len(gens)
    counts = _counts(rnd, k, 9)
    want: list[float]
    kind = rnd.choice(["uint32", "doubles", "bounded", "bounded64", "bounded_each"])
    if kind == "uint32":
        want = _flat(gens, counts, lambda g, n: g.integers(0, 1 << 32, size=n, dtype=np.uint32).tolist())
        return streams.uint32(counts).tolist(), want
    if kind == "doubles":
        return streams.doubles(counts).tolist(), _flat(gens, counts, lambda g, n: g.random(n).tolist())
    if kind in ("bounded", "bounded64"):
        spans = np.array([rnd.choice(SPANS32 if kind == "bounded" else SPANS64) for _ in range(k)], dtype=np.int64)
        got = getattr(streams, kind)(counts, spans).tolist()
        want = []
        for gen, n, span in zip(gens, counts.tolist(), spans.tolist(), strict=True):
            want += gen.integers(0, span, size=n).tolist()
        return got, want
    each = np.array([rnd.choice([1, 2, 20, 31]) for _ in range(int(counts.sum()))], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    want = []
    for gen, start, n in zip(gens, starts.tolist(), counts.tolist(), strict=True):
        want += gen.integers(np.zeros(n, np.int64), each[start : start + n]).tolist()
    return streams.bounded_each(counts, each).tolist(), want


@pytest.mark.parametrize("seed", range(12))
def test_mixed_sequences_of_draws_equal_numpy_op_by_op(seed: int) -> None:
    """Random sequences of every kind of draw on the same streams equal numpy's, op by op, none over its budget."""
    rnd = random.Random(seed)
    rows = _rows(rnd, 9)
    streams, gens = Streams(rows, np.full(9, 200, dtype=np.int64)), _reference(rows)
    for step in range(10):
        got, want = _mixed_op(rnd, streams, gens)
        assert got == want, f"draw {step}"
    assert not streams.over.any()
    assert streams.kept.tolist() == [g.bit_generator.state["has_uint32"] == 1 for g in gens]


def test_a_budget_too_small_marks_its_stream_over_and_spares_the_others() -> None:
    """Budget 1 and a count of 10 marks over; a stream with enough budget is not marked and stays exact."""
    rows = _rows(random.Random(8), 3)
    streams = Streams(rows, np.array([1, 10, 10], dtype=np.int64))
    got = streams.doubles(np.array([10, 10, 3], dtype=np.int64))
    assert streams.over.tolist() == [True, False, False]
    gens = _reference(rows)
    assert got[10:].tolist() == gens[1].random(10).tolist() + gens[2].random(3).tolist()


@pytest.mark.parametrize(
    ("kind", "spans"),
    [("uint32", None), ("bounded", 20), ("bounded64", 7_200_000_000), ("bounded_each", 31)],
)
def test_every_kind_of_draw_marks_a_stream_past_its_budget(kind: str, spans: int | None) -> None:
    """A stream whose budget cannot hold its draws is over, whatever the kind of draw; one whose budget can is not."""
    rows = _rows(random.Random(9), 2)
    counts = np.array([10, 10], dtype=np.int64)
    streams = Streams(rows, np.array([1, 40], dtype=np.int64))
    if spans is None:
        streams.uint32(counts)
    elif kind == "bounded_each":
        streams.bounded_each(counts, np.full(20, spans, dtype=np.int64))
    else:
        getattr(streams, kind)(counts, np.full(2, spans, dtype=np.int64))
    assert streams.over.tolist() == [True, False]


def test_streams_past_their_budget_keep_drawing_without_harm_to_the_others() -> None:
    """Once over, streams (first and last) take every kind of draw again; the stream between stays numpy's."""
    rows = _rows(random.Random(10), 3)
    streams, gens = Streams(rows, np.array([0, 200, 1], dtype=np.int64)), _reference(rows)
    rnd = random.Random(11)
    streams.doubles(np.array([5, 0, 5], dtype=np.int64))
    assert streams.over.tolist() == [True, False, True]
    for kind in ["uint32", "doubles", "bounded", "bounded64", "bounded_each", "uint32", "bounded", "doubles"]:
        counts = np.array([7, rnd.randint(1, 9), 7], dtype=np.int64)
        if kind == "uint32":
            got = streams.uint32(counts)[7:-7].tolist()
            assert got == gens[1].integers(0, 1 << 32, size=int(counts[1]), dtype=np.uint32).tolist()
        elif kind == "doubles":
            assert streams.doubles(counts)[7:-7].tolist() == gens[1].random(int(counts[1])).tolist()
        elif kind == "bounded_each":
            got = streams.bounded_each(counts, np.full(int(counts.sum()), 20, dtype=np.int64))[7:-7].tolist()
            assert got == gens[1].integers(np.zeros(int(counts[1]), np.int64), 20).tolist()
        else:
            span = 1_800_000_000 if kind == "bounded" else 25_200_000_000
            got = getattr(streams, kind)(counts, np.full(3, span, dtype=np.int64))[7:-7].tolist()
            assert got == gens[1].integers(0, span, size=int(counts[1])).tolist()
    assert streams.over.tolist() == [True, False, True]
