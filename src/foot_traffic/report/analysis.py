"""The whole comparison: the range, the stores' layouts, every check and the curves of the plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.model.imperfections import NONE, Imperfections
from foot_traffic.model.plan import StoreModel
from foot_traffic.report.checks.consistency import consistency_check
from foot_traffic.report.checks.counts import counts_check
from foot_traffic.report.checks.durations import durations_check
from foot_traffic.report.checks.expected import build_layout, place
from foot_traffic.report.checks.ground_truth import Draws, ground_truth_check, held_rows, read_twice
from foot_traffic.report.checks.lateness import arrival_lateness, lateness_check
from foot_traffic.report.checks.positions import positions_check
from foot_traffic.report.checks.results import Check
from foot_traffic.report.checks.uniqueness import repeated_rows, uniqueness_check, visit_groups
from foot_traffic.report.checks.weekdays import weekday_check
from foot_traffic.report.curves import Curves, curves
from foot_traffic.report.inputs.events import Events, EventsInputError


@dataclass(frozen=True, slots=True)
class Scope:
    """What the events are compared over: the range given (if any) and the plan's random draws, when known.

    ``root`` is the root entropy of SEED when the plan is reproducible (SEED given, or
    a plan without random draws); None when only the model's laws are known.
    """

    start_us: int | None = None
    until_us: int | None = None
    root: int | None = None
    seeded: bool = True
    """Whether ``root`` comes from SEED: the imperfections' own draws (the outages) are then known too."""
    imperfections: Imperfections = NONE
    """What the run was set to do to its stream; when any is on, the model's checks judge distinct visits."""
    kafka_timestamp: str = "emit"
    """KAFKA_TIMESTAMP: whether record timestamps may be times of sending."""


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
    imperfect = scope.imperfections
    groups = visit_groups(events, in_range)
    visits = in_range
    if imperfect.on:  # repeated copies (duplicates, or a restart's) are judged by uniqueness alone
        visits = in_range.copy()
        visits[repeated_rows(groups)] = False
    owner = store_rows(events, stores)
    layouts = [build_layout(store, scope.root or 0, start, end) for store in stores]
    index = np.int32 if len(events) < 2**31 else np.int64  # rows of events: half the memory where it can
    placed = [
        place(layout, entries, np.flatnonzero(visits & (owner == k)).astype(index)) for k, layout in enumerate(layouts)
    ]
    exact = scope.root is not None
    counts, expected = counts_check(layouts, placed, exact=exact)
    whole = [layout.whole_days() for layout in layouts]
    durations = events.duration_min[visits]
    checks: tuple[Check, ...] = (
        counts,
        positions_check(layouts, placed),
        durations_check(durations),
        weekday_check(layouts, placed, whole),
        consistency_check(events, layouts, placed, owner, visits),
        uniqueness_check(events, in_range, groups, imperfect.duplicate_pct),
    )
    draws = Draws(imperfect, scope.root if scope.seeded else None)
    lateness = arrival_lateness(events) if imperfect.on else None
    if lateness is not None and (imperfect.late_pct > 0 or imperfect.outages_per_day > 0):
        held = held_rows(events, layouts, owner, draws)
        late = lateness_check(events, visits, imperfect, lateness, held=held, kafka_timestamp=scope.kafka_timestamp)
        checks = (*checks, late)
    if lateness is not None and draws.root is not None:
        twice = read_twice(events, groups)
        truth = ground_truth_check(events, layouts, placed, whole, twice=twice, lateness=lateness, draws=draws)
        checks = (*checks, truth)
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
