"""The workers' parent serves their figures as one: sums over real local HTTP servers, the earliest clock, health."""

from __future__ import annotations

import contextlib
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from foot_traffic.metrics.aggregate import local, served
from foot_traffic.metrics.server import MetricsServer

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

HOST = "127.0.0.1"

WORKER_0 = """\
# HELP foot_traffic_events_emitted_total Visit events handed to the sink.
# TYPE foot_traffic_events_emitted_total counter
foot_traffic_events_emitted_total{slot="09:00",store="s1"} 5.0
foot_traffic_events_emitted_total{slot="09:15",store="s2"} 7.0
# HELP foot_traffic_emission_lateness_seconds Lateness.
# TYPE foot_traffic_emission_lateness_seconds histogram
foot_traffic_emission_lateness_seconds_bucket{le="0.01"} 3.0
foot_traffic_emission_lateness_seconds_bucket{le="0.1"} 4.0
foot_traffic_emission_lateness_seconds_bucket{le="+Inf"} 5.0
foot_traffic_emission_lateness_seconds_count 5.0
foot_traffic_emission_lateness_seconds_sum 0.25
# HELP foot_traffic_producer_queue_length Events queued.
# TYPE foot_traffic_producer_queue_length gauge
foot_traffic_producer_queue_length 10.0
# HELP foot_traffic_occupancy Customers in the store.
# TYPE foot_traffic_occupancy gauge
foot_traffic_occupancy{store="s1"} 2.0
# HELP foot_traffic_clock_seconds The run's simulated clock.
# TYPE foot_traffic_clock_seconds gauge
foot_traffic_clock_seconds 1.7556e+09
"""
WORKER_1 = """\
# HELP foot_traffic_events_emitted_total Visit events handed to the sink.
# TYPE foot_traffic_events_emitted_total counter
foot_traffic_events_emitted_total{slot="09:15",store="s2"} 11.0
foot_traffic_events_emitted_total{slot="10:00",store="s3"} 13.0
# HELP foot_traffic_emission_lateness_seconds Lateness.
# TYPE foot_traffic_emission_lateness_seconds histogram
foot_traffic_emission_lateness_seconds_bucket{le="0.01"} 1.0
foot_traffic_emission_lateness_seconds_bucket{le="0.1"} 6.0
foot_traffic_emission_lateness_seconds_bucket{le="+Inf"} 8.0
foot_traffic_emission_lateness_seconds_count 8.0
foot_traffic_emission_lateness_seconds_sum 1.5
# HELP foot_traffic_producer_queue_length Events queued.
# TYPE foot_traffic_producer_queue_length gauge
foot_traffic_producer_queue_length 4.0
# HELP foot_traffic_occupancy Customers in the store.
# TYPE foot_traffic_occupancy gauge
foot_traffic_occupancy{store="s1"} 3.0
foot_traffic_occupancy{store="s3"} 1.0
# HELP foot_traffic_clock_seconds The run's simulated clock.
# TYPE foot_traffic_clock_seconds gauge
foot_traffic_clock_seconds 1.7555e+09
"""
SUMS = {
    ("foot_traffic_events_emitted_total", (("slot", "09:00"), ("store", "s1"))): 5.0,  # worker 0 only
    ("foot_traffic_events_emitted_total", (("slot", "09:15"), ("store", "s2"))): 18.0,  # 7 + 11
    ("foot_traffic_events_emitted_total", (("slot", "10:00"), ("store", "s3"))): 13.0,  # worker 1 only
    ("foot_traffic_emission_lateness_seconds_bucket", (("le", "0.01"),)): 4.0,  # 3 + 1
    ("foot_traffic_emission_lateness_seconds_bucket", (("le", "0.1"),)): 10.0,  # 4 + 6
    ("foot_traffic_emission_lateness_seconds_bucket", (("le", "+Inf"),)): 13.0,  # 5 + 8
    ("foot_traffic_emission_lateness_seconds_count", ()): 13.0,
    ("foot_traffic_emission_lateness_seconds_sum", ()): 1.75,  # 0.25 + 1.5
    ("foot_traffic_producer_queue_length", ()): 14.0,  # 10 + 4
    ("foot_traffic_occupancy", (("store", "s1"),)): 5.0,  # 2 + 3
    ("foot_traffic_occupancy", (("store", "s3"),)): 1.0,
    ("foot_traffic_clock_seconds", ()): 1.7555e09,  # the earliest, worker 1's: the instant the whole run reached
}
"""The parent's figures, summed by hand from WORKER_0 and WORKER_1."""
TYPES = {
    "foot_traffic_events_emitted": "counter",
    "foot_traffic_emission_lateness_seconds": "histogram",
    "foot_traffic_producer_queue_length": "gauge",
    "foot_traffic_occupancy": "gauge",
    "foot_traffic_clock_seconds": "gauge",
}

