"""The model's side of the comparison: the range cut into cells, the intensity in them, the laws of day totals.

A cell is one date and slot of a store; it is *full* when the range covers all
of its open time, *partial* when it covers part of it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.model.arrivals import DURATION_MIXTURE
from foot_traffic.model.grid import local_date
from foot_traffic.model.plan import DayPlan, Model, StoreModel, plan_day
from foot_traffic.report.inputs.events import EventsInputError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

MAX_DAYS = 36_600
"""Longest range, in days, that a report covers."""
DURATIONS = np.arange(10, 76)
"""Every duration the model allows, in minutes."""
OUT, PARTIAL, FULL = 0, 1, 2
"""How much of a cell's open time the range covers: none, part, all (or the cell has no open time)."""
PLACE_BLOCK = 1 << 18
"""Events placed at once: the temporaries of a block stay within a few tens of MB."""


@dataclass(frozen=True, slots=True)
class Layout:
    """One store's cells over the range, in time order, with the model's arrival intensity.

    Cell ``k`` is ``[bounds[k], bounds[k + 1])``: slot ``slot[k]`` of ``plans[day[k]]``.
    The intensity is piecewise linear on *pieces* (the plan's pieces clipped to the
    range, scaled to the slot's rate); ``cumulative[j]`` is its integral up to piece j.
    """

    store: StoreModel
    plans: tuple[DayPlan, ...]
    slots: int
    bounds: I64
    status: I64
    open_us: I64
    piece_low: I64
    piece_high: I64
    piece_y0: F64
    piece_y1: F64
    cumulative: F64

    @property
    def cells(self) -> int:
        """Number of cells."""
        return int(self.bounds.size - 1)

    def mass_at(self, instants: I64) -> F64:
        """Integral of the intensity from the range's start up to each instant."""
        t = np.asarray(instants, dtype=np.int64)
        if self.piece_low.size == 0:
            return np.zeros(t.shape, dtype=np.float64)
        k = np.searchsorted(self.piece_low, t, side="right") - 1
        j = np.clip(k, 0, self.piece_low.size - 1)
        length = (self.piece_high[j] - self.piece_low[j]).astype(np.float64)
        x = np.clip(t - self.piece_low[j], 0, self.piece_high[j] - self.piece_low[j]).astype(np.float64)
        y0, y1 = self.piece_y0[j], self.piece_y1[j]
        partial = x * y0 + (y1 - y0) * x * x / (2 * length)
        return np.where(k >= 0, self.cumulative[j] + partial, 0.0)

    def inside(self, instants: I64) -> Bools:
        """Whether each instant falls in a piece: open, and inside the range."""
        k = np.searchsorted(self.piece_low, instants, side="right") - 1
        j = np.clip(k, 0, max(self.piece_low.size - 1, 0))
        if self.piece_low.size == 0:
            return np.zeros(np.shape(instants), dtype=bool)
        return np.asarray((k >= 0) & (instants < self.piece_high[j]))

    @property
    def cell_mass(self) -> F64:
        """The intensity's integral over each cell's covered open time."""
        return np.diff(self.mass_at(self.bounds))

    def whole_days(self) -> Bools:
        """Whether each day's cells are all full: the range covers all of its open time."""
        return np.asarray((self.status.reshape(-1, self.slots) == FULL).all(axis=1))


def build_layout(store: StoreModel, root: int, start_us: int, end_us: int) -> Layout:
    """Cut ``[start_us, end_us)`` into the store's cells and lay the model's intensity over them."""
    model = store.model
    first, last = local_date(start_us, model.tz), local_date(end_us - 1, model.tz)
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise EventsInputError(
            f"the events span {days} days, from {first} to {last}; expected at most {MAX_DAYS}: "
            "give --start and --until to check part of them"
        )
    plans = tuple(plan_day(model, root, first + dt.timedelta(days=i)) for i in range(days))
    bounds: list[int] = []
    status: list[int] = []
    open_us: list[int] = []
    pieces: list[tuple[int, int, float, float]] = []
    for plan in plans:
        weights = model.weights.weights[plan.date.weekday()]
        for i, slot_pieces in enumerate(plan.pieces):
            low, high = plan.bounds[i], plan.bounds[i + 1]
            bounds.append(low)
            open_low = slot_pieces[0].low if slot_pieces else low
            open_high = slot_pieces[-1].high if slot_pieces else low
            open_us.append(open_high - open_low)
            status.append(_status(open_low, open_high, start_us, end_us))
            # uniform and poisson pieces have intensity 1: scale them to the slot's rate, as smooth pieces are
            scale = 1.0 if model.arrival_model == "smooth" else weights[i] / (high - low)
            if plan.mean_total <= 0:
                scale = 0.0
            for piece in slot_pieces:
                a, b = max(piece.low, start_us), min(piece.high, end_us)
                if b > a:
                    pieces.append((a, b, piece.at(a) * scale, piece.at(b) * scale))
    bounds.append(plans[-1].end_us)
    low_a, high_a, y0_a, y1_a = (np.array(c) for c in zip(*pieces, strict=True)) if pieces else ([], [], [], [])
    piece_low = np.asarray(low_a, dtype=np.int64)
    piece_high = np.asarray(high_a, dtype=np.int64)
    y0, y1 = np.asarray(y0_a, dtype=np.float64), np.asarray(y1_a, dtype=np.float64)
    masses = (piece_high - piece_low) * (y0 + y1) / 2
    return Layout(
        store=store,
        plans=plans,
        slots=len(model.weights.grid),
        bounds=np.array(bounds, dtype=np.int64),
        status=np.array(status, dtype=np.int64),
        open_us=np.array(open_us, dtype=np.int64),
        piece_low=piece_low,
        piece_high=piece_high,
        piece_y0=y0,
        piece_y1=y1,
        cumulative=np.concatenate(([0.0], np.cumsum(masses))),
    )


