"""What the report's plots draw: arrivals per hour, totals per weekday, durations and occupancy, with the model's."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from foot_traffic.model.grid import US_PER_MINUTE
from foot_traffic.report.checks.expected import (
    DURATIONS,
    F64,
    I64,
    Bools,
    DayTotals,
    Layout,
    Placed,
    day_totals,
    duration_probabilities,
)
from foot_traffic.report.inputs.events import Events

OCCUPANCY_STEP_MIN = 5
"""Minutes between two points of the occupancy curve."""


@dataclass(frozen=True, slots=True)
class Curves:
    """What the plots draw, summed over the stores (each in its own local time)."""

    hours_observed: F64
    hours_expected: F64
    weekday_days: I64
    weekday_observed: F64
    """Mean total of the whole days of each weekday (NaN without one)."""
    weekday_expected: F64
    weekday_error: F64
    """Standard deviation of the mean total, from the model's day-to-day law."""
    durations_observed: I64
    durations_expected: F64
    occupancy_observed: F64
    """Mean number of customers inside, every OCCUPANCY_STEP_MIN minutes from local midnight."""
    occupancy_expected: F64


def curves(
    layouts: Sequence[Layout],
    placed: Sequence[Placed],
    events: Events,
    *,
    expected: Sequence[F64],
    whole: Sequence[Bools],
    durations: npt.NDArray[np.integer],
) -> Curves:
    """The data of the four plots: arrivals per hour, totals per weekday, durations and occupancy."""
    by_time = _ByTimeOfDay()
    for layout, where, cells in zip(layouts, placed, expected, strict=True):
        by_time.add(layout, where, cells, events)
    days, observed_mean, expected_mean, error = _weekday_means(day_totals(layouts, placed, whole))
    with np.errstate(invalid="ignore", divide="ignore"):
        occupancy_o, occupancy_e = by_time.inside_observed / by_time.days, by_time.inside_expected / by_time.days
    inside_range = durations[(durations >= DURATIONS[0]) & (durations <= DURATIONS[-1])]
    return Curves(
        hours_observed=by_time.hours_observed,
        hours_expected=by_time.hours_expected,
        weekday_days=days,
        weekday_observed=observed_mean,
        weekday_expected=expected_mean,
        weekday_error=error,
        durations_observed=np.bincount(inside_range - DURATIONS[0], minlength=DURATIONS.size).astype(np.int64),
        durations_expected=inside_range.size * duration_probabilities(),
        occupancy_observed=occupancy_o,
        occupancy_expected=occupancy_e,
    )


_STEPS = 24 * 60 // OCCUPANCY_STEP_MIN


@dataclass(slots=True)
class _ByTimeOfDay:
    """Sums over every store's days by local time of day: arrivals per hour, and customers inside at each step."""

    hours_observed: F64 = field(default_factory=functools.partial(np.zeros, 24))
    hours_expected: F64 = field(default_factory=functools.partial(np.zeros, 24))
    inside_observed: F64 = field(default_factory=functools.partial(np.zeros, _STEPS))
    inside_expected: F64 = field(default_factory=functools.partial(np.zeros, _STEPS))
    days: F64 = field(default_factory=functools.partial(np.zeros, _STEPS))
    """Days whose range covers each step."""

    def add(self, layout: Layout, where: Placed, expected: F64, events: Events) -> None:
        """Add one store's days: its events, against each cell's expected count spread by the model.

        Arrivals and departures are counted per minute from the first day's midnight
        (a duration is whole minutes, so a visit leaves exactly ``duration`` minute
        bins after the one it entered in); occupancy is their running difference.
        """
        survival = _survival()
        back = np.arange(survival.size + 1) * US_PER_MINUTE
        cumulative = _expected_arrivals(layout, expected)
        origin = int(layout.bounds[0])
        minutes = int(layout.bounds[-1] - origin) // US_PER_MINUTE + int(DURATIONS[-1]) + 1
        entered = (events.entry_us[where.rows] - origin) // US_PER_MINUTE
        arrived = np.bincount(entered, minlength=minutes)
        left = np.bincount(entered + events.duration_min[where.rows], minlength=minutes)
        inside_before = np.concatenate(([0], np.cumsum(arrived - left)))  # inside_before[m]: inside at minute m
        arrived_before = np.concatenate(([0], np.cumsum(arrived)))
        start, end = origin, origin
        if layout.piece_low.size:
            start, end = int(layout.piece_low[0]), int(layout.piece_high[-1])
        for plan in layout.plans:
            hours = np.minimum(plan.start_us + np.arange(25) * 60 * US_PER_MINUTE, plan.end_us)
            hours[-1] = plan.end_us  # a 25-hour day's last hour counts in 23:00–24:00
            self.hours_observed += np.diff(arrived_before[(hours - origin) // US_PER_MINUTE])
            self.hours_expected += np.diff(cumulative(hours))
            grid = plan.start_us + np.arange(_STEPS) * OCCUPANCY_STEP_MIN * US_PER_MINUTE
            covered = (grid >= start) & (grid < end)
            if not covered.any():
                continue
            before = grid[:, None] - back[None, :]
            arrivals = -np.diff(cumulative(before.ravel()).reshape(before.shape), axis=1)
            inside = inside_before[np.clip((grid - origin) // US_PER_MINUTE, 0, minutes)]
            self.inside_observed += np.where(covered, inside, 0)
            self.inside_expected += np.where(covered, arrivals @ survival, 0)
            self.days += covered


def _weekday_means(totals: DayTotals) -> tuple[I64, F64, F64, F64]:
    """Per weekday: whole days, their mean total, the model's mean and the standard deviation of the mean."""
    days = np.bincount(totals.weekday, minlength=7)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed_mean = np.bincount(totals.weekday, totals.observed, minlength=7) / days
        expected_mean = np.bincount(totals.weekday, totals.mean, minlength=7) / days
        error = np.sqrt(np.bincount(totals.weekday, totals.variance, minlength=7)) / days
    return days.astype(np.int64), observed_mean, expected_mean, error


def _survival() -> F64:
    """P(duration ≥ j + 1) for j = 0, 1, …: a visitor who arrived j to j + 1 minutes ago is still inside."""
    p = duration_probabilities()
    full = np.zeros(DURATIONS[-1] + 1)
    full[DURATIONS] = p
    return np.asarray(full[::-1].cumsum()[::-1][1:], dtype=np.float64)


def _expected_arrivals(layout: Layout, expected: F64) -> Callable[[I64], F64]:
    """Expected arrivals from the range's start up to any instant: each cell's expected count spread by the model."""
    mass = layout.cell_mass
    start = layout.mass_at(layout.bounds[:-1])
    before = np.concatenate(([0.0], np.cumsum(expected)))

    def at(instants: I64) -> F64:
        t = np.clip(instants, layout.bounds[0], layout.bounds[-1])
        cell = np.clip(np.searchsorted(layout.bounds, t, side="right") - 1, 0, layout.cells - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(mass[cell] > 0, (layout.mass_at(t) - start[cell]) / mass[cell], 0.0)
        return np.asarray(before[cell] + expected[cell] * np.clip(share, 0, 1), dtype=np.float64)

    return at
