"""Vectorised JSON encoding of a whole batch of visits, byte for byte equal to ``Event.encode``.

Every field of an event has a fixed width within a batch (a UUID, two timestamps
of the same shape, a two-digit duration, the batch's weekday, slot label and
store), so a batch's lines are the rows of one byte matrix, filled a field at a
time for every event at once (:mod:`foot_traffic.events.fields`): no Python work
per event.

A chain's window mixes stores, slots, weekdays and time zones in one batch
(:class:`MixedBatch`): every line still starts with the same fixed-width prefix
(through ``"weekday":"``), written as above with each event's own UTC offset,
and ends with its group's suffix (weekday, slot label, store), gathered from a
table of the groups' suffixes and compacted into lines of their own widths.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from foot_traffic.events.event import _json_str
from foot_traffic.events.fields import ENTRY_AT, ID_AT, PREFIX, TS_WIDTH, Offsets, fill, zone_offsets
from foot_traffic.model.arrivals import Batch
from foot_traffic.model.grid import UTC
from foot_traffic.model.plan import DayPlan


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """A batch of visits encoded at once: ``n`` JSON lines of equal ``width`` (plus a newline each).

    ``lines`` is what a line-oriented sink writes as it is; ``value(i)`` and ``key(i)``
    give one event's JSON and customer id for message-oriented sinks.
    """

    lines: bytes
    width: int
    entries_us: npt.NDArray[np.int64]
    exits_us: npt.NDArray[np.int64]
    time_slot: str
    tz: dt.tzinfo
    store_id: str | None

    def __len__(self) -> int:
        return int(self.entries_us.shape[0])

    def value(self, i: int) -> bytes:
        """The JSON of event ``i``, without its newline."""
        start = i * (self.width + 1)
        return self.lines[start : start + self.width]

    def key(self, i: int) -> bytes:
        """The customer id of event ``i``, ASCII."""
        start = i * (self.width + 1) + ID_AT
        return self.lines[start : start + 36]

    def values(self, start: int, stop: int) -> list[bytes]:
        """The JSON of events [start, stop)."""
        step = self.width + 1
        return [self.lines[k : k + self.width] for k in range(start * step, stop * step, step)]

    def keys(self, start: int, stop: int) -> list[bytes]:
        """The customer ids of events [start, stop)."""
        step = self.width + 1
        return [self.lines[k : k + 36] for k in range(start * step + ID_AT, stop * step + ID_AT, step)]

    def entry_time(self, i: int) -> str:
        """The entry_time text of event ``i``, as it appears in its JSON."""
        start = i * (self.width + 1) + ENTRY_AT
        return self.lines[start : start + TS_WIDTH].decode()

    def segment(self, start: int, stop: int) -> memoryview:
        """The lines of events [start, stop), newlines included, as they lie in ``lines``."""
        step = self.width + 1
        return memoryview(self.lines)[start * step : stop * step]

    def origin(self, i: int) -> tuple[str | None, str]:
        """The store and slot of event ``i``."""
        return self.store_id, self.time_slot

    def zone(self, i: int) -> dt.tzinfo:
        """The time zone of event ``i``."""
        return self.tz

    def bounds(self, start: int, stop: int) -> tuple[Sequence[int], Sequence[int]]:
        """Where the JSON of each event [start, stop) begins and ends in ``lines``."""
        step = self.width + 1
        return range(start * step, stop * step, step), range(start * step + self.width, stop * step, step)


class Group(NamedTuple):
    """What the events of one store's slot on one day share in a mixed batch: the end of their lines.

    A named tuple: a chain makes one for each store's slot of each day.
    """

    store_id: str | None
    time_slot: str
    weekday: str
    tz: dt.tzinfo


@dataclass(frozen=True, slots=True)
class MixedBatch:
    """Visits of several stores, slots, weekdays and time zones encoded at once, in the order given.

    Line ``i`` lies at ``lines[starts[i]:starts[i + 1]]`` (its newline last); event ``i`` belongs
    to group ``groups[i]`` of ``infos`` (its store and slot). The customer id and the entry time
    lie at the same place in every line (the prefix is fixed-width), as in an :class:`EncodedBatch`.
    """

    lines: bytes
    starts: npt.NDArray[np.int64]
    entries_us: npt.NDArray[np.int64]
    exits_us: npt.NDArray[np.int64]
    groups: npt.NDArray[np.intp]
    infos: tuple[Group, ...]

    def __len__(self) -> int:
        return int(self.entries_us.shape[0])

    def value(self, i: int) -> bytes:
        """The JSON of event ``i``, without its newline."""
        return self.lines[int(self.starts[i]) : int(self.starts[i + 1]) - 1]

    def key(self, i: int) -> bytes:
        """The customer id of event ``i``, ASCII."""
        start = int(self.starts[i]) + ID_AT
        return self.lines[start : start + 36]

    def values(self, start: int, stop: int) -> list[bytes]:
        """The JSON of events [start, stop)."""
        return [self.lines[a:b] for a, b in zip(*self.bounds(start, stop), strict=True)]

    def bounds(self, start: int, stop: int) -> tuple[Sequence[int], Sequence[int]]:
        """Where the JSON of each event [start, stop) begins and ends in ``lines``."""
        return self.starts[start:stop].tolist(), (self.starts[start + 1 : stop + 1] - 1).tolist()

    def keys(self, start: int, stop: int) -> list[bytes]:
        """The customer ids of events [start, stop)."""
        return [self.lines[a + ID_AT : a + ID_AT + 36] for a in self.starts[start:stop].tolist()]

    def entry_time(self, i: int) -> str:
        """The entry_time text of event ``i``, as it appears in its JSON."""
        start = int(self.starts[i]) + ENTRY_AT
        return self.lines[start : start + TS_WIDTH].decode()

    def segment(self, start: int, stop: int) -> memoryview:
        """The lines of events [start, stop), newlines included, as they lie in ``lines``."""
        return memoryview(self.lines)[int(self.starts[start]) : int(self.starts[stop])]

    def origin(self, i: int) -> tuple[str | None, str]:
        """The store and slot of event ``i``."""
        info = self.infos[int(self.groups[i])]
        return info.store_id, info.time_slot

    def zone(self, i: int) -> dt.tzinfo:
        """The time zone of event ``i``."""
        return self.infos[int(self.groups[i])].tz


Encoded = EncodedBatch | MixedBatch
"""An encoded batch of either form: one store's slot, or a chain's window."""

PerGroup = Callable[[str | None, str], bytes]
"""A part of a line that depends on the event's store and slot: their bytes, given (store_id, time_slot)."""


