"""Statistical laws of a simulated week: exact plans, uniform or interpolated positions, durations, count laws.

Every run uses a fixed seed, so the results are deterministic; the thresholds
(p > 0.001, tolerances of about four standard errors) are those a correct
model passes for almost any seed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from foot_traffic.config.resolve import load_settings
from foot_traffic.model.arrivals import DURATION_MIXTURE
from foot_traffic.model.grid import US_PER_MINUTE, datetime_to_us
from foot_traffic.model.plan import DayPlan, Model, plan_day
from foot_traffic.model.randomness import root_entropy
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink

ROOT = root_entropy("statistics")
FIRST, END = dt.date(2025, 8, 11), dt.date(2025, 8, 18)
WEEK = tuple(FIRST + dt.timedelta(days=i) for i in range((END - FIRST).days))
VOLUME = {"BASE_DAILY_CUSTOMERS": "20000"}
WINDOW_US = 10 * US_PER_MINUTE
LONG_DATES = tuple(dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(400))
P_MIN = 0.001

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Week:
    """A simulated week: the model, each date's plan, and every visit parsed from the emitted bytes."""

    model: Model
    plans: dict[dt.date, DayPlan]
    dates: npt.NDArray[np.int64]
    """Ordinal of the local date of each visit."""
    slots: npt.NDArray[np.int64]
    entries: npt.NDArray[np.int64]
    durations: npt.NDArray[np.int64]

    def in_slot(self, date: dt.date, slot: int) -> npt.NDArray[np.int64]:
        """Entry instants of one (date, slot)."""
        return np.asarray(self.entries[(self.dates == date.toordinal()) & (self.slots == slot)], dtype=np.int64)

    def counts(self) -> Counter[tuple[int, int]]:
        """Visits per (date ordinal, slot index)."""
        return Counter(zip(self.dates.tolist(), self.slots.tolist(), strict=True))


def _midnight(date: dt.date) -> int:
    return datetime_to_us(dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC))


def simulate(env: dict[str, str]) -> Week:
    """Run the service over the week on a manual clock and parse every event it emits."""
    model = load_settings({**VOLUME, **env}).model()
    sink = MemorySink()
    Service(model, ROOT, sink, ManualClock(_midnight(FIRST)), poll_s=0.5, until_us=_midnight(END)).run()
    plans = {date: plan_day(model, ROOT, date) for date in WEEK}
    slot_of = {label: i for i, label in enumerate(model.weights.grid.labels)}
    events = [json.loads(value) for _, value in sink.records]
    entries = np.array([datetime_to_us(dt.datetime.fromisoformat(e["entry_time"])) for e in events], dtype=np.int64)
    assert ((entries >= _midnight(FIRST)) & (entries < _midnight(END))).all()
    return Week(
        model=model,
        plans=plans,
        dates=np.array([dt.date.fromisoformat(e["entry_time"][:10]).toordinal() for e in events], dtype=np.int64),
        slots=np.array([slot_of[e["time_slot"]] for e in events], dtype=np.int64),
        entries=entries,
        durations=np.array([e["trip_duration_minutes"] for e in events], dtype=np.int64),
    )


@pytest.fixture(scope="module")
def uniform_week() -> Week:
    """The specification's model over the week (half the smooth volume: its steps are large)."""
    return simulate({"ARRIVAL_MODEL": "uniform", "BASE_DAILY_CUSTOMERS": "10000"})


@pytest.fixture(scope="module")
def poisson_week() -> Week:
    """Poisson slot counts over the week (a smaller volume is enough for its tests)."""
    return simulate({"ARRIVAL_MODEL": "poisson", "BASE_DAILY_CUSTOMERS": "5000"})


@pytest.fixture(scope="module")
def smooth_week() -> Week:
    """Interpolated intensity over the week."""
    return simulate({"ARRIVAL_MODEL": "smooth"})


