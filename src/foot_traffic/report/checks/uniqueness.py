"""The uniqueness check: every in-range event under its own customer_id."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from foot_traffic.events.event import format_instant
from foot_traffic.report.checks.expected import I64, PLACE_BLOCK, Bools
from foot_traffic.report.checks.results import Check, Test
from foot_traffic.report.document import Table
from foot_traffic.report.inputs.events import Events

DUPLICATE_EXAMPLES = 5
"""Customer ids listed of each kind of duplicate (those of the earliest entries)."""


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


@dataclass(frozen=True, slots=True)
class VisitGroups:
    """The in-range events whose id may repeat, sorted by id, then visit, then the order they were read in."""

    rows: I64
    entry_us: npt.NDArray[np.integer]
    """Each row's entry instant (epoch µs)."""
    same_id: Bools
    """Whether each row has the id of the row before it."""
    same_visit: Bools
    """Whether each row is also the visit of the row before it (same id, entry, duration, store and slot)."""
    starts: I64
    """Each id's first row."""
    sizes: I64
    """Each id's number of events."""
    visits: I64
    """Each id's number of different visits."""


def visit_groups(events: Events, in_range: Bools) -> VisitGroups:
    """Sort the rows that may share an id into groups of one id, and tell repeated visits from different ones.

    Within a visit the copies are in the order they were read, so the first copy read comes first.
    """
    rows = _shared_rows(events.customer[:, 0], in_range)
    fields: tuple[npt.NDArray[np.integer], ...] = (
        events.local_day,
        events.label,
        events.store,
        events.duration_min,
        events.entry_us,
    )
    high, low = events.customer[rows, 0], events.customer[rows, 1]
    rows = rows[np.lexsort((events.order[rows], *(f[rows] for f in fields), low, high))]  # id, visit, read order
    high, low = events.customer[rows, 0], events.customer[rows, 1]
    visit = [f[rows] for f in fields]
    same_id = np.zeros(rows.size, dtype=bool)
    same_id[1:] = (high[1:] == high[:-1]) & (low[1:] == low[:-1])
    same_visit = same_id.copy()
    for column in visit:
        same_visit[1:] &= column[1:] == column[:-1]
    starts = np.flatnonzero(~same_id)
    sizes = np.diff(np.append(starts, rows.size))
    visits = np.add.reduceat((~same_visit).astype(np.int64), starts) if starts.size else starts
    return VisitGroups(rows, visit[-1], same_id, same_visit, starts, sizes, visits)


def _examples(events: Events, groups: VisitGroups, several: I64) -> list[tuple[str, ...]]:
    """Table rows of the first DUPLICATE_EXAMPLES ids of each kind (repeats, then collisions), earliest entry first."""
    starts, sizes, visits = groups.starts, groups.sizes, groups.visits
    earliest = np.minimum.reduceat(groups.entry_us, starts) if starts.size else starts
    examples: list[tuple[str, ...]] = []
    for collision in (False, True):
        picked = several[(visits[several] > 1) == collision]
        for g in picked[np.argsort(earliest[picked], kind="stable")][:DUPLICATE_EXAMPLES].tolist():
            at = slice(int(starts[g]), int(starts[g] + sizes[g]))
            key = events.customer[groups.rows[at][0]].tobytes()
            entries = groups.entry_us[at][~groups.same_visit[at]].tolist()
            times = ", ".join(format_instant(us) for us in entries[:3]) + (", …" if len(entries) > 3 else "")
            kind = "different visits" if collision else "same visit repeated"
            examples.append((events.customer_id(key), kind, str(int(sizes[g])), str(int(visits[g])), times))
    return examples


def repeated_rows(groups: VisitGroups) -> I64:
    """The rows that repeat a visit read before them (every copy but the first read)."""
    return groups.rows[groups.same_visit]


def _repeat_tests(groups: VisitGroups, repeated: int, visits: int, duplicate_pct: float) -> tuple[Test, ...]:
    """No repeated visit; or, with DUPLICATE_EVENTS_PCT, at most two copies of one and a binomial number of them."""
    if duplicate_pct <= 0:
        return (
            Test(
                "no visit read twice (same customer_id, entry_time, duration, store and slot)",
                f"{repeated} repeated event(s)",
                condition="none repeated",
                passed=repeated == 0,
            ),
        )
    copies = np.add.reduceat(groups.same_visit.astype(np.int64), groups.starts) if groups.starts.size else None
    most = 1 + (int(copies.max()) if copies is not None else 0)
    binomial = stats.binomtest(repeated, max(visits, 1), duplicate_pct)
    return (
        Test(
            "no visit read more than twice (same customer_id, entry_time, duration, store and slot)",
            f"at most {most} cop{'y' if most == 1 else 'ies'} of a visit",
            condition="≤ 2 copies",
            passed=most <= 2,
        ),
        Test(
            f"repeated visits within DUPLICATE_EVENTS_PCT={duplicate_pct:g} (binomial)",
            f"{repeated} of {visits} visits repeated (expected {duplicate_pct * visits:.1f})",
            p_value=float(binomial.pvalue),
        ),
    )


def uniqueness_check(events: Events, in_range: Bools, groups: VisitGroups, duplicate_pct: float = 0.0) -> Check:
    """Every in-range event under its own customer_id, or repeated as often as DUPLICATE_EVENTS_PCT says.

    ``groups`` are :func:`visit_groups` of the same events and range.
    """
    extra = int(np.count_nonzero(groups.same_id))
    repeated = int(np.count_nonzero(groups.same_visit))
    shared = extra - repeated
    several = np.flatnonzero(groups.sizes > 1)
    examples = _examples(events, groups, several)
    in_range_count = int(np.count_nonzero(in_range))
    tests = (
        *_repeat_tests(groups, repeated, in_range_count - repeated, duplicate_pct),
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
            + (
                f" With DUPLICATE_EVENTS_PCT={duplicate_pct:g} the producer sends that fraction of the visits "
                "twice: a visit may be read twice (same key, same fields), and the number of visits repeated "
                "must fit a binomial law of that fraction of the distinct visits; a third copy, or different "
                "visits under one id, still fail."
                if duplicate_pct > 0
                else ""
            )
        ),
        tests=tests,
        tables=(Table(header, tuple(examples), caption),) if examples else (),
        notes=(note,),
    )
