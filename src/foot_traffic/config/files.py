"""Reading the TOML or JSON documents behind CONFIG_FILE, WEIGHTS_FILE, CALENDAR_FILE and STORES_FILE.

The model builds weights, calendars and stores from parsed mappings and never
reads a file; this module does the reading and hands it the mappings.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from foot_traffic.model.calendar import Calendar, CalendarFileError, calendar_from_mapping
from foot_traffic.model.stores import Store, StoresFileError, stores_from_mapping
from foot_traffic.model.weights import WeightsFileError, WeightTable, table_from_mapping

T = TypeVar("T")

MAX_NESTING = 100
"""Deepest nesting of arrays and tables a document may have: far below what Python's parsers recurse to,
so a document is refused the same way whatever the depth of the caller's stack."""

_OPENING, _CLOSING = frozenset(b"[{"), frozenset(b"]}")
_QUOTES = frozenset(b"\"'")


def nesting(raw: bytes, *, comments: bool) -> int:
    """How deep arrays and tables nest in a JSON or TOML text (``comments``: TOML's # … comments), strings skipped."""
    deepest = depth = 0
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c in _QUOTES:
            i = _string_end(raw, i)
        elif comments and c == ord("#"):
            i = raw.find(b"\n", i)
            i = n if i < 0 else i
        elif c in _OPENING:
            depth += 1
            deepest = max(deepest, depth)
        elif c in _CLOSING:
            depth -= 1
        i += 1
    return deepest


def _string_end(raw: bytes, start: int) -> int:
    """Where the string opening at ``start`` ends (its closing quote), or the text's end; backslashes escape in "…"."""
    quote = raw[start : start + 1]
    fence = quote * 3 if raw[start : start + 3] == quote * 3 else quote
    i = start + len(fence)
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and quote == b'"':
            i += 2
            continue
        if raw[i : i + len(fence)] == fence:
            return i + len(fence) - 1
        i += 1
    return len(raw)


def read_document(path: Path, error: type[ValueError], *, toml: bool | None = None) -> Mapping[str, object]:
    """Parse a ``.toml`` file as TOML and any other as JSON; raise ``error`` saying what is wrong.

    ``toml=True`` reads the file as TOML whatever its name. Duplicate keys in a
    JSON object are refused, as TOML refuses them.
    """

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        result: dict[str, object] = {}
        for key, value in pairs:
            if key in result:
                raise error(f"cannot parse it: the key {key!r} appears twice in one object")
            result[key] = value
        return result

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL in the path, or a name the file system cannot encode
        raise error(f"cannot read it: {exc}") from None
    as_toml = bool(toml or (toml is None and path.suffix.lower() == ".toml"))
    if nesting(raw, comments=as_toml) > MAX_NESTING:
        raise error(f"cannot parse it: nested too deeply (more than {MAX_NESTING} levels of arrays and tables)")
    try:
        if as_toml:
            data: object = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw, object_pairs_hook=no_duplicates)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"cannot parse it: {exc}") from None
    except RecursionError:
        raise error("cannot parse it: nested too deeply") from None
    if not isinstance(data, Mapping):
        raise error("expected a table (TOML) or an object (JSON) at the top level")
    return data


def _build(data: Mapping[str, object], builder: Callable[[Mapping[str, object]], T], error: type[ValueError]) -> T:
    """Run a document's builder, turning a value nested too deeply to describe into ``error``."""
    try:
        return builder(data)
    except RecursionError:  # a value nested almost as deep as the parser allows, shown in a message
        raise error("cannot parse it: nested too deeply") from None


def load_weights_file(path: Path) -> WeightTable:
    """Read a TOML (``.toml``) or JSON (any other suffix) weights file."""
    return _build(read_document(path, WeightsFileError), table_from_mapping, WeightsFileError)


def load_calendar_file(path: Path) -> Calendar:
    """Read a TOML (``.toml``) or JSON (any other suffix) calendar file."""
    return _build(read_document(path, CalendarFileError), calendar_from_mapping, CalendarFileError)


def load_stores_file(path: Path) -> tuple[Store, ...]:
    """Read a TOML (``.toml``) or JSON (any other suffix) stores file, in file order.

    A store's weights profile is read relative to the stores file's folder, each file once.
    """
    profiles: dict[Path, WeightTable] = {}

    def load_profile(raw_path: str) -> WeightTable:
        profile = path.parent / raw_path
        if profile not in profiles:
            profiles[profile] = load_weights_file(profile)
        return profiles[profile]

    data = read_document(path, StoresFileError)
    return _build(data, lambda d: stores_from_mapping(d, load_profile), StoresFileError)
