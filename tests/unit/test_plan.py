"""The daily plan: totals, Largest Remainder Allocation and the mid-day start rule."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.model.calendar import calendar_from_mapping
from foot_traffic.model.grid import WEEKDAYS, datetime_to_us
from foot_traffic.model.plan import Model, _round_half_even, largest_remainder, plan_day, variation_factor
from foot_traffic.model.weights import DEFAULT_WEIGHTS

TUESDAY = dt.date(2025, 8, 12)
ROOT = 12345


def at(date: dt.date, clock: str) -> int:
    """Epoch microseconds of a UTC wall-clock time on a date."""
    return datetime_to_us(dt.datetime.combine(date, dt.time.fromisoformat(clock), tzinfo=dt.UTC))


@given(
    st.integers(min_value=0, max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(any),
)
def test_lra_sums_to_total_and_stays_within_one_of_each_quota(total: int, weights: list[int]) -> None:
    """Counts sum to the total and each differs from its quota by less than one."""
    counts = largest_remainder(total, weights)
    assert sum(counts) == total
    weight_sum = sum(weights)
    for count, weight in zip(counts, weights, strict=True):
        quota = Fraction(total * weight, weight_sum)
        assert abs(count - quota) < 1
        assert count in (quota.numerator // quota.denominator, -(-quota.numerator // quota.denominator))


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (29, (12, 15, 21, 17, 14, 9), (4, 5, 7, 5, 5, 3)),
        (1, (1, 1, 1), (1, 0, 0)),
        (2, (1, 1, 1), (1, 1, 0)),
        (5, (1, 1), (3, 2)),
        (10, (0, 1, 0), (0, 10, 0)),
        (0, (3, 4), (0, 0)),
        (7, (1, 2, 4), (1, 2, 4)),
    ],
)
def test_lra_table_ties_go_to_the_earlier_slot(total: int, weights: tuple[int, ...], expected: tuple[int, ...]) -> None:
    """Known allocations, including ties broken towards the earlier slot."""
    assert largest_remainder(total, weights) == expected


@pytest.mark.parametrize("weekday", range(7))
def test_weekday_totals_follow_popularity(weekday: int) -> None:
    """Without variation, total = round(BASE × S_d / S̄)."""
    date = dt.date(2025, 8, 11) + dt.timedelta(days=weekday)
    assert WEEKDAYS[date.weekday()] == WEEKDAYS[weekday]
    model = Model(base_daily_customers=1000, variation_pct=0.0)
    sums = [int(sum(row)) for row in DEFAULT_WEIGHTS.weights]
    expected = round(Fraction(1000 * sums[weekday] * 7, sum(sums)))
    plan = plan_day(model, ROOT, date)
    assert plan.day_total == plan.total == expected
    assert plan.counts == largest_remainder(expected, DEFAULT_WEIGHTS.exact[weekday])


def test_friday_is_busier_than_tuesday() -> None:
    """The popularity formula orders weekdays by their weight sums."""
    model = Model(base_daily_customers=10_000, variation_pct=0.0)
    assert plan_day(model, ROOT, TUESDAY + dt.timedelta(days=3)).total > plan_day(model, ROOT, TUESDAY).total


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)), st.integers(0, 2**64))
def test_variation_factor_stays_in_range(date: dt.date, root: int) -> None:
    """The factor is uniform in [1 − p, 1 + p] and the total is round(mean × factor), both exact."""
    model = Model(base_daily_customers=1000, variation_pct=0.1)
    factor = variation_factor(model, root, date)
    assert Fraction(9, 10) <= factor <= Fraction(11, 10)
    plan = plan_day(model, root, date)
    sums = [int(sum(row)) for row in DEFAULT_WEIGHTS.weights]
    assert plan.day_total == round(Fraction(1000 * sums[date.weekday()] * 7, sum(sums)) * factor)
    assert plan.factor == float(factor)


def test_variation_depends_only_on_seed_and_date() -> None:
    """The same seed and date give the same total; other dates or seeds differ."""
    model = Model(base_daily_customers=100_000, variation_pct=0.1)
    totals = [plan_day(model, ROOT, TUESDAY + dt.timedelta(days=d)).day_total for d in range(10)]
    assert totals == [plan_day(model, ROOT, TUESDAY + dt.timedelta(days=d)).day_total for d in range(10)]
    assert len(set(totals)) > 1
    assert (
        plan_day(model, ROOT + 1, TUESDAY).day_total != totals[0]
        or plan_day(model, ROOT + 2, TUESDAY).day_total != totals[0]
    )


@pytest.mark.parametrize("forced", [0, 1, 29, 10**9])
def test_daily_customers_forces_the_total(forced: int) -> None:
    """DAILY_CUSTOMERS bypasses weekday scaling and variation; 0 is a closed day."""
    model = Model(daily_customers=forced, variation_pct=0.5)
    for d in range(7):
        assert plan_day(model, ROOT, TUESDAY + dt.timedelta(days=d)).total == forced


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ("00:00:00", (4, 5, 7, 5, 5, 3)),
        ("15:30:00", (0, 0, 0, 2, 5, 3)),  # 5 × 1.5 h / 3 h = 2.5, rounded half to even
        ("16:00:00", (0, 0, 0, 2, 5, 3)),  # 5 × 1 / 3 = 1.67
        ("14:00:00", (0, 0, 0, 5, 5, 3)),  # a slot that starts now is whole
        ("08:30:00", (0, 2, 7, 5, 5, 3)),  # 5 × 1.5 / 3 = 2.5 → 2
        ("23:59:59.999999", (0, 0, 0, 0, 0, 0)),
    ],
)
def test_mid_day_start(clock: str, expected: tuple[int, ...]) -> None:
    """Past slots are 0, the current one scaled by its remaining time, later ones unchanged."""
    model = Model(daily_customers=29)
    now = at(TUESDAY, clock)
    plan = plan_day(model, ROOT, TUESDAY, now_us=now)
    assert plan.counts == expected
    assert plan.day_total == 29
    current = next(i for i in range(6) if plan.bounds[i] <= now < plan.bounds[i + 1])
    assert plan.pieces[current][0].low == max(now, plan.bounds[current])
    assert all(plan.pieces[i][0].low == plan.bounds[i] for i in range(current + 1, 6))
    assert all(plan.pieces[i] == () for i in range(current))


def test_plan_line_format() -> None:
    """The plan line is the specification's."""
    plan = plan_day(Model(daily_customers=29), ROOT, TUESDAY, now_us=at(TUESDAY, "15:30:00"))
    assert plan.log_line() == "[Tuesday 2025-08-12] Planned total (from now): 10; per slot: [0, 0, 0, 2, 5, 3]"


