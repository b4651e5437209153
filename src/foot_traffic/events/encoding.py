"""Vectorised JSON encoding of a whole batch of visits, byte for byte equal to ``Event.encode``.

Every field of an event has a fixed width within a batch (a UUID, two timestamps
of the same shape, a two-digit duration, the batch's weekday, slot label and
store), so the batch is laid out as a ``width × n`` byte matrix filled one
character position at a time with numpy (each position a contiguous row), then
transposed into ``n`` consecutive JSON documents: no Python work per event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.events.event import EVENT_TYPE, _bucket_offset, _json_str, _offset_text, _offset_us
from foot_traffic.model.arrivals import Batch
from foot_traffic.model.grid import US_PER_MINUTE, UTC
from foot_traffic.model.plan import DayPlan

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_COLUMNS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_TS_WIDTH = 32  # 2025-08-12T17:52:24.442703+00:00
_BUCKET_US = 15 * US_PER_MINUTE


class _Rows:
    """``n`` byte rows of ``width`` bytes, stored as 8-byte words position-major for fast filling.

    Word ``j`` of every row lies in one contiguous array, so filling a byte
    position for all rows is a short-stride write; a transpose of 8-byte words
    then lays the rows out one after another.
    """

    def __init__(self, template: bytes, n: int) -> None:
        self.width = len(template)
        padded = template + b" " * (-len(template) % 8)
        words = np.frombuffer(padded, dtype=np.uint64)
        self.words = np.empty((words.shape[0], n), dtype=np.uint64)
        self.words[:] = words[:, None]
        self.bytes = self.words.view(np.uint8).reshape(words.shape[0], n, 8)

    def put(self, position: int, values: npt.NDArray[np.integer]) -> None:
        """Set byte ``position`` of every row."""
        self.bytes[position >> 3, :, position & 7] = values

    def tobytes(self) -> bytes:
        """The rows one after another, without padding."""
        padded = self.words.T.copy().view(np.uint8)
        if padded.shape[1] == self.width:
            return padded.tobytes()
        return padded[:, : self.width].tobytes()


def _uuid_chars(rows: _Rows, at: int, ids: npt.NDArray[np.uint8]) -> None:
    """Write each id's 36 characters from byte ``at`` on."""
    columns = ids.T
    high, low = _HEX[columns >> 4], _HEX[columns & 0x0F]
    for k, position in enumerate(_UUID_COLUMNS.tolist()):
        byte, nibble = divmod(k, 2)
        rows.put(at + position, high[byte] if nibble == 0 else low[byte])


def _offsets(instants: npt.NDArray[np.int64], tz: dt.tzinfo) -> npt.NDArray[np.int64]:
    """Each instant's UTC offset in microseconds, looked up once per 15-minute bucket."""
    buckets = instants // _BUCKET_US
    unique, inverse = np.unique(buckets, return_inverse=True)
    per_bucket = np.empty(unique.shape[0], dtype=np.int64)
    exact: list[int] = []
    for i, bucket in enumerate(unique.tolist()):
        offset = _bucket_offset(bucket, tz)
        if offset is None:
            exact.append(i)
            offset = 0
        per_bucket[i] = offset
    offsets = per_bucket[inverse]
    for i in exact:  # a bucket holding a change of offset: look each of its instants up
        where = np.nonzero(inverse == i)[0]
        offsets[where] = [_offset_us(int(instants[j]), tz) for j in where]
    return offsets


def _timestamps(rows: _Rows, at: int, instants: npt.NDArray[np.int64], tz: dt.tzinfo) -> None:
    """Write each instant's ISO 8601 form (32 characters) from byte ``at`` on."""
    if tz is UTC:
        local = instants
    else:
        offsets = _offsets(instants, tz)
        local = instants + offsets
        for offset in np.unique(offsets).tolist():
            text = _offset_text(int(offset)).encode()
            where = offsets == offset
            for k, char in enumerate(text):
                rows.bytes[(at + 26 + k) >> 3, where, (at + 26 + k) & 7] = char
    _write_clock(rows, at, local)


def _digits(rows: _Rows, at: int, values: npt.NDArray[np.int64], width: int) -> None:
    """Write ``values`` as zero-padded decimal numbers of ``width`` digits from byte ``at`` on."""
    for k in range(width - 1, -1, -1):
        values, digit = np.divmod(values, 10)
        rows.put(at + k, digit + 48)


