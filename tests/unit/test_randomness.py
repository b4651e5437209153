"""Streams: each key's generator is numpy's SeedSequence-seeded PCG64, draw for draw."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foot_traffic.model import randomness


def _reference(root: int, key: tuple[int, ...]) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(root, spawn_key=key)))


_VALUES = st.one_of(
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=2**32 - 2, max_value=2**32 + 2),
    st.integers(min_value=0, max_value=2**200),
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.integers(min_value=0, max_value=2**128 - 1), st.integers(min_value=0, max_value=2**300)),
    st.lists(_VALUES, max_size=9).map(tuple),
)
def test_streams_equal_numpys_seed_sequence_draw_for_draw(root: int, key: tuple[int, ...]) -> None:
    """Random floats, bounded integers, bytes and a multinomial come out the same as from numpy's own seeding."""
    ours, theirs = randomness.generator(root, *key), _reference(root, key)
    assert ours.bit_generator.state == theirs.bit_generator.state
    assert ours.random(3).tolist() == theirs.random(3).tolist()
    assert ours.integers(0, 10**15, size=5).tolist() == theirs.integers(0, 10**15, size=5).tolist()
    small = [g.integers(10, 29, endpoint=True, size=3).tolist() for g in (ours, theirs)]
    assert small[0] == small[1]
    assert ours.bytes(37) == theirs.bytes(37)
    assert ours.multinomial(50, [0.2, 0.3, 0.5]).tolist() == theirs.multinomial(50, [0.2, 0.3, 0.5]).tolist()


def test_keys_sharing_a_cached_prefix_stay_distinct_and_exact() -> None:
    """Chunk keys of one store and date (a cached prefix) each give their own numpy stream."""
    root = randomness.root_entropy("prefix")
    keys = [(7, randomness.CHUNK, 739_000, slot, k, j) for slot in range(6) for k in range(2) for j in range(3)]
    states = [randomness.generator(root, *key).bit_generator.state for key in keys]
    assert states == [_reference(root, key).bit_generator.state for key in keys]
    assert len({str(s) for s in states}) == len(keys)


def test_a_negative_key_value_is_refused_like_numpy() -> None:
    """A negative key value raises ValueError, as SeedSequence does."""
    with pytest.raises(ValueError, match="non-negative"):
        randomness.generator(1, 2, -1)
    with pytest.raises(ValueError, match="non-negative"):
        randomness.generator(1, 2, 3, 4, -5)


def test_a_precomputed_seed_serves_pcg64s_request_only() -> None:
    """The precomputed seed answers four 64-bit words and refuses any other request."""
    seeded = randomness._Seeded((1, 2, 3, 2**64 - 1))
    assert seeded.generate_state(4, np.uint64).tolist() == [1, 2, 3, 2**64 - 1]
    with pytest.raises(ValueError, match="four 64-bit words"):
        seeded.generate_state(8)
