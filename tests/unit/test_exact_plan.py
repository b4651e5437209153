"""Exact popularity arithmetic: every plan equals the specification's formulas evaluated in rationals."""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.model import randomness
from foot_traffic.model.calendar import calendar_from_mapping
from foot_traffic.model.grid import DEFAULT_GRID, datetime_to_us
from foot_traffic.model.plan import Model, Piece, plan_day
from foot_traffic.model.weights import WeightTable, as_written

ROOT = 2025
MONDAY = dt.date(2025, 8, 11)
WEEK = [MONDAY + dt.timedelta(days=d) for d in range(7)]
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The default weight table as the README's example file shows it, read without the project's loader.
_EXAMPLE = tomllib.loads((Path(__file__).parents[2] / "examples" / "weights.toml").read_text(encoding="utf-8"))
ROWS: tuple[tuple[int, ...], ...] = tuple(tuple(_EXAMPLE["weights"][day]) for day in DAYS)
S_BAR = Fraction(sum(map(sum, ROWS)), 7)
SWEEP = range(1, 5001)


def lra(total: int, weights: tuple[Fraction, ...]) -> tuple[int, ...]:
    """The specification's Largest Remainder Allocation: floors, then one unit each to the largest remainders."""
    weight_sum = sum(weights, Fraction(0))
    quotas = [total * w / weight_sum for w in weights]
    floors = [q.numerator // q.denominator for q in quotas]
    remainders = [q - f for q, f in zip(quotas, floors, strict=True)]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    topped = set(by_remainder[: total - sum(floors)])
    return tuple(f + (i in topped) for i, f in enumerate(floors))


@functools.cache
def default_split(total: int, weekday: int) -> tuple[int, ...]:
    """LRA of a total over a weekday's default weights, each computed once for the whole module."""
    return lra(total, tuple(Fraction(w) for w in ROWS[weekday]))


@pytest.mark.parametrize("weekday", range(7))
def test_every_base_daily_customers_gives_the_rational_total_and_split(weekday: int) -> None:
    """For BASE 1..5000 without variation: total = round-half-even(BASE × S_d / S̄) and counts are its LRA split."""
    s_d = sum(ROWS[weekday])
    for base in SWEEP:
        mean = base * s_d / S_BAR
        total = round(mean)
        plan = plan_day(Model(base_daily_customers=base, variation_pct=0.0), ROOT, WEEK[weekday])
        assert (plan.day_total, plan.counts, plan.mean_total) == (total, default_split(total, weekday), float(mean)), (
            base
        )


@pytest.mark.parametrize("weekday", range(7))
def test_every_daily_customers_gives_that_total_and_its_split(weekday: int) -> None:
    """For DAILY_CUSTOMERS 1..5000, whatever the variation: the total is the number and counts are its LRA split."""
    for fixed in SWEEP:
        plan = plan_day(Model(daily_customers=fixed, variation_pct=0.3), ROOT, WEEK[weekday])
        assert (plan.day_total, plan.counts, plan.factor) == (fixed, default_split(fixed, weekday), 1.0), fixed


def test_the_wednesday_of_the_issue_rounds_half_to_even() -> None:
    """BASE 377 on Wednesday 2025-08-13: mean 377 × 107 / (754 / 7) = 374.5 exactly, so the total is 374."""
    plan = plan_day(Model(base_daily_customers=377, variation_pct=0.0), ROOT, dt.date(2025, 8, 13))
    assert (plan.mean_total, plan.day_total, plan.total) == (374.5, 374, 374)


@pytest.mark.parametrize(("pct", "p"), [(0.1, Fraction(1, 10)), (0.25, Fraction(1, 4)), (0.3, Fraction(3, 10))])
def test_the_variation_factor_is_applied_exactly(pct: float, p: Fraction) -> None:
    """The total is round-half-even(mean × (1 − p + 2·p·u)) in rationals: u the 53-bit draw, p as written."""
    for base in (1, 377, 1000, 4999):
        model = Model(base_daily_customers=base, variation_pct=pct)
        for date in WEEK:
            u = Fraction(randomness.generator(ROOT, 0, randomness.DAILY, date.toordinal()).random())
            factor = 1 - p + 2 * p * u
            plan = plan_day(model, ROOT, date)
            assert plan.day_total == round(base * sum(ROWS[date.weekday()]) / S_BAR * factor)
            assert plan.factor == float(factor)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Model(daily_customers=25, scale=0.1), 2),  # 2.5 exactly; the binary 0.1 would make it 2.5000000000000001 → 3
        (Model(daily_customers=5, scale=0.3), 2),  # 1.5 exactly; the binary 0.3 would make it 1.4999999999999999 → 1
        (Model(daily_customers=5, calendar=calendar_from_mapping({"dates": {"2025-08-12": 0.3}})), 2),
        (Model(daily_customers=35, calendar=calendar_from_mapping({"dates": {"2025-08-12": 0.1}})), 4),
    ],
)
def test_scales_and_multipliers_count_as_written(model: Model, expected: int) -> None:
    """A store scale or a calendar multiplier of 0.1 or 0.3 means 1/10 or 3/10, so exact halves go to even."""
    assert plan_day(model, ROOT, dt.date(2025, 8, 12)).day_total == expected


