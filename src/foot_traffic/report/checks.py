"""The checks of ``foot-traffic report``: events against the model the settings describe.

Pure functions of the events' columns (:mod:`foot_traffic.report.inputs`), the
stores' models and the range the report covers. Each check returns its tests
(a statistic with a p-value, or an exact condition) and tables; :func:`judge`
then decides every verdict, the statistical tests sharing one significance
level (Bonferroni: each is held to alpha divided by their number).

The range is cut into *cells*, one per date and slot of each store. A cell is
*full* when the range covers all of its open time, *partial* when it covers
part of it. A day is *whole* when all its cells are full; only whole days are
compared with the exact plan and enter the weekday totals, so a run that
started mid-day, or a range that cuts a day, compares only what it covers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy import stats

from foot_traffic.events.event import format_instant
from foot_traffic.model.arrivals import DURATION_MIXTURE
from foot_traffic.model.grid import US_PER_MINUTE, WEEKDAYS, local_date
from foot_traffic.model.plan import DayPlan, Model, StoreModel, largest_remainder, plan_day
from foot_traffic.report.inputs import Events, EventsInputError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

MIN_EXPECTED = 5.0
"""Neighbouring chi-square cells are merged until each expects at least this many events."""
LRA_CANDIDATES = 20_000
"""Most day totals tried when looking for one whose largest-remainder split gives a partial day's counts."""
MAX_DAYS = 36_600
"""Longest range, in days, that a report covers."""
MAX_DAY_ROWS = 62
"""Longest per-day table; beyond it only the days that do not fit are listed."""
DURATIONS = np.arange(10, 76)
"""Every duration the model allows, in minutes."""
OCCUPANCY_STEP_MIN = 5
"""Minutes between two points of the occupancy curve."""
DUPLICATE_EXAMPLES = 5
"""Customer ids listed of each kind of duplicate (those of the earliest entries)."""

OUT, PARTIAL, FULL = 0, 1, 2
"""How much of a cell's open time the range covers: none, part, all (or the cell has no open time)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What the events are compared over: the range given (if any) and the plan's random draws, when known.

    ``root`` is the root entropy of SEED when the plan is reproducible (SEED given, or
    a plan without random draws); None when only the model's laws are known.
    """

    start_us: int | None = None
    until_us: int | None = None
    root: int | None = None


@dataclass(frozen=True, slots=True)
class Test:
    """One row of a check's table: a statistic with a p-value, or a condition that holds or not."""

    name: str
    statistic: str
    p_value: float | None = None
    condition: str = ""
    passed: bool | None = None
    """The verdict of an exact condition; None for a statistical test (decided by :func:`judge`)."""
    skipped: str = ""
    """Why the test could not run (too few events, nothing covered); empty when it ran."""


@dataclass(frozen=True, slots=True)
class Table:
    """A table of details: a header and rows of text."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Check:
    """One check: what it compares, its tests and its tables."""

    key: str
    title: str
    description: str
    tests: tuple[Test, ...]
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()


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


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the report says: the range, what was compared, the checks and the curves."""

    start_us: int
    end_us: int
    range_given: bool
    exact: bool
    events: int
    in_range: int
    checks: tuple[Check, ...]
    curves: Curves
    whole_days: int
    partial_days: int


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


PLACE_BLOCK = 1 << 18
"""Events placed at once: the temporaries of a block stay within a few tens of MB."""


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


def event_range(events: Events, scope: Scope) -> tuple[int, int, bool]:
    """The range compared, ``[start, end)``, and whether it was given (else: from the first event to the last)."""
    given = scope.start_us is not None and scope.until_us is not None
    entries = events.entry_us
    start = scope.start_us
    if start is None:
        if not len(events):
            raise EventsInputError("no foot_traffic event to check; expected at least one, or --start and --until")
        start = int(entries.min())
    end = scope.until_us
    if end is None:
        later = entries[entries >= start]
        if not later.size:
            raise EventsInputError("no foot_traffic event from --start on; give --until to check an empty range")
        end = int(later.max()) + 1
    return start, end, given


def store_rows(events: Events, stores: Sequence[StoreModel]) -> npt.NDArray[np.int16]:
    """Each event's store: its index in ``stores``, or -1 when its store_id names none of them."""
    index = {store.store_id: k for k, store in enumerate(stores)}
    codes = np.array([index.get(store_id, -1) for store_id in events.store_ids] + [-1], dtype=np.int16)
    return np.asarray(codes[events.store], dtype=np.int16)


