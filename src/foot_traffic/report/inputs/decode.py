"""Lines in the producer's own layout, decoded column by column.

The producer writes every event with the same layout: a fixed-width id, two
fixed-width timestamps and a two-digit duration, then the weekday, the slot
label and the store id. Lines of one length in that layout are decoded a
character position (one strided column) at a time, and only the few distinct
tails (weekday, slot, store) go through ``json``. A line that is not exactly in
that layout is left to the caller's ``json`` path.
"""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt

from foot_traffic.model.grid import US_PER_DAY, US_PER_MINUTE, WEEKDAYS
from foot_traffic.report.inputs.events import I64, Columns, Keys

U8 = npt.NDArray[np.uint8]

_UUID_DASHES = [8, 13, 18, 23]
_UUID_VARIANT = 19
"""Where a canonical UUID has its dashes, and its variant digit (8, 9, a or b)."""
_UUID_HEX = [i for i in range(36) if i not in _UUID_DASHES]

# The producer's layout: literal text, then a field of fixed width, and so on up to the weekday.
_TS = 32  # 2025-08-12T17:52:24.442703+00:00
_TS_TEMPLATE = b"0000-00-00T00:00:00.000000+00:00"
_TS_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25, 27, 28, 30, 31)
_TS_SIGN = 26
_PARTS: tuple[tuple[bytes, int], ...] = (
    (b'{"event_type":"foot_traffic","customer_id":"', 36),
    (b'","entry_time":"', _TS),
    (b'","exit_time":"', _TS),
    (b'","trip_duration_minutes":', 2),
    (b',"weekday":"', 0),
)


def _layout() -> tuple[list[int], bytes]:
    """The start of each fixed-width field, and a mask of the literal bytes up to the weekday (0 elsewhere)."""
    starts: list[int] = []
    literal = bytearray()
    for text, width in _PARTS:
        literal += text
        starts.append(len(literal))
        literal += bytes(width)
    for at in starts[1:3]:  # the separators of both timestamps are literal too
        literal[at : at + _TS] = bytes(0 if c in b"0+" else c for c in _TS_TEMPLATE)
    return starts, bytes(literal)


def _words(data: bytes) -> npt.NDArray[np.uint64]:
    """Bytes as little 64-bit words, padded with zero bytes to a whole number of words."""
    return np.frombuffer(data + bytes(-len(data) % 8), dtype=np.uint64)


