"""Reproducible random streams, one per (seed, store, date, purpose, slot, chunk).

Every draw in the model comes from a generator derived from the root entropy
and a key naming what it is for. The plan of a date therefore depends only on
the seed, the configuration and the date: never on when the process started,
on the order of work, or on how fast the clock runs.

A stream is numpy's ``Generator(PCG64(SeedSequence(root, spawn_key=key)))``, bit for
bit. Building a SeedSequence costs more than sampling a small chunk, so its seeding
(O'Neill's seed_seq as numpy's ``bit_generator.pyx`` implements it) is computed here in
integer arithmetic, with the part every key of a store and date shares computed once.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.random.bit_generator import ISeedSequence

# Purposes: the first component of every stream key after the store.
DAILY = 0
"""Stream of the day-to-day variation factor."""
SLOT = 1
"""Stream that splits a slot's arrivals into chunks."""
CHUNK = 2
"""Stream of one chunk's arrivals, durations and customer ids."""
COUNTS = 3
"""Stream of the random slot counts of the poisson and smooth models."""
LATE = 4
"""Stream of one slot's late visits and their delays."""
DUPLICATE = 5
"""Stream of one slot's duplicated visits and the gaps to their second copies."""
OUTAGES = 6
"""Stream of a day's sensor outages: their number, starts and durations."""
BURST = 7
"""Stream of the order of held visits in their bursts (SENSOR_OUTAGE_ORDER=shuffled)."""

# numpy's SeedSequence constants and pool size (numpy/random/bit_generator.pyx).
_MASK32 = 0xFFFF_FFFF
_INIT_A, _MULT_A = 0x43B0_D7E5, 0x931E_8875
_INIT_B, _MULT_B = 0x8B51_F9DD, 0x58F3_8DED
_MIX_L, _MIX_R = 0xCA01_F9DD, 0x4973_F715
_POOL_SIZE = 4

_Pool = tuple[int, int, int, int]
_Mixed = tuple[_Pool, int]
"""A pool and how many hash constants its mixing has used: the next word's constants follow on."""
Stem = _Mixed
"""The mixing of a key's first values, shared by the keys that begin with them."""


def root_entropy(seed: str | None) -> int:
    """Turn SEED into 128 bits of entropy; with no SEED, draw fresh entropy from the OS."""
    if seed is None:
        return secrets.randbits(128)
    return int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:16], "big")


def generator(root: int, *key: int) -> np.random.Generator:
    """Return the generator of one stream, independent of every other key."""
    return seeded(_state_words(_mixed_key(root, key)[0]))


def seeded(words: tuple[int, int, int, int] | npt.NDArray[np.uint64]) -> np.random.Generator:
    """The generator whose PCG64 is seeded with four 64-bit words (a row of :func:`seed_words`)."""
    # numpy documents any ISeedSequence as a seed; its stubs list SeedSequence only.
    return np.random.Generator(np.random.PCG64(_Seeded(tuple(int(w) for w in words))))  # type: ignore[arg-type]


def day_stem(root: int, store: int, purpose: int, ordinal: int) -> Stem:
    """What every key (store, purpose, date, …) of a store's day shares: pass it to :func:`seed_words`."""
    return _mixed_day(root, (store, purpose, ordinal))