def _status(open_low: int, open_high: int, start_us: int, end_us: int) -> int:
    if open_high <= open_low or (start_us <= open_low and open_high <= end_us):
        return FULL
    if min(open_high, end_us) > max(open_low, start_us):
        return PARTIAL
    return OUT


@dataclass(frozen=True, slots=True)
class Placed:
    """A store's in-range events in its layout: their rows in the Events, cells, and where they fall in them."""

    rows: npt.NDArray[np.integer]
    cell: npt.NDArray[np.int32]
    position: F64
    """The model's distribution function of the cell's covered open time at the event (NaN outside it)."""
    observed: I64
    """Events per cell."""


def place(layout: Layout, entry_us: I64, rows: npt.NDArray[np.integer]) -> Placed:
    """Find the cell of each event and its position under the model's distribution in that cell."""
    mass = layout.cell_mass
    start = layout.mass_at(layout.bounds[:-1])
    cell = np.empty(rows.size, dtype=np.int32)
    position = np.empty(rows.size, dtype=np.float64)
    for first in range(0, rows.size, PLACE_BLOCK):
        block = slice(first, first + PLACE_BLOCK)
        instants = entry_us[rows[block]]
        here = np.clip(np.searchsorted(layout.bounds, instants, side="right") - 1, 0, layout.cells - 1)
        valid = layout.inside(instants) & (mass[here] > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.clip((layout.mass_at(instants) - start[here]) / mass[here], 0.0, 1.0)
        cell[block] = here
        position[block] = np.where(valid, share, np.nan)
    return Placed(rows, cell, position, np.bincount(cell, minlength=layout.cells))


def duration_probabilities() -> F64:
    """The model's probability of each whole-minute duration in DURATIONS."""
    p = np.zeros(DURATIONS.size)
    for weight, first, last in DURATION_MIXTURE:
        p[(first <= DURATIONS) & (last >= DURATIONS)] += weight / (last - first + 1)
    return p


@dataclass(frozen=True, slots=True)
class DayTotals:
    """Whole days' totals with the model's mean and day-to-day law."""

    store: I64
    weekday: I64
    observed: F64
    mean: F64
    variance: F64
    low: F64
    """Smallest total the law allows (−inf when unbounded)."""
    high: F64


def day_totals(layouts: Sequence[Layout], placed: Sequence[Placed], whole: Sequence[Bools]) -> DayTotals:
    """Every whole day's observed total, and what the model says of it."""
    rows: list[tuple[int, int, float, float, float, float, float]] = []
    for k, (layout, where, days) in enumerate(zip(layouts, placed, whole, strict=True)):
        totals = where.observed.reshape(-1, layout.slots).sum(axis=1)
        for d in np.flatnonzero(days).tolist():
            plan = layout.plans[d]
            low, high, variance = _total_law(layout.store.model, plan)
            rows.append((k, plan.date.weekday(), float(totals[d]), plan.mean_total, variance, low, high))
    table = np.array(rows, dtype=np.float64).reshape(-1, 7).T
    return DayTotals(
        store=table[0].astype(np.int64),
        weekday=table[1].astype(np.int64),
        observed=table[2],
        mean=table[3],
        variance=table[4],
        low=table[5],
        high=table[6],
    )


def _total_law(model: Model, plan: DayPlan) -> tuple[float, float, float]:
    """(lowest, highest, variance) of a day's event count under the model's day-to-day law.

    The count is the day's total, except under the poisson arrival model, where it
    is Poisson around the total: unbounded, with the total's mean added to its variance.
    """
    mean = plan.mean_total
    fixed = model.fixed_totals
    if mean <= 0:
        return 0.0, 0.0, 0.0
    if fixed:
        low = high = float(plan.day_total)
        variance = 0.0
    elif model.daily_totals == "uniform":
        p = model.variation_pct
        slack = 1e-9 * mean + 1  # the factor is a float: allow a unit of rounding either way
        low, high = mean * (1 - p) - slack, mean * (1 + p) + slack
        variance = mean * mean * p * p / 3 + 1 / 12
    else:
        low, high = -math.inf, math.inf
        variance = mean + model.dispersion * mean * mean
    if model.arrival_model == "poisson":
        return -math.inf, math.inf, variance + mean
    return low, high, variance