Health = Callable[[], tuple[int, str]]


def exposition(body: str) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """A worker's /metrics that answers ``body``."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
        return [body.encode()]

    return app


def healthy() -> tuple[int, str]:
    """A worker's /healthz when all is well."""
    return 200, "ok"


@contextlib.contextmanager
def worker(body: str, health: Health = healthy, port: int = 0) -> Iterator[int]:
    """A worker's metrics server on this machine (a free port unless given); yields its port."""
    server = MetricsServer(exposition(body), health, HOST, port)
    try:
        yield server.port
    finally:
        server.close()


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def parent(ports: Sequence[int]) -> Iterator[int]:
    """The parent's aggregate server over the workers at ``ports``; yields its port."""
    port = free_port()
    with served(port, HOST, ports):
        yield port


def get(port: int, path: str) -> tuple[int, str]:
    """The status and body of GET ``path`` on this machine's ``port``."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample of an exposition by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_parent_answers_the_sums_of_its_workers_figures() -> None:
    """Counters, histograms, the queue and the occupancy add up over the workers; the clock is the earliest one."""
    with worker(WORKER_0) as first, worker(WORKER_1) as second, parent([first, second]) as port:
        status, body = get(port, "/metrics")
    assert status == 200, body
    assert samples(body) == SUMS
    assert {family.name: family.type for family in text_string_to_metric_families(body)} == TYPES


def test_health_is_503_while_a_worker_does_not_answer_and_200_once_all_do() -> None:
    """A worker not listening (starting, restarting) makes /healthz and /metrics 503, naming it; then 200."""
    late = free_port()
    with worker(WORKER_0) as first, parent([first, late]) as port:
        status, body = get(port, "/healthz")
        assert status == 503
        assert body.startswith("worker 1: not answering (")
        status, body = get(port, "/metrics")
        assert (status, body.startswith("worker 1: not answering (")) == (503, True), "no partial sum"
        with worker(WORKER_1, port=late):
            assert get(port, "/healthz") == (200, "ok: 2 workers running\n")
            assert get(port, "/metrics")[0] == 200


def test_an_unhealthy_workers_answer_is_passed_on_naming_it() -> None:
    """A worker that answers 503 makes the parent's /healthz 503 with that worker's own reason."""

    def unreachable() -> tuple[int, str]:
        return 503, "Kafka unreachable for 61 s with 12 events waiting"

    with worker(WORKER_0) as first, worker(WORKER_1, unreachable) as second, parent([first, second]) as port:
        assert get(port, "/healthz") == (503, "worker 1: Kafka unreachable for 61 s with 12 events waiting\n")


@pytest.mark.parametrize(
    ("host", "reached"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),  # noqa: S104 - a wildcard address, reached on loopback
        ("::", "[::1]"),
        ("::1", "[::1]"),
        ("192.0.2.7", "192.0.2.7"),
    ],
)
def test_the_workers_are_reached_on_this_machine(host: str, reached: str) -> None:
    """A worker listening on a wildcard is scraped on loopback; an IPv6 address is bracketed for the URL."""
    assert local(host) == reached