def slot_mass(plan: DayPlan, slot: int, instants: npt.ArrayLike) -> FloatArray:
    """Integral of the slot's piecewise-linear intensity from its start up to each instant (quadratic per piece)."""
    t = np.asarray(instants, dtype=np.float64)
    mass = np.zeros_like(t)
    for piece in plan.pieces[slot]:
        length = piece.high - piece.low
        x = np.clip(t - piece.low, 0, length)
        mass += x * piece.y0 + (piece.y1 - piece.y0) * x * x / (2 * length)
    return mass


def slot_cdf(plan: DayPlan, slot: int, instants: npt.ArrayLike) -> FloatArray:
    """The model's distribution function of an arrival inside the slot, at each instant."""
    return slot_mass(plan, slot, instants) / sum(piece.mass for piece in plan.pieces[slot])


def uniform_positions(week: Week) -> FloatArray:
    """(entry − slot start) / slot length of every visit, pooled over the week's slots."""
    parts = []
    for date, plan in week.plans.items():
        for slot in range(len(plan.counts)):
            low, high = plan.bounds[slot], plan.bounds[slot + 1]
            parts.append((week.in_slot(date, slot) - low) / (high - low))
    return np.concatenate(parts)


def model_positions(week: Week) -> FloatArray:
    """The model's CDF at every visit's entry instant, pooled over the week's slots."""
    parts = [
        slot_cdf(plan, slot, week.in_slot(date, slot))
        for date, plan in week.plans.items()
        for slot in range(len(plan.counts))
        if plan.counts[slot]
    ]
    return np.concatenate(parts)


def duration_test(durations: npt.NDArray[np.int64]) -> tuple[float, float]:
    """Chi-square of whole-minute durations against the mixture; return (statistic, p-value)."""
    minutes = np.arange(10, 76)
    expected_p = np.zeros(minutes.size)
    for weight, first, last in DURATION_MIXTURE:
        expected_p[(minutes >= first) & (minutes <= last)] += weight / (last - first + 1)
    observed = np.array([np.count_nonzero(durations == m) for m in minutes])
    result = stats.chisquare(observed, expected_p * durations.size)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class Boundaries:
    """Visits in the window just before and just after each interior slot boundary, and what the plan expects."""

    before: npt.NDArray[np.int64]
    """Shape (dates, boundaries)."""
    after: npt.NDArray[np.int64]
    expected_after_share: FloatArray
    """Share of the window's visits expected after the boundary, given the plan's slot counts and pieces."""

    def pooled_ratios(self) -> FloatArray:
        """After / before per boundary, summed over the dates."""
        return np.asarray(self.after.sum(axis=0) / self.before.sum(axis=0), dtype=np.float64)

    def log_ratio_errors(self) -> FloatArray:
        """Standard error of the log of each pooled ratio: √(1/before + 1/after)."""
        return np.asarray(np.sqrt(1 / self.before.sum(axis=0) + 1 / self.after.sum(axis=0)), dtype=np.float64)

    def expected_ratios(self) -> FloatArray:
        """The plan's after / before density ratio per boundary, averaged over the dates."""
        share = self.expected_after_share
        return np.asarray((share / (1 - share)).mean(axis=0), dtype=np.float64)

    def p_value(self) -> float:
        """Chi-square of the after-counts against Binomial(window count, expected share), over every cell."""
        n = self.before + self.after
        p = self.expected_after_share
        statistic = float((((self.after - n * p) ** 2) / (n * p * (1 - p))).sum())
        return float(stats.chi2.sf(statistic, n.size))


