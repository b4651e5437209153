"""Events read back for ``foot-traffic report``: JSON lines from a file, standard input or a Kafka topic.

Lines are parsed in blocks into numpy columns, never into one Python object per
event. The producer writes every event with the same layout (a fixed-width id,
two fixed-width timestamps and a two-digit duration, then the weekday, the slot
label and the store id), so a block's lines of that layout are decoded column by
column, and only the few distinct tails (weekday, slot, store) go through
``json``. Any other line is parsed with ``json`` on its own: slower, same result.
Kafka values in the Schema Registry framing (JSON or Avro payloads) are turned
into such lines first, by :mod:`foot_traffic.report.framing`.

A line that is not JSON, not an object, or not a ``foot_traffic`` event with
fields of the schema's types is bad input (exit status 2), named by its line
number or its partition and offset. Blank lines and ``entry``/``exit`` sensor
events are skipped and counted.

Each customer_id is kept as a 16-byte key: a canonical lowercase RFC 4122 UUID
(what the producer writes) as its own 16 bytes, any other text as a 128-bit
BLAKE2b digest whose variant bits are cleared, so that it never equals a UUID's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from foot_traffic.errors import FootTrafficError, KafkaUnavailableError
from foot_traffic.events.event import format_uuid
from foot_traffic.model.grid import WEEKDAYS, datetime_to_us

if TYPE_CHECKING:
    from foot_traffic.report.framing import FramedValues, RegistrySource

log = logging.getLogger(__name__)
_client_log = logging.getLogger("foot_traffic.librdkafka")

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
U8 = npt.NDArray[np.uint8]
Keys = npt.NDArray[np.uint64]
"""Customer id keys: one row of two 64-bit words (16 bytes) per event."""

BLOCK_BYTES = 4 << 20
"""Bytes of a file read at once; a block's temporaries stay within a few tens of MB."""
KAFKA_BATCH = 50_000
"""Records asked of the consumer at once."""
FETCH_BYTES = 32 << 20
"""Largest fetch response from the brokers."""
STALL_SECONDS = 60.0
"""A topic that delivers nothing for this long before its end offsets is reported unreadable."""

_DAY_US = 86_400_000_000
_MINUTE_US = 60_000_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_SENSOR_TYPES = ("entry", "exit")
_STRING_FIELDS = ("customer_id", "entry_time", "exit_time", "weekday", "time_slot")
_DURATION_CLIP = (-1, 32_767)
"""Durations are kept as 16-bit integers; anything outside 10..75 fails the check whatever its value."""
ID_TEXTS = 65_536
"""Customer ids that are not UUIDs whose text is kept (the first ones read), to name them in the report."""
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
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


class EventsInputError(FootTrafficError):
    """The events cannot be read: a missing file, a line that is not a foot_traffic event, a missing topic."""

    exit_status = 2


@dataclass(frozen=True, slots=True)
class Chunk:
    """A block of JSON lines separated by newlines, and how to name its line ``i`` in a message."""

    data: bytes
    where: Callable[[int, int], str]
    """Names line ``i`` of the block, given how many lines came before the block."""


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
class _Columns:
    """Columns of parsed events, block by block, and the code tables of their store ids and labels."""

    stats: ReadStats = field(default_factory=ReadStats)
    parts: list[tuple[npt.NDArray[Any], ...]] = field(default_factory=list)
    stores: dict[str | None, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    id_texts: dict[bytes, str] = field(default_factory=dict)

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

    def add(self, *columns: npt.ArrayLike, customer: Keys) -> None:
        """Append events given as (entry_us, duration_min, store, label, local_day) columns and their id keys."""
        entry, duration, store, label, day = columns
        duration = np.clip(np.asarray(duration, dtype=np.int64), *_DURATION_CLIP)
        values = (entry, duration, store, label, day)
        self.parts.append((*(np.asarray(v, dtype=t) for v, t in zip(values, _DTYPES, strict=True)), customer))

    def events(self) -> Events:
        """Every event added, as one array per column."""
        entry, duration, store, label, day = (
            np.concatenate([part[k] for part in self.parts]) if self.parts else np.empty(0, dtype=t)
            for k, t in enumerate(_DTYPES)
        )
        keys = [part[len(_DTYPES)] for part in self.parts]
        customer = np.concatenate(keys) if keys else np.empty((0, 2), dtype=np.uint64)
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
        )


def read_events(chunks: Iterable[Chunk]) -> Events:
    """Parse every chunk's lines; raise EventsInputError at the first line that is not a foot_traffic event."""
    columns = _Columns()
    for chunk in chunks:
        _parse_chunk(chunk, columns)
    return columns.events()


