"""The daily plan: how many customers a date gets, how they split, and where they may fall.

Pure functions of the model, the date, the seed and (for a mid-day start) ``now``.
Each slot's arrivals are drawn from a list of *pieces*: stretches of the slot's
open time on which the arrival intensity is linear (constant for the uniform and
poisson models, interpolated for the smooth model).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from foot_traffic.model import randomness
from foot_traffic.model.calendar import EMPTY_CALENDAR, Calendar
from foot_traffic.model.grid import UTC, WEEKDAYS, local_minute_to_us
from foot_traffic.model.weights import DEFAULT_WEIGHTS, WeightTable, as_written

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
    outages: tuple[tuple[int, int], ...] = ()
    """The store's sensor outages of every day, (start, end) local minutes: when its events are sent, not what."""

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

    @property
    def exact_mass(self) -> Fraction:
        """The same integral in exact rationals, from the piece's float intensities."""
        return (self.high - self.low) * (Fraction(self.y0) + Fraction(self.y1)) / 2

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

    ``bounds`` holds each slot's start and the day's end, in epoch microseconds. ``shares``
    are the exact slot weights W' the day was split by (each weight times the slot's open
    share). ``mean_total`` and ``factor`` are floats to show and to compare with: the counts
    come from their exact values.
    """

    date: dt.date
    day_total: int
    counts: tuple[int, ...]
    pieces: tuple[tuple[Piece, ...], ...]
    bounds: tuple[int, ...]
    labels: tuple[str, ...]
    shares: tuple[Fraction, ...]
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

    def log_line(self) -> str:
        """Return the specification's plan line.

        For example ``[Tuesday 2025-08-12] Planned total (from now): 29; per slot: [0, 0, 0, 8, 12, 9]``.
        """
        return (
            f"[{self.weekday} {self.date.isoformat()}] Planned total (from now): "
            f"{self.total}; per slot: [{', '.join(str(c) for c in self.counts)}]"
        )


def _weekday_mean(table: WeightTable, base: int, fixed: int | None, weekday: int) -> Fraction:
    """Mean customers of a weekday before the calendar: DAILY_CUSTOMERS, or BASE × S_d / S̄, exactly."""
    if fixed is not None:
        return Fraction(fixed)
    return base * table.day_sum(weekday) / table.mean_day_sum


def variation_factor(model: Model, root: int, date: dt.date) -> Fraction:
    """Day-to-day factor f = 1 − p + 2·p·u, exact: u the stream's 53-bit uniform draw, p as written; 1 when fixed."""
    return Fraction(*_factor_ratio(model, root, date))


def _factor_ratio(model: Model, root: int, date: dt.date) -> tuple[int, int]:
    """The variation factor as a ratio of integers, not reduced: integer arithmetic, far cheaper than Fractions."""
    if model.fixed_totals:
        return 1, 1
    u = float(randomness.generator(root, model.store_key, randomness.DAILY, date.toordinal()).random())
    u_num, u_den = u.as_integer_ratio()
    p = as_written(model.variation_pct)
    return (p.denominator - p.numerator) * u_den + 2 * p.numerator * u_num, p.denominator * u_den


