"""Popularity weights per weekday and slot, and the file format that replaces them."""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from foot_traffic.model.grid import DEFAULT_GRID, MINUTES_PER_DAY, WEEKDAYS, SlotGrid

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@functools.lru_cache(maxsize=1024)
def as_written(value: float) -> Fraction:
    """Return the exact rational a finite number is written as, so 0.1 is 1/10 and not its binary neighbour.

    The value's shortest round-trip spelling (``repr``) is read as a decimal: a weight,
    multiplier, scale or variation read from a file or a setting means what it says.
    """
    return Fraction(repr(value))


@dataclass(frozen=True, slots=True)
class WeightTable:
    """A slot grid and, for each weekday (Monday first), one non-negative weight per slot.

    ``exact`` holds the same weights as rationals (see :func:`as_written`); every sum and
    ratio of the plan is taken over them, so no floating-point rounding reaches a count.
    """

    grid: SlotGrid
    weights: tuple[tuple[float, ...], ...]
    exact: tuple[tuple[Fraction, ...], ...] = field(init=False, repr=False, compare=False)
    _sums: tuple[Fraction, ...] = field(init=False, repr=False, compare=False)
    _mean: Fraction = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.weights) != len(WEEKDAYS):
            raise ValueError("weights need one row per weekday")
        for name, row in zip(WEEKDAYS, self.weights, strict=True):
            if len(row) != len(self.grid):
                raise ValueError(f"{name} has {len(row)} weights for {len(self.grid)} slots")
            if any(not math.isfinite(w) or w < 0 for w in row):
                raise ValueError(f"{name} has a negative or non-finite weight")
        exact = tuple(tuple(as_written(w) for w in row) for row in self.weights)
        object.__setattr__(self, "exact", exact)
        object.__setattr__(self, "_sums", tuple(sum(row, Fraction(0)) for row in exact))
        object.__setattr__(self, "_mean", sum(self._sums, Fraction(0)) / len(WEEKDAYS))
        if self._mean <= 0:
            raise ValueError("at least one weight must be positive")

    def day_sum(self, weekday: int) -> Fraction:
        """S_d: the exact sum of one weekday's weights."""
        return self._sums[weekday]

    @property
    def mean_day_sum(self) -> Fraction:
        """S̄: the exact mean of S_d over the seven weekdays."""
        return self._mean


DEFAULT_WEIGHTS = WeightTable(
    DEFAULT_GRID,
    (
        (16, 17, 20, 17, 13, 10),
        (12, 15, 21, 17, 14, 9),
        (15, 16, 25, 22, 17, 12),
        (14, 14, 19, 21, 18, 10),
        (19, 17, 25, 24, 23, 15),
        (22, 24, 27, 22, 20, 18),
        (22, 21, 23, 19, 16, 13),
    ),
)
"""The weights of the original deployment, on the specification's grid."""


class WeightsFileError(ValueError):
    """The weights file cannot be read or does not describe a valid table."""


def _parse_start(value: object, where: str) -> int:
    if not isinstance(value, str) or not (match := _HHMM.match(value)):
        raise WeightsFileError(f'{where} is {value!r}; expected a time as "HH:MM"')
    return int(match.group(1)) * 60 + int(match.group(2))


def _parse_row(name: str, row: object, n_slots: int) -> tuple[float, ...]:
    if not isinstance(row, Sequence) or isinstance(row, str | bytes):
        raise WeightsFileError(f"weights.{name} is {row!r}; expected a list of {n_slots} numbers")
    if len(row) != n_slots:
        raise WeightsFileError(f"weights.{name} has {len(row)} values; expected {n_slots}, one per slot")
    values: list[float] = []
    for i, w in enumerate(row):
        # a range check, not math.isfinite: a JSON integer beyond the float range would raise OverflowError
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w <= sys.float_info.max:
            raise WeightsFileError(f"weights.{name}[{i}] is {w!r}; expected a finite number >= 0")
        values.append(float(w))
    return tuple(values)


def table_from_mapping(data: Mapping[str, Any]) -> WeightTable:
    """Build a table from parsed TOML or JSON: ``slots`` (optional) and ``weights``."""
    unknown = sorted(set(data) - {"slots", "weights"})
    if unknown:
        raise WeightsFileError(f"unknown keys {unknown}; expected only 'slots' and 'weights'")
    grid = DEFAULT_GRID
    if "slots" in data:
        raw = data["slots"]
        if not isinstance(raw, list) or not raw:
            raise WeightsFileError(f'slots is {raw!r}; expected a non-empty list of "HH:MM"')
        starts = tuple(_parse_start(v, f"slots[{i}]") for i, v in enumerate(raw))
        if starts[0] != 0:
            raise WeightsFileError(f'slots[0] is {raw[0]!r}; expected "00:00"')
        for i in range(1, len(starts)):
            if starts[i] <= starts[i - 1]:
                raise WeightsFileError(f"slots[{i}] is {raw[i]!r}; expected a time after {raw[i - 1]!r}")
        if starts[-1] >= MINUTES_PER_DAY:  # pragma: no cover - excluded by the HH:MM pattern
            raise WeightsFileError("slots must start before 24:00")
        grid = SlotGrid(starts)
    weights = data.get("weights")
    if not isinstance(weights, Mapping):
        raise WeightsFileError(f"weights is {weights!r}; expected a table with one list per weekday")
    missing = [d for d in WEEKDAYS if d not in weights]
    extra = sorted(set(weights) - set(WEEKDAYS))
    if missing or extra:
        raise WeightsFileError(
            f"weights must have exactly the keys {list(WEEKDAYS)}; missing {missing}, unknown {extra}"
        )
    rows = tuple(_parse_row(d, weights[d], len(grid)) for d in WEEKDAYS)
    if not any(any(w > 0 for w in row) for row in rows):
        raise WeightsFileError("every weight is 0; expected at least one positive weight")
    if not math.isfinite(sum(sum(row) for row in rows)):
        raise WeightsFileError("the weights add up to more than the largest float; expected smaller weights")
    return WeightTable(grid, rows)