def analyse(events: Events, stores: Sequence[StoreModel], scope: Scope) -> Analysis:
    """Run every check of the events against the stores' models over the scope's range."""
    start, end, given = event_range(events, scope)
    entries = events.entry_us
    in_range = (entries >= start) & (entries < end)
    owner = store_rows(events, stores)
    layouts = [build_layout(store, scope.root or 0, start, end) for store in stores]
    index = np.int32 if len(events) < 2**31 else np.int64  # rows of events: half the memory where it can
    placed = [
        place(layout, entries, np.flatnonzero(in_range & (owner == k)).astype(index))
        for k, layout in enumerate(layouts)
    ]
    exact = scope.root is not None
    counts, expected = counts_check(layouts, placed, exact=exact)
    whole = [_whole_days(layout) for layout in layouts]
    durations = events.duration_min[in_range]
    checks = (
        counts,
        positions_check(layouts, placed),
        durations_check(durations),
        weekday_check(layouts, placed, whole),
        consistency_check(events, layouts, placed, owner, in_range),
        uniqueness_check(events, in_range),
    )
    return Analysis(
        start_us=start,
        end_us=end,
        range_given=given,
        exact=exact,
        events=len(events),
        in_range=int(np.count_nonzero(in_range)),
        checks=checks,
        curves=curves(layouts, placed, events, expected=expected, whole=whole, durations=durations),
        whole_days=sum(int(w.sum()) for w in whole),
        partial_days=sum(int((~w).sum()) for w in whole),
    )


def _whole_days(layout: Layout) -> Bools:
    return np.asarray((layout.status.reshape(-1, layout.slots) == FULL).all(axis=1))


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
    statistic, df = _chi_square_day(observed[live], mass[live])
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


def _merge_small(observed: F64, expected: F64) -> tuple[F64, F64]:
    """Merge neighbouring cells until each expects at least MIN_EXPECTED (the last group absorbs the rest)."""
    groups_o: list[float] = []
    groups_e: list[float] = []
    run_o = run_e = 0.0
    for o, e in zip(observed.tolist(), expected.tolist(), strict=True):
        run_o += o
        run_e += e
        if run_e >= MIN_EXPECTED:
            groups_o.append(run_o)
            groups_e.append(run_e)
            run_o = run_e = 0.0
    if run_e > 0 or run_o > 0:
        if groups_e:
            groups_o[-1] += run_o
            groups_e[-1] += run_e
        else:
            groups_o.append(run_o)
            groups_e.append(run_e)
    return np.array(groups_o), np.array(groups_e)


def _chi_square_day(observed: I64, mass: F64) -> tuple[float, int]:
    """Chi-square of counts against a multinomial of their total in proportion to ``mass``; (statistic, df)."""
    total = float(observed.sum())
    if total == 0 or mass.sum() <= 0:
        return 0.0, 0
    o, e = _merge_small(observed.astype(np.float64), total * mass / mass.sum())
    if o.size < 2:
        return 0.0, 0
    return float(((o - e) ** 2 / e).sum()), int(o.size - 1)


def positions_check(layouts: Sequence[Layout], placed: Sequence[Placed]) -> Check:
    """Kolmogorov–Smirnov of the arrival positions, the model's distribution function inside each cell."""
    pooled = np.concatenate([p.position[np.isfinite(p.position)] for p in placed])
    if pooled.size:
        pooled.sort()
        statistic, p_value = ks_uniform(pooled)
        test = Test(f"KS against the model, {pooled.size} events", f"D = {statistic:.5f}", p_value=p_value)
    else:
        test = Test("KS against the model", "—", skipped="no event inside the open time")
    del pooled
    rows = []
    for label, values in _by_label(layouts, placed).items():
        if values.size:
            values.sort()
            statistic, p_value = ks_uniform(values)
            rows.append((label, str(values.size), f"{statistic:.5f}", _p_text(p_value)))
    smooth = any(layout.store.model.arrival_model == "smooth" for layout in layouts)
    law = "the smooth model's piecewise-quadratic distribution function" if smooth else "a uniform distribution"
    return Check(
        key="positions",
        title="Arrival positions inside slots",
        description=(
            "Each entry instant is mapped through the model's distribution function of its slot's open time "
            f"(as covered by the range): {law}. The pooled values must be uniform on [0, 1) "
            "(one-sample Kolmogorov–Smirnov test, exact distribution of D)."
        ),
        tests=(test,),
        tables=(Table(("Slot", "Events", "D", "p-value"), tuple(rows), "Per slot (for diagnosis, not judged)"),)
        if rows
        else (),
    )