def boundaries(week: Week) -> Boundaries:
    """Count the visits in the WINDOW_US before and after each interior boundary of each date."""
    before, after, share = [], [], []
    for date, plan in week.plans.items():
        row_before, row_after, row_share = [], [], []
        for b in range(1, len(plan.counts)):
            edge = plan.bounds[b]
            left, right = week.in_slot(date, b - 1), week.in_slot(date, b)
            row_before.append(int(np.count_nonzero(left >= edge - WINDOW_US)))
            row_after.append(int(np.count_nonzero(right < edge + WINDOW_US)))
            left_mass = slot_mass(plan, b - 1, [edge - WINDOW_US, edge])
            right_mass = slot_mass(plan, b, [edge, edge + WINDOW_US])
            left_total = sum(p.mass for p in plan.pieces[b - 1])
            right_total = sum(p.mass for p in plan.pieces[b])
            expect_left = plan.counts[b - 1] * (left_mass[1] - left_mass[0]) / left_total
            expect_right = plan.counts[b] * (right_mass[1] - right_mass[0]) / right_total
            row_share.append(expect_right / (expect_left + expect_right))
        before.append(row_before)
        after.append(row_after)
        share.append(row_share)
    return Boundaries(np.array(before), np.array(after), np.array(share))


def poisson_z_scores(model: Model, dates: tuple[dt.date, ...]) -> FloatArray:
    """(N − μ) / √μ of every slot count of the dates' plans, μ = day_total × weight / Σ weights."""
    z = []
    for date in dates:
        plan = plan_day(model, ROOT, date)
        weights = model.weights.weights[date.weekday()]
        weight_sum = math.fsum(weights)
        for count, weight in zip(plan.counts, weights, strict=True):
            mu = plan.day_total * weight / weight_sum
            if mu > 0:
                z.append((count - mu) / math.sqrt(mu))
    return np.array(z)


def gamma_poisson_moments(base: int, dispersion: float) -> tuple[float, float]:
    """Over LONG_DATES: Σ total / Σ mean, and the mean of (total − mean)² / (mean + d·mean²)."""
    model = load_settings(
        {"BASE_DAILY_CUSTOMERS": str(base), "DAILY_TOTALS": "gamma-poisson", "DAILY_DISPERSION": str(dispersion)}
    ).model()
    plans = [plan_day(model, ROOT, date) for date in LONG_DATES]
    totals = np.array([p.day_total for p in plans], dtype=np.float64)
    means = np.array([p.mean_total for p in plans])
    variances = means + dispersion * means**2
    return float(totals.sum() / means.sum()), float(((totals - means) ** 2 / variances).mean())


def test_uniform_counts_per_slot_equal_the_plan(uniform_week: Week) -> None:
    """Under the uniform model the events of each (date, slot) are exactly the plan's count."""
    expected = {
        (date.toordinal(), slot): count
        for date, plan in uniform_week.plans.items()
        for slot, count in enumerate(plan.counts)
    }
    observed = uniform_week.counts()
    assert {key: observed.get(key, 0) for key in expected} == expected
    assert sum(observed.values()) == sum(expected.values()) == sum(p.day_total for p in uniform_week.plans.values())


def test_uniform_positions_inside_slots_are_uniform(uniform_week: Week) -> None:
    """Pooled over the week's slots, (entry − slot start) / slot length passes a KS test against U(0, 1)."""
    u = uniform_positions(uniform_week)
    assert u.size > 60_000
    assert ((u >= 0) & (u < 1)).all()
    assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_durations_follow_the_mixture(uniform_week: Week) -> None:
    """Whole-minute durations pass a chi-square test against 0.35·U{10..29} + 0.39·U{30..44} + 0.26·U{45..75}."""
    durations = uniform_week.durations
    assert durations.min() >= 10
    assert durations.max() <= 75
    _, p_value = duration_test(durations)
    assert p_value > P_MIN


def test_poisson_events_follow_the_plan_counts(poisson_week: Week) -> None:
    """Under the poisson model the events of each (date, slot) are exactly the plan's random count."""
    expected = {
        (date.toordinal(), slot): count
        for date, plan in poisson_week.plans.items()
        for slot, count in enumerate(plan.counts)
    }
    observed = poisson_week.counts()
    assert {key: observed.get(key, 0) for key in expected} == expected