def test_decimal_weights_count_as_written() -> None:
    """Weights 0.1, 0.2, 0.3 … are the decimals they spell: S̄, the mean and the split are those of the rationals."""
    firsts = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    tenths = tuple((first, 0.1, 0.2, 0.3, 0.7, 1.1) for first in firsts)
    table = WeightTable(DEFAULT_GRID, tenths)
    rows = [(Fraction(f"{d + 1}/10"), *(Fraction(n, 10) for n in (1, 2, 3, 7, 11))) for d in range(7)]
    s_bar = sum(sum(row) for row in rows) / 7
    for base in range(1, 400):
        for date in WEEK:
            row = rows[date.weekday()]
            plan = plan_day(Model(weights=table, base_daily_customers=base, variation_pct=0.0), ROOT, date)
            total = round(base * sum(row) / s_bar)
            assert (plan.day_total, plan.counts) == (total, lra(total, row)), (base, date)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(0.1, Fraction(1, 10)), (16, Fraction(16)), (2.5, Fraction(5, 2)), (1e-7, Fraction(1, 10**7)), (0.0, 0)],
)
def test_as_written_reads_the_decimal_spelling(text: float, expected: Fraction) -> None:
    """A number is the decimal its shortest spelling shows, not its binary neighbour."""
    assert as_written(text) == expected


@given(st.integers(0, 24 * 60 * 60 - 1), st.integers(1, 3000))
def test_the_mid_day_fraction_is_exact(second: int, fixed: int) -> None:
    """The current slot keeps round-half-even(count × (end − now) / (end − start)) in rationals; later slots stay."""
    date = WEEK[1]
    whole = plan_day(Model(daily_customers=fixed), ROOT, date)
    now = datetime_to_us(dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)) + second * 10**6
    plan = plan_day(Model(daily_customers=fixed), ROOT, date, now_us=now)
    b = whole.bounds
    expected = tuple(
        0 if b[i + 1] <= now else c if b[i] >= now else round(c * Fraction(b[i + 1] - now, b[i + 1] - b[i]))
        for i, c in enumerate(whole.counts)
    )
    assert plan.counts == expected


def test_the_mid_day_fraction_of_an_opening_hour_rounds_half_to_even() -> None:
    """Open 09:00 in the 07:00–10:00 slot, started at 09:20: the slot keeps count × 40/60, halves to even."""
    cal = calendar_from_mapping({"hours": {"Tuesday": ["09:00", "24:00"]}})
    date = WEEK[1]
    now = datetime_to_us(dt.datetime.combine(date, dt.time(9, 20), tzinfo=dt.UTC))
    for fixed in range(1, 400):
        whole = plan_day(Model(daily_customers=fixed, calendar=cal), ROOT, date)
        plan = plan_day(Model(daily_customers=fixed, calendar=cal), ROOT, date, now_us=now)
        assert plan.counts[1] == round(whole.counts[1] * Fraction(2, 3))
        assert plan.counts[2:] == whole.counts[2:]


def test_the_smooth_mid_day_total_is_the_exact_share_of_the_intensity_left() -> None:
    """A smooth mid-day start keeps round-half-even(T × M_left / M_day), the masses integrated in rationals."""

    def mass(pieces: tuple[tuple[Piece, ...], ...]) -> Fraction:
        """∫λ over the pieces: each a trapezoid, its float ends taken exactly."""
        exact = [Fraction(p.high - p.low) * (Fraction(p.y0) + Fraction(p.y1)) / 2 for slot in pieces for p in slot]
        return sum(exact, Fraction(0))

    date = WEEK[3]
    model = Model(daily_customers=1000, arrival_model="smooth")
    whole = plan_day(model, ROOT, date)
    start = whole.bounds[0]
    for minutes in range(0, 24 * 60, 37):
        plan = plan_day(model, ROOT, date, now_us=start + minutes * 60 * 10**6)
        assert plan.total == round(1000 * mass(plan.pieces) / mass(whole.pieces))
