"""The daily plan: how many customers a date gets, how they split, and where they may fall.

Pure functions of the model, the date, the seed and (for a mid-day start) ``now``.
Each slot's arrivals are drawn from a list of *pieces*: stretches of the slot's
open time on which the arrival intensity is linear (constant for the uniform and
poisson models, interpolated for the smooth model).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction

from foot_traffic.model import randomness
from foot_traffic.model.calendar import EMPTY_CALENDAR, Calendar
from foot_traffic.model.grid import UTC, WEEKDAYS, local_minute_to_us
from foot_traffic.model.weights import DEFAULT_WEIGHTS, WeightTable

ARRIVAL_MODELS = ("uniform", "poisson", "smooth")
DAILY_TOTAL_MODELS = ("uniform", "gamma-poisson")


@dataclass(frozen=True, slots=True)
class Model:
    """The parameters of the arrival model (the part of the settings the plan depends on)."""

    weights: WeightTable = DEFAULT_WEIGHTS
    base_daily_customers: int = 100
    daily_customers: int | None = None
    variation_pct: float = 0.10
    tz: dt.tzinfo = UTC
    arrival_model: str = "uniform"
    daily_totals: str = "uniform"
    dispersion: float = 0.05
    calendar: Calendar = field(default=EMPTY_CALENDAR)
    scale: float = 1.0
    store_key: int = 0

    @property
    def fixed_totals(self) -> bool:
        """Whether a day's total involves no random draw: DAILY_CUSTOMERS, or the uniform law without variation."""
        return self.daily_customers is not None or (self.daily_totals == "uniform" and self.variation_pct == 0)


@dataclass(frozen=True, slots=True)
class StoreModel:
    """One store's model, and its id as its events carry it (None for a run of a single store)."""

    model: Model
    store_id: str | None = None


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch [low, high) of a slot with intensity going linearly from ``y0`` to ``y1``."""

    low: int
    high: int
    y0: float = 1.0
    y1: float = 1.0

    @property
    def mass(self) -> float:
        """Integral of the intensity over the piece (µs × intensity)."""
        return (self.high - self.low) * (self.y0 + self.y1) / 2

    def at(self, instant: int) -> float:
        """Intensity at an instant inside the piece."""
        if self.high == self.low:
            return self.y0
        return self.y0 + (self.y1 - self.y0) * (instant - self.low) / (self.high - self.low)

    def clip(self, low: int) -> Piece:
        """The part of the piece from ``low`` on."""
        low = max(low, self.low)
        return Piece(low, self.high, self.at(low), self.y1)


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One date's plan: per-slot counts and the pieces each slot's arrivals are drawn from.

    ``bounds`` holds each slot's start and the day's end, in epoch microseconds.
    """

    date: dt.date
    day_total: int
    counts: tuple[int, ...]
    pieces: tuple[tuple[Piece, ...], ...]
    bounds: tuple[int, ...]
    labels: tuple[str, ...]
    mean_total: float
    factor: float
    store_key: int = 0
    tz: dt.tzinfo = UTC

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

    @property
    def lows(self) -> tuple[int, ...]:
        """The earliest instant each slot's arrivals may take."""
        return tuple(p[0].low if p else self.bounds[i + 1] for i, p in enumerate(self.pieces))

    def log_line(self) -> str:
        """Return the specification's plan line.

        For example ``[Tuesday 2025-08-12] Planned total (from now): 29; per slot: [0, 0, 0, 8, 12, 9]``.
        """
        return (
            f"[{self.weekday} {self.date.isoformat()}] Planned total (from now): "
            f"{self.total}; per slot: [{', '.join(str(c) for c in self.counts)}]"
        )


def mean_total(model: Model, weekday: int) -> Fraction:
    """Mean customers of a weekday before the calendar: DAILY_CUSTOMERS, or BASE × S_d / S̄."""
    if model.daily_customers is not None:
        return Fraction(model.daily_customers)
    table = model.weights
    return Fraction(model.base_daily_customers) * Fraction(table.day_sum(weekday)) / Fraction(table.mean_day_sum)


def variation_factor(model: Model, root: int, date: dt.date, store: int | None = None) -> float:
    """Day-to-day factor, uniform in [1 − p, 1 + p]; 1 when fixed or disabled."""
    if model.fixed_totals:
        return 1.0
    key = model.store_key if store is None else store
    u = float(randomness.generator(root, key, randomness.DAILY, date.toordinal()).random())
    p = model.variation_pct
    return 1.0 - p + 2.0 * p * u


def daily_total(model: Model, root: int, date: dt.date, mean: Fraction) -> tuple[int, float]:
    """Draw the day's total around ``mean``; return it with the factor applied (1 when none)."""
    if mean == 0:
        return 0, 1.0
    if model.daily_customers is not None or model.daily_totals == "uniform":
        factor = variation_factor(model, root, date)
        return round(mean * Fraction(factor)), factor
    # gamma-Poisson: total ~ Poisson(mean × G), G ~ Gamma(shape 1/d, scale d): E = mean, Var = mean + d·mean².
    rng = randomness.generator(root, model.store_key, randomness.DAILY, date.toordinal())
    gamma = float(rng.gamma(1 / model.dispersion, model.dispersion)) if model.dispersion > 0 else 1.0
    return int(rng.poisson(float(mean) * gamma)), gamma


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