def _line_bounds(data: bytes) -> tuple[I64, I64]:
    """Start and end (exclusive, without the newline) of every line of a block."""
    raw = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 10)
    starts = np.concatenate(([0], newlines + 1)).astype(np.int64)
    ends = np.concatenate((newlines, [raw.size])).astype(np.int64)
    if data.endswith(b"\n"):  # the block's last newline ends a line, it does not start one
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def _parse_chunk(chunk: Chunk, columns: _Columns) -> None:
    data = chunk.data
    starts, ends = _line_bounds(data)
    before = columns.stats.lines
    columns.stats.lines += int(starts.size)
    padded = np.frombuffer(data + bytes(8 * (_HEAD_WORDS + 1)), dtype=np.uint8)  # room to read whole words
    slow = np.ones(starts.size, dtype=bool)
    lengths = ends - starts
    candidates = np.flatnonzero(lengths >= _TAIL_AT + 2)
    order = candidates[np.argsort(lengths[candidates], kind="stable")]
    if order.size:
        cuts = np.flatnonzero(np.diff(lengths[order])) + 1
        for group in np.split(order, cuts):
            done = _parse_fast(padded, starts[group], int(lengths[group[0]]), columns)
            slow[group[done]] = False
    parsed = [
        _parse_slow(data[int(starts[i]) : int(ends[i])], chunk.where(i, before), columns)
        for i in np.flatnonzero(slow).tolist()
    ]
    rows = [row for row in parsed if row is not None]
    if rows:
        *values, keys = zip(*rows, strict=True)
        customer = np.frombuffer(b"".join(keys), dtype=np.uint64).reshape(-1, 2)
        columns.add(*(np.array(column, dtype=np.int64) for column in values), customer=customer)


def _rows(padded: U8, starts: I64, width: int) -> U8:
    """Bytes [start, start + width) of each line, one line per row (one copy, no index matrix)."""
    return np.lib.stride_tricks.sliding_window_view(padded, width)[starts]