_FIELD_AT, _LITERAL = _layout()
_ID_AT, _ENTRY_AT, _EXIT_AT, _DURATION_AT, _TAIL_AT = _FIELD_AT
_HEAD_WORDS = -(-_TAIL_AT // 8)
_LITERAL_WORDS = _words(_LITERAL)
_LITERAL_MASK = _words(bytes(0xFF if c else 0 for c in _LITERAL))
_TAIL_MULTIPLIERS = np.random.default_rng(20250812).integers(1, 2**63, size=64, dtype=np.uint64) * 2 + 1
"""Odd multipliers that mix a tail's words into one 64-bit key (every key is checked against the tail)."""
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
MIN_LENGTH = _TAIL_AT + 2
"""Shortest line in the producer's layout: its head, then at least a weekday's closing quote and brace."""


def pad_block(data: bytes) -> U8:
    """A block's bytes with room after its last line to read whole words of its head."""
    return np.frombuffer(data + bytes(8 * (_HEAD_WORDS + 1)), dtype=np.uint8)


def _rows(padded: U8, starts: I64, width: int) -> U8:
    """Bytes [start, start + width) of each line, one line per row (one copy, no index matrix)."""
    return np.lib.stride_tricks.sliding_window_view(padded, width)[starts]


def parse_fast(padded: U8, starts: I64, length: int, columns: Columns, lines: I64) -> npt.NDArray[np.bool_]:
    """Decode lines of one length in the producer's layout; return which were decoded (others go the slow way).

    ``lines`` are the lines' numbers in the order read (see :meth:`Columns.add`).

    The literal text is checked a 64-bit word at a time against a mask; the
    fields are read a character position (one strided column) at a time.
    """
    head = _rows(padded, starts, 8 * _HEAD_WORDS)
    ok: npt.NDArray[np.bool_] = ((head.view(np.uint64) & _LITERAL_MASK) == _LITERAL_WORDS).all(axis=1)
    ok &= padded[starts + length - 1] == ord("}")
    ids = head[:, _ID_AT : _ID_AT + 36]  # printable ASCII but a quote or a backslash, as json takes it
    ok &= ((ids >= 32) & (ids < 127) & (ids != ord('"')) & (ids != ord("\\"))).all(axis=1)
    entry, entry_day, entry_ok = _timestamps(padded, starts + _ENTRY_AT)
    exit_, _, exit_ok = _timestamps(padded, starts + _EXIT_AT)
    tens, units = head[:, _DURATION_AT] - np.uint8(48), head[:, _DURATION_AT + 1] - np.uint8(48)
    ok &= entry_ok & exit_ok & (tens <= 9) & (units <= 9)
    duration = tens.astype(np.int64) * 10 + units
    picked = np.flatnonzero(ok)
    codes, known = _tails(padded, starts[picked] + _TAIL_AT, length - _TAIL_AT, columns)
    picked = picked[known]
    ok[:] = False
    ok[picked] = True
    weekday, store, label = codes[known].T
    day = entry_day[picked]
    stats = columns.stats
    stats.weekday_mismatch += int(np.count_nonzero(weekday != (day + 3) % 7))  # 1970-01-01 was a Thursday
    stats.exit_mismatch += int(np.count_nonzero(exit_[picked] - entry[picked] != duration[picked] * US_PER_MINUTE))
    customer = _id_keys(ids[picked], columns)
    columns.add(entry[picked], duration[picked], store, label, day, customer=customer, line=lines[picked])
    return ok


def _id_keys(ids: U8, columns: Columns) -> Keys:
    """The keys of 36-character ids, one per row: canonical UUIDs packed here, the rare others one by one.

    A hex digit c is worth (c & 15) + 9 × (bit 6 of c); two digits make a byte, the first its high nibble.
    """
    hex_digits = ids[:, _UUID_HEX]
    canonical = (((hex_digits - np.uint8(ord("0"))) <= 9) | ((hex_digits - np.uint8(ord("a"))) <= 5)).all(axis=1)
    canonical &= (ids[:, _UUID_DASHES] == ord("-")).all(axis=1)
    canonical &= np.isin(ids[:, _UUID_VARIANT], np.frombuffer(b"89ab", dtype=np.uint8))
    value = (hex_digits & np.uint8(15)) + np.uint8(9) * (hex_digits >> np.uint8(6))
    packed = np.ascontiguousarray((value[:, 0::2] << np.uint8(4)) | value[:, 1::2])
    for i in np.flatnonzero(~canonical).tolist():
        packed[i] = np.frombuffer(columns.customer_key(ids[i].tobytes().decode("ascii")), dtype=np.uint8)
    return packed.view(np.uint64)


def _tails(padded: U8, starts: I64, width: int, columns: Columns) -> tuple[I64, npt.NDArray[np.bool_]]:
    """(weekday, store, label) codes of each tail, and whether it is exactly the producer's fields.

    Tails are told apart by a 64-bit key mixed from their words; each distinct key
    is decoded once with json, and a tail is accepted only if it equals, word for
    word, the tail its key was decoded from.
    """
    count = -(-width // 8)
    words = _rows(padded, starts, 8 * count).view(np.uint64).copy()
    words[:, -1] &= _words(b"\xff" * (width - 8 * (count - 1)))[0]
    keys = (words * _TAIL_MULTIPLIERS[np.arange(count) % _TAIL_MULTIPLIERS.size]).sum(axis=1, dtype=np.uint64)
    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    decoded = [_decode_tail(words[i].tobytes()[:width], columns) for i in first.tolist()]
    codes = np.array([d or (-1, -1, -1) for d in decoded], dtype=np.int64).reshape(distinct.size, 3)
    known = np.array([d is not None for d in decoded], dtype=bool)[inverse]
    known &= (words == words[first[inverse]]).all(axis=1)
    return codes[inverse], known


def _timestamps(padded: U8, starts: I64) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
    """Instants (epoch µs), local days since 1970-01-01 and validity of the timestamps starting at ``starts``.

    The separators were checked with the literal text; here the digits, the sign and
    the ranges. The 32 characters are transposed (one row per position), and each
    two-digit number is computed on bytes.
    """
    chars = np.ascontiguousarray(_rows(padded, starts, _TS).T)
    sign_byte = chars[_TS_SIGN]
    digits = chars[list(_TS_DIGITS)] - np.uint8(48)  # a byte below "0" wraps round above 9
    ok: npt.NDArray[np.bool_] = (digits <= 9).all(axis=0) & ((sign_byte == ord("+")) | (sign_byte == ord("-")))
    pairs = digits[0::2] * np.uint8(10) + digits[1::2]  # 12 two-digit numbers, at most 99: bytes suffice
    century, year2, month, day, hour, minute, second, micro1, micro2, micro3, offset_hours, offset_minutes = pairs
    year = century.astype(np.int64) * 100 + year2
    micro = (micro1.astype(np.int64) * 100 + micro2) * 100 + micro3
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _MONTH_DAYS[np.minimum(np.maximum(month, 1), 12) - 1] + ((month == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in_month)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59) & (offset_hours <= 23) & (offset_minutes <= 59)
    days = _days_from_civil(year, month.astype(np.int64), day.astype(np.int64))
    seconds = (hour.astype(np.int64) * 60 + minute) * 60 + second
    sign = np.where(sign_byte == ord("-"), -1, 1)
    offset = sign * (offset_hours.astype(np.int64) * 60 + offset_minutes) * US_PER_MINUTE
    return days * US_PER_DAY + seconds * 1_000_000 + micro - offset, days, ok


def _days_from_civil(year: I64, month: I64, day: I64) -> I64:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's days_from_civil)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146_097 + doe - 719_468, dtype=np.int64)


def _decode_tail(tail: bytes, columns: Columns) -> tuple[int, int, int] | None:
    """(weekday, store, label) codes of a line's tail, or None when it is not exactly the producer's fields."""
    try:
        fields = json.loads(b'{"weekday":"' + tail)
    except ValueError:
        return None
    if not isinstance(fields, dict) or set(fields) - {"store_id"} != {"weekday", "time_slot"}:
        return None
    if not all(isinstance(v, str) for v in fields.values()):
        return None
    weekday = WEEKDAYS.index(fields["weekday"]) if fields["weekday"] in WEEKDAYS else -1
    return weekday, columns.store_code(fields.get("store_id")), columns.label_code(fields["time_slot"])
