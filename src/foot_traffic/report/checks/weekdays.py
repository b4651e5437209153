"""The weekdays check: whole days' totals against each weekday's mean and the day-to-day law."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from foot_traffic.model.grid import WEEKDAYS
from foot_traffic.report.checks.expected import Bools, Layout, Placed, day_totals
from foot_traffic.report.checks.results import Check, Test
from foot_traffic.report.document import Table


def weekday_check(layouts: Sequence[Layout], placed: Sequence[Placed], whole: Sequence[Bools]) -> Check:
    """Whole days' totals against each weekday's mean, allowing for the day-to-day law."""
    totals = day_totals(layouts, placed, whole)
    outside = int(np.count_nonzero((totals.observed < totals.low) | (totals.observed > totals.high)))
    tests = []
    if totals.observed.size:
        tests.append(
            Test(
                f"totals the day-to-day law allows, {totals.observed.size} whole day(s)",
                f"{outside} day(s) outside",
                condition="none outside",
                passed=outside == 0,
            )
        )
    statistic, groups = 0.0, 0
    rows = []
    several = len(layouts) > 1
    for k, layout in enumerate(layouts):
        for weekday, name in enumerate(WEEKDAYS):
            mine = (totals.store == k) & (totals.weekday == weekday)
            if not mine.any():
                continue
            n = int(np.count_nonzero(mine))
            observed, mean, variance = totals.observed[mine], totals.mean[mine], totals.variance[mine]
            z = math.nan
            if variance.sum() > 0:
                z = float((observed - mean).sum() / math.sqrt(variance.sum()))
                statistic += z * z
                groups += 1
            ratio = observed.sum() / mean.sum() if mean.sum() > 0 else math.nan
            store = (str(layout.store.store_id),) if several else ()
            rows.append(
                (*store, name, str(n), f"{observed.mean():.1f}", f"{mean.mean():.1f}", f"{ratio:.3f}", f"{z:.2f}")
            )
    if groups:
        p = float(stats.chi2.sf(statistic, groups))
        tests.append(Test(f"χ² of the weekday means, {groups} weekday(s)", f"χ² = {statistic:.2f}, df = {groups}", p))
    elif not tests:
        tests.append(Test("weekday totals", "—", skipped="no whole day in the range"))
    header = (*(("Store",) if several else ()), "Weekday", "Days", "Mean total", "Model mean", "Ratio", "z")
    return Check(
        key="weekdays",
        title="Totals per weekday",
        description=(
            "Each whole day's total against the model's mean for that date (BASE_DAILY_CUSTOMERS × weekday "
            "popularity S_d / S̄, × calendar multiplier and store scale; or DAILY_CUSTOMERS). With the uniform "
            "day-to-day law every total must lie within mean × (1 ± p); a fixed total must be exact (except under "
            "the poisson arrival model, whose day count is Poisson around the total). Per weekday, "
            "z = Σ(total − mean) / √Σvariance, with the law's variance (mean²p²/3, or mean + d·mean² for "
            "gamma-poisson, plus mean for poisson arrivals); Σz² is compared with a chi-square of one degree of "
            "freedom per weekday."
        ),
        tests=tuple(tests),
        tables=(Table(header, tuple(rows)),) if rows else (),
    )
