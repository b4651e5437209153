"""The imperfections against the run's own decisions: with SEED the report draws them as the run did.

The decisions of a (store, date) are a pure function of SEED, the settings and the
day's visits (:func:`foot_traffic.model.imperfections.decide`), so on a whole day
whose visits are all there the report knows which visits the run held back in an
outage, sent late or sent twice, and compares them with what it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.model.imperfections import Imperfections, decide, outages
from foot_traffic.report.checks.expected import Bools, Layout, Placed
from foot_traffic.report.checks.results import Check, Test
from foot_traffic.report.checks.uniqueness import VisitGroups
from foot_traffic.report.inputs.events import Events


@dataclass(frozen=True, slots=True)
class Draws:
    """What the report knows of the run's own draws."""

    imperfections: Imperfections
    root: int | None
    """SEED's root entropy; None when SEED is not given (the run drew its own)."""


def held_rows(events: Events, layouts: Sequence[Layout], owner: npt.NDArray[np.int16], draws: Draws) -> Bools | None:
    """Whether each event entered during a sensor outage of its store; None when drawn outages are unknown (no SEED)."""
    imperfect = draws.imperfections
    if imperfect.outages_per_day > 0 and draws.root is None:
        return None
    held = np.zeros(len(events), dtype=bool)
    for k, layout in enumerate(layouts):
        model = layout.store.model
        windows = [w for plan in layout.plans for w in outages(imperfect, draws.root or 0, model, plan)]
        if not windows:
            continue
        starts, ends = (np.array(column, dtype=np.int64) for column in zip(*sorted(windows), strict=True))
        rows = np.flatnonzero(owner == k)
        entries = events.entry_us[rows]
        inside = np.searchsorted(starts, entries, side="right") - 1
        held[rows] = (inside >= 0) & (entries < ends[np.maximum(inside, 0)])
    return held


def read_twice(events: Events, groups: VisitGroups) -> Bools:
    """Whether each event is the first copy of a visit read more than once."""
    twice = np.zeros(len(events), dtype=bool)
    same = groups.same_visit
    if same.size > 1:
        twice[groups.rows[:-1][same[1:] & ~same[:-1]]] = True
    return twice


@dataclass(slots=True)
class _Tally:
    days: int = 0
    skipped: int = 0
    visits: int = 0
    duplicated: int = 0
    twice: int = 0
    differ: int = 0
    overtaken: int = 0
    on_time: int = 0


def ground_truth_check(
    events: Events,
    layouts: Sequence[Layout],
    placed: Sequence[Placed],
    whole: Sequence[Bools],
    *,
    twice: Bools,
    lateness: npt.NDArray[np.int64],
    draws: Draws,
) -> Check:
    """Visits read twice against those the run duplicated, overtaken visits against those it sent late or held.

    ``twice`` is :func:`read_twice`; ``lateness`` each event's arrival lateness. Only
    whole days whose distinct visits number the plan's total are compared.
    """
    tally = _Tally()
    root = draws.root or 0
    for layout, where, days in zip(layouts, placed, whole, strict=True):
        day_of = where.cell // layout.slots
        for d in np.flatnonzero(days).tolist():
            plan = layout.plans[d]
            rows = where.rows[day_of == d]
            if rows.size != sum(plan.counts):
                tally.skipped += 1
                continue
            rows = rows[np.argsort(events.entry_us[rows], kind="stable")]
            sending = decide(draws.imperfections, root, layout.store.model, plan, events.entry_us[rows])
            seen_twice = twice[rows]
            overtaken = lateness[rows] > 0
            tally.days += 1
            tally.visits += int(rows.size)
            tally.duplicated += int(np.count_nonzero(sending.duplicated))
            tally.twice += int(np.count_nonzero(seen_twice))
            tally.differ += int(np.count_nonzero(seen_twice != sending.duplicated))
            tally.overtaken += int(np.count_nonzero(overtaken))
            tally.on_time += int(np.count_nonzero(overtaken & ~(sending.late | sending.held)))
    return Check(
        key="ground-truth",
        title="Imperfections against the run's draws",
        description=(
            "With SEED the report draws the run's own decisions for each whole day whose visits are all there: "
            "which visits went late, were held by a sensor outage, or were sent twice. The visits read twice must "
            "be exactly those sent twice, and a visit overtaken in its partition (an event of later entry_time "
            "read before it) must be one sent late or held: an on-time visit goes at its entry_time, so every "
            "event sent before it entered before it."
        ),
        tests=_tests(tally),
        notes=(_note(tally),),
    )


def _note(tally: _Tally) -> str:
    note = (
        f"{tally.days} day(s) compared, {tally.visits:,} visits: {tally.duplicated:,} sent twice by the run, "
        f"{tally.twice:,} read twice; {tally.overtaken:,} overtaken."
    )
    if tally.skipped:
        note += f" {tally.skipped} whole day(s) without the plan's number of visits not compared."
    return note


def _tests(tally: _Tally) -> tuple[Test, ...]:
    if not tally.days:
        reason = "no whole day with all its visits"
        return (Test("the run's duplicates and late visits", "—", skipped=reason),)
    return (
        Test(
            f"visits read twice are those the run sent twice, {tally.days} day(s)",
            f"{tally.differ} of {tally.visits} visits differ",
            condition="none differs",
            passed=tally.differ == 0,
        ),
        Test(
            "every overtaken visit was sent late or held",
            f"{tally.on_time} of {tally.overtaken} overtaken visits sent on time",
            condition="none on time",
            passed=tally.on_time == 0,
        ),
    )
