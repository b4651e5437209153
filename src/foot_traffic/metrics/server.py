"""The HTTP server of ``/metrics`` (a private registry) and ``/healthz``, on a daemon thread."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from foot_traffic.errors import ConfigError
from foot_traffic.metrics.health import Health
from foot_traffic.metrics.recorder import Metrics
from foot_traffic.run.recording import NO_METRICS, Recorder

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

SERVE_POLL_S = 0.1
"""How often the server's thread checks for shutdown: the longest a run's exit waits for it."""


WsgiApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]
"""A WSGI application."""


def _listen(host: str, port: int, app: WsgiApp) -> WSGIServer:
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
    """Serves ``/metrics`` (the WSGI app ``scrape``) and ``/healthz`` (``health``) on a daemon thread until closed.

    Raises ConfigError naming METRICS_HOST and METRICS_PORT when it cannot listen there.
    """

    def __init__(self, scrape: WsgiApp, health: Callable[[], tuple[int, str]], host: str, port: int) -> None:
        self._scrape = scrape
        self._health = health
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
            return text(start_response, *self._health())
        return text(start_response, 404, "not found: the paths are /metrics and /healthz")


def text(start_response: StartResponse, status: int, line: str) -> list[bytes]:
    """Answer ``status`` with one line of plain text."""
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
    from prometheus_client import make_wsgi_app  # noqa: PLC0415 - a run without metrics skips it

    server = MetricsServer(make_wsgi_app(metrics.registry), metrics.health.status, host, port)
    try:
        yield metrics
    finally:
        server.close()
