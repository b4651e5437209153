"""A store's timeline: its plan lines and sampled batches from the run's start on, in time order, day after day.

Each day is planned when the timeline reaches it and sampled a batch at a time, so a
store's stream holds at most one batch ahead of what the loop has sent.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foot_traffic.events.encoding import EncodedBatch, encode_batch
from foot_traffic.events.event import Event, batch_events
from foot_traffic.model.arrivals import Batch, day_batches
from foot_traffic.model.grid import days_from, local_date, local_minute_to_us
from foot_traffic.model.plan import DayPlan, StoreModel, plan_day
from foot_traffic.run.merge import PLAN, VISIT
from foot_traffic.run.positions import ResumeAfter

Note = tuple[str | None, dt.date, int, bool]
"""A unit's position to note before events go to the sink: (store, date, index of its last event, done)."""


@dataclass(frozen=True, slots=True)
class Visits:
    """A sampled batch of one store's visits, with the plan it belongs to."""

    plan: DayPlan
    batch: Batch
    store_id: str | None
    first: int = 0
    """The index of the batch's first visit among the day's."""

    def encode(self, start: int = 0, stop: int | None = None) -> EncodedBatch:
        """Encode visits [start, stop) at once."""
        part = self.batch if start == 0 and stop is None else self.batch.slice(start, stop or len(self.batch))
        return encode_batch(self.plan, part, self.store_id)

    @property
    def entries_us(self) -> npt.NDArray[np.int64]:
        """The visits' entry instants, in order."""
        return self.batch.entries_us

    def notes(self, start: int, stop: int) -> list[Note]:
        """The position to note before visits [start, stop) go: the unit's last visit among them."""
        index = self.first + stop - 1
        return [(self.store_id, self.plan.date, index, index + 1 == self.plan.total)]


Item = tuple[int, int, DayPlan | Visits]
"""(instant, kind, payload): a plan line due at its day's start, or a batch due at its first entry."""


DayItem = tuple[int, Callable[[], DayPlan], int]
"""(instant, plan, skip): a day's plan line due at the instant (the plan made when called), and how many of its
first visits were sent before."""


def days(
    store: StoreModel,
    root: int,
    start_us: int,
    resume: ResumeAfter | None = None,
    dates: Iterable[dt.date] | None = None,
    *,
    until_us: int | None = None,
) -> Iterator[DayItem]:
    """A store's days from ``start_us`` on (or of ``dates`` only), each to plan when its plan line is due.

    ``start_us`` is the run's start (it decides the first day's mid-day plan); with
    ``resume``, the sequence picks up right after the event at (date, index). It ends
    before a day that begins at or after ``until_us``: that day is never planned.
    """
    model = store.model
    first = _local_date(start_us, model.tz)
    for date in days_from(first) if dates is None else dates:
        if resume is not None and date < resume.date:
            continue
        instant = max(_day_start(date, model.tz), start_us)  # the day's start, or the run's
        if until_us is not None and instant >= until_us:
            return
        skip = resume.index + 1 if resume is not None and date == resume.date else 0
        yield instant, functools.partial(plan_day, model, root, date, now_us=start_us if date == first else None), skip


@functools.lru_cache(maxsize=64)
def _local_date(instant_us: int, tz: dt.tzinfo) -> dt.date:
    """The local date of an instant (a chain's stores share the run's start and a few zones)."""
    return local_date(instant_us, tz)


@functools.lru_cache(maxsize=4096)
def _day_start(date: dt.date, tz: dt.tzinfo) -> int:
    """The instant a date begins in a zone (the stores of a chain share a few zones)."""
    return local_minute_to_us(date, 0, tz)


def timeline(days_of: Iterable[DayItem], root: int, store_id: str | None) -> Iterator[Item]:
    """A store's plan lines and batches, in time order, day after day, from its :func:`days`."""
    for instant, planned, skipped in days_of:
        plan = planned()
        yield instant, PLAN, plan
        index, skip = 0, skipped
        for batch in day_batches(root, plan):
            if skip < len(batch):
                part = batch.slice(skip, len(batch)) if skip else batch
                yield int(part.entries_us[0]), VISIT, Visits(plan, part, store_id, index + skip)
            index += len(batch)
            skip = max(0, skip - len(batch))


def day_events(root: int, plan: DayPlan, store_id: str | None = None) -> Iterator[Event]:
    """Every event of a day's plan, in entry order, as Event objects (the reference path)."""
    for batch in day_batches(root, plan):
        yield from batch_events(plan, batch, store_id)
