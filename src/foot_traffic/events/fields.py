"""The fixed-width start of an event's line, and its fields written for many events at once.

Every event's line begins with the same fields, each of one width: its UUID, two
timestamps of the same shape and a two-digit duration, up to ``"weekday":"``.
:func:`fill` lays a batch's lines out as an ``n × width`` byte matrix: a template
row copied ``n`` times, then each field written as a block of columns gathered
from a table (hex digits of the id bytes, 2- and 4-digit numbers, each minute's
``YYYY-MM-DDTHH:MM`` of its day). The matrix's rows are the lines as they lie:
no Python work per event, and no transpose.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from foot_traffic.events.event import EVENT_TYPE, _bucket_offset, _day_prefix, _offset_text, _offset_us
from foot_traffic.model.grid import US_PER_MINUTE

TS_WIDTH = 32  # 2025-08-12T17:52:24.442703+00:00
_BUCKET_US = 15 * US_PER_MINUTE


def _digit_table(width: int) -> npt.NDArray[np.uint8]:
    """Row ``v`` holds the ``width`` ASCII digits of ``v``, zero-padded: a field's digits in one gather."""
    return np.frombuffer(b"".join(f"{v:0{width}d}".encode() for v in range(10**width)), np.uint8).reshape(-1, width)


_PAIRS = _digit_table(2)
_QUADS = _digit_table(4)
_HEX_PAIRS = np.frombuffer(b"".join(f"{v:02x}".encode() for v in range(256)), np.uint16)
"""The two hex digits of each byte value, as the bytes of one 16-bit word."""
_UUID_GROUPS = ((0, 8), (9, 13), (14, 18), (19, 23), (24, 36))
"""Where the 8-4-4-4-12 groups of hex digits lie in a UUID's 36 characters (the dashes are the template's)."""


def _gather(table: npt.NDArray[np.uint8], rows: npt.NDArray[np.integer]) -> npt.NDArray[np.uint8]:
    """``table[rows]``: ``np.take`` copies whole rows, many times faster than fancy indexing here."""
    return np.take(table, rows, axis=0)


def _uuid_chars(lines: npt.NDArray[np.uint8], at: int, ids: npt.NDArray[np.uint8]) -> None:
    """Write each id's 36 characters from column ``at`` on: its 32 hex digits in one gather, then five blocks."""
    digits = np.take(_HEX_PAIRS, ids).view(np.uint8).reshape(ids.shape[0], 32)
    taken = 0
    for first, stop in _UUID_GROUPS:
        lines[:, at + first : at + stop] = digits[:, taken : taken + stop - first]
        taken += stop - first


def zone_offsets(instants: npt.NDArray[np.int64], tz: dt.tzinfo) -> npt.NDArray[np.int64]:
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


def _zoned(
    lines: npt.NDArray[np.uint8], at: int, instants: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64]
) -> None:
    """Write each instant's ISO 8601 form at its own UTC offset from column ``at`` on."""
    unique, inverse = np.unique(offsets, return_inverse=True)
    texts = np.frombuffer(b"".join(_offset_text(int(offset)).encode() for offset in unique.tolist()), np.uint8)
    table = texts.reshape(-1, 6)
    lines[:, at + 26 : at + 32] = table[0] if unique.shape[0] == 1 else _gather(table, inverse)
    _write_clock(lines, at, instants + offsets)


def _write_clock(lines: npt.NDArray[np.uint8], at: int, instants: npt.NDArray[np.int64]) -> None:
    """Write the digits of ``YYYY-MM-DDTHH:MM:SS.ffffff`` of each (local) instant from column ``at`` on.

    The text up to the minute is gathered from a table of its day's minutes; the seconds and
    microseconds come from tables of 2- and 4-digit numbers. The separators are the template's.
    """
    if instants.shape[0] == 0:
        return
    minutes, micros = np.divmod(instants, US_PER_MINUTE)
    first, last = int(minutes.min()) // _MINUTES_PER_DAY, int(minutes.max()) // _MINUTES_PER_DAY
    if last - first < DAYS_AT_ONCE:  # a batch of a day or two: its days' tables side by side
        table = _days_minutes(tuple(range(first, last + 1)))
        rows = minutes - first * _MINUTES_PER_DAY
    else:  # instants far apart: the tables of the days they fall on
        days, minute_of_day = np.divmod(minutes, _MINUTES_PER_DAY)
        unique, inverse = np.unique(days, return_inverse=True)
        table = _days_minutes(tuple(unique.tolist()))
        rows = inverse * _MINUTES_PER_DAY + minute_of_day
    lines[:, at : at + 16] = _gather(table, rows)
    seconds, fraction = np.divmod(micros, 1_000_000)
    high, low = np.divmod(fraction, 100)
    lines[:, at + 17 : at + 19] = _gather(_PAIRS, seconds)
    lines[:, at + 20 : at + 24] = _gather(_QUADS, high)
    lines[:, at + 24 : at + 26] = _gather(_PAIRS, low)


