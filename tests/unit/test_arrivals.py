"""Sampling: arrivals sorted inside their slot, durations from the mixture, v4-shaped ids."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foot_traffic.model import arrivals, randomness
from foot_traffic.model.arrivals import chunk_edges, day_batches, sample_durations, sample_ids
from foot_traffic.model.grid import datetime_to_us
from foot_traffic.model.plan import Model, plan_day

DATE = dt.date(2025, 8, 12)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=0, max_value=2**64),
    st.integers(min_value=0, max_value=86_399),
)
def test_arrivals_are_sorted_inside_their_slot_and_match_the_plan(total: int, root: int, start_second: int) -> None:
    """Every slot yields exactly its planned count, sorted, within [low, slot end)."""
    now = datetime_to_us(dt.datetime.combine(DATE, dt.time(), tzinfo=dt.UTC)) + start_second * 10**6
    plan = plan_day(Model(daily_customers=total), root, DATE, now_us=now)
    per_slot = [0] * len(plan.counts)
    previous = -1
    for batch in day_batches(root, plan):
        entries = batch.entries_us.tolist()
        assert entries == sorted(entries)
        assert entries[0] >= previous
        previous = entries[-1]
        assert plan.pieces[batch.slot][0].low <= entries[0]
        assert entries[-1] < plan.bounds[batch.slot + 1]
        assert entries[0] >= now
        per_slot[batch.slot] += len(batch)
    assert tuple(per_slot) == plan.counts


def test_large_slots_are_sampled_in_sorted_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot bigger than one chunk is split, and the concatenation stays sorted and complete."""
    monkeypatch.setattr(arrivals, "CHUNK_TARGET", 100)
    plan = plan_day(Model(daily_customers=10_000), 7, DATE)
    batches = list(day_batches(7, plan))
    assert len(batches) > len(plan.counts)
    entries = np.concatenate([b.entries_us for b in batches])
    assert len(entries) == 10_000
    assert np.all(np.diff(entries) >= 0)
    assert max(len(b) for b in batches) < 300


@given(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(1, 10**7))
def test_chunk_edges_partition_the_interval(low: int, width: int, count: int) -> None:
    """Chunk edges start at low, end at high and never repeat."""
    high = low + width + 1
    edges = chunk_edges(low, high, count)
    assert edges[0] == low
    assert edges[-1] == high
    assert all(b > a for a, b in itertools.pairwise(edges))


def test_durations_follow_the_mixture() -> None:
    """Durations are whole minutes in 10..75 with the mixture's part weights."""
    d = sample_durations(randomness.generator(1, 2, 3), 200_000)
    assert d.min() == 10
    assert d.max() == 75
    shares = [np.mean((d >= lo) & (d <= hi)) for lo, hi in ((10, 29), (30, 44), (45, 75))]
    assert shares == pytest.approx([0.35, 0.39, 0.26], abs=0.005)
    assert set(np.unique(d).tolist()) == set(range(10, 76))


def test_ids_are_version_4_uuids() -> None:
    """Ids carry the version-4 and RFC 4122 variant bits, and do not repeat."""
    ids = sample_ids(randomness.generator(9), 10_000)
    parsed = [uuid.UUID(bytes=row.tobytes()) for row in ids]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(parsed)) == len(parsed)


def test_same_root_same_arrivals_other_root_other_arrivals() -> None:
    """Sampling is a function of the root entropy and the plan."""
    plan = plan_day(Model(daily_customers=500), 1, DATE)

    def flat(root: int) -> list[int]:
        return [int(x) for b in day_batches(root, plan) for x in b.entries_us]

    assert flat(1) == flat(1)
    assert flat(1) != flat(2)


def _durations_by_cases(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    u = rng.random(n)
    first = np.where(u < 0.35, 10, np.where(u < 0.35 + 0.39, 30, 45))
    last = np.where(u < 0.35, 29, np.where(u < 0.35 + 0.39, 44, 75))
    return rng.integers(first, last, endpoint=True, dtype=np.int64)


def _ids_from_bytes(rng: np.random.Generator, n: int) -> npt.NDArray[np.uint8]:
    ids = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    ids[:, 6] = (ids[:, 6] & 0x0F) | 0x40
    ids[:, 8] = (ids[:, 8] & 0x3F) | 0x80
    return ids


@pytest.mark.parametrize("n", [0, 1, 2, 3, 15, 16, 17, 1000])
def test_durations_and_ids_are_the_draws_of_the_plain_formulation(n: int) -> None:
    """Durations (nested cases) and ids (rng.bytes, masked) come out the same and leave the stream at the same point."""
    for seed in range(20):
        ours, plain = randomness.generator(seed, n), randomness.generator(seed, n)
        assert sample_durations(ours, n).tolist() == _durations_by_cases(plain, n).tolist()
        ids = sample_ids(ours, n)
        assert ids.shape == (n, 16)
        assert ids.dtype == np.uint8
        assert ids.tolist() == _ids_from_bytes(plain, n).tolist()
        assert ours.bit_generator.state == plain.bit_generator.state
