"""Prometheus metrics and a health check, served over HTTP while a run goes on.

The service loop and the Kafka sink report through a :class:`Recorder`: the
real one, :class:`Metrics`, when ``METRICS_PORT`` is set, and :data:`NO_METRICS`,
whose every method does nothing, otherwise. Counting is per hand-over, not per
event: a backfill hands the sink batches of thousands of events of one store and
one slot, so a batch costs one addition, and the occupancy and lateness
bookkeeping a few numpy operations. Values are plain integers and arrays read by
a collector when Prometheus scrapes, on the server's thread; the loop never
touches a prometheus_client object.

:class:`MetricsServer` serves ``/metrics`` (a private registry) and ``/healthz``
on a daemon thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from foot_traffic.errors import ConfigError
from foot_traffic.events.encoding import EncodedBatch
from foot_traffic.model.arrivals import Batch
from foot_traffic.model.grid import US_PER_MINUTE, US_PER_SECOND
from foot_traffic.run.clock import AcceleratedClock, CatchUpClock, Clock, RealClock

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer
    from wsgiref.types import StartResponse, WSGIEnvironment

    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

LATENESS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds in seconds of the emission-lateness histogram's buckets (plus +Inf)."""
OCCUPANCY_SPAN_S = 1 << 14
"""Seconds of future exits an occupancy ring holds: 4.5 hours, well beyond the longest visit (75 minutes)."""
_SPAN_MASK = OCCUPANCY_SPAN_S - 1
SMALL = 16
"""Below this many values, plain Python beats a numpy call."""
SERVE_POLL_S = 0.1
"""How often the server's thread checks for shutdown: the longest a run's exit waits for it."""

_BOUNDS = np.array(LATENESS_BUCKETS)
_BUCKET_NAMES = [f"{b:g}" for b in LATENESS_BUCKETS] + ["+Inf"]
_TIME_SLOT = '"time_slot":'
_STORE_ID = ',"store_id":'
_DECODER = json.JSONDecoder()


@dataclass(slots=True)
class Tally:
    """Counts of one (store, slot): visits planned, handed to the sink, confirmed and failed."""

    planned: int = 0
    emitted: int = 0
    delivered: int = 0
    failed: int = 0


class Recorder(Protocol):
    """What the service loop and the sinks report; the seam between them and the metrics."""

    enabled: bool

    def running(self, clock: Clock, queue_length: Callable[[], int] | None = None) -> None:
        """The run is connected and its loop starts, on ``clock``; ``queue_length`` reads the producer's queue."""
        ...

    def stopping(self) -> None:
        """The loop has ended: the run is flushing and closing."""
        ...

    def planned(self, store_id: str | None, labels: Sequence[str], counts: Sequence[int]) -> None:
        """A day's plan is made: ``counts[i]`` visits in slot ``labels[i]``."""
        ...

    def emitted(self, batch: EncodedBatch, start: int, stop: int) -> None:
        """Events [start, stop) of an encoded batch have been handed to the sink."""
        ...

    def emitted_sampled(self, store_id: str | None, slot: str, batch: Batch, start: int, stop: int) -> None:
        """Visits [start, stop) of a sampled batch have been handed to the sink, one by one."""
        ...

    def sensor_emitted(self, store_id: str | None, kind: str) -> None:
        """An ``entry`` or ``exit`` sensor event has been handed to the sink."""
        ...

    def clock_at(self, now_us: int) -> None:
        """The loop has read the clock: ``now_us`` is the simulated now."""
        ...

    def tally(self, store_id: str | None, slot: str) -> Tally:
        """The counts of a (store, slot), for a sink to count its confirmations and failures in."""
        ...

    def broker_down(self) -> None:
        """The Kafka client reports every broker down."""
        ...

    def broker_up(self) -> None:
        """A delivery has been confirmed since the brokers were reported down."""
        ...


