"""The service loop: plan each day, wait for each arrival to fall due, hand it to the sink.

The loop is the only place that waits: it asks the clock how long until the
next deadline and waits on its stop flag, at most ``poll_s`` at a time. It
receives its clock, its sink and its stop flag, so tests drive it with a manual
clock and an in-memory sink.

Visits travel in sampled batches. Whenever the clock can reach the end of a
batch without sleeping (a backfill, or a real-time loop that fell behind), every
event already due is encoded at once (see :mod:`foot_traffic.events.encoding`) and handed
to the sink in one call; otherwise the loop waits for each event in turn and
encodes just that one, so no batch-sized piece of work ever delays a due event.
With several stores (or entry/exit sensor events), the loop takes the stores'
visits window by window, each window ordered once and encoded a chunk at most at a
time (see :mod:`foot_traffic.run.chain`); with sensor events it then sends a window's
visits one by one, each with its entry event and the exits due before it. With
imperfections, or a fleet's changing works, it goes event by event through a
time-ordered merge of encoded batches.

A shard runs only the units of work it owns (see :mod:`foot_traffic.model.units`):
the stores it owns, or, in a run with an end, the dates of each store it owns,
chained in time order into the store's one stream. A fleet member's units change
while it runs: its :class:`~foot_traffic.run.ownership.Ownership`, polled between
events and while the loop waits, starts and stops works in the running merge.
"""

from __future__ import annotations

import gc
import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from foot_traffic.events.encoding import Encoded, EncodedBatch
from foot_traffic.events.event import batch_events, format_instant, sensor_event
from foot_traffic.model.arrivals import CHUNK_TARGET
from foot_traffic.model.imperfections import DUPLICATE, HELD, LATE, NONE, Imperfections
from foot_traffic.model.plan import DayPlan, Model, StoreModel
from foot_traffic.model.units import DEFAULT_PARTITIONS, WHOLE, Shard
from foot_traffic.run.chain import Chain, Plans, Window, live_start
from foot_traffic.run.clock import Clock
from foot_traffic.run.eventlog import BATCH_FROM, EmittedLines, PlanLines, log_emitted, plan_fields
from foot_traffic.run.imperfect import Copy, Day, store_items
from foot_traffic.run.merge import Merge
from foot_traffic.run.ownership import Fixed, Handover, Ownership, Work, shard_owns, shard_works
from foot_traffic.run.positions import Positions, ResumeAfter
from foot_traffic.run.recording import NO_METRICS, Recorder
from foot_traffic.run.sinks import Sink
from foot_traffic.run.timeline import DayItem, Item, Note, Visits, days, timeline

log = logging.getLogger(__name__)

PROGRESS_EVERY = 4096
"""Events between two progress reports on the event-by-event path."""

AHEAD_ABOVE_S = 0.01
"""A wait longer than this first lets a chain do some of its work ahead (a step of it takes a few ms at most)."""
SCALAR_BELOW = 32
"""Fewer due events than this are encoded one by one; more, as one vectorised batch."""


Single = tuple[int, int, DayPlan | EncodedBatch, int, Visits | Day | Copy | None]
"""(instant, kind, payload, index, tag): a plan line (and its Day), or visit ``index`` of an encoded batch.

The tag of a visit is its sampled batch, or with imperfections the copy it is in its day's send order.
"""


@dataclass(slots=True)
class Counters:
    """What a run planned and emitted; delivery counts live in the sink."""

    planned: int = 0
    emitted: int = 0
    sensor_emitted: int = 0
    held: int = 0
    """Copies of visits already entered that a stopped run had not sent: late, held by an outage, or second ones."""


def _one_by_one(items: Iterator[Item]) -> Iterator[Single]:
    """Expand batches into single encoded events: (instant, kind, payload, index in the batch, the batch)."""
    for instant, kind, payload in items:
        if isinstance(payload, DayPlan):
            yield instant, kind, payload, 0, None
        else:
            encoded = payload.encode()
            for i, entry in enumerate(encoded.entries_us.tolist()):
                yield entry, kind, encoded, i, payload


