"""The counts check: events per date and slot against the plan, or against the model given each day's total."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import stats

from foot_traffic.model.plan import DayPlan, Model, largest_remainder
from foot_traffic.report.checks.chisquare import MIN_EXPECTED, chi_square_day
from foot_traffic.report.checks.expected import F64, FULL, I64, OUT, Bools, Layout, Placed
from foot_traffic.report.checks.results import Check, Test
from foot_traffic.report.document import Table

LRA_CANDIDATES = 20_000
"""Most day totals tried when looking for one whose largest-remainder split gives a partial day's counts."""
MAX_DAY_ROWS = 62
"""Longest per-day table; beyond it only the days that do not fit are listed."""


def _label(layout: Layout, plan: DayPlan, several: bool) -> tuple[str, ...]:
    store = (str(layout.store.store_id),) if several else ()
    return (*store, plan.date.isoformat(), plan.weekday)


def counts_check(layouts: Sequence[Layout], placed: Sequence[Placed], *, exact: bool) -> tuple[Check, list[F64]]:
    """Events per date and slot against the plan (whole days, reproducible plan) or the model given each day's total.

    Returns the check and, per store, each cell's expected count (the observed one
    where nothing is compared), for the plots.
    """
    tally = _CountTally()
    several = len(layouts) > 1
    expected_cells: list[F64] = []
    rows: list[tuple[tuple[str, ...], bool]] = []
    for layout, where in zip(layouts, placed, strict=True):
        observed = where.observed
        expected = observed.astype(np.float64)
        mass = layout.cell_mass
        for d, plan in enumerate(layout.plans):
            cells = slice(d * layout.slots, (d + 1) * layout.slots)
            status = layout.status[cells]
            if (status == OUT).all() or not (layout.open_us[cells] > 0).any():
                continue
            outcome = _compare_day(
                layout.store.model, plan, observed[cells], status=status, mass=mass[cells], exact=exact, tally=tally
            )
            if outcome.expected is not None:
                expected[cells] = outcome.expected
            coverage = "whole day" if (status == FULL).all() else f"partial ({outcome.compared} slots compared)"
            planned = str(sum(plan.counts)) if outcome.method == "exact plan" else "—"
            text = (*_label(layout, plan, several), coverage, str(int(observed[cells].sum())), planned)
            rows.append(((*text, outcome.method, outcome.result), outcome.fits))
        expected_cells.append(expected)
    header = (*(("Store",) if several else ()), "Date", "Weekday", "Coverage", "Events", "Planned", "By", "Result")
    listed = rows if len(rows) <= MAX_DAY_ROWS else [r for r in rows if not r[1]]
    notes = []
    if len(listed) < len(rows):
        notes.append(f"{len(rows) - len(listed)} day(s) that fit are not listed.")
    if tally.unchecked:
        notes.append(f"{tally.unchecked} partial day(s) not checked: too few slots covered to bound the day's total.")
    check = Check(
        key="counts",
        title="Counts per date and slot",
        description=(
            "Events per date and slot. Whole days of a reproducible plan (SEED given, or no random draw) "
            "must match the plan exactly. Otherwise each day is compared with what the model implies given "
            "the day's observed total: for the uniform model the counts must be the largest-remainder split "
            "of some day total; for poisson and smooth, a chi-square of the slot counts against a multinomial "
            "in proportion to the model's intensity over the covered time (neighbouring slots merged until "
            f"each expects {MIN_EXPECTED:g} events). Slots the range cuts are compared only by the chi-square."
        ),
        tests=tuple(tally.tests()),
        tables=(Table(header, tuple(r for r, _ in listed), "Per day"),) if listed else (),
        notes=tuple(notes),
    )
    return check, expected_cells