def day_stems(
    root: int, stores: npt.NDArray[np.int64], purpose: int, ordinals: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """:func:`day_stem` of many (store, date) pairs at once: their pools (one row each) and positions."""
    (pool, position), k = _mixed_root(root), stores.shape[0]
    pools = np.tile(np.array(pool, dtype=np.uint64), (k, 1))
    positions = np.full(k, position, dtype=np.int64)
    keys = stores.astype(np.uint64)
    words = [keys & np.uint64(_MASK32), keys >> np.uint64(32)]  # store keys have 63 bits at most
    if (words[1] >> np.uint64(32)).any():
        raise ValueError("store keys have 63 bits at most")
    _absorb_many(pools, positions, words[0], None)
    _absorb_many(pools, positions, words[1], words[1] != 0)  # a key's high word is mixed in when it has one
    _absorb_many(pools, positions, np.full(k, purpose, dtype=np.uint64), None)
    _absorb_many(pools, positions, ordinals.astype(np.uint64), None)
    return pools, positions


def seed_words(
    pools: npt.NDArray[np.uint64], positions: npt.NDArray[np.int64], tails: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint64]:
    """The PCG64 seeds of many streams at once: row i's key has the stem (pools[i], positions[i]), then tails[i].

    Each row's four 64-bit words are what :func:`generator` seeds its PCG64 with. The tails'
    values must be below 2³² (one word each).
    """
    pools, positions = pools.copy(), positions.copy()
    for column in tails.T:
        _absorb_many(pools, positions, column.astype(np.uint64), None)
    mask = np.uint64(_MASK32)
    out = [((pools[:, i % _POOL_SIZE] ^ np.uint64(x)) * np.uint64(y)) & mask for i, (x, y) in enumerate(_GENERATE)]
    w = [v ^ (v >> np.uint64(16)) for v in out]
    return np.stack([w[i] | w[i + 1] << np.uint64(32) for i in range(0, 2 * _POOL_SIZE, 2)], axis=1)


def _absorb_many(
    pools: npt.NDArray[np.uint64],
    positions: npt.NDArray[np.int64],
    words: npt.NDArray[np.uint64],
    where: npt.NDArray[np.bool_] | None,
) -> None:
    """:func:`_absorb` of one 32-bit word into each row's pool, in place (only the rows ``where`` selects)."""
    if where is not None:
        rows = np.flatnonzero(where)
        sub_pools, sub_positions = pools[rows], positions[rows]
        _absorb_many(sub_pools, sub_positions, words[rows], None)
        pools[rows], positions[rows] = sub_pools, sub_positions
        return
    if positions.shape[0] and int(positions.max()) + 5 > _HASH_TABLE.shape[0]:
        raise ValueError("stream keys of more than about 250 words")
    mask = np.uint64(_MASK32)
    h = _HASH_TABLE[positions[:, None] + np.arange(5)]
    hashed = ((words[:, None] ^ h[:, :4]) * h[:, 1:]) & mask
    hashed ^= hashed >> np.uint64(16)
    mixed = (_MIX_L * pools - _MIX_R * hashed) & mask
    pools[:] = mixed ^ (mixed >> np.uint64(16))
    positions += _POOL_SIZE


def _mixed_key(root: int, key: tuple[int, ...]) -> _Mixed:
    """The pool once the root and every value of ``key`` are mixed in."""
    if len(key) > 3:
        mixed, rest = _mixed_day(root, key[:3]), key[3:]
    elif key:
        mixed, rest = _mixed_store(root, key[0]), key[1:]
    else:
        mixed, rest = _mixed_root(root), key
    for value in rest:
        mixed = _absorb(mixed, value)
    return mixed


class _Seeded(ISeedSequence):
    """A seed sequence whose PCG64 seed is already known: numpy's documented hook for custom seeding."""

    __slots__ = ("_words",)

    def __init__(self, words: tuple[int, ...]) -> None:
        self._words = words

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> npt.NDArray[np.uint64]:
        """Return the four 64-bit words PCG64 seeds itself from (the only request PCG64 makes)."""
        if n_words != len(self._words) or np.dtype(dtype) != np.uint64:
            raise ValueError("a precomputed seed holds four 64-bit words only")
        return np.array(self._words, dtype=np.uint64)


def _words32(value: int) -> list[int]:
    """Split a non-negative integer into 32-bit words, least significant first, as numpy does."""
    if value < 0:
        raise ValueError("stream keys must be non-negative integers")
    words = [value & _MASK32]
    value >>= 32
    while value:
        words.append(value & _MASK32)
        value >>= 32
    return words


def _hash_constant(position: int) -> int:
    """The XOR constant of the ``position``-th hashmix of a SeedSequence's entropy mixing."""
    return (_INIT_A * pow(_MULT_A, position, 1 << 32)) & _MASK32


_HASH_A = tuple(_hash_constant(i) for i in range(1024))
"""The first hash constants (enough for keys of about 250 words)."""
_HASH_TABLE = np.array(_HASH_A, dtype=np.uint64)


def _constants(position: int) -> tuple[int, ...]:
    """The five consecutive hash constants one word's mixing into the four pool words uses."""
    if position + 5 <= len(_HASH_A):
        return _HASH_A[position : position + 5]
    return tuple(_hash_constant(position + i) for i in range(5))


def _hashmix(value: int, position: int) -> int:
    """One hashmix of a value with the constants of its position."""
    value = ((value ^ _hash_constant(position)) * _hash_constant(position + 1)) & _MASK32
    return value ^ (value >> 16)


def _mix(x: int, y: int) -> int:
    """Combine a pool word with a hashed word."""
    result = (_MIX_L * x - _MIX_R * y) & _MASK32
    return result ^ (result >> 16)


@functools.lru_cache(maxsize=8)
def _mixed_root(root: int) -> _Mixed:
    """The pool once the root entropy is mixed in: its first four words, padded with zeros, then any more."""
    words = _words32(root)
    words += [0] * (_POOL_SIZE - len(words))
    pool = [_hashmix(words[i], i) for i in range(_POOL_SIZE)]
    position = _POOL_SIZE
    for source in range(_POOL_SIZE):
        for target in range(_POOL_SIZE):
            if source != target:
                pool[target] = _mix(pool[target], _hashmix(pool[source], position))
                position += 1
    mixed: _Mixed = ((pool[0], pool[1], pool[2], pool[3]), position)
    for word in words[_POOL_SIZE:]:
        mixed = _absorb(mixed, word)
    return mixed


@functools.lru_cache(maxsize=16_384)
def _mixed_store(root: int, store: int) -> _Mixed:
    """The pool after a key's first value, the store: shared by every stream of the store."""
    return _absorb(_mixed_root(root), store)


@functools.lru_cache(maxsize=16_384)
def _mixed_day(root: int, prefix: tuple[int, ...]) -> _Mixed:
    """The pool after a key's first three values (store, purpose, date): shared by the streams of a store's day."""
    mixed = _mixed_store(root, prefix[0])
    for value in prefix[1:]:
        mixed = _absorb(mixed, value)
    return mixed


def _absorb(mixed: _Mixed, value: int) -> _Mixed:
    """Mix one key value (its 32-bit words in turn) into every word of the pool (mix, inlined)."""
    (a, b, c, d), position = mixed
    for word in (value,) if 0 <= value <= _MASK32 else _words32(value):
        ha, hb, hc, hd = _hashed_small(word, position) if word < _SMALL else _hashed(word, position)
        a = (_MIX_L * a - _MIX_R * ha) & _MASK32
        b = (_MIX_L * b - _MIX_R * hb) & _MASK32
        c = (_MIX_L * c - _MIX_R * hc) & _MASK32
        d = (_MIX_L * d - _MIX_R * hd) & _MASK32
        a, b, c, d = a ^ (a >> 16), b ^ (b >> 16), c ^ (c >> 16), d ^ (d >> 16)
        position += _POOL_SIZE
    return (a, b, c, d), position


def _hashed(word: int, position: int) -> _Pool:
    """One word hashed with the consecutive constants of the four pool words it is mixed into."""
    h0, h1, h2, h3, h4 = _constants(position)
    ha = ((word ^ h0) * h1) & _MASK32
    hb = ((word ^ h1) * h2) & _MASK32
    hc = ((word ^ h2) * h3) & _MASK32
    hd = ((word ^ h3) * h4) & _MASK32
    return ha ^ (ha >> 16), hb ^ (hb >> 16), hc ^ (hc >> 16), hd ^ (hd >> 16)


_SMALL = 64
"""Key values below this (purposes, slots, piece and chunk numbers) recur in every key: their hashes are kept."""
_hashed_small = functools.lru_cache(maxsize=4096)(_hashed)


def _generate_constants() -> tuple[tuple[int, int], ...]:
    """The (XOR, multiplier) pairs of generate_state's eight outputs: they depend on the position only."""
    pairs = []
    constant = _INIT_B
    for _ in range(2 * _POOL_SIZE):
        following = (constant * _MULT_B) & _MASK32
        pairs.append((constant, following))
        constant = following
    return tuple(pairs)


_GENERATE = _generate_constants()


def _state_words(pool: _Pool) -> tuple[int, int, int, int]:
    """SeedSequence.generate_state(4, uint64): eight hashed 32-bit words, paired little-endian."""
    out = [((pool[i % _POOL_SIZE] ^ x) * y) & _MASK32 for i, (x, y) in enumerate(_GENERATE)]
    w = [v ^ (v >> 16) for v in out]
    return w[0] | w[1] << 32, w[2] | w[3] << 32, w[4] | w[5] << 32, w[6] | w[7] << 32
