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

from foot_traffic.config.scan import entry_lines, nesting
from foot_traffic.model.calendar import Calendar, CalendarFileError, calendar_from_mapping
from foot_traffic.model.stores import Store, StoresFileError, stores_from_mapping
from foot_traffic.model.weights import WeightsFileError, WeightTable, table_from_mapping

T = TypeVar("T")

MAX_NESTING = 100
"""Deepest nesting of arrays and tables a document may have: far below what Python's parsers recurse to,
so a document is refused the same way whatever the depth of the caller's stack."""


def read_document(path: Path, error: type[ValueError], *, toml: bool | None = None) -> Mapping[str, object]:
    """Parse a ``.toml`` file as TOML and any other as JSON; raise ``error`` saying what is wrong.

    ``toml=True`` reads the file as TOML whatever its name. Duplicate keys in a
    JSON object are refused, as TOML refuses them.
    """
    return _parse(_read_bytes(path, error), _is_toml(path, toml), error)


def _is_toml(path: Path, toml: bool | None) -> bool:
    """Whether a file is read as TOML: when told so, or when its name ends in ``.toml``."""
    return bool(toml or (toml is None and path.suffix.lower() == ".toml"))


def _read_bytes(path: Path, error: type[ValueError]) -> bytes:
    """A file's content; ``error`` saying why it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL in the path, or a name the file system cannot encode
        raise error(f"cannot read it: {exc}") from None


def _parse(raw: bytes, as_toml: bool, error: type[ValueError]) -> Mapping[str, object]:
    """A document's top-level table, parsed as TOML or JSON; ``error`` saying what is wrong."""

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        result: dict[str, object] = {}
        for key, value in pairs:
            if key in result:
                raise error(f"cannot parse it: the key {key!r} appears twice in one object")
            result[key] = value
        return result

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

    A store's weights profile is read relative to the stores file's folder, each file once: the
    stores that name one file, however its path is written, share one table. An error about a
    store names the line its entry begins on.
    """
    raw = _read_bytes(path, StoresFileError)
    as_toml = _is_toml(path, None)
    data = _parse(raw, as_toml, StoresFileError)
    lines: list[int] = []

    def line_of(index: int) -> int | None:
        if not lines:  # found only once an entry is wrong: a valid file never pays for it
            lines.extend(entry_lines(raw, toml=as_toml))
        return lines[index] if index < len(lines) else None

    load_profile = _profiles(path.parent)
    return _build(data, lambda d: stores_from_mapping(d, load_profile, line_of), StoresFileError)


def _profiles(folder: Path) -> Callable[[str], WeightTable]:
    """A reader of weights profiles relative to ``folder`` that reads each file once and returns one table for it."""
    by_file: dict[Path | tuple[int, int], WeightTable] = {}
    by_name: dict[str, WeightTable] = {}

    def load_profile(raw_path: str) -> WeightTable:
        if raw_path not in by_name:
            profile = folder / raw_path
            key = _file_key(profile)
            if key not in by_file:
                by_file[key] = load_weights_file(profile)
            by_name[raw_path] = by_file[key]
        return by_name[raw_path]

    return load_profile


def _file_key(path: Path) -> Path | tuple[int, int]:
    """What tells files apart: device and inode (links and ``..`` included), or the path when it cannot be read."""
    try:
        status = path.stat()
    except (OSError, ValueError):  # the loader then says why it cannot read it
        return path
    return status.st_dev, status.st_ino
