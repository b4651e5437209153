"""Real-world imperfections: when and how often each visit's event is sent, never what it says.

The base events stay the same bytes with the same keys; this module only decides,
per (store, date), which visits go late and by how much, which go twice, and
which a sensor outage holds back until it ends. Every decision comes from random
streams of its own (:mod:`foot_traffic.model.randomness`: LATE and DUPLICATE per
slot, OUTAGES and BURST per day), so it is the same at any speed, sink, shard or
worker count, and through a restart.

The laws and their composition, for a visit entering at ``e``:

* late (probability LATE_EVENTS_PCT): delay d = min(X, LATE_DELAY_MAX_SECONDS), X exponential
  of mean LATE_DELAY_MEAN_SECONDS, in whole microseconds (the cap is a mass at the max, not a
  truncated law);
* held: ``e`` inside a sensor outage [start, end) of its store and date; the outages of a day
  are Poisson(SENSOR_OUTAGES_PER_DAY) in number, each starting uniformly over the store's
  opening hours of the day and lasting an exponential time of mean SENSOR_OUTAGE_MEAN_MINUTES,
  cut at the day's end; overlapping outages make one;
* first send = max(e, end of the outage holding it, e + d for a late one);
* duplicated (probability DUPLICATE_EVENTS_PCT): a second copy at first send + U, U uniform on
  the whole microseconds of [0, DUPLICATE_DELAY_MAX_SECONDS].

A day's copies are sent in order of (send instant, burst order, copy), the burst order being
the visit's index, or for held visits with SENSOR_OUTAGE_ORDER=shuffled a seeded permutation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.model import randomness
from foot_traffic.model.arrivals import Batch, day_batches
from foot_traffic.model.grid import local_minute_to_us
from foot_traffic.model.plan import DayPlan, Model, opening

OUTAGE_ORDERS = ("in-order", "shuffled")
"""Values of SENSOR_OUTAGE_ORDER."""
US_PER_S = 1_000_000

LATE, HELD, DUPLICATE = 1, 2, 4
"""Flags of a sent copy: its visit goes late, was held by an outage; the copy is the second one."""

Windows = tuple[tuple[int, int], ...]
"""Outage windows (start, end): local minutes of the day (end up to 1440) as written, epoch microseconds once placed."""


@dataclass(frozen=True, slots=True)
class Imperfections:
    """The laws of the imperfections (each off at its zero) and the explicit outages of the stores and dates."""

    late_pct: float = 0.0
    late_mean_s: float = 300.0
    late_max_s: float = 3600.0
    duplicate_pct: float = 0.0
    duplicate_max_s: float = 60.0
    outages_per_day: float = 0.0
    outage_mean_min: float = 30.0
    shuffled: bool = False

    @property
    def drawn(self) -> bool:
        """Whether any law is on (explicit outages aside)."""
        return self.late_pct > 0 or self.duplicate_pct > 0 or self.outages_per_day > 0

    @property
    def spill_us(self) -> int:
        """The longest a copy can be sent after its day's end: the largest delay plus the largest gap to its twin."""
        late = self.late_max_s if self.late_pct > 0 else 0.0
        twin = self.duplicate_max_s if self.duplicate_pct > 0 else 0.0
        return math.ceil((late + twin) * US_PER_S)


NONE = Imperfections()
"""No imperfection: every event once, at its entry_time."""


@dataclass(frozen=True, slots=True)
class Sending:
    """How a day's visits (in entry order) are sent: per visit its flags, per copy its instant, in send order."""

    entries_us: npt.NDArray[np.int64]
    slots: npt.NDArray[np.int64]
    late: npt.NDArray[np.bool_]
    duplicated: npt.NDArray[np.bool_]
    held: npt.NDArray[np.bool_]
    outages: tuple[tuple[int, int], ...]
    """The day's outage windows [start, end) in epoch microseconds, sorted, disjoint."""
    send_us: npt.NDArray[np.int64]
    """Per copy, in send order: the instant it goes."""
    visit: npt.NDArray[np.int64]
    """Per copy, in send order: the index of its visit among the day's."""
    twin: npt.NDArray[np.bool_]
    """Per copy, in send order: whether it is the second copy of its visit."""
    slot_count: int
    """The number of slots of the day's grid."""

    def __len__(self) -> int:
        """The number of copies."""
        return int(self.send_us.shape[0])

    def flags(self, rank: int) -> int:
        """The LATE, HELD and DUPLICATE flags of copy ``rank``."""
        v = int(self.visit[rank])
        return LATE * bool(self.late[v]) | HELD * bool(self.held[v]) | DUPLICATE * bool(self.twin[rank])

    def due(self, now_us: int) -> int:
        """How many copies belong to visits that entered by ``now_us``: every copy sent by then is one of them."""
        entered = int(np.searchsorted(self.entries_us, now_us, side="right"))
        return entered + int(np.count_nonzero(self.duplicated[:entered]))

    def per_slot(self, flags: npt.NDArray[np.bool_]) -> list[int]:
        """How many visits of each slot ``flags`` marks."""
        return [int(c) for c in np.bincount(self.slots[flags], minlength=self.slot_count)]

    def held_in(self, window: tuple[int, int]) -> int:
        """How many visits the outage ``window`` holds."""
        low, high = np.searchsorted(self.entries_us, window, side="left")
        return int(high - low)


