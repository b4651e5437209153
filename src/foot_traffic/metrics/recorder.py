"""The Prometheus recorder: counts by store and slot, occupancy, lateness and health, read at scrape time.

Counting is per hand-over, not per event: a batch costs one addition, and the
occupancy and lateness bookkeeping a few numpy operations. Values are plain
integers and arrays read by a collector when Prometheus scrapes, on the
server's thread; the loop never touches a prometheus_client object.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from foot_traffic.events.encoding import Encoded, EncodedBatch
from foot_traffic.metrics.health import Health
from foot_traffic.metrics.occupancy import Occupancy
from foot_traffic.model.arrivals import Batch
from foot_traffic.model.grid import US_PER_MINUTE, US_PER_SECOND
from foot_traffic.run.clock import Clock
from foot_traffic.run.recording import Tally

if TYPE_CHECKING:
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

LATENESS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds in seconds of the emission-lateness histogram's buckets (plus +Inf)."""
HANDOVER_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Upper bounds in seconds of the fleet hand-over histogram's buckets (plus +Inf)."""
LABELS = ["store", "slot"]
"""Labels of the visit counters: the event's store_id ("" without one) and its time_slot."""

_IMPERFECT = (
    ("late", "Visit events sent late (LATE_EVENTS_PCT): their first and second copies."),
    ("duplicate", "Second copies of visit events (DUPLICATE_EVENTS_PCT)."),
    ("held", "Visit events a sensor outage held until its end, their second copies included."),
)
"""The counters of imperfect copies: their kind and meaning."""
_BOUNDS = np.array(LATENESS_BUCKETS)
_BUCKET_NAMES = [f"{b:g}" for b in LATENESS_BUCKETS] + ["+Inf"]
_HANDOVER_NAMES = [f"{b:g}" for b in HANDOVER_BUCKETS] + ["+Inf"]