def assemble(batch: Encoded, start: int, stop: int, parts: Sequence[bytes | slice | PerGroup]) -> bytes:
    """One line per event [start, stop): ``parts`` in order (constant bytes, a slice of its JSON, or its group's bytes).

    Every constant part and slice has the same width on every line, so the lines are laid out as one byte
    matrix filled a column range at a time: no Python work per event (a mixed batch's per-group parts are
    gathered from a table of its groups and the lines compacted to their widths). Each line ends in a newline.
    """
    if isinstance(batch, MixedBatch):
        return _assemble_mixed(batch, start, stop, parts)
    fixed = [part(batch.store_id, batch.time_slot) if callable(part) else part for part in parts]
    events = np.frombuffer(batch.lines, dtype=np.uint8).reshape(len(batch), batch.width + 1)[start:stop]
    widths = [part.stop - part.start if isinstance(part, slice) else len(part) for part in fixed]
    out = np.empty((stop - start, sum(widths) + 1), dtype=np.uint8)
    at = 0
    for part, width in zip(fixed, widths, strict=True):
        out[:, at : at + width] = events[:, part] if isinstance(part, slice) else np.frombuffer(part, dtype=np.uint8)
        at += width
    out[:, at] = ord("\n")
    return out.tobytes()


def _assemble_mixed(batch: MixedBatch, start: int, stop: int, parts: Sequence[bytes | slice | PerGroup]) -> bytes:
    """:func:`assemble` for a mixed batch: each line's parts side by side, per-group ones padded, then compacted."""
    n = stop - start
    reach = max((part.stop for part in parts if isinstance(part, slice)), default=0)
    heads = np.frombuffer(batch.lines, dtype=np.uint8)[batch.starts[start:stop, None] + np.arange(reach)]
    groups = batch.groups[start:stop]
    blocks: list[npt.NDArray[np.uint8]] = []
    shown: list[npt.NDArray[np.bool_]] = []
    for part in [*parts, b"\n"]:
        if isinstance(part, slice):
            block = heads[:, part]
        elif isinstance(part, bytes):
            block = np.broadcast_to(np.frombuffer(part, dtype=np.uint8), (n, len(part)))
        else:
            table, widths = _table([part(info.store_id, info.time_slot) for info in batch.infos])
            block, width = table[groups], widths[groups]
            shown.append(np.arange(block.shape[1]) < width[:, None])
            blocks.append(block)
            continue
        shown.append(np.ones(block.shape, dtype=np.bool_))
        blocks.append(block)
    matrix = np.concatenate(blocks, axis=1)
    return matrix[np.concatenate(shown, axis=1)].tobytes()


