"""The events ``foot-traffic report`` reads back, as numpy columns, and what reading them saw.

Each customer_id is kept as a 16-byte key: a canonical lowercase RFC 4122 UUID
(what the producer writes) as its own 16 bytes, any other text as a 128-bit
BLAKE2b digest whose variant bits are cleared, so that it never equals a UUID's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from foot_traffic.errors import FootTrafficError
from foot_traffic.events.event import format_uuid

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
Keys = npt.NDArray[np.uint64]
"""Customer id keys: one row of two 64-bit words (16 bytes) per event."""

DURATION_CLIP = (-1, 32_767)
"""Durations are kept as 16-bit integers; anything outside 10..75 fails the check whatever its value."""
ID_TEXTS = 65_536
"""Customer ids that are not UUIDs whose text is kept (the first ones read), to name them in the report."""
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class EventsInputError(FootTrafficError):
    """The events cannot be read: a missing file, a line that is not a foot_traffic event, a missing topic."""

    exit_status = 2


@dataclass(frozen=True, slots=True)
class Chunk:
    """A block of JSON lines separated by newlines, and how to name its line ``i`` in a message."""

    data: bytes
    where: Callable[[int, int], str]
    """Names line ``i`` of the block, given how many lines came before the block."""
    partitions: I32 | None = None
    """The Kafka partition of each line; None for a file (one sequence)."""
    timestamps_ms: I64 | None = None
    """The Kafka record timestamp of each line (epoch ms); None for a file."""


@dataclass(slots=True)
class ReadStats:
    """What reading saw besides the events themselves."""

    lines: int = 0
    blank: int = 0
    sensor: int = 0
    weekday_mismatch: int = 0
    """Events whose weekday is not the weekday of the local date of their entry_time."""
    exit_mismatch: int = 0
    """Events whose exit_time is not entry_time + trip_duration_minutes."""


@dataclass(frozen=True, slots=True)
class Events:
    """Every foot_traffic event read, as columns (in no particular order).

    ``store`` and ``label`` index ``store_ids`` and ``labels``; ``local_day`` is the
    local date written in entry_time, in days since 1970-01-01.
    """

    entry_us: I64
    duration_min: I16
    store: I16
    label: I16
    local_day: I32
    customer: Keys
    """Each event's customer_id as a 16-byte key (see the module's docstring)."""
    store_ids: tuple[str | None, ...]
    labels: tuple[str, ...]
    stats: ReadStats
    id_texts: Mapping[bytes, str] = field(default_factory=dict)
    """The text of customer ids that are not UUIDs, by key (the first ID_TEXTS of them)."""
    order: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Each event's place in the order the lines were read (0 for the first line read)."""
    partition: I32 | None = None
    """Each event's Kafka partition; None when the events come from a file (one sequence, in line order)."""
    record_ms: I64 | None = None
    """Each event's Kafka record timestamp (epoch ms); None when the events come from a file."""

    def __len__(self) -> int:
        return int(self.entry_us.shape[0])

    def customer_id(self, key: bytes) -> str:
        """The customer_id a key stands for (a digest's hex when its text was not kept)."""
        if key[8] & 0xC0 == 0x80:
            return format_uuid(key)
        return self.id_texts.get(key, f"(not a UUID; BLAKE2b digest {key.hex()})")


def id_key(text: str) -> bytes:
    """The 16-byte key of a customer_id: a canonical lowercase RFC 4122 UUID's bytes, else a digest of the text."""
    if _UUID.fullmatch(text):
        return bytes.fromhex(text.replace("-", ""))
    digest = bytearray(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest())
    digest[8] &= 0x3F  # variant bits 00: never a key of the first kind
    return bytes(digest)


_DTYPES = (np.int64, np.int16, np.int16, np.int16, np.int32)
"""Column types of (entry_us, duration_min, store, label, local_day)."""


@dataclass(slots=True)
class Columns:
    """Columns of parsed events, block by block, and the code tables of their store ids and labels."""

    stats: ReadStats = field(default_factory=ReadStats)
    parts: list[tuple[npt.NDArray[Any], ...]] = field(default_factory=list)
    stores: dict[str | None, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    id_texts: dict[bytes, str] = field(default_factory=dict)
    line_partitions: list[I32] = field(default_factory=list)
    line_timestamps: list[I64] = field(default_factory=list)
    """Each Kafka line's partition and record timestamp, chunk by chunk (empty for a file)."""

    def customer_key(self, text: str) -> bytes:
        """The key of a customer_id (:func:`id_key`), keeping the text of the first ID_TEXTS ids that are not UUIDs."""
        key = id_key(text)
        if key[8] & 0xC0 != 0x80 and len(self.id_texts) < ID_TEXTS:
            self.id_texts.setdefault(key, text)
        return key

    def store_code(self, store_id: str | None) -> int:
        """The code of a store id (None: no store_id field), assigned on first sight."""
        return self.stores.setdefault(store_id, len(self.stores))

    def label_code(self, label: str) -> int:
        """The code of a time_slot label, assigned on first sight."""
        return self.labels.setdefault(label, len(self.labels))

    def add(self, *columns: npt.ArrayLike, customer: Keys, line: npt.ArrayLike) -> None:
        """Append events given as (entry_us, duration_min, store, label, local_day) columns, id keys and line numbers.

        ``line`` is each event's line number in the order read, counted from 0 over every chunk.
        """
        entry, duration, store, label, day = columns
        duration = np.clip(np.asarray(duration, dtype=np.int64), *DURATION_CLIP)
        values = (entry, duration, store, label, day, line)
        types = (*_DTYPES, np.int64)
        self.parts.append((*(np.asarray(v, dtype=t) for v, t in zip(values, types, strict=True)), customer))

    def add_records(self, chunk: Chunk) -> None:
        """Keep the partition and record timestamp of a Kafka chunk's lines (nothing for a file's)."""
        if chunk.partitions is not None and chunk.timestamps_ms is not None:
            self.line_partitions.append(np.asarray(chunk.partitions, dtype=np.int32))
            self.line_timestamps.append(np.asarray(chunk.timestamps_ms, dtype=np.int64))

    def events(self) -> Events:
        """Every event added, as one array per column."""
        entry, duration, store, label, day = (
            np.concatenate([part[k] for part in self.parts]) if self.parts else np.empty(0, dtype=t)
            for k, t in enumerate(_DTYPES)
        )
        lines = [part[len(_DTYPES)] for part in self.parts]
        order = np.concatenate(lines) if lines else np.empty(0, dtype=np.int64)
        keys = [part[len(_DTYPES) + 1] for part in self.parts]
        customer = np.concatenate(keys) if keys else np.empty((0, 2), dtype=np.uint64)
        partition = record_ms = None
        if self.line_partitions:
            partition = np.concatenate(self.line_partitions)[order]
            record_ms = np.concatenate(self.line_timestamps)[order]
        return Events(
            entry,
            duration,
            store,
            label,
            day,
            customer,
            tuple(self.stores),
            tuple(self.labels),
            self.stats,
            self.id_texts,
            order,
            partition,
            record_ms,
        )