class Service:
    """Emits events as their entry times fall due on the clock, until stopped or until ``until_us``."""

    def __init__(
        self,
        stores: Model | Sequence[StoreModel],
        root: int,
        sink: Sink,
        clock: Clock,
        *,
        poll_s: float,
        stop: threading.Event | None = None,
        until_us: int | None = None,
        sensor_topic: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        start_us: int | None = None,
        resume: Mapping[str | None, ResumeAfter] | None = None,
        metrics: Recorder = NO_METRICS,
        log_fields: bool = False,
        shard: Shard = WHOLE,
        partitions: int = DEFAULT_PARTITIONS,
        positions: Positions | None = None,
        ownership: Ownership | None = None,
        imperfections: Imperfections = NONE,
    ) -> None:
        self.stores = [StoreModel(stores)] if isinstance(stores, Model) else list(stores)
        self._ids = {s.model.store_key: s.store_id for s in self.stores}  # a plan's store, found at once
        self.root = root
        self.sink = sink
        self.clock = clock
        self.poll_s = poll_s
        self.stop = stop or threading.Event()
        self.until_us = until_us
        self.sensor_topic = sensor_topic
        self.progress = progress
        self.start_us = start_us
        self.resume = dict(resume or {})
        self.metrics = metrics
        self.shard = shard
        self.partitions = partitions
        self.positions = positions
        self.counters = Counters()
        self.ownership = ownership
        self._by_id = {store.store_id: store for store in self.stores}
        self._exits: list[tuple[int, int, Encoded, int, int]] = []
        self._ahead: Callable[[], bool] | None = None  # a chain's work ahead, done while the loop waits
        self._exit_seq = 0
        self._log_events = False
        self._log_fields = log_fields
        self.imperfections = imperfections
        self._open: dict[Day, int] = {}  # imperfect days whose plan line went, not all their copies: their stream

    def run(self) -> Counters:
        """Run until the stop flag is set or ``until`` is reached; return the counters."""
        self._log_events = log.isEnabledFor(logging.INFO)
        imperfections = self.imperfections
        start = self.clock.now_us() if self.start_us is None else self.start_us
        ownership = self.ownership
        if ownership is None:
            works = self.owned(start)
            if not works and self.until_us is None:
                log.warning(
                    "Shard %s owns none of the %d store(s); it waits to be stopped", self.shard, len(self.stores)
                )
                self.stop.wait()
            elif len(works) == 1 and self.sensor_topic is None and not imperfections.on:
                self._run_batches(self._timeline(works[0], start), works[0].resume)
            elif not imperfections.on:
                self._run_chain(
                    works, start if self.start_us is not None else live_start(start, works, self.clock.rate)
                )
            else:
                self._run_works(Fixed(works), start)
        else:
            self._run_works(ownership, start)
        if self.stop.is_set():
            now = self.clock.now_us()
            self._emit_due_exits(now)
            self.counters.held = sum(day.held(now) for day in self._open)
        elif self.until_us is not None and self.positions is not None and ownership is None:
            self.positions.reached_end()
        return self.counters

    def owned(self, start_us: int) -> list[Work]:
        """The works of this shard: its stores, each with its dates (None: every date from the start on).

        Without an end a unit is a store; with one (UNTIL), a store and one of its dates
        from the start's to the end's, in the store's own time zone.
        """
        owns = shard_owns(self.shard, self.partitions)
        return shard_works(self.stores, owns, start_us, self.until_us, self.resume.get)

    def _timeline(self, work: Work, start_us: int) -> Iterator[Item]:
        """The items of ``work`` from ``start_us`` on (after its resume position)."""
        return timeline(self._days(work, start_us), self.root, work.store_id)

    def _days(self, work: Work, start_us: int) -> Iterator[DayItem]:
        """The days of ``work`` from ``start_us`` on (after its resume position)."""
        return days(self._by_id[work.store_id], self.root, start_us, work.resume, work.dates, until_us=self.until_us)

    def _run_batches(self, items: Iterator[Item], resume: ResumeAfter | None) -> None:
        for instant, _, payload in items:
            if isinstance(payload, DayPlan):
                if not self._advance(instant):
                    return
                self._log_plans([self._planned(payload, resume, empty=payload.total == 0)])
            elif not self._emit_visits(payload):
                return

    def _run_chain(self, works: list[Work], start_us: int) -> None:
        """Run several works' streams in bulk: the plan lines due at each instant, then windows of visits."""
        stores = [(work, self._days(work, start_us)) for work in works]
        chain = Chain(self.root, stores, self.until_us)
        self._ahead = chain.ahead
        while (instant := chain.next_instant()) is not None:
            if not self._advance(instant):  # the wait does the chain's work ahead
                return
            step = chain.step()
            if isinstance(step, Plans):
                self._log_plans([self._planned(plan, work.resume, empty=plan.total == 0) for plan, work in step.plans])
                gc.freeze()  # a chain's days are many objects: a full collection would scan them all, for nothing
            elif not (self._emit_visits(step) if self.sensor_topic is None else self._emit_with_sensors(step)):
                return
        while self._exits and self._wait_until(self._exits[0][0]):  # visits that end before UNTIL exit before it
            self._emit_exit()
        self._finished(chain.live())

    def _run_works(self, ownership: Ownership, start_us: int) -> None:
        """Run the works ``ownership`` gives, merged in time order, taking its changes at least every poll interval.

        The loop ends when stopped, or, once nothing is left before UNTIL, when the ownership is finished.
        """
        merge: Merge[Single] = Merge()
        fresh: set[int] = set()  # streams whose first event is still to come: the hand-over ends there
        next_poll = 0.0
        while not self.stop.is_set():
            if ownership.urgent() or time.monotonic() >= next_poll:  # urgent: no event may follow an abort unseen
                self._take(ownership.poll(), merge, fresh, start_us)
                next_poll = time.monotonic() + self.poll_s
            head = merge.peek()
            item_at = None if head is None or self._past_until(head[0]) else head[0]
            exit_at = None if not self._exits or self._past_until(self._exits[0][0]) else self._exits[0][0]
            if item_at is None and exit_at is None:
                if head is not None:  # the streams left all lie past UNTIL: their units are complete
                    self._finish(merge)
                if ownership.finished():
                    return
                self.sink.poll()
                self.stop.wait(self.poll_s)
                next_poll = 0.0
                continue
            to_exit = exit_at is not None and (item_at is None or exit_at <= item_at)
            deadline = exit_at if to_exit else item_at
            assert deadline is not None  # noqa: S101 - one of the two is set
            sleep_s = self.clock.sleep_time(deadline)
            self.metrics.clock_read()
            if sleep_s > 0:
                self.sink.poll()
                self.stop.wait(min(sleep_s, self.poll_s, threading.TIMEOUT_MAX))
            elif to_exit:
                self._emit_exit()
            else:
                work, token, (instant, _, payload, index, visits) = merge.pop()
                if isinstance(payload, DayPlan):
                    if isinstance(visits, Day):  # an imperfect day: its visits before UNTIL may be none
                        self._log_plans([self._planned(payload, self._opened(visits, token), empty=visits.count == 0)])
                    else:
                        self._log_plans([self._planned(payload, work.resume, empty=payload.total == 0)])
                    continue
                if token in fresh:
                    fresh.discard(token)
                    ownership.started(work)
                self._event(instant, payload, index, visits, token)

    def _past_until(self, instant: int) -> bool:
        # an imperfect stream ends by itself: its late copies of visits before UNTIL go after it
        return self.until_us is not None and instant >= self.until_us and not self.imperfections.on

    def _items(self, work: Work, start_us: int) -> Iterator[Single]:
        """The items of ``work`` from ``start_us`` on, after its resume position, in the order they are sent."""
        if not self.imperfections.on:
            return _one_by_one(self._timeline(work, start_us))
        store = self._by_id[work.store_id]
        return store_items(
            store, self.root, self.imperfections, start_us, resume=work.resume, dates=work.dates, until_us=self.until_us
        )

    def _opened(self, day: Day, token: int) -> ResumeAfter | None:
        """Follow a day whose plan line goes; where it resumes when some of it went before a restart."""
        if day.count > day.sent:
            self._open[day] = token
        if day.sent == 0:
            return None
        return ResumeAfter(day.plan.date, int(day.ranks[day.sent - 1]))

    def _take(self, handover: Handover, merge: Merge[Single], fresh: set[int], start_us: int) -> None:
        """Stop the works ``handover`` stops (with their exits to come), then start those it starts."""
        if not handover:
            return
        dropped = {merge.stop(work) for work in (*handover.stop, *handover.start)}
        if self._open and dropped - {None}:
            self._open = {day: t for day, t in self._open.items() if t not in dropped}
        if self._exits and dropped - {None}:
            self._exits = [e for e in self._exits if e[4] not in dropped]
            heapq.heapify(self._exits)
        fresh -= {t for t in dropped if t is not None}
        for work in handover.start:
            fresh.add(merge.start(work, self._items(work, start_us)))

    def _finish(self, merge: Merge[Single]) -> None:
        """Drop every stream, its next events past UNTIL: each of their dated units is complete where it stands."""
        works = merge.works()
        for work in works:
            merge.stop(work)
        self._finished(works)

    def _finished(self, works: list[Work]) -> None:
        """Streams stopped with their next events past UNTIL: each of their dated units is complete where it stands."""
        for work in works:
            if self.positions is not None and work.dates is not None:
                for date in work.dates:
                    self.positions.finish(work.store_id, date, work.resume)

    def _event(
        self, instant: int, batch: EncodedBatch, index: int, tag: Visits | Day | Copy | None, token: int
    ) -> None:
        """Send visit ``index`` of ``batch`` (and its entry sensor event), its position noted first."""
        flags = self._note_copy(tag) if isinstance(tag, Copy) else 0
        if isinstance(tag, Visits):
            self._note(tag.notes(index, index + 1))
        self._send(batch, index, index + 1, timely=not flags)
        if flags:  # a late, held or second copy: counted apart, not as a visit late on the clock or entering twice
            late, held, twin = bool(flags & LATE), bool(flags & HELD), bool(flags & DUPLICATE)
            self.metrics.imperfect(batch, index, late=late, held=held, duplicate=twin)
        if self.sensor_topic is not None:
            self._entered(batch, index, token)
        if self.progress is not None and self.counters.emitted % PROGRESS_EVERY == 0:
            self.progress(instant, self.counters.emitted)

    def _entered(self, batch: Encoded, index: int, token: int) -> None:
        """Send visit ``index``'s entry sensor event and schedule its exit (``token``: its stream, -1 for a chain)."""
        self._sensor("entry", batch, index)
        self._exit_seq += 1
        heapq.heappush(self._exits, (int(batch.exits_us[index]), self._exit_seq, batch, index, token))

    def _emit_visits(self, visits: Visits | Window) -> bool:
        """Send a batch (or a window) as its events fall due, all at once where the clock allows; False when stopping.

        A window's few due events are encoded together too: its events are of several stores.
        """
        entries = visits.entries_us
        n = len(entries)
        end = n if self.until_us is None else int(np.searchsorted(entries, self.until_us, side="left"))
        i = 0
        while i < end:
            if self.stop.is_set():
                return False
            now = self.clock.reach(int(entries[end - 1]))
            due = min(end, int(np.searchsorted(entries, now, side="right")))
            if isinstance(visits, Window):  # an hour of a chain's visits goes a chunk at a time: memory stays bounded
                due = min(due, i + CHUNK_TARGET)
            if due > i and isinstance(visits, Visits) and due - i < SCALAR_BELOW:
                self._send_scalar(visits, i, due)
            elif due > i:
                if self.positions is not None:
                    self._note(visits.notes(i, due))
                self._send(visits.encode(i, due), 0, due - i)
            elif not self._wait_until(int(entries[i])):
                return False
            else:
                continue
            i = due
            if self.progress is not None:
                self.progress(int(entries[due - 1]), self.counters.emitted)
        return end == n

    def _emit_with_sensors(self, window: Window) -> bool:
        """Send a window's visits one by one, each with its entry event, the exits due before each; False if stopping.

        The order is the merge's: exits due by a visit's entry (by exit, then by visit) go first.
        """
        for low in range(0, len(window), CHUNK_TARGET):  # encoded a chunk at a time: memory stays bounded
            batch = window.encode(low, min(low + CHUNK_TARGET, len(window)))
            for i, entry in enumerate(batch.entries_us.tolist()):
                if not self._advance(entry):
                    return False
                if self.positions is not None:
                    self._note(window.notes(low + i, low + i + 1))
                self._send(batch, i, i + 1)
                self._entered(batch, i, -1)
                if self.progress is not None and self.counters.emitted % PROGRESS_EVERY == 0:
                    self.progress(entry, self.counters.emitted)
        return True

    def _note_copy(self, copy: Copy) -> int:
        """Note a copy's position in its day's send order, follow its day; return its LATE, HELD, DUPLICATE flags."""
        day = copy.day
        if self.positions is not None:
            self.positions.note(day.store_id, day.plan.date, copy.rank, done=copy.last)
        day.sent += 1
        if copy.last:
            self._open.pop(day, None)
        return day.sending.flags(copy.rank)

    def _note(self, notes: list[Note]) -> None:
        """Note units' positions before their events up to those positions go to the sink."""
        if self.positions is not None:
            for store_id, date, index, done in notes:
                self.positions.note(store_id, date, index, done=done)

    def _send_scalar(self, visits: Visits, start: int, stop: int) -> None:
        """Encode and send a few due events one by one (same bytes as the vectorised encoder)."""
        store_id, slot = visits.store_id, visits.plan.labels[visits.batch.slot]
        for i, event in enumerate(batch_events(visits.plan, visits.batch.slice(start, stop), store_id), start):
            self._note(visits.notes(i, i + 1))  # each send may commit: the position must not lead the events sent
            self.sink.send(event.customer_id, event.encode(), store_id, slot)
            self.counters.emitted += 1
            if self._log_events:
                entry_time = format_instant(event.entry_us, event.tz)
                log_emitted(log, event.customer_id, entry_time, slot, store_id, with_fields=self._log_fields)
        self.metrics.emitted_sampled(store_id, slot, visits.batch, start, stop)

    def _send(self, batch: Encoded, start: int, stop: int, *, timely: bool = True) -> None:
        self.sink.send_batch(batch, start, stop)
        self.counters.emitted += stop - start
        if timely:
            self.metrics.emitted(batch, start, stop)
        if not self._log_events:
            return
        if stop - start >= BATCH_FROM:  # one record, one handler write, for the whole due batch
            log.info(EmittedLines(batch, start, stop))
            return
        for i in range(start, stop):
            store_id, slot = batch.origin(i)
            log_emitted(log, batch.key(i).decode(), batch.entry_time(i), slot, store_id, with_fields=self._log_fields)

    def _log_plans(self, lines: list[tuple[str, dict[str, object]]]) -> None:
        """Log plan lines due at one instant: one record, or one record for them all (at INFO only)."""
        if not self._log_events:
            return
        if len(lines) == 1:
            log.info("%s", lines[0][0], extra=lines[0][1])
        else:
            log.info(PlanLines(lines))

    def _planned(self, plan: DayPlan, resumed: ResumeAfter | None, *, empty: bool) -> tuple[str, dict[str, object]]:
        """Count a day's plan and note its unit's start (``empty``: nothing of it to send, it is done); its log line."""
        prefix = ""
        store_id = self.stores[0].store_id
        if len(self.stores) > 1:
            store_id = self._ids[plan.store_key]
            prefix = f"[store {store_id}] "
        self.counters.planned += plan.total
        self.metrics.planned(store_id, plan.labels, plan.counts)
        if self.positions is not None and (resumed is None or resumed.date != plan.date):
            self.positions.note(store_id, plan.date, -1, done=empty)
        return (prefix + plan.log_line(), plan_fields(plan, store_id)) if self._log_events else ("", {})

    def _sensor(self, kind: str, batch: Encoded, index: int) -> None:
        assert self.sensor_topic is not None  # noqa: S101 - only called with a sensor topic
        instant = int(batch.entries_us[index] if kind == "entry" else batch.exits_us[index])
        customer_id = batch.key(index).decode()
        store_id = batch.origin(index)[0]
        value = sensor_event(kind, customer_id, format_instant(instant, batch.zone(index)), store_id)
        self.sink.send_to(self.sensor_topic, customer_id, value)
        self.counters.sensor_emitted += 1
        self.metrics.sensor_emitted(store_id, kind)

    def _emit_exit(self) -> None:
        _, _, batch, index, _ = heapq.heappop(self._exits)
        self._sensor("exit", batch, index)

    def _emit_due_exits(self, now_us: int) -> None:
        """On stop, send the exits already due (and before ``until``), and no more."""
        limit = now_us if self.until_us is None else min(now_us, self.until_us - 1)
        while self._exits and self._exits[0][0] <= limit:
            self._emit_exit()

    def _advance(self, deadline_us: int) -> bool:
        """Emit the exits due before ``deadline_us``, then wait for it; False if stopped or past ``until``."""
        while self._exits and self._exits[0][0] <= deadline_us:
            if not self._wait_until(self._exits[0][0]):
                return False
            self._emit_exit()
        return self._wait_until(deadline_us)

    def _wait_until(self, deadline_us: int) -> bool:
        """Wait until the clock reaches ``deadline_us``; False if stopped or past ``until`` first."""
        if self.until_us is not None and deadline_us >= self.until_us:
            return False
        while not self.stop.is_set():
            sleep_s = self.clock.sleep_time(deadline_us)
            self.metrics.clock_read()
            if sleep_s <= 0:
                return True
            self.sink.poll()
            if sleep_s > AHEAD_ABOVE_S and self._ahead is not None and self._ahead():
                gc.freeze()  # what it made lives on: a full collection would scan it all, for nothing
                continue  # a little of the work ahead done: look at the clock again
            # the one wait of the run: a stop signal wakes it at once; beyond TIMEOUT_MAX wait() raises
            self.stop.wait(min(sleep_s, self.poll_s, threading.TIMEOUT_MAX))
        return False