class NoMetrics:
    """The recorder of a run without METRICS_PORT: every report costs one call that does nothing."""

    enabled = False

    def running(self, clock: Clock, queue_length: Callable[[], int] | None = None) -> None:
        """Nothing to record."""

    def stopping(self) -> None:
        """Nothing to record."""

    def planned(self, store_id: str | None, labels: Sequence[str], counts: Sequence[int]) -> None:
        """Nothing to record."""

    def emitted(self, batch: EncodedBatch, start: int, stop: int) -> None:
        """Nothing to record."""

    def emitted_sampled(self, store_id: str | None, slot: str, batch: Batch, start: int, stop: int) -> None:
        """Nothing to record."""

    def sensor_emitted(self, store_id: str | None, kind: str) -> None:
        """Nothing to record."""

    def clock_at(self, now_us: int) -> None:
        """Nothing to record."""

    def tally(self, store_id: str | None, slot: str) -> Tally:
        """A tally nobody reads."""
        return Tally()

    def broker_down(self) -> None:
        """Nothing to record."""

    def broker_up(self) -> None:
        """Nothing to record."""


NO_METRICS = NoMetrics()
"""The shared do-nothing recorder."""


def pace(clock: Clock) -> Callable[[], float | None]:
    """Simulated seconds per real second of ``clock`` now, or None while it is not tied to real time (backfill)."""
    if isinstance(clock, RealClock):
        return lambda: 1.0
    if isinstance(clock, AcceleratedClock):
        speed = clock.speed
        return lambda: speed
    if isinstance(clock, CatchUpClock):
        return lambda: 1.0 if clock.live else None
    return lambda: None