def drawn_outages(imp: Imperfections, root: int, model: Model, plan: DayPlan) -> list[tuple[int, int]]:
    """The day's drawn outages [start, end) in epoch microseconds, in the order drawn, each cut at the day's end."""
    if imp.outages_per_day <= 0:
        return []
    rng = randomness.generator(root, plan.store_key, randomness.OUTAGES, plan.date.toordinal())
    count = int(rng.poisson(imp.outages_per_day))
    low, high = opening(plan.date, model.calendar.rule(plan.date).hours, plan.bounds, model.tz)
    starts = low + np.floor(rng.random(count) * (high - low)).astype(np.int64)
    lengths = np.round(rng.exponential(imp.outage_mean_min * 60 * US_PER_S, count)).astype(np.int64)
    return [(int(s), int(min(s + n, plan.end_us))) for s, n in zip(starts, lengths, strict=True)]


def outages(imp: Imperfections, root: int, model: Model, plan: DayPlan, explicit: Windows = ()) -> Windows:
    """The day's outage windows in epoch microseconds: drawn and explicit, merged where they overlap or touch."""
    windows = [
        (local_minute_to_us(plan.date, a, model.tz), min(local_minute_to_us(plan.date, b, model.tz), plan.end_us))
        for a, b in explicit
    ]
    windows += drawn_outages(imp, root, model, plan)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(w for w in windows if w[1] > w[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _per_slot(
    imp_pct: float, root: int, plan: DayPlan, purpose: int, *, law: str, scale: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Per visit (in entry order): chosen with probability ``imp_pct``, and a draw of ``law`` at ``scale``.

    Each slot draws from its own stream: first one uniform per visit, then one draw of the law per visit.
    """
    chosen, draws = [], []
    for slot, count in enumerate(plan.counts):
        if count <= 0:
            continue
        rng = randomness.generator(root, plan.store_key, purpose, plan.date.toordinal(), slot)
        chosen.append(rng.random(count) < imp_pct)
        draws.append(rng.exponential(scale, count) if law == "exponential" else rng.random(count) * scale)
    if not chosen:
        return np.zeros(0, dtype=np.bool_), np.zeros(0)
    return np.concatenate(chosen), np.concatenate(draws)


def decide(
    imp: Imperfections,
    root: int,
    model: Model,
    plan: DayPlan,
    entries_us: npt.NDArray[np.int64],
    *,
    explicit: Windows = (),
) -> Sending:
    """Decide how the day's visits (their entry instants, in entry order) are sent."""
    n = int(entries_us.shape[0])
    slots = np.repeat(np.arange(len(plan.counts), dtype=np.int64), plan.counts)
    windows = outages(imp, root, model, plan, explicit)
    first = entries_us.copy()
    held = np.zeros(n, dtype=np.bool_)
    if windows:
        starts = np.array([w[0] for w in windows], dtype=np.int64)
        ends = np.array([w[1] for w in windows], dtype=np.int64)
        inside = np.searchsorted(starts, entries_us, side="right") - 1
        held = (inside >= 0) & (entries_us < ends[np.maximum(inside, 0)])
        first = np.where(held, ends[np.maximum(inside, 0)], first)
    late = np.zeros(n, dtype=np.bool_)
    if imp.late_pct > 0:
        late, delays = _per_slot(imp.late_pct, root, plan, randomness.LATE, law="exponential", scale=imp.late_mean_s)
        delay_us = np.round(np.minimum(delays, imp.late_max_s) * US_PER_S).astype(np.int64)
        first = np.where(late, np.maximum(first, entries_us + delay_us), first)
    duplicated = np.zeros(n, dtype=np.bool_)
    second = first
    if imp.duplicate_pct > 0:
        duplicated, gaps = _per_slot(imp.duplicate_pct, root, plan, randomness.DUPLICATE, law="uniform", scale=1.0)
        gap_us = np.floor(gaps * (round(imp.duplicate_max_s * US_PER_S) + 1)).astype(np.int64)
        second = first + gap_us
    order_key = np.arange(n, dtype=np.int64)
    if imp.shuffled and held.any():
        burst = randomness.generator(root, plan.store_key, randomness.BURST, plan.date.toordinal()).permutation(n)
        order_key = np.where(held, burst, order_key)
    twins = np.flatnonzero(duplicated)
    send = np.concatenate([first, second[twins]])
    visit = np.concatenate([np.arange(n, dtype=np.int64), twins])
    twin = np.concatenate([np.zeros(n, dtype=np.bool_), np.ones(twins.shape[0], dtype=np.bool_)])
    order = np.lexsort((twin, order_key[visit], send))
    return Sending(
        entries_us, slots, late, duplicated, held, windows, send[order], visit[order], twin[order], len(plan.counts)
    )


def entries_of(batches: list[Batch]) -> npt.NDArray[np.int64]:
    """The entry instants of a day's batches, in entry order."""
    return np.concatenate([b.entries_us for b in batches]) if batches else np.zeros(0, dtype=np.int64)


def day_sending(imp: Imperfections, root: int, model: Model, plan: DayPlan) -> Sending:
    """How the day's visits are sent: sampled, then decided (what ``plan --json`` shows)."""
    return decide(imp, root, model, plan, entries_of(list(day_batches(root, plan))))