_MINUTES_PER_DAY = 1440
DAYS_AT_ONCE = 3


def _days_minutes(days: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    """``YYYY-MM-DDTHH:MM`` of every minute of the epoch ``days``, in order: 1440 rows of 16 bytes a day."""
    if len(days) == 1:
        return _day_minutes(days[0])
    return np.concatenate([_day_minutes(day) for day in days])


@lru_cache(maxsize=64)
def _day_minutes(day: int) -> npt.NDArray[np.uint8]:
    """``YYYY-MM-DDTHH:MM`` of each minute of an epoch day, as ``Event.encode`` writes it (cached: runs reuse days)."""
    prefix = _day_prefix(day)
    text = "".join(f"{prefix}{hour:02d}:{minute:02d}" for hour in range(24) for minute in range(60))
    return np.frombuffer(text.encode(), dtype=np.uint8).reshape(_MINUTES_PER_DAY, 16)


ID_AT = len(f'{{"event_type":"{EVENT_TYPE}","customer_id":"')
ENTRY_AT = ID_AT + 36 + len('","entry_time":"')
EXIT_AT = ENTRY_AT + TS_WIDTH + len('","exit_time":"')
DURATION_AT = EXIT_AT + TS_WIDTH + len('","trip_duration_minutes":')

CUSTOMER_ID = slice(ID_AT, ID_AT + 36)
"""Where an encoded event's customer_id lies in its line."""
ENTRY_TIME = slice(ENTRY_AT, ENTRY_AT + TS_WIDTH)
"""Where an encoded event's entry_time lies in its line."""

_TS_TEMPLATE = "0000-00-00T00:00:00.000000+00:00"
PREFIX = (
    f'{{"event_type":"{EVENT_TYPE}","customer_id":"{"-" * 36}","entry_time":"{_TS_TEMPLATE}",'
    f'"exit_time":"{_TS_TEMPLATE}","trip_duration_minutes":00,"weekday":"'
)
"""The fixed-width start of every event's line, up to its weekday."""


BLOCK = 4096
"""Lines filled together: a block's bytes (about 1 MB) stay in the cache while each field is written."""

Offsets = npt.NDArray[np.int64] | None
"""Each instant's UTC offset in microseconds, or None for instants in UTC."""


def fill(
    template: bytes,
    ids: npt.NDArray[np.uint8],
    entries: npt.NDArray[np.int64],
    durations: npt.NDArray[np.int64],
    offsets: Callable[[npt.NDArray[np.int64]], Offsets],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Each event's line: ``template`` with the event's id, timestamps and duration written in; and the exits.

    ``template`` is :data:`PREFIX` and a line's end. ``offsets`` gives the UTC offsets of a
    column of instants (entries, then exits).
    """
    n = int(entries.shape[0])
    if n and (int(durations.min()) < 10 or int(durations.max()) > 99):
        raise ValueError("the fixed-width encoder needs two-digit durations")
    exits = entries + durations * US_PER_MINUTE
    stamps = [(ENTRY_AT, entries, offsets(entries)), (EXIT_AT, exits, offsets(exits))]
    row = np.frombuffer(template, dtype=np.uint8)
    lines = np.empty((n, row.shape[0]), dtype=np.uint8)
    for a in range(0, n, BLOCK):
        b = min(a + BLOCK, n)
        block = lines[a:b]
        block[:] = row
        _uuid_chars(block, ID_AT, ids[a:b])
        block[:, DURATION_AT : DURATION_AT + 2] = _gather(_PAIRS, durations[a:b])
        for at, instants, offset in stamps:
            if offset is None:
                _write_clock(block, at, instants[a:b])
            else:
                _zoned(block, at, instants[a:b], offset[a:b])
    return lines, exits
