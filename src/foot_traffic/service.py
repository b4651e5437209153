"""The service loop: plan each day, wait for each arrival to fall due, hand it to the sink.

The loop is the only place that waits. It receives its clock, its sink and its
stop flag, so tests drive it with a manual clock and an in-memory sink.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from foot_traffic.arrivals import day_batches
from foot_traffic.clock import Clock
from foot_traffic.event import Event, batch_events, format_utc
from foot_traffic.grid import local_date
from foot_traffic.plan import DayPlan, Model, plan_day
from foot_traffic.sinks import Sink

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Counters:
    """What a run planned and emitted; delivery counts live in the sink."""

    planned: int = 0
    emitted: int = 0


def day_events(model: Model, root: int, plan: DayPlan) -> Iterator[Event]:
    """Every event of a day's plan, in entry order."""
    for batch in day_batches(root, plan):
        yield from batch_events(plan, batch)


class Service:
    """Emits events in real time from a start instant onwards, day after day, until stopped."""

    def __init__(
        self,
        model: Model,
        root: int,
        sink: Sink,
        clock: Clock,
        *,
        poll_s: float,
        stop: threading.Event | None = None,
        until_us: int | None = None,
    ) -> None:
        self.model = model
        self.root = root
        self.sink = sink
        self.clock = clock
        self.poll_s = poll_s
        self.stop = stop or threading.Event()
        self.until_us = until_us
        self.counters = Counters()

    def plans(self) -> Iterator[DayPlan]:
        """The plan of the start date from the start instant, then of each following whole day."""
        start = self.clock.now_us()
        date = local_date(start, self.model.tz)
        yield plan_day(self.model, self.root, date, now_us=start)
        while True:
            date += dt.timedelta(days=1)
            yield plan_day(self.model, self.root, date)

    def run(self) -> Counters:
        """Run until the stop flag is set (or ``until`` is reached); return the counters."""
        log_events = log.isEnabledFor(logging.INFO)
        for plan in self.plans():
            if not self._wait_until(plan.start_us):
                break
            log.info("%s", plan.log_line())
            self.counters.planned += plan.total
            for event in day_events(self.model, self.root, plan):
                if not self._wait_until(event.entry_us):
                    return self.counters
                self.sink.send(event.customer_id, event.encode())
                self.counters.emitted += 1
                if log_events:
                    log.info(
                        "Emitted customer_id=%s entry_time=%s time_slot=%s",
                        event.customer_id,
                        format_utc(event.entry_us),
                        event.time_slot,
                    )
            if not self._wait_until(plan.end_us):
                break
        return self.counters

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