class Metrics:
    """The recorder of a run with METRICS_PORT: counts, occupancy, lateness and health, read at scrape time.

    Reports come from the loop's thread (delivery reports too: the producer
    serves them in ``poll`` and ``flush``); ``collect`` runs on the server's.
    Counters are plain integers with a single writer; what a scrape must see
    whole (new labels, the rings, the histogram) changes under a lock.
    """

    enabled = True

    def __init__(self, health: Health) -> None:
        self.health = health
        from prometheus_client.registry import CollectorRegistry  # noqa: PLC0415 - a run without metrics skips it

        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str], Tally] = {}
        self._sensors: dict[tuple[str, str], int] = {}
        self._imperfect: dict[tuple[str, str], int] = {}
        self._occupancy: dict[str, Occupancy] = {}
        self._lateness = np.zeros(len(LATENESS_BUCKETS) + 1, dtype=np.int64)
        self._lateness_sum = 0.0
        self._clock: Clock | None = None
        self._clock_read = False
        self._queue_length: Callable[[], int] | None = None
        self._fleet = _Fleet()
        self.registry.register(self)

    # reports from the loop and the sink

    def running(self, clock: Clock, queue_length: Callable[[], int] | None = None) -> None:
        """Start the clock gauge and the lateness histogram, and turn /healthz to 200."""
        self._clock = clock
        self._queue_length = queue_length
        self.health.running(queue_length)

    def stopping(self) -> None:
        """Turn /healthz to 503 while the run flushes."""
        self.health.stopping()

    def planned(self, store_id: str | None, labels: Sequence[str], counts: Sequence[int]) -> None:
        """Add a day's plan to each slot's planned count."""
        self._store(store_id)
        for label, count in zip(labels, counts, strict=True):
            self.tally(store_id, label).planned += count

    def emitted(self, batch: Encoded, start: int, stop: int) -> None:
        """Count a hand-over of encoded events (a mixed batch per group, not per event); update occupancy, lateness."""
        if isinstance(batch, EncodedBatch):
            self.tally(batch.store_id, batch.time_slot).emitted += stop - start
            self._handed(batch.store_id, batch.entries_us[start:stop], batch.exits_us[start:stop])
            return
        used, groups = np.unique(batch.groups[start:stop], return_inverse=True)  # the groups handed over, not all
        infos = [batch.infos[g] for g in used.tolist()]
        for info, count in zip(infos, np.bincount(groups, minlength=len(infos)).tolist(), strict=True):
            self.tally(info.store_id, info.time_slot).emitted += count
        stores: dict[str | None, int] = {}
        owner = np.array([stores.setdefault(info.store_id, len(stores)) for info in infos], dtype=np.intp)[groups]
        order = np.argsort(owner, kind="stable")
        cuts = np.searchsorted(owner[order], np.arange(len(stores) + 1))
        entries, exits = batch.entries_us[start:stop][order], batch.exits_us[start:stop][order]
        for store_id, low, high in zip(stores, cuts.tolist(), cuts[1:].tolist(), strict=False):
            if high > low:
                self._handed(store_id, entries[low:high], exits[low:high])

    def emitted_sampled(self, store_id: str | None, slot: str, batch: Batch, start: int, stop: int) -> None:
        """Count a hand-over of visits encoded one by one; update occupancy and lateness."""
        self.tally(store_id, slot).emitted += stop - start
        entries = batch.entries_us[start:stop]
        self._handed(store_id, entries, entries + batch.durations_min[start:stop] * US_PER_MINUTE)

    def sensor_emitted(self, store_id: str | None, kind: str) -> None:
        """Count one sensor event."""
        key = (store_id or "", kind)
        with self._lock:
            self._sensors[key] = self._sensors.get(key, 0) + 1

    def imperfect(self, batch: EncodedBatch, index: int, *, late: bool, held: bool, duplicate: bool) -> None:
        """Count a copy sent late, held or twice: emitted; inside the store unless a second copy; never as lateness.

        Its delay is what was asked for, not the loop falling behind its clock.
        """
        store_id = batch.store_id
        self.tally(store_id, batch.time_slot).emitted += 1
        if not duplicate:
            self._handed(store_id, batch.entries_us[index : index + 1], batch.exits_us[index : index + 1], timely=False)
        with self._lock:
            for kind, marked in (("late", late), ("held", held), ("duplicate", duplicate)):
                if marked:
                    key = (kind, store_id or "")
                    self._imperfect[key] = self._imperfect.get(key, 0) + 1

    def clock_read(self) -> None:
        """Note that the loop reads the clock: from now on a scrape may read it too."""
        self._clock_read = True

    def tally(self, store_id: str | None, slot: str) -> Tally:
        """The counts of a (store, slot), created at zero on first use."""
        key = (store_id or "", slot)
        found = self._tallies.get(key)
        if found is None:
            with self._lock:
                found = self._tallies.setdefault(key, Tally())
        return found

    def broker_down(self) -> None:
        """Start the unreachable timer of /healthz."""
        self.health.broker_down()

    def broker_up(self) -> None:
        """Stop the unreachable timer of /healthz."""
        self.health.broker_up()

    def fleet_rebalanced(self, owned: int) -> None:
        """Count a completed rebalance of the fleet's group; set the partitions owned."""
        with self._lock:
            self._fleet.member = True
            self._fleet.rebalances += 1
            self._fleet.owned = owned

    def fleet_owned(self, owned: int) -> None:
        """Set the partitions owned after a revocation or a loss."""
        with self._lock:
            self._fleet.member = True
            self._fleet.owned = owned

    def fleet_handed_over(self, seconds: float) -> None:
        """Observe one hand-over time."""
        with self._lock:
            self._fleet.member = True
            self._fleet.handovers[bisect.bisect_left(HANDOVER_BUCKETS, seconds)] += 1
            self._fleet.handover_sum += seconds

    def _store(self, store_id: str | None) -> Occupancy:
        key = store_id or ""
        found = self._occupancy.get(key)
        if found is None:
            with self._lock:
                found = self._occupancy.setdefault(key, Occupancy())
        return found

    def _handed(
        self,
        store_id: str | None,
        entries_us: npt.NDArray[np.int64],
        exits_us: npt.NDArray[np.int64],
        *,
        timely: bool = True,
    ) -> None:
        """Record visits just handed over: they are inside until their exit, and (``timely``) late by now − entry.

        Lateness is in real seconds, so only a clock tied to real time (a finite, positive rate) records it.
        """
        if self._clock is None:
            return
        now_us = self._clock.now_us()
        self._clock_read = True
        occupancy = self._store(store_id)
        rate = self._clock.rate
        with self._lock:
            occupancy.enter(exits_us, now_us)
            if timely and 0 < rate < math.inf and entries_us.shape[0]:
                self._observe_lateness((now_us - entries_us) / (rate * US_PER_SECOND))

    def _observe_lateness(self, late_s: npt.NDArray[np.float64]) -> None:
        buckets = np.searchsorted(_BOUNDS, late_s, side="left")
        self._lateness += np.bincount(buckets, minlength=len(LATENESS_BUCKETS) + 1)
        self._lateness_sum += float(late_s.sum())

    # the scrape

    def collect(self) -> Iterator[Metric]:
        """Every metric, as of now (called by the registry on the server's thread)."""
        from prometheus_client.metrics_core import (  # noqa: PLC0415 - a run without metrics skips it
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        with self._lock:
            tallies = sorted((key, (t.planned, t.emitted, t.delivered, t.failed)) for key, t in self._tallies.items())
            sensors = sorted(self._sensors.items())
            imperfect = sorted(self._imperfect.items())
            lateness = np.cumsum(self._lateness).tolist()
            lateness_sum = self._lateness_sum
            now_us = self._clock.now_us() if self._clock is not None and self._clock_read else None
            occupancy = {} if now_us is None else {k: o.count(now_us) for k, o in self._occupancy.items()}
            fleet = replace(self._fleet, handovers=list(self._fleet.handovers))
        yield from _tally_families(tallies, deliveries=self._queue_length is not None)
        yield _labelled(
            CounterMetricFamily(
                "foot_traffic_sensor_events_emitted",
                "Entry and exit sensor events handed to the sink.",
                labels=["store", "kind"],
            ),
            [([store, kind], count) for (store, kind), count in sensors],
        )
        for kind, meaning in _IMPERFECT:
            yield _labelled(
                CounterMetricFamily(f"foot_traffic_{kind}_events", meaning, labels=["store"]),
                [([store], count) for (k, store), count in imperfect if k == kind],
            )
        yield HistogramMetricFamily(
            "foot_traffic_emission_lateness_seconds",
            "Real seconds from an event's due time on the run's clock to its hand-over to the sink "
            "(real and accelerated clocks only; a backfill records nothing).",
            buckets=list(zip(_BUCKET_NAMES, lateness, strict=True)),
            sum_value=lateness_sum,
        )
        yield GaugeMetricFamily(
            "foot_traffic_producer_queue_length",
            "Events queued in the Kafka producer, not yet confirmed (0 for other sinks).",
            value=0 if self._queue_length is None else self._queue_length(),
        )
        yield _labelled(
            GaugeMetricFamily(
                "foot_traffic_occupancy",
                "Customers in the store at the simulated now: entered, not yet left.",
                labels=["store"],
            ),
            [([store], count) for store, count in sorted(occupancy.items())],
        )
        yield _labelled(
            GaugeMetricFamily(
                "foot_traffic_clock_seconds", "The run's simulated clock, seconds since the epoch.", labels=[]
            ),
            [] if now_us is None else [([], now_us / US_PER_SECOND)],
        )
        if fleet.member:
            yield from _fleet_families(fleet)


@dataclass(slots=True)
class _Fleet:
    """A fleet member's figures: whether the run is one, partitions owned, rebalances, the hand-over histogram."""

    member: bool = False
    owned: int = 0
    rebalances: int = 0
    handovers: list[int] = field(default_factory=lambda: [0] * (len(HANDOVER_BUCKETS) + 1))
    handover_sum: float = 0.0


def _fleet_families(fleet: _Fleet) -> Iterator[Metric]:
    """The fleet member's gauge, counter and hand-over histogram."""
    from prometheus_client.metrics_core import (  # noqa: PLC0415 - a run without metrics skips it
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    yield GaugeMetricFamily(
        "foot_traffic_fleet_partitions_owned", "Virtual partitions (units of work) this fleet member owns.",
        value=fleet.owned,
    )  # fmt: skip
    yield CounterMetricFamily(
        "foot_traffic_fleet_rebalances", "Rebalances of the fleet's group this member took part in.",
        value=fleet.rebalances,
    )  # fmt: skip
    yield HistogramMetricFamily(
        "foot_traffic_fleet_handover_seconds",
        "Seconds from a virtual partition's last commit by its previous owner to the first event of its new one.",
        buckets=list(zip(_HANDOVER_NAMES, itertools.accumulate(fleet.handovers), strict=True)),
        sum_value=fleet.handover_sum,
    )


def _labelled(family: CounterMetricFamily | GaugeMetricFamily, samples: list[tuple[list[str], float]]) -> Metric:
    """``family`` with one sample per (label values, value)."""
    for labels, value in samples:
        family.add_metric(labels, value)
    return family


def _tally_families(
    tallies: Iterable[tuple[tuple[str, str], tuple[int, int, int, int]]], *, deliveries: bool
) -> Iterator[Metric]:
    """The visit counters by (store, slot); confirmations only for a sink that reports them (Kafka)."""
    from prometheus_client.metrics_core import CounterMetricFamily  # noqa: PLC0415 - a run without metrics skips it

    families = [
        CounterMetricFamily("foot_traffic_events_planned", "Visits in the day plans made so far.", labels=LABELS),
        CounterMetricFamily("foot_traffic_events_emitted", "Visit events handed to the sink.", labels=LABELS),
        CounterMetricFamily("foot_traffic_events_delivered", "Visit events Kafka confirmed.", labels=LABELS),
        CounterMetricFamily("foot_traffic_events_failed", "Visit events Kafka could not confirm.", labels=LABELS),
    ]
    for (store, slot), counts in tallies:
        for family, count in zip(families, counts, strict=True):
            family.add_metric([store, slot], count)
    yield from families if deliveries else families[:2]
