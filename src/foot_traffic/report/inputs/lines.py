"""JSON lines to the report's columns: a block at a time, never one Python object per event.

The producer writes every event with the same layout, so a block's lines of that
layout are decoded column by column (:mod:`foot_traffic.report.inputs.decode`).
Any other line is parsed with ``json`` on its own: slower, same result.

A line that is not JSON, not an object, or not a ``foot_traffic`` event with
fields of the schema's types is bad input (exit status 2), named by its line
number or its partition and offset. Blank lines and ``entry``/``exit`` sensor
events are skipped and counted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from foot_traffic.model.grid import US_PER_MINUTE, WEEKDAYS, datetime_to_us
from foot_traffic.report.inputs import decode
from foot_traffic.report.inputs.events import DURATION_CLIP, I64, Chunk, Columns, Events, EventsInputError

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_SENSOR_TYPES = ("entry", "exit")
_STRING_FIELDS = ("customer_id", "entry_time", "exit_time", "weekday", "time_slot")


def read_events(chunks: Iterable[Chunk]) -> Events:
    """Parse every chunk's lines; raise EventsInputError at the first line that is not a foot_traffic event."""
    columns = Columns()
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


def _parse_chunk(chunk: Chunk, columns: Columns) -> None:
    data = chunk.data
    starts, ends = _line_bounds(data)
    before = columns.stats.lines
    columns.stats.lines += int(starts.size)
    columns.add_records(chunk)
    padded = decode.pad_block(data)
    slow = np.ones(starts.size, dtype=bool)
    lengths = ends - starts
    candidates = np.flatnonzero(lengths >= decode.MIN_LENGTH)
    order = candidates[np.argsort(lengths[candidates], kind="stable")]
    if order.size:
        cuts = np.flatnonzero(np.diff(lengths[order])) + 1
        for group in np.split(order, cuts):
            done = decode.parse_fast(padded, starts[group], int(lengths[group[0]]), columns, group + before)
            slow[group[done]] = False
    slow_lines = np.flatnonzero(slow).tolist()
    parsed = [_parse_slow(data[int(starts[i]) : int(ends[i])], chunk.where(i, before), columns) for i in slow_lines]
    rows = [(*row, before + i) for i, row in zip(slow_lines, parsed, strict=True) if row is not None]
    if rows:
        *values, keys, line = zip(*rows, strict=True)
        customer = np.frombuffer(b"".join(keys), dtype=np.uint64).reshape(-1, 2)
        columns.add(*(np.array(column, dtype=np.int64) for column in values), customer=customer, line=line)


_Row = tuple[int, int, int, int, int, bytes]
"""One event as (entry_us, duration_min, store, label, local_day, customer_id key)."""


def _parse_slow(line: bytes, where: str, columns: Columns) -> _Row | None:
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


def _event_row(event: Mapping[str, Any], where: str, columns: Columns) -> _Row:
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
    stats.exit_mismatch += datetime_to_us(exit_) - entry_us != duration * US_PER_MINUTE
    clipped = min(max(duration, DURATION_CLIP[0]), DURATION_CLIP[1])
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