class Occupancy:
    """Visitors inside one store: handed-over visits whose exit is after the current second.

    A ring of counts per exit second, ``OCCUPANCY_SPAN_S`` long: adding a batch is
    a few numpy operations, and moving to a later second drops the exits it passes.
    Memory stays constant whatever the volume.
    """

    def __init__(self) -> None:
        self._ring = np.zeros(OCCUPANCY_SPAN_S, dtype=np.int64)
        self._inside = 0
        self._second: int | None = None

    def enter(self, exits_us: npt.NDArray[np.int64], now_us: int) -> None:
        """Count visits that have entered by ``now_us`` and leave at ``exits_us`` (within the span)."""
        self._drain(now_us // US_PER_SECOND)
        assert self._second is not None  # noqa: S101 - set by _drain
        second = self._second  # never behind the ring, even if the clock were
        if exits_us.shape[0] < SMALL:
            for exit_second in (exits_us // US_PER_SECOND).tolist():
                if exit_second > second:
                    self._ring[exit_second & _SPAN_MASK] += 1
                    self._inside += 1
            return
        # Exits already past go to the current second's bucket, empty since drained, and are taken out
        # of it: cheaper than selecting the others.
        seconds = exits_us // US_PER_SECOND
        np.maximum(seconds, second, out=seconds)
        seconds &= _SPAN_MASK
        np.add.at(self._ring, seconds, 1)
        past = int(self._ring[second & _SPAN_MASK])
        self._ring[second & _SPAN_MASK] = 0
        self._inside += int(seconds.shape[0]) - past

    def count(self, now_us: int) -> int:
        """Visitors inside at ``now_us``, to the second; changes nothing."""
        if self._second is None:
            return 0
        return self._inside - self._leaving(now_us // US_PER_SECOND)

    def _leaving(self, second: int) -> int:
        """Visitors counted inside whose exit second is after the last drained one and at most ``second``."""
        assert self._second is not None  # noqa: S101 - callers check
        gone = second - self._second
        if gone <= 0:
            return 0
        if gone >= OCCUPANCY_SPAN_S:
            return self._inside
        if gone < SMALL:
            ring = self._ring
            return sum(int(ring[(self._second + k) & _SPAN_MASK]) for k in range(1, gone + 1))
        return int(self._ring[self._window(second)].sum())

    def _window(self, second: int) -> npt.NDArray[np.int64]:
        assert self._second is not None  # noqa: S101 - callers check
        return np.arange(self._second + 1, second + 1) & _SPAN_MASK

    def _drain(self, second: int) -> None:
        """Forget the exits up to ``second``."""
        if self._second is None:
            self._second = second
            return
        gone = second - self._second
        if gone <= 0:
            return
        self._inside -= self._leaving(second)
        if gone >= OCCUPANCY_SPAN_S:
            self._ring[:] = 0
        elif gone < SMALL:
            for k in range(1, gone + 1):
                self._ring[(self._second + k) & _SPAN_MASK] = 0
        else:
            self._ring[self._window(second)] = 0
        self._second = second


class Health:
    """What ``/healthz`` answers: starting, running, Kafka unreachable for too long, or stopping.

    Unreachable means the Kafka client reported every broker down and no
    delivery has been confirmed since, while events wait in the producer's
    queue: with nothing to deliver (a closed store at night), an outage harms
    nothing, and the client only notices a recovery by confirming a delivery.
    """

    def __init__(self, threshold_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.threshold_s = threshold_s
        self._monotonic = monotonic
        self._phase = "starting"
        self._down_since: float | None = None
        self._waiting: Callable[[], int] = lambda: 0

    def running(self, waiting: Callable[[], int] | None = None) -> None:
        """The run is connected; ``waiting`` counts the events queued and not yet confirmed."""
        if waiting is not None:
            self._waiting = waiting
        self._phase = "running"

    def stopping(self) -> None:
        """The loop has ended."""
        self._phase = "stopping"

    def broker_down(self) -> None:
        """Remember when the brokers were first reported down."""
        if self._down_since is None:
            self._down_since = self._monotonic()

    def broker_up(self) -> None:
        """Kafka confirmed a delivery: it is reachable."""
        self._down_since = None

    def status(self) -> tuple[int, str]:
        """The HTTP status and the one-line reason."""
        if self._phase == "starting":
            return 503, "starting: not connected yet"
        if self._phase == "stopping":
            return 503, "stopping: the run is over, flushing and closing"
        down_since = self._down_since
        if down_since is None:
            return 200, "ok: running"
        down_s = self._monotonic() - down_since
        waiting = self._waiting()
        if down_s > self.threshold_s and waiting > 0:
            return 503, (
                f"unhealthy: Kafka unreachable for {down_s:.0f} s, more than HEALTH_UNREACHABLE_SECONDS="
                f"{self.threshold_s:g}; {waiting} event(s) waiting"
            )
        return 200, f"ok: running; Kafka unreachable for {down_s:.0f} s, {waiting} event(s) waiting"


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
        self._occupancy: dict[str, Occupancy] = {}
        self._lateness = np.zeros(len(LATENESS_BUCKETS) + 1, dtype=np.int64)
        self._lateness_sum = 0.0
        self._clock: Clock | None = None
        self._clock_read = False
        self._pace: Callable[[], float | None] = lambda: None
        self._queue_length: Callable[[], int] | None = None
        self.registry.register(self)

    # reports from the loop and the sink

    def running(self, clock: Clock, queue_length: Callable[[], int] | None = None) -> None:
        """Start the clock gauge and the lateness histogram, and turn /healthz to 200."""
        self._clock = clock
        self._pace = pace(clock)
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

    def emitted(self, batch: EncodedBatch, start: int, stop: int) -> None:
        """Count a hand-over of encoded events; update occupancy and lateness."""
        self.tally(batch.store_id, batch.time_slot).emitted += stop - start
        self._handed(batch.store_id, batch.entries_us[start:stop], batch.exits_us[start:stop])

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

    def clock_at(self, now_us: int) -> None:
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

    def _store(self, store_id: str | None) -> Occupancy:
        key = store_id or ""
        found = self._occupancy.get(key)
        if found is None:
            with self._lock:
                found = self._occupancy.setdefault(key, Occupancy())
        return found

    def _handed(self, store_id: str | None, entries_us: npt.NDArray[np.int64], exits_us: npt.NDArray[np.int64]) -> None:
        """Record visits just handed over: they are inside until their exit, and late by now − entry."""
        if self._clock is None:
            return
        now_us = self._clock.now_us()
        self._clock_read = True
        occupancy = self._store(store_id)
        rate = self._pace()
        with self._lock:
            occupancy.enter(exits_us, now_us)
            if rate is not None and entries_us.shape[0]:
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
            lateness = np.cumsum(self._lateness).tolist()
            lateness_sum = self._lateness_sum
            now_us = self._clock.now_us() if self._clock is not None and self._clock_read else None
            occupancy = {} if now_us is None else {k: o.count(now_us) for k, o in self._occupancy.items()}
        yield from _tally_families(tallies, deliveries=self._queue_length is not None)
        yield _labelled(
            CounterMetricFamily(
                "foot_traffic_sensor_events_emitted",
                "Entry and exit sensor events handed to the sink.",
                labels=["store", "kind"],
            ),
            [([store, kind], count) for (store, kind), count in sensors],
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


LABELS = ["store", "slot"]
"""Labels of the visit counters: the event's store_id ("" without one) and its time_slot."""


def visit_labels(value: bytes) -> tuple[str | None, str] | None:
    """The store_id and time_slot of a visit event's JSON, or None if it is not one."""
    try:
        text = value.decode()
        at = text.rfind(_TIME_SLOT)
        if at < 0:
            return None
        slot, end = _DECODER.raw_decode(text, at + len(_TIME_SLOT))
        store = _DECODER.raw_decode(text, end + len(_STORE_ID))[0] if text.startswith(_STORE_ID, end) else None
    except (ValueError, UnicodeDecodeError):  # UnicodeDecodeError is a ValueError; named for the reader
        return None
    if not isinstance(slot, str) or not (store is None or isinstance(store, str)):
        return None
    return store, slot


def _listen(host: str, port: int, app: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]) -> WSGIServer:
    """An HTTP server bound to ``host:port`` serving ``app``, a thread per request; OSError if it cannot bind.

    It logs no request (a scrape every few seconds is not news) and sends a
    request that failed (a client that hung up) to the debug log, not to
    standard error; binding does no reverse DNS lookup of the address.
    """
    import socketserver  # noqa: PLC0415 - a run without metrics skips the HTTP modules
    from wsgiref.simple_server import WSGIRequestHandler, make_server  # noqa: PLC0415

    from prometheus_client.exposition import ThreadingWSGIServer  # noqa: PLC0415

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Log nothing."""

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

        def server_bind(self) -> None:
            socketserver.TCPServer.server_bind(self)
            bound_host, bound_port = self.server_address[:2]
            self.server_name, self.server_port = str(bound_host), int(bound_port)
            self.setup_environ()

        def handle_error(self, request: Any, client_address: Any) -> None:
            log.debug("Metrics request from %s failed", client_address, exc_info=True)

    return make_server(host, port, app, server_class=Server, handler_class=QuietHandler)


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` over HTTP on a daemon thread until closed.

    Raises ConfigError naming METRICS_HOST and METRICS_PORT when it cannot listen there.
    """

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        from prometheus_client import make_wsgi_app  # noqa: PLC0415 - a run without metrics skips it

        self._scrape: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]] = make_wsgi_app(metrics.registry)
        try:
            self._server = _listen(host, port, self._app)
        except OSError as exc:
            raise ConfigError(
                [
                    f"METRICS_HOST={host!r} and METRICS_PORT={str(port)!r}: expected a free port on an address "
                    f"of this machine (cannot listen there: {exc.strerror or exc})"
                ]
            ) from None
        self.port = int(self._server.server_address[1])
        self.address = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SERVE_POLL_S},
            name="foot-traffic-metrics",
            daemon=True,
        )
        self._thread.start()
        log.info("Serving metrics on http://%s/metrics and health on http://%s/healthz", self.address, self.address)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Dispatch a request: /metrics to the registry, /healthz to the health check."""
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return self._scrape(environ, start_response)
        if path == "/healthz":
            return _text(start_response, *self.metrics.health.status())
        return _text(start_response, 404, "not found: the paths are /metrics and /healthz")


def _text(start_response: StartResponse, status: int, line: str) -> list[bytes]:
    body = (line + "\n").encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


@contextlib.contextmanager
def served(port: int | None, host: str, unreachable_s: float) -> Iterator[Recorder]:
    """The run's recorder: NO_METRICS without a port, else metrics served on ``host:port`` until the block ends."""
    if port is None:
        yield NO_METRICS
        return
    metrics = Metrics(Health(unreachable_s))
    server = MetricsServer(metrics, host, port)
    try:
        yield metrics
    finally:
        server.close()
