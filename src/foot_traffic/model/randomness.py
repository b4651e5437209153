"""Reproducible random streams, one per (seed, store, date, purpose, slot, chunk).

Every draw in the model comes from a generator derived from the root entropy
and a key naming what it is for. The plan of a date therefore depends only on
the seed, the configuration and the date: never on when the process started,
on the order of work, or on how fast the clock runs.
"""

from __future__ import annotations

import hashlib
import secrets

import numpy as np
import numpy.random  # loaded lazily, it took 7 ms from a live run's first draw: its first events were late

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


def root_entropy(seed: str | None) -> int:
    """Turn SEED into 128 bits of entropy; with no SEED, draw fresh entropy from the OS."""
    if seed is None:
        return secrets.randbits(128)
    return int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:16], "big")


def generator(root: int, *key: int) -> np.random.Generator:
    """Return the generator of one stream, independent of every other key."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(root, spawn_key=key)))
