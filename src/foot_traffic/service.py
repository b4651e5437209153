"""The service loop: plan each day, wait for each arrival to fall due, hand it to the sink.

The loop is the only place that waits. It receives its clock, its sink and its
stop flag, so tests drive it with a manual clock and an in-memory sink. With
several stores, each store's timeline (plan lines and visits) is merged by
instant into one stream.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from foot_traffic.arrivals import day_batches
from foot_traffic.clock import Clock
from foot_traffic.event import Event, batch_events, format_instant
from foot_traffic.grid import local_date
from foot_traffic.plan import DayPlan, Model, plan_day
from foot_traffic.sinks import Sink

log = logging.getLogger(__name__)

PLAN, VISIT = 0, 1
"""Kinds of timeline items; at the same instant a day's plan line comes before its visits."""
PROGRESS_EVERY = 4096
"""Events between two progress reports."""

Item = tuple[int, int, DayPlan | Event]


@dataclass(slots=True)
class Counters:
    """What a run planned and emitted; delivery counts live in the sink."""

    planned: int = 0
    emitted: int = 0
    sensor_emitted: int = 0


@dataclass(frozen=True, slots=True)
class StoreRun:
    """One store's model, and its id when the run has several stores (None for a single store)."""

    model: Model
    store_id: str | None = None


def day_events(root: int, plan: DayPlan, store_id: str | None = None) -> Iterator[Event]:
    """Every event of a day's plan, in entry order."""
    for batch in day_batches(root, plan):
        yield from batch_events(plan, batch, store_id)


def timeline(store: StoreRun, root: int, start_us: int) -> Iterator[Item]:
    """A store's plan lines and visits from ``start_us`` on, in time order, day after day."""
    model = store.model
    date = local_date(start_us, model.tz)
    plan = plan_day(model, root, date, now_us=start_us)
    while True:
        yield max(plan.start_us, start_us), PLAN, plan
        for event in day_events(root, plan, store.store_id):
            yield event.entry_us, VISIT, event
        date += dt.timedelta(days=1)
        plan = plan_day(model, root, date)


class Service:
    """Emits events as their entry times fall due on the clock, until stopped or until ``until_us``."""

    def __init__(
        self,
        stores: Model | Sequence[StoreRun],
        root: int,
        sink: Sink,
        clock: Clock,
        *,
        poll_s: float,
        stop: threading.Event | None = None,
        until_us: int | None = None,
        sensor_topic: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.stores = [StoreRun(stores)] if isinstance(stores, Model) else list(stores)
        self.root = root
        self.sink = sink
        self.clock = clock
        self.poll_s = poll_s
        self.stop = stop or threading.Event()
        self.until_us = until_us
        self.sensor_topic = sensor_topic
        self.progress = progress
        self.counters = Counters()
        self._exits: list[tuple[int, int, Event]] = []
        self._exit_seq = 0

    def items(self) -> Iterator[Item]:
        """The merged timeline of every store from the clock's current instant."""
        start = self.clock.now_us()
        streams = [timeline(store, self.root, start) for store in self.stores]
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=lambda item: (item[0], item[1]))

    def run(self) -> Counters:
        """Run until the stop flag is set or ``until`` is reached; return the counters."""
        log_events = log.isEnabledFor(logging.INFO)
        for instant, _, payload in self.items():
            if not self._advance(instant):
                break
            if isinstance(payload, DayPlan):
                prefix = "" if payload.store_key == 0 and len(self.stores) == 1 else self._store_prefix(payload)
                log.info("%s%s", prefix, payload.log_line())
                self.counters.planned += payload.total
                continue
            self._emit(payload, log_events)
            if self.progress is not None and self.counters.emitted % PROGRESS_EVERY == 0:
                self.progress(instant, self.counters.emitted)
        if self.stop.is_set():
            self._emit_due_exits(self.clock.now_us())
        return self.counters

    def _store_prefix(self, plan: DayPlan) -> str:
        store_id = next(s.store_id for s in self.stores if s.model.store_key == plan.store_key)
        return f"[store {store_id}] " if store_id is not None else ""

    def _emit(self, event: Event, log_events: bool) -> None:
        self.sink.send(event.customer_id, event.encode())
        self.counters.emitted += 1
        if log_events:
            log.info(
                "Emitted customer_id=%s entry_time=%s time_slot=%s",
                event.customer_id,
                format_instant(event.entry_us, event.tz),
                event.time_slot,
            )
        if self.sensor_topic is not None:
            self.sink.send(event.customer_id, event.sensor("entry"), self.sensor_topic)
            self.counters.sensor_emitted += 1
            self._exit_seq += 1
            heapq.heappush(self._exits, (event.exit_us, self._exit_seq, event))

    def _emit_exit(self) -> None:
        _, _, event = heapq.heappop(self._exits)
        assert self.sensor_topic is not None  # noqa: S101 - exits are only queued with a sensor topic
        self.sink.send(event.customer_id, event.sensor("exit"), self.sensor_topic)
        self.counters.sensor_emitted += 1

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
        while True:
            if self.stop.is_set():
                return False
            now = self.clock.now_us()
            if now >= deadline_us:
                return True
            self.sink.poll()
            self.clock.wait(deadline_us, self.poll_s, self.stop)