def _parse_fast(padded: U8, starts: I64, length: int, columns: _Columns) -> npt.NDArray[np.bool_]:
    """Decode lines of one length in the producer's layout; return which were decoded (others go the slow way).

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
    stats.exit_mismatch += int(np.count_nonzero(exit_[picked] - entry[picked] != duration[picked] * _MINUTE_US))
    customer = _id_keys(ids[picked], columns)
    columns.add(entry[picked], duration[picked], store, label, day, customer=customer)
    return ok


def _id_keys(ids: U8, columns: _Columns) -> Keys:
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


def _tails(padded: U8, starts: I64, width: int, columns: _Columns) -> tuple[I64, npt.NDArray[np.bool_]]:
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
    offset = sign * (offset_hours.astype(np.int64) * 60 + offset_minutes) * _MINUTE_US
    return days * _DAY_US + seconds * 1_000_000 + micro - offset, days, ok


def _days_from_civil(year: I64, month: I64, day: I64) -> I64:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's days_from_civil)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146_097 + doe - 719_468, dtype=np.int64)


def _decode_tail(tail: bytes, columns: _Columns) -> tuple[int, int, int] | None:
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


_Row = tuple[int, int, int, int, int, bytes]
"""One event as (entry_us, duration_min, store, label, local_day, customer_id key)."""


def _parse_slow(line: bytes, where: str, columns: _Columns) -> _Row | None:
    """Parse one line with json: an event, None for a skipped blank line or sensor event, or EventsInputError."""
    if not line.strip():
        columns.stats.blank += 1
        return None
    try:
        event = json.loads(line)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise EventsInputError(f"{where}: not JSON ({reason}); expected one foot_traffic event per line") from None
    except RecursionError:
        raise EventsInputError(f"{where}: nested too deeply; expected one foot_traffic event per line") from None
    if not isinstance(event, dict):
        raise EventsInputError(f"{where}: {_short(event)}; expected a JSON object, one foot_traffic event per line")
    kind = event.get("event_type")
    if kind in _SENSOR_TYPES:
        columns.stats.sensor += 1
        return None
    if kind != "foot_traffic":
        raise EventsInputError(f"{where}: event_type={_short(kind)}; expected 'foot_traffic'")
    return _event_row(event, where, columns)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _event_row(event: Mapping[str, Any], where: str, columns: _Columns) -> _Row:
    for name in _STRING_FIELDS:
        if not isinstance(event.get(name), str):
            raise EventsInputError(f"{where}: {name}={_short(event.get(name))}; expected a string")
    duration = event.get("trip_duration_minutes")
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise EventsInputError(f"{where}: trip_duration_minutes={_short(duration)}; expected an integer")
    store_id = event.get("store_id")
    if store_id is not None and not isinstance(store_id, str):
        raise EventsInputError(f"{where}: store_id={_short(store_id)}; expected a string")
    entry = _instant(event["entry_time"], "entry_time", where)
    exit_ = _instant(event["exit_time"], "exit_time", where)
    entry_us = datetime_to_us(entry)
    day = entry.date().toordinal() - _EPOCH_ORDINAL
    weekday = event["weekday"]
    stats = columns.stats
    stats.weekday_mismatch += weekday != WEEKDAYS[entry.weekday()]
    stats.exit_mismatch += datetime_to_us(exit_) - entry_us != duration * _MINUTE_US
    clipped = min(max(duration, _DURATION_CLIP[0]), _DURATION_CLIP[1])
    store, label = columns.store_code(store_id), columns.label_code(event["time_slot"])
    return entry_us, clipped, store, label, day, columns.customer_key(event["customer_id"])


def _instant(text: str, name: str, where: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise EventsInputError(
            f"{where}: {name}={_short(text)}; expected an ISO-8601 instant with an offset, "
            "such as 2025-08-12T17:52:24.442703+00:00"
        )
    return moment


def file_chunks(stream: BinaryIO, name: str, block_bytes: int = BLOCK_BYTES) -> Iterator[Chunk]:
    """Blocks of whole lines of a binary stream; ``name`` is how messages name it (e.g. ``--input='x.jsonl'``)."""
    carry = b""
    while True:
        try:
            data = stream.read(block_bytes)
        except OSError as exc:
            raise EventsInputError(f"{name}: cannot read it ({exc.strerror or exc})") from None
        if not data:
            break
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        body, carry = data[: cut + 1], data[cut + 1 :]
        yield Chunk(body, lambda i, before: f"{name} line {before + i + 1}")
    if carry:
        yield Chunk(carry, lambda i, before: f"{name} line {before + i + 1}")


@dataclass(frozen=True, slots=True)
class KafkaSource:
    """Where to read events from Kafka, and how long to try."""

    bootstrap: str
    topic: str
    client: Mapping[str, str]
    """Security properties (``security.*``, ``sasl.*``, ``ssl.*``) for the consumer."""
    attempts: int = 1
    backoff_s: float = 5.0
    timeout_s: float = 10.0
    registry: RegistrySource | None = None
    """The schema registry of values in its framing (SCHEMA_REGISTRY_URL); None: only JSON payloads are read."""


def consumer_config(source: KafkaSource) -> dict[str, Any]:
    """A one-off reader: no group offsets committed, committed transactions only, end-of-partition events.

    Only the security properties of the settings apply: the KAFKA_PRODUCER_* pass-through is the producer's.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": source.bootstrap,
        "group.id": f"foot-traffic-report-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        # large fetches that keep the local queue full (librdkafka's 64 MB cap) read about twice as fast as defaults
        "fetch.max.bytes": FETCH_BYTES,
        "max.partition.fetch.bytes": FETCH_BYTES // 2,
        "receive.message.max.bytes": FETCH_BYTES + 512,
        "queued.min.messages": 1_000_000,
    }
    for key, value in source.client.items():
        if key.startswith(("security.", "sasl.", "ssl.", "enable.ssl.")):
            config[key] = value
    return config


def kafka_chunks(source: KafkaSource, *, batch: int = KAFKA_BATCH, stall_s: float = STALL_SECONDS) -> Iterator[Chunk]:
    """Blocks of the topic's record values, from each partition's start to its end offset when reading began.

    Raises KafkaUnavailableError when the cluster cannot be reached or stops
    answering, EventsInputError when the topic does not exist, RegistryUnavailableError
    when the schema registry of framed values cannot be reached.
    """
    from foot_traffic.report.framing import FramedValues  # noqa: PLC0415 - it imports this module

    errors: list[Any] = []
    framing = FramedValues(source.registry)
    consumer = Consumer(consumer_config(source), logger=_client_log, error_cb=errors.append)
    try:
        partitions = _partitions(consumer, source, errors)
        ends: dict[int, int] = {}
        assignment = []
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(source.topic, partition), timeout=source.timeout_s, cached=False
            )
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(source.topic, partition, low))
        log.info("Reading %s: %d record(s) in %d partition(s)", source.topic, sum(ends.values()), len(partitions))
        if not assignment:
            return
        consumer.assign(assignment)
        yield from _consume(consumer, source.topic, ends, batch, stall_s, framing=framing)
    finally:
        consumer.close()
        framing.close()


