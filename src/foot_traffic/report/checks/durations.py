"""The durations check: visit durations against the model's mixture of uniform parts."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from foot_traffic.model.arrivals import DURATION_MIXTURE
from foot_traffic.report.checks.chisquare import MIN_EXPECTED, merge_small
from foot_traffic.report.checks.expected import DURATIONS, duration_probabilities
from foot_traffic.report.checks.results import Check, Test
from foot_traffic.report.document import Table


def durations_check(durations: npt.NDArray[np.integer]) -> Check:
    """Durations against the mixture: all in 10..75, and a chi-square over the minutes (merged where sparse)."""
    n = int(durations.size)
    outside = int(np.count_nonzero((durations < DURATIONS[0]) | (durations > DURATIONS[-1])))
    tests = [
        Test(
            "every duration in 10..75 minutes",
            f"{outside} of {n} outside",
            condition="none outside",
            passed=outside == 0,
        )
    ]
    inside = durations[(durations >= DURATIONS[0]) & (durations <= DURATIONS[-1])]
    observed = np.bincount(inside - DURATIONS[0], minlength=DURATIONS.size).astype(np.float64)
    o, e = merge_small(observed, inside.size * duration_probabilities())
    if o.size >= 2:
        statistic = float(((o - e) ** 2 / e).sum())
        p = float(stats.chi2.sf(statistic, o.size - 1))
        tests.append(Test(f"χ² against the mixture, {o.size} bins", f"χ² = {statistic:.2f}, df = {o.size - 1}", p))
    else:
        tests.append(Test("χ² against the mixture", "—", skipped="too few events for a chi-square"))
    rows = []
    for weight, first, last in DURATION_MIXTURE:
        share = np.count_nonzero((inside >= first) & (inside <= last)) / inside.size if inside.size else math.nan
        rows.append((f"{first}–{last} min", f"{weight:.2f}", f"{share:.4f}"))
    return Check(
        key="durations",
        title="Visit durations",
        description=(
            "Whole-minute durations against the mixture 0.35·U{10..29} + 0.39·U{30..44} + 0.26·U{45..75}: "
            f"a chi-square over the 66 minutes, neighbouring minutes merged until each expects {MIN_EXPECTED:g}."
        ),
        tests=tuple(tests),
        tables=(Table(("Part", "Model share", "Observed share"), tuple(rows)),),
    )