@pytest.mark.parametrize(
    ("date", "line"),
    [
        # the specification's example list: the Monday row (weights 16 17 20 17 13 10) at 15:30 UTC
        ("2025-08-11", "[Monday 2025-08-11] Planned total (from now): 29; per slot: [0, 0, 0, 8, 12, 9]"),
        # the Tuesday row (12 15 21 17 14 9) of the same table
        ("2025-08-12", "[Tuesday 2025-08-12] Planned total (from now): 29; per slot: [0, 0, 0, 8, 13, 8]"),
    ],
)
def test_the_plan_command_prints_the_specifications_example(date: str, line: str) -> None:
    """Default weights, BASE 100, no variation, from 15:30 UTC: foot-traffic plan prints the spec's per-slot list."""
    argv = ["plan", "--date", date, "--now", f"{date}T15:30:00+00:00", "--disable-daily-variation", "1"]
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    proc = subprocess.run(
        [sys.executable, "-m", "foot_traffic", *argv], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, line + "\n"), proc.stderr


def test_opening_hours_confine_the_plan_and_keep_the_total() -> None:
    """With hours 09:00–20:00, closed slots get nothing, partly open ones their open share, the total stays."""
    cal = calendar_from_mapping({"hours": {"Tuesday": ["09:00", "20:00"]}})
    plan = plan_day(Model(daily_customers=1000, calendar=cal), ROOT, TUESDAY)
    assert plan.total == 1000
    assert plan.counts[0] == 0
    assert plan.pieces[1][0].low == at(TUESDAY, "09:00:00")
    assert plan.pieces[4][-1].high == at(TUESDAY, "20:00:00")
    assert plan.pieces[5] == ()
    # slot 1 is open 1 h of 3 (weight 15 becomes 5); slots 2-4 are wholly open, 0 and 5 closed
    effective = (0, 5, 21, 17, 14, 0)
    assert plan.counts == largest_remainder(1000, effective)