def _round_half_even(numerator: int, denominator: int) -> int:
    """round(numerator / denominator) with halves to even, as ``round`` on a Fraction; the denominator is positive."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    return quotient + (twice > denominator or (twice == denominator and quotient % 2 == 1))


def daily_total(model: Model, root: int, date: dt.date, mean: Fraction) -> tuple[int, float]:
    """Draw the day's total around ``mean``; return it with the factor applied (1 when none), as a float to show.

    Under the uniform law the total is round(mean × f), halves to even, in exact rationals.
    """
    if mean == 0:
        return 0, 1.0
    if model.daily_customers is not None or model.daily_totals == "uniform":
        f_num, f_den = _factor_ratio(model, root, date)
        return _round_half_even(mean.numerator * f_num, mean.denominator * f_den), f_num / f_den
    # gamma-Poisson: total ~ Poisson(mean × G), G ~ Gamma(shape 1/d, scale d): E = mean, Var = mean + d·mean².
    # The draws take float parameters: the law is random, so no exact value is lost.
    rng = randomness.generator(root, model.store_key, randomness.DAILY, date.toordinal())
    gamma = float(rng.gamma(1 / model.dispersion, model.dispersion)) if model.dispersion > 0 else 1.0
    return int(rng.poisson(float(mean) * gamma)), gamma


def largest_remainder(total: int, weights: Sequence[Fraction | int]) -> tuple[int, ...]:
    """Split ``total`` in proportion to ``weights`` into integers that sum to ``total``.

    Each share gets the floor of its quota; the units left go to the largest
    fractional remainders, ties to the earlier slot. The weights are exact
    (rationals or integers), so no floating-point noise decides a tie.
    """
    if total < 0:
        raise ValueError("total must be >= 0")
    # Over a common denominator the weights are integers a_i and quota_i = total × a_i / Σa:
    # floors and remainders are then integer divisions, exact and fast.
    denominator = math.lcm(*(w.denominator for w in weights))
    scaled = [w.numerator * (denominator // w.denominator) for w in weights]
    weight_sum = sum(scaled)
    if weight_sum == 0:
        if total:
            raise ValueError("cannot split a positive total over zero weights")
        return tuple(0 for _ in weights)
    counts, remainders = zip(*(divmod(total * a, weight_sum) for a in scaled), strict=True)
    order = sorted(range(len(scaled)), key=lambda i: (-remainders[i], i))
    topped = set(order[: total - sum(counts)])
    return tuple(c + (i in topped) for i, c in enumerate(counts))


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


def opening(date: dt.date, hours: tuple[int, int] | None, bounds: tuple[int, ...], tz: dt.tzinfo) -> tuple[int, int]:
    """The instants the store opens and closes on ``date``: the whole day unless the calendar gives hours."""
    if hours is None:
        return bounds[0], bounds[-1]
    return local_minute_to_us(date, hours[0], tz), local_minute_to_us(date, hours[1], tz)


def _shares(weights: Sequence[Fraction], bounds: tuple[int, ...], parts: list[tuple[int, int]]) -> tuple[Fraction, ...]:
    """W': each slot's weight times the open share of the slot, exactly."""
    return tuple(
        w if hi - lo == end - start else w * Fraction(hi - lo, end - start)
        for w, (lo, hi), (start, end) in zip(weights, parts, itertools.pairwise(bounds), strict=True)
    )


def _ahead(part: tuple[int, int], now: int) -> Fraction | int:
    """The share of an open stretch [low, high) still ahead at ``now``: 1 before it, 0 after it."""
    low, high = part
    if now <= low:
        return 1
    return Fraction(high - now, high - low) if now < high else 0


@dataclass(frozen=True, slots=True, eq=False)
class _Frame:
    """What a date's plan takes from the profile alone: slot bounds, open stretches, W' and the mean total.

    Compared by identity: one object per cached (profile, date), so keying a cache by it hashes nothing.
    """

    bounds: tuple[int, ...]
    parts: tuple[tuple[int, int], ...]
    shares: tuple[Fraction, ...]
    mean: Fraction
    fixed_total: int
    """The total when no draw changes it: round(mean × 1), as daily_total computes it."""


@dataclass(frozen=True, slots=True)
class _Profile:
    """The part of a model a date's frame depends on, as a cache key: stores of a chain mostly share it."""

    weights: WeightTable
    tz: dt.tzinfo
    base_daily_customers: int
    daily_customers: int | None
    scale: float
    hours: tuple[int, int] | None
    multiplier: float


@functools.lru_cache(maxsize=1024)
def _frame(profile: _Profile, date: dt.date) -> _Frame:
    """Compute what a date's plan takes from the profile alone (no seed, no store key)."""
    weekday = date.weekday()
    bounds = profile.weights.grid.boundaries_us(date, profile.tz)
    parts = _open_parts(bounds, opening(date, profile.hours, bounds, profile.tz))
    shares = _shares(profile.weights.exact[weekday], bounds, parts)
    mean = Fraction(0)
    if any(shares):
        weekday_mean = _weekday_mean(profile.weights, profile.base_daily_customers, profile.daily_customers, weekday)
        mean = weekday_mean * as_written(profile.multiplier) * as_written(profile.scale)
    return _Frame(bounds, tuple(parts), shares, mean, round(mean))


