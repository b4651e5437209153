"""Vectorised JSON encoding of a whole batch of visits, byte for byte equal to ``Event.encode``.

Every field of an event has a fixed width within a batch (a UUID, two timestamps
of the same shape, a two-digit duration, the batch's weekday, slot label and
store), so the batch is laid out as a ``width × n`` byte matrix filled one
character position at a time with numpy (each position a contiguous row), then
transposed into ``n`` consecutive JSON documents: no Python work per event.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from foot_traffic.arrivals import Batch
from foot_traffic.event import EVENT_TYPE, _bucket_offset, _json_str, _offset_text, _offset_us
from foot_traffic.grid import US_PER_MINUTE, UTC
from foot_traffic.plan import DayPlan

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_COLUMNS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_TS_WIDTH = 32  # 2025-08-12T17:52:24.442703+00:00
_BUCKET_US = 15 * US_PER_MINUTE


def _uuid_chars(ids: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The 36 characters of each id, as a 36 × n matrix."""
    n = ids.shape[0]
    columns = ids.T
    out = np.full((36, n), ord("-"), dtype=np.uint8)
    hexed = np.empty((32, n), dtype=np.uint8)
    hexed[0::2] = _HEX[columns >> 4]
    hexed[1::2] = _HEX[columns & 0x0F]
    out[_UUID_COLUMNS] = hexed
    return out


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


def _timestamps(out: npt.NDArray[np.uint8], instants: npt.NDArray[np.int64], tz: dt.tzinfo) -> None:
    """Write each instant's ISO 8601 form (32 characters) into the 32 rows of ``out``."""
    if tz is UTC:
        local = instants
        out[26:] = np.frombuffer(b"+00:00", dtype=np.uint8)[:, None]
    else:
        offsets = _offsets(instants, tz)
        local = instants + offsets
        for offset in np.unique(offsets).tolist():
            text = np.frombuffer(_offset_text(int(offset)).encode(), dtype=np.uint8)
            out[26:, offsets == offset] = text[:, None]
    _write_clock(out, local)


def _digits(out: npt.NDArray[np.uint8], column: int, values: npt.NDArray[np.int64], width: int) -> None:
    """Write ``values`` as zero-padded decimal numbers of ``width`` digits from ``column`` on."""
    for k in range(width - 1, -1, -1):
        out[column + k] = ord("0") + values % 10
        values = values // 10


def _write_clock(out: npt.NDArray[np.uint8], instants: npt.NDArray[np.int64]) -> None:
    """Write ``YYYY-MM-DDTHH:MM:SS.ffffff`` of each (local) instant into columns 0-25.

    The calendar date comes from the day number by Howard Hinnant's civil_from_days.
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
    _digits(out, 0, year, 4)
    _digits(out, 5, month, 2)
    _digits(out, 8, day, 2)
    _digits(out, 11, seconds // 3600, 2)
    _digits(out, 14, seconds // 60 % 60, 2)
    _digits(out, 17, seconds % 60, 2)
    _digits(out, 20, fraction, 6)
    for column, char in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, ".")):
        out[column] = ord(char)


def _width(part: bytes | int | str) -> int:
    if isinstance(part, bytes):
        return len(part)
    return part if isinstance(part, int) else _TS_WIDTH


def encode_batch(plan: DayPlan, batch: Batch, store_id: str | None = None) -> tuple[list[bytes], list[bytes]]:
    """Encode a batch; return the customer ids (Kafka keys) and the JSON values, in entry order."""
    n = len(batch)
    if n == 0:
        return [], []
    if int(batch.durations_min.min()) < 10 or int(batch.durations_min.max()) > 99:
        raise ValueError("the fixed-width encoder needs two-digit durations")
    store = "" if store_id is None else f',"store_id":{_json_str(store_id)}'
    parts: list[bytes | int | str] = [
        f'{{"event_type":"{EVENT_TYPE}","customer_id":"'.encode(),
        36,
        b'","entry_time":"',
        "entry",
        b'","exit_time":"',
        "exit",
        b'","trip_duration_minutes":',
        2,
        f',"weekday":"{plan.weekday}","time_slot":{_json_str(plan.labels[batch.slot])}{store}}}'.encode(),
    ]
    width = sum(_width(p) for p in parts)
    rows = np.empty((width, n), dtype=np.uint8)
    uuids = _uuid_chars(batch.ids)
    entries = batch.entries_us
    exits = entries + batch.durations_min * US_PER_MINUTE
    col = 0
    for part in parts:
        if isinstance(part, bytes):
            rows[col : col + len(part)] = np.frombuffer(part, dtype=np.uint8)[:, None]
            col += len(part)
        elif part == 36:
            rows[col : col + 36] = uuids
            col += 36
        elif part == 2:
            rows[col] = ord("0") + batch.durations_min // 10
            rows[col + 1] = ord("0") + batch.durations_min % 10
            col += 2
        else:
            _timestamps(rows[col : col + _TS_WIDTH], entries if part == "entry" else exits, plan.tz)
            col += _TS_WIDTH
    raw = rows.T.tobytes()
    values = [raw[i : i + width] for i in range(0, n * width, width)]
    key_raw = uuids.T.tobytes()
    keys = [key_raw[i : i + 36] for i in range(0, n * 36, 36)]
    return keys, values
