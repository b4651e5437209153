"""Units of work and their virtual partitions: how a run is cut into pieces any process can run alone.

A unit is a store (a run without UNTIL) or a store and one of its local dates (a
bounded run). Its random streams depend only on the seed, the store and the date,
so a unit gives the same events whichever process runs it. Each unit falls in one
of FLEET_PARTITIONS virtual partitions by a stable hash of its key, the same on
every machine and in every Python process (no ``hash()``, which is salted); a shard
``I/N`` runs the units whose partition mod N is I.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

DEFAULT_PARTITIONS = 64
"""FLEET_PARTITIONS's default: enough to spread a run over dozens of processes, few enough to stay cheap."""
MAX_PARTITIONS = 4096
"""The largest FLEET_PARTITIONS."""


@dataclass(frozen=True, slots=True)
class Unit:
    """A store (``date`` None: a run without UNTIL), or a store and one local date of it (a bounded run).

    ``store_id`` is None for a run's single store, which carries no id on its events.
    """

    store_id: str | None
    date: dt.date | None = None

    @property
    def key(self) -> str:
        """``<store id>|<ISO date>``, a part empty when absent: what its partition hashes, what records are keyed by."""
        return f"{self.store_id or ''}|{'' if self.date is None else self.date.isoformat()}"

    @staticmethod
    def from_key(key: str) -> Unit:
        """The unit a key names; ValueError for a string that is not a unit's key."""
        store, bar, date = key.rpartition("|")
        wrong = ValueError(f"{key!r} is not a unit's key (<store id>|<ISO date>)")
        if not bar:
            raise wrong
        try:
            return Unit(store or None, dt.date.fromisoformat(date) if date else None)
        except ValueError:
            raise wrong from None


def virtual_partition(unit: Unit, partitions: int) -> int:
    """The unit's virtual partition among ``partitions``: the first 8 bytes of SHA-256 of its key, modulo."""
    digest = hashlib.sha256(unit.key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``: the units whose virtual partition mod ``count`` is ``index``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: expected 0 <= index < count")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, unit: Unit, partitions: int) -> bool:
        """Whether this shard runs ``unit`` when a run has ``partitions`` virtual partitions."""
        return virtual_partition(unit, partitions) % self.count == self.index


WHOLE = Shard(0, 1)
"""The one shard of an unsharded run: it owns every unit."""