@functools.lru_cache(maxsize=4096)
def _uniform_counts(frame: _Frame, total: int, now: int) -> tuple[int, ...]:
    """The uniform model's slot counts: the largest-remainder split, each scaled by the share still ahead."""
    left = [_ahead(part, now) for part in frame.parts]
    return tuple(round(c * f) for c, f in zip(largest_remainder(total, frame.shares), left, strict=True))


@functools.lru_cache(maxsize=1024)
def _flat_pieces(frame: _Frame, now: int) -> tuple[tuple[Piece, ...], ...]:
    """Each slot's one piece of constant intensity from ``now`` on (none once its open stretch is over)."""
    return tuple(((Piece(max(lo, now), hi),) if hi > max(lo, now) else ()) for lo, hi in frame.parts)


def plan_day(model: Model, root: int, date: dt.date, now_us: int | None = None) -> DayPlan:
    """Compute a date's plan; with ``now_us``, apply the mid-day start rule at that instant.

    Mid-day rule (uniform model): slots that ended by ``now`` get 0; the slot holding
    ``now`` gets round(count × remaining / slot length) and draws in [now, slot end);
    later slots keep their counts. Lengths count open time only.
    """
    rule = model.calendar.rule(date)
    profile = _Profile(
        model.weights,
        model.tz,
        model.base_daily_customers,
        model.daily_customers,
        model.scale,
        rule.hours,
        rule.multiplier,
    )
    frame = _frame(profile, date)
    bounds, parts, shares = frame.bounds, frame.parts, frame.shares
    day_total, factor = (frame.fixed_total, 1.0) if model.fixed_totals else daily_total(model, root, date, frame.mean)
    now = bounds[0] if now_us is None else now_us
    counts: Sequence[int]
    pieces: Sequence[tuple[Piece, ...]]
    if model.arrival_model == "smooth":
        day = (bounds[0], bounds[-1])
        counts, pieces = _smooth_counts(
            root, model.store_key, date, total=day_total, shares=shares, parts=list(parts), day=day, now=now
        )
    else:
        pieces = _flat_pieces(frame, now)
        if model.arrival_model == "poisson":
            left = [_ahead(part, now) for part in parts]
            counts = _poisson_counts(root, model.store_key, date, total=day_total, shares=shares, left=left)
        else:
            counts = _uniform_counts(frame, day_total, now)
    return DayPlan(
        date=date,
        day_total=day_total,
        counts=tuple(counts),
        pieces=tuple(pieces),
        bounds=bounds,
        labels=model.weights.grid.labels,
        shares=shares,
        mean_total=float(frame.mean),
        factor=factor,
        store_key=model.store_key,
        tz=model.tz,
    )


def _poisson_counts(
    root: int, store: int, date: dt.date, *, total: int, shares: tuple[Fraction, ...], left: list[Fraction | int]
) -> list[int]:
    """Each slot's count, Poisson around its quota total × W'_i / ΣW' times the share of the slot still ahead."""
    if total == 0:
        return [0 for _ in shares]
    weight_sum = sum(shares, Fraction(0))
    return [
        _poisson(root, store, date, i, float(total * w / weight_sum * f))
        for i, (w, f) in enumerate(zip(shares, left, strict=True))
    ]


def _smooth_counts(
    root: int,
    store: int,
    date: dt.date,
    *,
    total: int,
    shares: tuple[Fraction, ...],
    parts: list[tuple[int, int]],
    day: tuple[int, int],
    now: int,
) -> tuple[list[int], list[tuple[Piece, ...]]]:
    """The smooth model's slot counts and pieces from ``now`` on; a mid-day start keeps round(T × M_left / M_day)."""
    rates = [float(w / (hi - lo)) if hi > lo else 0.0 for w, (lo, hi) in zip(shares, parts, strict=True)]
    full = _smooth_pieces(parts, rates, day)
    pieces = [tuple(p.clip(now) for p in slot if p.high > now) for slot in full]
    n = total
    if now > day[0]:
        day_mass = sum((p.exact_mass for slot in full for p in slot), Fraction(0))
        left_mass = sum((p.exact_mass for slot in pieces for p in slot), Fraction(0))
        n = round(total * left_mass / day_mass) if day_mass else 0
    return _multinomial(root, store, date, n, [sum(p.mass for p in slot) for slot in pieces]), pieces


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