KS_BLOCK = 1 << 20
"""Values compared at once in the KS statistic."""


def ks_uniform(ordered: F64) -> tuple[float, float]:
    """Two-sided one-sample Kolmogorov–Smirnov test of sorted values against U(0, 1): (D, p-value).

    The same D and p-value as ``scipy.stats.kstest(values, "uniform")``, computed block
    by block so that no temporary is as large as the data.
    """
    n = ordered.size
    statistic = 0.0
    for first in range(0, n, KS_BLOCK):
        block = ordered[first : first + KS_BLOCK]
        rank = np.arange(first, first + block.size, dtype=np.float64)
        statistic = max(statistic, float(((rank + 1) / n - block).max()), float((block - rank / n).max()))
    return statistic, float(stats.kstwo.sf(statistic, n))


def _by_label(layouts: Sequence[Layout], placed: Sequence[Placed]) -> dict[str, F64]:
    parts: dict[str, list[F64]] = {}
    for layout, where in zip(layouts, placed, strict=True):
        labels = layout.plans[0].labels
        slot = where.cell % layout.slots
        finite = np.isfinite(where.position)
        for i, label in enumerate(labels):
            parts.setdefault(label, []).append(where.position[finite & (slot == i)])
    return {label: np.concatenate(values) for label, values in sorted(parts.items())}


def _p_text(p: float) -> str:
    return f"{p:.3g}"


def duration_probabilities() -> F64:
    """The model's probability of each whole-minute duration in DURATIONS."""
    p = np.zeros(DURATIONS.size)
    for weight, first, last in DURATION_MIXTURE:
        p[(first <= DURATIONS) & (last >= DURATIONS)] += weight / (last - first + 1)
    return p


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
    o, e = _merge_small(observed, inside.size * duration_probabilities())
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