def _partitions(consumer: Any, source: KafkaSource, errors: list[Any]) -> list[int]:
    """The topic's partitions, within ``attempts`` tries to reach the cluster."""
    last = ""
    for attempt in range(1, source.attempts + 1):
        try:
            metadata = consumer.list_topics(source.topic, timeout=source.timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            last = next((e.str() for e in reversed(errors) if hasattr(e, "str")), "") or str(error)
            errors.clear()
            if attempt < source.attempts:
                log.warning(
                    "Kafka at %s not reachable (attempt %d of %d): %s; retrying in %.1f s",
                    source.bootstrap,
                    attempt,
                    source.attempts,
                    last,
                    source.backoff_s,
                )
                time.sleep(source.backoff_s)
            continue
        described = metadata.topics.get(source.topic)
        if described is None or described.error is not None or not described.partitions:
            raise EventsInputError(
                f"KAFKA_TOPIC={source.topic!r}: no such topic on {source.bootstrap}; expected an existing topic"
            )
        return sorted(described.partitions)
    raise KafkaUnavailableError(
        f"cannot reach Kafka at {source.bootstrap} after {source.attempts} attempt(s): {last}; check KAFKA_BROKER"
    )


def _consume(
    consumer: Any, topic: str, ends: dict[int, int], batch: int, stall_s: float, *, framing: FramedValues
) -> Iterator[Chunk]:
    """Read until every partition has reached its end offset; yield each batch of values as one block."""
    pending = set(ends)
    last_progress = time.monotonic()
    while pending:
        messages = consumer.consume(batch, timeout=1.0)
        values, kept = batch_records(messages, topic, ends, pending)
        if values:
            last_progress = time.monotonic()
            yield kafka_chunk(topic, values, kept, framing)
        elif pending:
            # transaction markers and aborted records take offsets but are never delivered
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            pending -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
            if pending and time.monotonic() - last_progress > stall_s:
                raise KafkaUnavailableError(
                    f"no record of {topic} received for {stall_s:.0f} s before its end offsets; check KAFKA_BROKER"
                )


def batch_records(
    messages: list[Any], topic: str, ends: dict[int, int], pending: set[int]
) -> tuple[list[bytes], list[Any]]:
    """The values of a batch's records before their partition's end offset; updates ``pending``.

    A batch of plain records (the usual case) is sorted out with a few list
    comprehensions and numpy; end-of-partition events, errors and null values
    go through the loop below.
    """
    values = [message.value() for message in messages]
    if not messages or None in values:
        return _records_one_by_one(messages, topic, ends, pending)
    partitions = np.array([message.partition() for message in messages], dtype=np.int64)
    offsets = np.array([message.offset() for message in messages], dtype=np.int64)
    end = np.zeros(int(partitions.max()) + 1, dtype=np.int64)
    for partition in np.unique(partitions).tolist():
        end[partition] = ends[partition]
    limit = end[partitions]
    pending -= set(np.unique(partitions[offsets >= limit - 1]).tolist())
    keep = offsets < limit
    if keep.all():
        return [v or b" " for v in values], messages  # an empty value counts as a blank line
    picked = np.flatnonzero(keep).tolist()
    return [values[i] or b" " for i in picked], [messages[i] for i in picked]


def _records_one_by_one(
    messages: list[Any], topic: str, ends: dict[int, int], pending: set[int]
) -> tuple[list[bytes], list[Any]]:
    values: list[bytes] = []
    kept: list[Any] = []
    for message in messages:
        error = message.error()
        partition = message.partition()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(partition)
                continue
            raise KafkaUnavailableError(f"cannot read {topic} partition {partition}: {error.str()}")
        offset = message.offset()
        if offset >= ends[partition]:
            pending.discard(partition)
            continue
        if offset == ends[partition] - 1:
            pending.discard(partition)
        values.append(message.value() or b" ")  # an empty or null value counts as a blank line
        kept.append(message)
    return values, kept


def kafka_chunk(topic: str, values: list[bytes], messages: list[Any], framing: FramedValues | None = None) -> Chunk:
    """One block of record values; a value holding a newline would split into two lines, so it is refused.

    Values in the Schema Registry framing (magic byte 0, 4-byte schema id, payload)
    are turned into plain event JSON by ``framing`` (by default one without a
    registry, which reads JSON payloads only); see :mod:`foot_traffic.report.framing`.
    Plain values are joined as they are: JSON text never holds a NUL byte, so one
    search of the block tells whether any value is framed.
    """

    def where(i: int, before: int = 0) -> str:
        return f"KAFKA_TOPIC={topic!r} partition {messages[i].partition()} offset {messages[i].offset()}"

    framed = bool(values) and values[0][:1] == b"\x00"
    data = b"" if framed else b"\n".join(values)
    if framed or b"\x00" in data:
        if framing is None:
            from foot_traffic.report.framing import FramedValues  # noqa: PLC0415 - it imports this module

            framing = FramedValues()
        values = framing.decode(values, where)
        data = b"\n".join(values)
    if data.count(b"\n") != len(values) - 1:
        bad = next(i for i, v in enumerate(values) if b"\n" in v)
        raise EventsInputError(f"{where(bad)}: a record value holds a newline; expected one JSON event per record")
    return Chunk(data, where)