def _open_parts(bounds: tuple[int, ...], opening: tuple[int, int]) -> list[tuple[int, int]]:
    """Each slot's open stretch [low, high), empty (low == high) when the slot is closed."""
    open_at, close_at = opening
    return [
        (min(max(bounds[i], open_at), bounds[i + 1]), max(min(bounds[i + 1], close_at), bounds[i]))
        for i in range(len(bounds) - 1)
    ]


def _smooth_pieces(parts: list[tuple[int, int]], rates: list[float], day: tuple[int, int]) -> list[tuple[Piece, ...]]:
    """Cut each open stretch at the knots of the intensity that joins slot rates at slot midpoints.

    Knots sit at the middle of each slot's open stretch with that slot's rate; the
    intensity is linear between knots, wraps round from the last knot to the first
    across midnight, so it has no step at any slot boundary within the day.
    """
    start, end = day
    length = end - start
    knots = [((lo + hi) / 2, r) for (lo, hi), r in zip(parts, rates, strict=True) if hi > lo]
    if not knots:
        return [() for _ in parts]
    first, last = knots[0], knots[-1]
    knots = [(last[0] - length, last[1]), *knots, (first[0] + length, first[1])]

    def intensity(t: float) -> float:
        for (x0, y0), (x1, y1) in itertools.pairwise(knots):
            if x0 <= t <= x1:
                return y0 if x1 == x0 else y0 + (y1 - y0) * (t - x0) / (x1 - x0)
        return 0.0  # pragma: no cover - knots span the whole day

    pieces: list[tuple[Piece, ...]] = []
    for lo, hi in parts:
        if hi <= lo:
            pieces.append(())
            continue
        cuts = sorted({lo, hi, *(int(x) for x, _ in knots if lo < x < hi)})
        pieces.append(tuple(Piece(a, b, intensity(a), intensity(b)) for a, b in itertools.pairwise(cuts)))
    return pieces


def plan_day(model: Model, root: int, date: dt.date, now_us: int | None = None) -> DayPlan:
    """Compute a date's plan; with ``now_us``, apply the mid-day start rule at that instant.

    Mid-day rule (uniform model): slots that ended by ``now`` get 0; the slot holding
    ``now`` gets round(count × remaining / slot length) and draws in [now, slot end);
    later slots keep their counts. Lengths count open time only.
    """
    weekday = date.weekday()
    rule = model.calendar.rule(date)
    weights = model.weights.weights[weekday]
    bounds = model.weights.grid.boundaries_us(date, model.tz)
    opening = (bounds[0], bounds[-1])
    if rule.hours is not None:
        opening = (
            local_minute_to_us(date, rule.hours[0], model.tz),
            local_minute_to_us(date, rule.hours[1], model.tz),
        )
    parts = _open_parts(bounds, opening)
    open_len = [hi - lo for lo, hi in parts]
    effective = tuple(
        float(Fraction(w) * Fraction(ol, bounds[i + 1] - bounds[i]))
        for i, (w, ol) in enumerate(zip(weights, open_len, strict=True))
    )
    mean = mean_total(model, weekday) * Fraction(rule.multiplier) * Fraction(model.scale)
    if sum(effective) == 0:
        mean = Fraction(0)
    day_total, factor = daily_total(model, root, date, mean)
    now = bounds[0] if now_us is None else now_us

    if model.arrival_model == "smooth":
        rates = [e / ol if ol else 0.0 for e, ol in zip(effective, open_len, strict=True)]
        full = _smooth_pieces(parts, rates, (bounds[0], bounds[-1]))
        pieces = [tuple(p.clip(now) for p in slot if p.high > now) for slot in full]
        day_mass = math.fsum(p.mass for slot in full for p in slot)
        left_mass = [sum(p.mass for p in slot) for slot in pieces]
        if now <= bounds[0]:
            n = day_total
        else:
            n = round(Fraction(day_total) * Fraction(math.fsum(left_mass)) / Fraction(day_mass)) if day_mass else 0
        counts = _multinomial(root, model.store_key, date, n, left_mass)
    else:
        pieces = [((Piece(max(lo, now), hi),) if hi > max(lo, now) else ()) for lo, hi in parts]
        fractions = [Fraction(max(0, hi - max(lo, now)), hi - lo) if hi > lo else Fraction(0) for lo, hi in parts]
        if model.arrival_model == "poisson":
            quotas = [
                Fraction(day_total) * Fraction(e) / Fraction(sum(effective)) if day_total else 0 for e in effective
            ]
            counts = [
                _poisson(root, model.store_key, date, i, float(q * f))
                for i, (q, f) in enumerate(zip(quotas, fractions, strict=True))
            ]
        else:
            counts = [round(c * f) for c, f in zip(largest_remainder(day_total, effective), fractions, strict=True)]
    return DayPlan(
        date=date,
        day_total=day_total,
        counts=tuple(counts),
        pieces=tuple(pieces),
        bounds=bounds,
        labels=model.weights.grid.labels,
        mean_total=float(mean),
        factor=factor,
        store_key=model.store_key,
        tz=model.tz,
    )


def _poisson(root: int, store: int, date: dt.date, slot: int, mean: float) -> int:
    if mean <= 0:
        return 0
    return int(randomness.generator(root, store, randomness.COUNTS, date.toordinal(), slot).poisson(mean))


def _multinomial(root: int, store: int, date: dt.date, n: int, masses: list[float]) -> list[int]:
    total = math.fsum(masses)
    if n == 0 or total == 0:
        return [0 for _ in masses]
    rng = randomness.generator(root, store, randomness.COUNTS, date.toordinal())
    return [int(c) for c in rng.multinomial(n, [m / total for m in masses])]
