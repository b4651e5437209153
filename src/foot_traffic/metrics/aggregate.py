"""The figures of several workers as one: the parent's ``/metrics`` and ``/healthz`` with WORKERS > 1.

Each worker serves its own figures on a port of its own; when scraped, the
parent scrapes every worker and answers the sums: counters and histograms add
up, and so do the queue length and the occupancy; the clock gauge is the
earliest worker's (the instant the whole run has reached). A scrape that
misses a worker (starting, restarting) fails with 503 rather than answer a
partial sum that would read as a counter reset.
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from foot_traffic.metrics.server import MetricsServer, text

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from prometheus_client.metrics_core import Metric

SCRAPE_TIMEOUT_S = 5.0
"""How long the parent waits for each worker's answer."""
EARLIEST = frozenset({"foot_traffic_clock_seconds"})
"""Gauges whose aggregate is the smallest value, not the sum."""


def combine(expositions: Iterable[str]) -> list[Metric]:
    """The metric families of several Prometheus text expositions, each sample summed over them (EARLIEST: min)."""
    from prometheus_client.metrics_core import Metric  # noqa: PLC0415 - a run without metrics skips it
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415
    from prometheus_client.samples import Sample  # noqa: PLC0415

    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for exposition in expositions:
        for family in text_string_to_metric_families(exposition):
            families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            samples = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sample.labels.items()))
                seen = samples.get(key)
                if seen is None:
                    samples[key] = sample.value
                else:
                    samples[key] = min(seen, sample.value) if family.name in EARLIEST else seen + sample.value
    for name, family in families.items():
        family.samples = [Sample(sample, dict(labels), value) for (sample, labels), value in values[name].items()]
    return list(families.values())


def local(host: str) -> str:
    """The address to reach a server listening on ``host`` from this machine (a wildcard is reached on loopback)."""
    if host in {"0.0.0.0", ""}:  # noqa: S104 - the wildcard is compared with, not bound to
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class Aggregate:
    """The workers' figures summed, and their health as one, read from their servers when asked."""

    def __init__(self, host: str, ports: Sequence[int]) -> None:
        self._urls = [f"http://{local(host)}:{port}" for port in ports]

    def _get(self, index: int, path: str) -> tuple[int, str]:
        """A worker's answer to ``path``: its status and body; 0 and the reason if it does not answer."""
        try:
            with urllib.request.urlopen(self._urls[index] + path, timeout=SCRAPE_TIMEOUT_S) as response:  # noqa: S310 - http on this machine
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except (OSError, ValueError) as exc:
            return 0, f"not answering ({exc})"

    def scrape(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer /metrics: the sums of every worker's figures, or 503 naming a worker that did not answer."""
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415
        from prometheus_client.registry import CollectorRegistry  # noqa: PLC0415

        texts = []
        for index in range(len(self._urls)):
            status, body = self._get(index, "/metrics")
            if status != 200:
                return text(start_response, 503, f"worker {index}: {body.strip() or status}")
            texts.append(body)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Fixed(combine(texts)))
        exposition = generate_latest(registry)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(exposition)))])
        return [exposition]

    def health(self) -> tuple[int, str]:
        """200 when every worker answers 200, else 503 with the first other answer, naming its worker."""
        for index in range(len(self._urls)):
            status, body = self._get(index, "/healthz")
            if status != 200:
                return 503, f"worker {index}: {body.strip()}"
        return 200, f"ok: {len(self._urls)} workers running"


class _Fixed:
    """A collector that yields metric families already made."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        """The families."""
        yield from self._families


@contextlib.contextmanager
def served(port: int | None, host: str, worker_ports: Sequence[int]) -> Iterator[None]:
    """Serve the workers' summed figures on ``host:port`` until the block ends (nothing without a port)."""
    if port is None:
        yield
        return
    aggregate = Aggregate(host, worker_ports)
    server = MetricsServer(aggregate.scrape, aggregate.health, host, port)
    try:
        yield
    finally:
        server.close()