def _write_clock(rows: _Rows, at: int, instants: npt.NDArray[np.int64]) -> None:
    """Write the digits of ``YYYY-MM-DDTHH:MM:SS.ffffff`` of each (local) instant from byte ``at`` on.

    The calendar date comes from the day number by Howard Hinnant's civil_from_days;
    the separators are already in the template.
    """
    days, micros = np.divmod(instants, 86_400_000_000)
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    seconds, fraction = np.divmod(micros, 1_000_000)
    _digits(rows, at, year, 4)
    _digits(rows, at + 5, month, 2)
    _digits(rows, at + 8, day, 2)
    _digits(rows, at + 11, seconds // 3600, 2)
    _digits(rows, at + 14, seconds // 60 % 60, 2)
    _digits(rows, at + 17, seconds % 60, 2)
    _digits(rows, at + 20, fraction, 6)


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
        start = i * (self.width + 1) + _ENTRY_AT
        return self.lines[start : start + _TS_WIDTH].decode()


ID_AT = len(f'{{"event_type":"{EVENT_TYPE}","customer_id":"')
_ENTRY_AT = ID_AT + 36 + len('","entry_time":"')

CUSTOMER_ID = slice(ID_AT, ID_AT + 36)
"""Where an encoded event's customer_id lies in its line."""
ENTRY_TIME = slice(_ENTRY_AT, _ENTRY_AT + _TS_WIDTH)
"""Where an encoded event's entry_time lies in its line."""


def assemble(batch: EncodedBatch, start: int, stop: int, parts: list[bytes | slice]) -> bytes:
    """One line per event [start, stop): ``parts`` in order, each constant bytes or a slice of the event's JSON.

    Every part has the same width on every line, so the lines are laid out as one byte
    matrix filled a column range at a time: no Python work per event. Each line ends in
    a newline.
    """
    events = np.frombuffer(batch.lines, dtype=np.uint8).reshape(len(batch), batch.width + 1)[start:stop]
    widths = [part.stop - part.start if isinstance(part, slice) else len(part) for part in parts]
    out = np.empty((stop - start, sum(widths) + 1), dtype=np.uint8)
    at = 0
    for part, width in zip(parts, widths, strict=True):
        out[:, at : at + width] = events[:, part] if isinstance(part, slice) else np.frombuffer(part, dtype=np.uint8)
        at += width
    out[:, at] = ord("\n")
    return out.tobytes()


_TS_TEMPLATE = "0000-00-00T00:00:00.000000+00:00"


def encode_batch(plan: DayPlan, batch: Batch, store_id: str | None = None) -> EncodedBatch:
    """Encode a batch of sampled visits: the same bytes as ``Event.encode`` for each, one line each."""
    n = len(batch)
    if n and (int(batch.durations_min.min()) < 10 or int(batch.durations_min.max()) > 99):
        raise ValueError("the fixed-width encoder needs two-digit durations")
    label = plan.labels[batch.slot]
    store = "" if store_id is None else f',"store_id":{_json_str(store_id)}'
    head = f'{{"event_type":"{EVENT_TYPE}","customer_id":"'
    entry_at = _ENTRY_AT
    exit_at = entry_at + _TS_WIDTH + len('","exit_time":"')
    duration_at = exit_at + _TS_WIDTH + len('","trip_duration_minutes":')
    template = (
        f'{head}{"-" * 36}","entry_time":"{_TS_TEMPLATE}","exit_time":"{_TS_TEMPLATE}",'
        f'"trip_duration_minutes":00,"weekday":"{plan.weekday}","time_slot":{_json_str(label)}{store}}}\n'
    ).encode()
    rows = _Rows(template, n)
    entries = batch.entries_us
    exits = entries + batch.durations_min * US_PER_MINUTE
    _uuid_chars(rows, len(head), batch.ids)
    _timestamps(rows, entry_at, entries, plan.tz)
    _timestamps(rows, exit_at, exits, plan.tz)
    tens, units = np.divmod(batch.durations_min, 10)
    rows.put(duration_at, tens + 48)
    rows.put(duration_at + 1, units + 48)
    return EncodedBatch(
        lines=rows.tobytes(),
        width=len(template) - 1,
        entries_us=entries,
        exits_us=exits,
        time_slot=label,
        tz=plan.tz,
        store_id=store_id,
    )