@dataclass(slots=True)
class _CountTally:
    """Running totals of the three ways of comparing counts."""

    exact_days: int = 0
    exact_cells: int = 0
    exact_differ: int = 0
    lra_days: int = 0
    lra_bad: int = 0
    unchecked: int = 0
    chi_days: int = 0
    chi_statistic: float = 0.0
    chi_df: int = 0

    def tests(self) -> list[Test]:
        result = []
        if self.exact_days:
            result.append(
                Test(
                    f"exact plan, {self.exact_days} whole day(s)",
                    f"{self.exact_differ} of {self.exact_cells} slot counts differ",
                    condition="every slot count equals the plan",
                    passed=self.exact_differ == 0,
                )
            )
        if self.lra_days:
            result.append(
                Test(
                    f"largest-remainder split, {self.lra_days} day(s)",
                    f"{self.lra_bad} day(s) fit no day total",
                    condition="every day fits a day total",
                    passed=self.lra_bad == 0,
                )
            )
        if self.chi_days:
            test = Test(f"χ² given each day's total, {self.chi_days} day(s)", f"χ² = {self.chi_statistic:.2f}, df = 0")
            if self.chi_df:
                p = float(stats.chi2.sf(self.chi_statistic, self.chi_df))
                test = Test(test.name, f"χ² = {self.chi_statistic:.2f}, df = {self.chi_df}", p_value=p)
            else:
                test = Test(test.name, test.statistic, skipped="too few events for a chi-square")
            result.append(test)
        if not result:
            result.append(Test("slot counts", "—", skipped="no day with events to compare"))
        return result


@dataclass(frozen=True, slots=True)
class _DayOutcome:
    method: str
    result: str
    fits: bool
    compared: int
    expected: F64 | None


def _compare_day(
    model: Model, plan: DayPlan, observed: I64, *, status: I64, mass: F64, exact: bool, tally: _CountTally
) -> _DayOutcome:
    """Compare one day's slot counts in the strongest way the plan and the range allow."""
    slots = len(observed)
    whole = bool((status == FULL).all())
    if whole and exact:
        planned = np.array(plan.counts, dtype=np.int64)
        differ = int(np.count_nonzero(observed != planned))
        tally.exact_days += 1
        tally.exact_cells += slots
        tally.exact_differ += differ
        labels = ", ".join(
            f"{plan.labels[i]} {observed[i]} ≠ {planned[i]}" for i in np.flatnonzero(observed != planned)
        )
        return _DayOutcome("exact plan", labels or "matches", differ == 0, slots, planned.astype(np.float64))
    total = int(observed.sum())
    live = mass > 0
    share = np.where(live, mass, 0.0)
    expected = total * share / share.sum() if share.sum() > 0 else None
    if plan.mean_total <= 0:
        return _DayOutcome("closed", "no arrival expected", total == 0, 0, None)
    if model.arrival_model == "uniform":
        compared = status == FULL
        fits = _fits_some_total(plan.shares, observed, compared)
        if fits is None:
            tally.unchecked += 1
            return _DayOutcome("largest remainder", "not checked", True, int(compared.sum()), expected)
        tally.lra_days += 1
        tally.lra_bad += not fits
        result = "fits a day total" if fits else "fits no day total"
        return _DayOutcome("largest remainder", result, fits, int(compared.sum()), expected)
    statistic, df = chi_square_day(observed[live], mass[live])
    tally.chi_days += 1
    tally.chi_statistic += statistic
    tally.chi_df += df
    return _DayOutcome("χ²", f"χ² = {statistic:.2f}, df = {df}", True, int(live.sum()), expected)


def _fits_some_total(effective: tuple[Fraction, ...], observed: I64, compared: Bools) -> bool | None:
    """Whether some day total's largest-remainder split gives the observed counts on the compared slots.

    Each split count is within one of its quota T·W'_i/ΣW', so T lies within
    (S ± k)·ΣW'/W'_compared for the k compared slots of sum S: only those totals
    are tried. None when there are more than LRA_CANDIDATES of them.
    """
    picked = np.flatnonzero(compared)
    counts = observed.tolist()
    if picked.size == 0:
        return True
    total_weight = math.fsum(effective)
    compared_weight = math.fsum(effective[i] for i in picked.tolist())
    seen = int(sum(counts[i] for i in picked.tolist()))
    if picked.size == len(counts):
        return tuple(counts) == largest_remainder(seen, effective)
    if compared_weight == 0:
        return seen == 0
    k = int(picked.size)
    low = max(int(observed.sum()), math.floor((seen - k) * total_weight / compared_weight))
    high = math.ceil((seen + k) * total_weight / compared_weight)
    if high - low > LRA_CANDIDATES:
        return None
    for total in range(low, high + 1):
        split = largest_remainder(total, effective)
        if all(split[i] == counts[i] for i in picked.tolist()):
            return True
    return False
