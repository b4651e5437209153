"""The daily plan: how many customers a date gets, and how they split across slots.

Pure functions of the model, the date, the seed and (for a mid-day start) ``now``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

from foot_traffic import randomness
from foot_traffic.grid import UTC, WEEKDAYS
from foot_traffic.weights import DEFAULT_WEIGHTS, WeightTable


@dataclass(frozen=True, slots=True)
class Model:
    """The parameters of the arrival model (the part of the settings the plan depends on)."""

    weights: WeightTable = DEFAULT_WEIGHTS
    base_daily_customers: int = 100
    daily_customers: int | None = None
    variation_pct: float = 0.10
    tz: dt.tzinfo = UTC


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One date's plan: per-slot counts and the interval each slot's arrivals are drawn from.

    ``lows[i]`` is the slot's start, or ``now`` for the slot a mid-day start falls in;
    ``bounds`` holds each slot's start and the day's end, in epoch microseconds.
    """

    date: dt.date
    day_total: int
    counts: tuple[int, ...]
    lows: tuple[int, ...]
    bounds: tuple[int, ...]
    labels: tuple[str, ...]
    mean_total: float
    factor: float

    @property
    def weekday(self) -> str:
        """English weekday name of the date."""
        return WEEKDAYS[self.date.weekday()]

    @property
    def total(self) -> int:
        """Customers planned from the start of the run (the whole day unless started mid-day)."""
        return sum(self.counts)

    @property
    def start_us(self) -> int:
        """The instant the day begins (local midnight)."""
        return self.bounds[0]

    @property
    def end_us(self) -> int:
        """The instant the day ends (next local midnight)."""
        return self.bounds[-1]

    def log_line(self) -> str:
        """Return the specification's plan line.

        For example ``[Tuesday 2025-08-12] Planned total (from now): 29; per slot: [0, 0, 0, 8, 12, 9]``.
        """
        return (
            f"[{self.weekday} {self.date.isoformat()}] Planned total (from now): "
            f"{self.total}; per slot: [{', '.join(str(c) for c in self.counts)}]"
        )


def mean_total(model: Model, weekday: int) -> Fraction:
    """Mean customers of a weekday: DAILY_CUSTOMERS, or BASE × S_d / S̄."""
    if model.daily_customers is not None:
        return Fraction(model.daily_customers)
    table = model.weights
    return Fraction(model.base_daily_customers) * Fraction(table.day_sum(weekday)) / Fraction(table.mean_day_sum)


def variation_factor(model: Model, root: int, date: dt.date, store: int = 0) -> float:
    """Day-to-day factor, uniform in [1 − p, 1 + p]; 1 when fixed or disabled."""
    if model.daily_customers is not None or model.variation_pct == 0:
        return 1.0
    u = float(randomness.generator(root, store, randomness.DAILY, date.toordinal()).random())
    p = model.variation_pct
    return 1.0 - p + 2.0 * p * u


def largest_remainder(total: int, weights: tuple[float, ...]) -> tuple[int, ...]:
    """Split ``total`` in proportion to ``weights`` into integers that sum to ``total``.

    Each share gets the floor of its quota; the units left go to the largest
    fractional remainders, ties to the earlier slot. Exact rational arithmetic
    keeps the result free of floating-point noise.
    """
    if total < 0:
        raise ValueError("total must be >= 0")
    weight_sum = sum(Fraction(w) for w in weights)
    if weight_sum == 0:
        if total:
            raise ValueError("cannot split a positive total over zero weights")
        return tuple(0 for _ in weights)
    quotas = [Fraction(total) * Fraction(w) / weight_sum for w in weights]
    counts = [q.numerator // q.denominator for q in quotas]
    left = total - sum(counts)
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return tuple(counts)


def plan_day(model: Model, root: int, date: dt.date, now_us: int | None = None, store: int = 0) -> DayPlan:
    """Compute a date's plan; with ``now_us``, apply the mid-day start rule at that instant.

    Mid-day rule: slots that ended by ``now`` get 0; the slot holding ``now`` gets
    round(count × remaining / slot length) and draws in [now, slot end); later
    slots keep their counts.
    """
    weekday = date.weekday()
    mean = mean_total(model, weekday)
    factor = variation_factor(model, root, date, store)
    closed = model.weights.day_sum(weekday) == 0
    day_total = 0 if closed else round(mean * Fraction(factor))
    counts = list(largest_remainder(day_total, model.weights.weights[weekday]))
    bounds = model.weights.grid.boundaries_us(date, model.tz)
    lows = list(bounds[:-1])
    if now_us is not None:
        for i, count in enumerate(counts):
            start, end = bounds[i], bounds[i + 1]
            if end <= now_us:
                counts[i] = 0
                lows[i] = end
            elif start < now_us:
                counts[i] = round(Fraction(count * (end - now_us), end - start))
                lows[i] = now_us
    return DayPlan(
        date=date,
        day_total=day_total,
        counts=tuple(counts),
        lows=tuple(lows),
        bounds=bounds,
        labels=model.weights.grid.labels,
        mean_total=float(mean),
        factor=factor,
    )