def _table(rows: Sequence[bytes]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """``rows`` as a byte matrix padded to the widest, and each row's width."""
    widest = max((len(row) for row in rows), default=0)
    table = np.frombuffer(b"".join(row.ljust(widest, b"\0") for row in rows), dtype=np.uint8)
    return table.reshape(len(rows), widest), np.array([len(row) for row in rows], dtype=np.int64)


@lru_cache(maxsize=1 << 16)
def _suffix(weekday: str, label: str, store_id: str | None) -> bytes:
    """The end of an event's line from its weekday on, newline included."""
    return _slot_part(weekday, label) + _store_part(store_id)


@lru_cache(maxsize=1 << 12)
def _slot_part(weekday: str, label: str) -> bytes:
    """The weekday's text and the time slot of a line's end."""
    return f'{weekday}","time_slot":{_json_str(label)}'.encode()


@lru_cache(maxsize=1 << 17)
def _store_part(store_id: str | None) -> bytes:
    """The store of a line's end (nothing for a run of one store), the closing brace and the newline."""
    return (b"" if store_id is None else f',"store_id":{_json_str(store_id)}'.encode()) + b"}\n"


def encode_batch(plan: DayPlan, batch: Batch, store_id: str | None = None) -> EncodedBatch:
    """Encode a batch of sampled visits: the same bytes as ``Event.encode`` for each, one line each."""
    label = plan.labels[batch.slot]
    template = PREFIX.encode() + _suffix(plan.weekday, label, store_id)
    tz = plan.tz
    entries = batch.entries_us
    lines, exits = fill(
        template, batch.ids, entries, batch.durations_min, lambda t: None if tz is UTC else zone_offsets(t, tz)
    )
    return EncodedBatch(
        lines=lines.tobytes(),
        width=len(template) - 1,
        entries_us=entries,
        exits_us=exits,
        time_slot=label,
        tz=plan.tz,
        store_id=store_id,
    )


@dataclass(frozen=True, slots=True)
class GroupTable:
    """What encoding takes of groups, made once for many batches: their lines' ends (padded) and widths, and zones."""

    infos: tuple[Group, ...]
    suffixes: npt.NDArray[np.uint8]
    widths: npt.NDArray[np.int64]
    zone_of: npt.NDArray[np.intp]
    """Each group's index in ``zones``."""
    zones: tuple[dt.tzinfo, ...]

    @staticmethod
    def of(infos: Sequence[Group]) -> GroupTable:
        """The table of ``infos``."""
        suffixes, widths = _table([line_end(info) for info in infos])
        zones: dict[dt.tzinfo, int] = {}
        zone_of = np.array([zones.setdefault(info.tz, len(zones)) for info in infos], dtype=np.intp)
        return GroupTable(tuple(infos), suffixes, widths, zone_of, tuple(zones))

    def extend(self, infos: Sequence[Group]) -> GroupTable:
        """The table with ``infos`` after its own groups (their indices unchanged)."""
        if not self.infos:
            return GroupTable.of(infos)
        more = GroupTable.of(infos)
        width = max(self.suffixes.shape[1], more.suffixes.shape[1])
        suffixes = np.zeros((len(self.infos) + len(infos), width), dtype=np.uint8)
        suffixes[: len(self.infos), : self.suffixes.shape[1]] = self.suffixes
        suffixes[len(self.infos) :, : more.suffixes.shape[1]] = more.suffixes
        zones = list(self.zones)
        zones += [z for z in more.zones if z not in zones]
        renumber = np.array([zones.index(z) for z in more.zones], dtype=np.intp)
        zone_of = np.concatenate((self.zone_of, renumber[more.zone_of]))
        return GroupTable(
            self.infos + more.infos, suffixes, np.concatenate((self.widths, more.widths)), zone_of, tuple(zones)
        )

    def keep(self, rows: npt.NDArray[np.intp]) -> GroupTable:
        """The table of its groups ``rows`` only, in that order."""
        return GroupTable(
            tuple(self.infos[r] for r in rows.tolist()),
            self.suffixes[rows],
            self.widths[rows],
            self.zone_of[rows],
            self.zones,
        )


def line_end(info: Group) -> bytes:
    """The end of the lines of a group's events, from the weekday's text on, newline included."""
    return _suffix(info.weekday, info.time_slot, info.store_id)


def encode_mixed(
    entries: npt.NDArray[np.int64],
    durations: npt.NDArray[np.int64],
    ids: npt.NDArray[np.uint8],
    groups: npt.NDArray[np.intp],
    infos: Sequence[Group] | GroupTable,
) -> MixedBatch:
    """Encode visits of several groups at once, in the order given: the same bytes as ``Event.encode`` for each."""
    table = infos if isinstance(infos, GroupTable) else GroupTable.of(infos)
    suffixes, widths = table.suffixes, table.widths
    width = len(PREFIX)
    zone = table.zone_of[groups]

    def offsets(instants: npt.NDArray[np.int64]) -> Offsets:
        if table.zones == (UTC,):
            return None
        found = np.zeros(instants.shape[0], dtype=np.int64)
        for z, tz in enumerate(table.zones):
            if tz is not UTC:
                where = np.flatnonzero(zone == z)
                found[where] = zone_offsets(instants[where], tz)
        return found

    matrix, exits = fill(PREFIX.encode() + b"\n" * suffixes.shape[1], ids, entries, durations, offsets)
    matrix[:, width : width + suffixes.shape[1]] = suffixes[groups]
    lengths = width + widths[groups]
    starts = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    if int(widths.min()) == suffixes.shape[1]:  # lines of one width (one weekday, slots and ids of one width)
        lines = matrix.tobytes()
    else:
        lines = matrix[np.arange(matrix.shape[1]) < lengths[:, None]].tobytes()
    return MixedBatch(lines, starts, entries, exits, groups, table.infos)