def consistency_check(
    events: Events,
    layouts: Sequence[Layout],
    placed: Sequence[Placed],
    owner: npt.NDArray[np.int16],
    in_range: Bools,
) -> Check:
    """Fields that must agree with each other and with the model: weekday, slot, local date, exit, store, hours."""
    date_wrong = slot_wrong = closed = 0
    for layout, where in zip(layouts, placed, strict=True):
        labels = layout.plans[0].labels
        slot_of_label = np.array([labels.index(x) if x in labels else -1 for x in events.labels] + [-1])
        day = np.array([(plan.date - dt.date(1970, 1, 1)).days for plan in layout.plans], dtype=np.int64)
        cell_day = day[where.cell // layout.slots]
        date_wrong += int(np.count_nonzero(events.local_day[where.rows] != cell_day))
        slot_wrong += int(np.count_nonzero(slot_of_label[events.label[where.rows]] != where.cell % layout.slots))
        closed += int(np.count_nonzero(~np.isfinite(where.position)))
    unknown = int(np.count_nonzero(in_range & (owner < 0)))
    stats_ = events.stats
    kinds = (
        ("weekday is the entry date's weekday", stats_.weekday_mismatch),
        ("exit_time = entry_time + duration", stats_.exit_mismatch),
        ("entry_time's local date is the model's (TIMEZONE)", date_wrong),
        ("time_slot is the slot of entry_time", slot_wrong),
        ("entry_time falls in the open time of an open day", closed),
        ("store_id names a configured store", unknown),
    )
    tests = tuple(
        Test(name, f"{count} event(s) do not", condition="every event", passed=count == 0) for name, count in kinds
    )
    return Check(
        key="consistency",
        title="Consistency of the fields",
        description=(
            "Fields that follow from entry_time and the model: the weekday, the slot label, the local date in "
            "TIMEZONE (or the store's zone), exit_time, the store, and the opening hours of CALENDAR_FILE."
        ),
        tests=tests,
    )


def _shared_rows(words: npt.NDArray[np.uint64], in_range: Bools) -> I64:
    """Rows in the range whose word is also another in-range row's: the only ones whose id can repeat.

    Sorting one 64-bit word per event (8 bytes each) finds the words seen twice; the
    rows holding them are then found block by block.
    """
    ordered = words[in_range]
    ordered.sort()
    twice = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not twice.size:
        return np.empty(0, dtype=np.int64)
    parts = []
    for first in range(0, words.size, PLACE_BLOCK):
        block = words[first : first + PLACE_BLOCK]
        hit = twice[np.minimum(np.searchsorted(twice, block), twice.size - 1)] == block
        parts.append(np.flatnonzero(hit & in_range[first : first + PLACE_BLOCK]) + first)
    return np.concatenate(parts).astype(np.int64)


def uniqueness_check(events: Events, in_range: Bools) -> Check:
    """Every in-range event under its own customer_id: repeated visits and ids shared by different visits."""
    rows = _shared_rows(events.customer[:, 0], in_range)
    fields: tuple[npt.NDArray[np.integer], ...] = (
        events.local_day,
        events.label,
        events.store,
        events.duration_min,
        events.entry_us,
    )
    high, low = events.customer[rows, 0], events.customer[rows, 1]
    rows = rows[np.lexsort((rows, *(f[rows] for f in fields), low, high))]  # by id, then visit, then row read
    high, low = events.customer[rows, 0], events.customer[rows, 1]
    visit = [f[rows] for f in fields]
    same_id = np.zeros(rows.size, dtype=bool)
    same_id[1:] = (high[1:] == high[:-1]) & (low[1:] == low[:-1])
    same_visit = same_id.copy()
    for column in visit:
        same_visit[1:] &= column[1:] == column[:-1]
    extra = int(np.count_nonzero(same_id))
    repeated = int(np.count_nonzero(same_visit))
    shared = extra - repeated
    starts = np.flatnonzero(~same_id)
    sizes = np.diff(np.append(starts, rows.size))
    visits = np.add.reduceat((~same_visit).astype(np.int64), starts) if starts.size else starts
    earliest = np.minimum.reduceat(visit[-1], starts) if starts.size else starts
    several = np.flatnonzero(sizes > 1)
    examples: list[tuple[str, ...]] = []
    for collision in (False, True):
        groups = several[(visits[several] > 1) == collision]
        for g in groups[np.argsort(earliest[groups], kind="stable")][:DUPLICATE_EXAMPLES].tolist():
            at = slice(int(starts[g]), int(starts[g] + sizes[g]))
            key = events.customer[rows[at][0]].tobytes()
            entries = visit[-1][at][~same_visit[at]].tolist()
            times = ", ".join(format_instant(us) for us in entries[:3]) + (", …" if len(entries) > 3 else "")
            kind = "different visits" if collision else "same visit repeated"
            examples.append((events.customer_id(key), kind, str(int(sizes[g])), str(int(visits[g])), times))
    in_range_count = int(np.count_nonzero(in_range))
    tests = (
        Test(
            "no visit read twice (same customer_id, entry_time, duration, store and slot)",
            f"{repeated} repeated event(s)",
            condition="none repeated",
            passed=repeated == 0,
        ),
        Test(
            "no customer_id shared by different visits",
            f"{shared} event(s) under the id of another visit",
            condition="none shared",
            passed=shared == 0,
        ),
    )
    note = (
        f"{in_range_count:,} event(s) in the range carry {in_range_count - extra:,} distinct customer ids; "
        f"{several.size:,} id(s) appear more than once, on {extra:,} extra event(s)."
    )
    header = ("customer_id", "Kind", "Events", "Different visits", "Entry times (UTC)")
    caption = f"Examples: up to {DUPLICATE_EXAMPLES} ids of each kind, earliest entry first"
    return Check(
        key="uniqueness",
        title="Uniqueness of customer ids",
        description=(
            "The producer writes every visit once, under a customer_id drawn for it (a random UUID), so no id may "
            "appear on two events in the range. An event whose customer_id, entry_time, duration, store and slot "
            "are all those of an earlier one is the same visit read again (a replayed dead-letter file, an "
            "at-least-once consumer or pipeline); different visits under one id are a collision (ids not drawn "
            "per visit). Ids that are not UUIDs are compared by a 128-bit BLAKE2b digest."
        ),
        tests=tests,
        tables=(Table(header, tuple(examples), caption),) if examples else (),
        notes=(note,),
    )


def curves(
    layouts: Sequence[Layout],
    placed: Sequence[Placed],
    events: Events,
    *,
    expected: Sequence[F64],
    whole: Sequence[Bools],
    durations: npt.NDArray[np.integer],
) -> Curves:
    """The data of the four plots: arrivals per hour, totals per weekday, durations and occupancy.

    Arrivals and departures are counted per minute from the first day's midnight
    (a duration is whole minutes, so a visit leaves exactly ``duration`` minute
    bins after the one it entered in); occupancy is their running difference.
    """
    hours_o, hours_e = np.zeros(24), np.zeros(24)
    steps = 24 * 60 // OCCUPANCY_STEP_MIN
    occupancy_o, occupancy_e, occupancy_n = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    survival = _survival()
    back = np.arange(survival.size + 1) * US_PER_MINUTE
    for layout, where, cells in zip(layouts, placed, expected, strict=True):
        cumulative = _expected_arrivals(layout, cells)
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
            hours_o += np.diff(arrived_before[(hours - origin) // US_PER_MINUTE])
            hours_e += np.diff(cumulative(hours))
            grid = plan.start_us + np.arange(steps) * OCCUPANCY_STEP_MIN * US_PER_MINUTE
            covered = (grid >= start) & (grid < end)
            if not covered.any():
                continue
            before = grid[:, None] - back[None, :]
            arrivals = -np.diff(cumulative(before.ravel()).reshape(before.shape), axis=1)
            occupancy_o += np.where(covered, inside_before[np.clip((grid - origin) // US_PER_MINUTE, 0, minutes)], 0)
            occupancy_e += np.where(covered, arrivals @ survival, 0)
            occupancy_n += covered
    totals = day_totals(layouts, placed, whole)
    days = np.bincount(totals.weekday, minlength=7)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed_mean = np.bincount(totals.weekday, totals.observed, minlength=7) / days
        expected_mean = np.bincount(totals.weekday, totals.mean, minlength=7) / days
        error = np.sqrt(np.bincount(totals.weekday, totals.variance, minlength=7)) / days
        occupancy_o, occupancy_e = occupancy_o / occupancy_n, occupancy_e / occupancy_n
    inside_range = durations[(durations >= DURATIONS[0]) & (durations <= DURATIONS[-1])]
    return Curves(
        hours_observed=hours_o,
        hours_expected=hours_e,
        weekday_days=days.astype(np.int64),
        weekday_observed=observed_mean,
        weekday_expected=expected_mean,
        weekday_error=error,
        durations_observed=np.bincount(inside_range - DURATIONS[0], minlength=DURATIONS.size).astype(np.int64),
        durations_expected=inside_range.size * duration_probabilities(),
        occupancy_observed=occupancy_o,
        occupancy_expected=occupancy_e,
    )


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


@dataclass(frozen=True, slots=True)
class Judgement:
    """Every test's verdict, the level each statistical test was held to, and the overall verdict."""

    alpha: float
    level: float
    statistical: int
    verdicts: dict[tuple[str, str], str]
    """Each test's verdict ("pass", "FAIL" or "skipped"), by (check key, test name)."""
    checks: dict[str, str]
    """Each check's verdict ("pass" or "FAIL"), by check key."""
    failed: tuple[str, ...]
    """Titles of the checks that failed."""

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return not self.failed


def judge(checks: Sequence[Check], alpha: float) -> Judgement:
    """Decide each test: exact conditions as they are, p-values against alpha / (number of statistical tests)."""
    statistical = sum(1 for c in checks for t in c.tests if t.p_value is not None and not t.skipped)
    level = alpha / max(statistical, 1)
    verdicts: dict[tuple[str, str], str] = {}
    by_check: dict[str, str] = {}
    failed = []
    for check in checks:
        ok = True
        for test in check.tests:
            if test.skipped:
                verdict = "skipped"
            elif test.p_value is not None:
                verdict = "pass" if test.p_value >= level else "FAIL"
            else:
                verdict = "pass" if test.passed else "FAIL"
            verdicts[(check.key, test.name)] = verdict
            ok &= verdict != "FAIL"
        by_check[check.key] = "pass" if ok else "FAIL"
        if not ok:
            failed.append(check.title)
    return Judgement(alpha, level, statistical, verdicts, by_check, tuple(failed))