@pytest.mark.parametrize(("entry", "expected"), [("closed", 0), (2.5, 250), ({"multiplier": 0.5}, 50)])
def test_calendar_dates_close_or_scale_a_day(entry: object, expected: int) -> None:
    """A closed date plans nothing; a multiplier scales the mean total."""
    cal = calendar_from_mapping({"dates": {"2025-08-12": entry}})
    model = Model(daily_customers=100, calendar=cal)
    assert plan_day(model, ROOT, TUESDAY).total == expected
    assert plan_day(model, ROOT, TUESDAY + dt.timedelta(days=1)).total == 100


def test_store_scale_multiplies_the_mean() -> None:
    """A store's scale multiplies its mean daily total."""
    base = Model(base_daily_customers=1000, variation_pct=0.0)
    scaled = Model(base_daily_customers=1000, variation_pct=0.0, scale=0.5)
    assert plan_day(scaled, ROOT, TUESDAY).mean_total == pytest.approx(plan_day(base, ROOT, TUESDAY).mean_total / 2)


def test_poisson_counts_vary_and_smooth_keeps_the_total() -> None:
    """Poisson slot counts are random around the plan; the smooth model keeps the day total exactly."""
    poisson = Model(daily_customers=10_000, arrival_model="poisson")
    totals = {plan_day(poisson, ROOT, TUESDAY + dt.timedelta(days=7 * k)).total for k in range(10)}
    assert len(totals) > 1
    assert all(abs(t - 10_000) < 500 for t in totals)
    smooth = Model(daily_customers=10_000, arrival_model="smooth")
    for k in range(7):
        assert plan_day(smooth, ROOT, TUESDAY + dt.timedelta(days=k)).total == 10_000


def test_gamma_poisson_totals_are_over_dispersed() -> None:
    """gamma-poisson daily totals vary far more than Poisson would."""
    model = Model(base_daily_customers=1000, daily_totals="gamma-poisson", dispersion=0.1)
    totals = [plan_day(model, ROOT, TUESDAY + dt.timedelta(days=7 * k)).day_total for k in range(200)]
    mean = sum(totals) / len(totals)
    variance = sum((t - mean) ** 2 for t in totals) / (len(totals) - 1)
    assert variance > 10 * mean


def test_stores_sharing_a_profile_share_one_frame_and_split() -> None:
    """Two stores of one profile get the same bounds, shares and counts objects; another scale gets its own."""
    date = dt.date(2025, 8, 12)
    first, second = (plan_day(Model(daily_customers=100, store_key=k), 1, date) for k in (3, 4))
    assert first.bounds is second.bounds
    assert first.shares is second.shares
    assert first.counts is second.counts
    scaled = plan_day(Model(daily_customers=100, store_key=3, scale=0.5), 1, date)
    assert scaled.bounds == first.bounds
    assert scaled.total == 50
    assert scaled.counts == largest_remainder(50, DEFAULT_WEIGHTS.exact[date.weekday()])


def test_a_shared_frame_keeps_each_days_calendar_and_zone() -> None:
    """Plans from the cache still follow each date's calendar rule and the store's zone."""
    calendar = calendar_from_mapping({"dates": {"2025-08-13": {"multiplier": 2}}})
    model = Model(daily_customers=100, calendar=calendar)
    plain, doubled = plan_day(model, 1, dt.date(2025, 8, 12)), plan_day(model, 1, dt.date(2025, 8, 13))
    assert (plain.total, doubled.total) == (100, 200)
    paris = plan_day(Model(daily_customers=100, tz=ZoneInfo("Europe/Paris")), 1, dt.date(2025, 8, 12))
    assert paris.start_us == plain.start_us - 2 * 3600 * 10**6


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (5, 2, 2),
        (7, 2, 4),
        (-5, 2, -2),
        (-7, 2, -4),
        (7, 3, 2),
        (8, 3, 3),
        (-7, 3, -2),
        (0, 9, 0),
        (10, 4, 2),
        (30, 4, 8),
    ],
)
def test_integer_rounding_sends_halves_to_even(numerator: int, denominator: int, expected: int) -> None:
    """A ratio's rounding matches the hand table: nearest integer, exact halves to the even neighbour."""
    assert _round_half_even(numerator, denominator) == expected
