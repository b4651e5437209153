"""Units of work, their virtual partitions and shards: stable, uniform, and a partition of the run."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.model.units import DEFAULT_PARTITIONS, WHOLE, Shard, Unit, virtual_partition

STORE_IDS = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
UNITS = st.builds(Unit, st.none() | STORE_IDS, st.none() | st.dates())


def by_hand(text: str, partitions: int) -> int:
    """FLEET.md's formula, written out: the first 8 bytes of SHA-256 as a big-endian integer, modulo."""
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    return int(digest[:16], 16) % partitions


@pytest.mark.parametrize(
    ("unit", "text"),
    [
        (Unit(None), "|"),
        (Unit("milan-01"), "milan-01|"),
        (Unit("milan-01", dt.date(2025, 8, 12)), "milan-01|2025-08-12"),
        (Unit(None, dt.date(2025, 8, 12)), "|2025-08-12"),
    ],
)
@pytest.mark.parametrize("partitions", [1, 7, 64, 4096])
def test_a_units_partition_is_the_hash_of_its_key(unit: Unit, text: str, partitions: int) -> None:
    """A unit's key is '<store id>|<ISO date>' and its partition is SHA-256's first 8 bytes modulo the partitions."""
    assert unit.key == text
    assert virtual_partition(unit, partitions) == by_hand(text, partitions)


def test_partitions_are_pinned() -> None:
    """The placement of a few units never changes: processes of different versions must agree on it."""
    assert virtual_partition(Unit(None), 64) == 41
    assert virtual_partition(Unit("milan-01"), 64) == 16
    assert virtual_partition(Unit("milan-01", dt.date(2025, 8, 12)), 4096) == 887


def test_many_ids_spread_evenly_over_64_partitions() -> None:
    """64,000 store-and-date units fill each of 64 partitions with 1000 ± 15 % (a chi-square far below its bound)."""
    units = [Unit(f"store-{i:03d}", dt.date(2025, 1, 1) + dt.timedelta(days=d)) for i in range(200) for d in range(320)]
    counts = Counter(virtual_partition(u, DEFAULT_PARTITIONS) for u in units)
    assert sorted(counts) == list(range(64))
    assert all(850 <= n <= 1150 for n in counts.values()), counts
    chi_square = sum((n - 1000) ** 2 / 1000 for n in counts.values())
    assert chi_square < 103.4  # the 0.999 quantile of chi-square with 63 degrees of freedom


@given(UNITS)
def test_a_key_names_its_unit(unit: Unit) -> None:
    """A unit read back from its key is the same unit (a store id may not be empty, so '' reads as no id)."""
    assert Unit.from_key(unit.key) == unit


@pytest.mark.parametrize("key", ["milan-01", "milan-01|2025-13-01", ""])
def test_a_string_that_is_no_key_is_refused(key: str) -> None:
    """A string without '|' or with a bad date is not a unit's key."""
    with pytest.raises(ValueError, match="is not a unit's key"):
        Unit.from_key(key)


@given(UNITS, st.integers(1, 4096), st.integers(1, 64))
def test_the_shards_of_a_run_own_each_unit_once(unit: Unit, partitions: int, count: int) -> None:
    """Among shards 0/N … N-1/N exactly one owns a unit: the one its partition mod N names."""
    owners = [i for i in range(count) if Shard(i, count).owns(unit, partitions)]
    assert owners == [virtual_partition(unit, partitions) % count]
    assert WHOLE.owns(unit, partitions)


@pytest.mark.parametrize(("index", "count"), [(3, 3), (-1, 2), (0, 0)])
def test_a_shard_index_lies_below_its_count(index: int, count: int) -> None:
    """Shard I/N needs 0 <= I < N."""
    with pytest.raises(ValueError, match="expected 0 <= index < count"):
        Shard(index, count)
    assert str(Shard(1, 3)) == "1/3"