def test_poisson_slot_counts_are_poisson_around_their_quota() -> None:
    """Over 400 days, (N − μ)/√μ has mean ≈ 0 and variance ≈ 1, and Σ (N − μ)²/μ passes a two-sided χ² test."""
    model = load_settings({**VOLUME, "ARRIVAL_MODEL": "poisson"}).model()
    z = poisson_z_scores(model, LONG_DATES)
    k = z.size
    assert k == 6 * len(LONG_DATES)
    assert abs(z.mean()) < 4 / math.sqrt(k)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / k)
    dispersion = float((z**2).sum())
    assert min(stats.chi2.sf(dispersion, k), stats.chi2.cdf(dispersion, k)) > P_MIN


def test_poisson_positions_inside_slots_are_uniform(poisson_week: Week) -> None:
    """Under the poisson model, positions inside slots pass a KS test against U(0, 1)."""
    assert stats.kstest(uniform_positions(poisson_week), "uniform").pvalue > P_MIN


def test_smooth_preserves_each_day_total(smooth_week: Week) -> None:
    """Under the smooth model a run from midnight emits exactly each date's day_total."""
    per_date = Counter(smooth_week.dates.tolist())
    for date, plan in smooth_week.plans.items():
        assert sum(plan.counts) == plan.day_total
        assert per_date[date.toordinal()] == plan.day_total


def test_smooth_intensity_is_continuous_across_slot_boundaries(smooth_week: Week) -> None:
    """The smooth model's pieces meet at every interior slot boundary with the same intensity."""
    for plan in smooth_week.plans.values():
        for b in range(1, len(plan.counts)):
            left, right = plan.pieces[b - 1][-1], plan.pieces[b][0]
            assert left.high == right.low == plan.bounds[b]
            assert right.y0 == pytest.approx(left.y1, rel=1e-9)


def test_smooth_has_no_step_at_slot_boundaries_unlike_uniform(smooth_week: Week, uniform_week: Week) -> None:
    """Just left and right of a boundary the smooth density agrees (ratio ≈ 1); the uniform one steps by the rates."""
    smooth, uniform = boundaries(smooth_week), boundaries(uniform_week)
    assert smooth.p_value() > P_MIN
    assert uniform.p_value() > P_MIN
    # The smooth intensity only has its slope across a boundary: the expected ratio is within 5 % of 1.
    assert (np.abs(np.log(smooth.expected_ratios())) < 0.05).all()
    assert (np.abs(np.log(smooth.pooled_ratios())) < 0.05 + 4 * smooth.log_ratio_errors()).all()
    # The uniform density steps by the ratio of the slots' rates, and the steps are large enough to see.
    observed, steps, errors = uniform.pooled_ratios(), uniform.expected_ratios(), uniform.log_ratio_errors()
    assert (np.abs(np.log(observed / steps)) < 4 * errors).all()
    big = np.abs(np.log(steps)) > math.log(1.4)
    assert big.sum() >= 2
    assert (np.abs(np.log(observed[big])) > 4 * errors[big]).all()


def test_smooth_positions_follow_the_model_cdf(smooth_week: Week) -> None:
    """The model's piecewise-quadratic CDF maps smooth entry instants to U(0, 1) (KS), unlike a flat CDF."""
    assert stats.kstest(model_positions(smooth_week), "uniform").pvalue > P_MIN
    assert stats.kstest(uniform_positions(smooth_week), "uniform").pvalue < P_MIN


@pytest.mark.parametrize(("base", "dispersion"), [(1000, 0.001), (20000, 0.05)])
def test_gamma_poisson_totals_have_the_negative_binomial_moments(base: int, dispersion: float) -> None:
    """Over 400 days the gamma-poisson totals have mean ≈ mean_total and variance ≈ mean + d·mean²."""
    mean_ratio, variance_ratio = gamma_poisson_moments(base, dispersion)
    assert abs(mean_ratio - 1) < 4 * math.sqrt((1 / base + dispersion) / len(LONG_DATES))
    assert abs(variance_ratio - 1) < 0.3
