"""The stores to simulate, each with its own scale, profile and time zone, as STORES_FILE describes them.

The file is TOML when its name ends in ``.toml`` and JSON otherwise::

    [[store]]
    id = "milan-01"
    scale = 1.0
    weights = "profiles/city.toml"   # optional
    timezone = "Europe/Rome"          # optional
    [[store]]
    id = "rome-02"
    scale = 0.6

The same in JSON: ``{"store": [{"id": "milan-01", "scale": 1.0, ...}, {"id": "rome-02", "scale": 0.6}]}``.

* ``id`` (required): 1 to 64 ASCII letters, digits, ``.``, ``_`` or ``-``; unique in the file.
* ``scale`` (default 1): a finite number >= 0 (not a boolean) multiplying the store's daily totals.
* ``weights`` (default: the run's weights): a weights file (see :mod:`foot_traffic.model.weights`),
  relative to the folder of the stores file unless absolute.
* ``timezone`` (default: the run's TIMEZONE): an IANA time zone name such as ``Europe/Rome``.
* ``outages`` (default none): the store's sensor outages of every day, ``[["12:00", "13:30"], ...]``.

There must be at least one store, and unknown keys are errors. Every error names
the line of the store's entry (when read from a file), the key path, the value and what is expected, e.g.
``line 1: store[0].timezone='Mars/Base': expected an IANA time zone name such as Europe/Rome``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from foot_traffic.model.calendar import CalendarFileError, parse_windows
from foot_traffic.model.weights import WeightsFileError, WeightTable

_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ID_EXPECTED = "1 to 64 characters, each a letter, a digit, '.', '_' or '-'"
_TZ_EXPECTED = "an IANA time zone name such as Europe/Rome"
_STORE_KEYS = ("id", "scale", "weights", "timezone", "outages")
_STREAM_KEY_MASK = (1 << 63) - 1


def _is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # not found, malformed key, or a folder of the database
        return False
    return True


@dataclass(frozen=True, slots=True)
class Store:
    """One simulated store: its id, a scale of its daily totals, and optional own weights and time zone.

    ``weights`` None means the run's weights; ``timezone`` None means the run's TIMEZONE.
    """

    id: str
    scale: float = 1.0
    weights: WeightTable | None = None
    timezone: str | None = None
    outages: tuple[tuple[int, int], ...] = field(default=(), repr=False)  # repr: what EXACTLY_ONCE fingerprints
    """Sensor outages of every day, as (start, end) minutes (see :mod:`foot_traffic.model.imperfections`)."""

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.id):
            raise ValueError(f"store id {self.id!r} is invalid; expected {_ID_EXPECTED}")
        if not math.isfinite(self.scale) or self.scale < 0:
            raise ValueError(f"store {self.id!r} has scale {self.scale!r}; expected a finite number >= 0")
        if self.timezone is not None and not _is_time_zone(self.timezone):
            raise ValueError(f"store {self.id!r} has time zone {self.timezone!r}; expected {_TZ_EXPECTED}")

    @property
    def stream_key(self) -> int:
        """A stable 63-bit key from the id, so a store's random stream does not depend on its place in the file."""
        digest = hashlib.sha256(self.id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") & _STREAM_KEY_MASK


class StoresFileError(ValueError):
    """The stores file cannot be read or does not describe a valid list of stores."""


def _as_float(value: object) -> float | None:
    """Return a number as a float (inf when too large), or None for anything else, booleans included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # a JSON integer beyond the float range
        return math.inf


ProfileLoader = Callable[[str], WeightTable]
"""Reads the weights file a store's ``weights`` names (as written in the stores file); WeightsFileError if bad."""
LineOf = Callable[[int], int | None]
"""The line of the stores file where ``store[i]`` begins; None when unknown."""


def _parse_store(index: int, data: object, load_profile: ProfileLoader) -> Store:
    where = f"store[{index}]"
    if not isinstance(data, Mapping):
        raise StoresFileError(
            f"{where}={data!r}: expected a table with 'id' and optionally 'scale', 'weights', 'timezone'"
        )
    for key, value in data.items():
        if key not in _STORE_KEYS:
            names = ", ".join(repr(k) for k in _STORE_KEYS)
            raise StoresFileError(f"{where}.{key}={value!r}: unknown key; expected only {names}")
    if "id" not in data:
        raise StoresFileError(f"{where}.id is missing; expected {_ID_EXPECTED}")
    store_id = data["id"]
    if not isinstance(store_id, str) or not _ID.fullmatch(store_id):
        raise StoresFileError(f"{where}.id={store_id!r}: expected {_ID_EXPECTED}")
    raw_scale = data.get("scale", 1.0)
    scale = _as_float(raw_scale)
    if scale is None or not math.isfinite(scale) or scale < 0:
        raise StoresFileError(f"{where}.scale={raw_scale!r}: expected a finite number >= 0")
    weights = None
    if "weights" in data:
        raw_path = data["weights"]
        if not isinstance(raw_path, str) or not raw_path:
            raise StoresFileError(f"{where}.weights={raw_path!r}: expected the path of a weights file")
        try:
            weights = load_profile(raw_path)
        except WeightsFileError as exc:
            raise StoresFileError(f"{where}.weights={raw_path!r}: {exc}") from None
    timezone = None
    if "timezone" in data:
        timezone = data["timezone"]
        if not isinstance(timezone, str) or not _is_time_zone(timezone):
            raise StoresFileError(f"{where}.timezone={timezone!r}: expected {_TZ_EXPECTED}")
    return Store(store_id, scale, weights, timezone, _outages(data, where))


def _outages(data: Mapping[str, object], where: str) -> tuple[tuple[int, int], ...]:
    """A store's ``outages``, none when absent."""
    if "outages" not in data:
        return ()
    try:
        return parse_windows(data["outages"], f"{where}.outages")
    except CalendarFileError as exc:
        raise StoresFileError(str(exc)) from None


def _no_lines(index: int) -> int | None:
    """No line for any entry: the stores were not read from a file."""
    return None


def stores_from_mapping(
    data: Mapping[str, object], load_profile: ProfileLoader, line_of: LineOf = _no_lines
) -> tuple[Store, ...]:
    """Build the stores from parsed TOML or JSON; ``load_profile`` reads the weights file a store names.

    ``line_of`` gives the line each entry begins on, which an error about it then starts with.
    """
    for key, value in data.items():
        if key != "store":
            raise StoresFileError(f"{key}={value!r}: unknown key; expected only 'store', a list of store tables")
    if "store" not in data:
        raise StoresFileError("store is missing; expected a list of at least one store table ([[store]] in TOML)")
    raw = data["store"]
    if not isinstance(raw, list) or not raw:
        raise StoresFileError(f"store={raw!r}: expected a list of at least one store table ([[store]] in TOML)")
    stores: list[Store] = []
    first_index: dict[str, int] = {}
    for i, item in enumerate(raw):
        try:
            store = _parse_store(i, item, load_profile)
        except StoresFileError as exc:
            raise StoresFileError(f"{_line(line_of(i))}{exc}") from None
        if store.id in first_index:
            j = first_index[store.id]
            on = "" if (other := line_of(j)) is None else f" on line {other}"
            raise StoresFileError(
                f"{_line(line_of(i))}store[{i}].id={store.id!r}: expected a unique id; store[{j}]{on} has it already"
            )
        first_index[store.id] = i
        stores.append(store)
    return tuple(stores)


def _line(line: int | None) -> str:
    """How an error names the line of the entry it is about."""
    return "" if line is None else f"line {line}: "
