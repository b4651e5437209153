"""The schema registry over TLS, with basic authentication and client certificates, end to end.

The registry itself (``make test`` starts it) speaks plain HTTP; a TLS front of
the test's own forwards every request to it, after a TLS handshake with the
test CA's server certificate (optionally requiring a client certificate) and a
check of the HTTP basic credentials. foot-traffic is configured with
``https://`` and the SCHEMA_REGISTRY_SSL_* settings, as it would be in front of
a secured registry.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import base_env, consume_all, run_foot_traffic, topic_exists
from tests.integration.pki import KEY_PASSWORD, make_pki
from tests.integration.test_registry import DAY, decoded, latest_schema, plain_run

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

USER = "registry-user"
PASSWORD = "r3gistry-Pa55-90ad1c"  # noqa: S105 - distinctive, so that any leak is found
SECRETS = (PASSWORD, KEY_PASSWORD)


@dataclass
class Front:
    """A TLS front of a registry: its https:// base URL and the requests it forwarded."""

    url: str
    server: ThreadingHTTPServer
    forwarded: list[str]
    refused: list[str]


class _Handler(BaseHTTPRequestHandler):
    upstream: ClassVar[str]
    expected_auth: ClassVar[str]
    forwarded: ClassVar[list[str]]
    refused: ClassVar[list[str]]

    def _relay(self) -> None:
        if self.headers.get("Authorization") != self.expected_auth:
            self.refused.append(f"{self.command} {self.path}")
            body = json.dumps({"error_code": 40101, "message": "Unauthorized"}).encode()
            self._answer(401, "application/json", body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else None
        up = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
            connection.request(self.command, self.path, body=payload, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            self.forwarded.append(f"{self.command} {self.path}")
            self._answer(answer.status, answer.getheader("Content-Type") or "application/json", data)
        finally:
            connection.close()

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _relay  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads ``forwarded`` and ``refused`` instead."""


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context

    def get_request(self) -> tuple[ssl.SSLSocket, object]:
        sock, address = self.socket.accept()
        sock.settimeout(30)
        return self.context.wrap_socket(sock, server_side=True), address  # a failed handshake raises: dropped


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1, a client certificate, another CA."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    d = tmp_path_factory.mktemp("registry-pki")
    make_pki(d)
    return d


def _front(pki: Path, upstream: str, *, client_certificate: bool) -> Iterator[Front]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "broker.pem", pki / "broker.key")
    if client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki / "ca.pem")
    forwarded: list[str] = []
    refused: list[str] = []
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    up = urlsplit(upstream)
    handler = type(
        "Handler",
        (_Handler,),
        {
            "upstream": f"{up.scheme}://{up.netloc}",
            "expected_auth": auth,
            "forwarded": forwarded,
            "refused": refused,
        },
    )
    server = _TLSServer(context, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Front(f"https://127.0.0.1:{server.server_address[1]}{up.path}", server, forwarded, refused)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def tls_front(pki: Path, schema_registry: str) -> Iterator[Front]:
    """A TLS front with basic authentication (no client certificate asked)."""
    yield from _front(pki, schema_registry, client_certificate=False)


@pytest.fixture
def mtls_front(pki: Path, schema_registry: str) -> Iterator[Front]:
    """A TLS front with basic authentication that requires a client certificate signed by the test CA."""
    yield from _front(pki, schema_registry, client_certificate=True)


def tls_env(broker: str, topic: str, front: Front, pki: Path, **overrides: str) -> dict[str, str]:
    """A short backfill framed in Avro for the front, trusting the test CA, with a client certificate."""
    env = base_env(
        KAFKA_BROKER=broker,
        KAFKA_TOPIC=topic,
        DAILY_CUSTOMERS="1500",
        SEED="sr-tls",
        SCHEMA_REGISTRY_URL=front.url,
        SCHEMA_REGISTRY_FORMAT="avro",
        SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=f"{USER}:{PASSWORD}",
        SCHEMA_REGISTRY_SSL_CA_LOCATION=str(pki / "ca.pem"),
        SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION=str(pki / "client.pem"),
        SCHEMA_REGISTRY_SSL_KEY_LOCATION=str(pki / "client.key"),
        SCHEMA_REGISTRY_SSL_KEY_PASSWORD=KEY_PASSWORD,
        MAX_RETRIES="3",
        RETRY_BACKOFF_SECONDS="1",
        KAFKA_CONNECT_TIMEOUT_SECONDS="5",
    )
    for name, value in overrides.items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


def assert_no_secret(*texts: str) -> None:
    """No password of the test in any of ``texts``."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_mutual_tls_and_basic_auth_frame_the_events_and_the_report_reads_them(
    broker: str, schema_registry: str, topic: str, mtls_front: Front, pki: Path
) -> None:
    """Through a front requiring a client certificate and credentials: registered, framed, decoded, reported."""
    env = tls_env(broker, topic, mtls_front, pki)
    done = run_foot_traffic("run", *DAY, env=env)
    assert done.returncode == 0, done.stderr
    assert any(request.startswith("POST /apis/ccompat/v7/subjects/") for request in mtls_front.forwarded)
    assert mtls_front.refused == []
    schema_id, schema_type = latest_schema(schema_registry, topic)
    assert schema_type == "AVRO"
    records = consume_all(broker, topic)
    assert {int.from_bytes(r.value[1:5], "big") for r in records} == {schema_id}
    events = decoded("avro", schema_registry, topic, [r.value for r in records])
    assert events == [json.loads(line) for line in plain_run(env)]
    report = run_foot_traffic("report", "--start", "2025-08-12", "--until", "2025-08-13", env=env)
    assert report.returncode == 0, report.stdout + report.stderr
    assert any(request == f"GET /apis/ccompat/v7/schemas/ids/{schema_id}" for request in mtls_front.forwarded)
    assert_no_secret(done.stdout, done.stderr, report.stdout, report.stderr)


def test_a_registry_certificate_the_ca_does_not_vouch_for_stops_at_once(
    broker: str, topic: str, tls_front: Front, pki: Path
) -> None:
    """Without the right CA (the system's store, or another CA) the handshake fails once: exit 3, no topic, no retry."""
    for ca in ("", str(pki / "other.pem")):
        env = tls_env(broker, topic, tls_front, pki, SCHEMA_REGISTRY_SSL_CA_LOCATION=ca)
        done = run_foot_traffic("run", *DAY, env=env)
        assert done.returncode == 3, done.stderr
        assert "certificate verify failed" in done.stderr
        assert "set SCHEMA_REGISTRY_SSL_CA_LOCATION to the CA that signed it" in done.stderr
        assert "not reachable (attempt" not in done.stderr, "a handshake that will fail again is not retried"
        assert "Traceback" not in done.stderr
        assert_no_secret(done.stdout, done.stderr)
    assert tls_front.forwarded == []
    assert not topic_exists(broker, topic)


def test_a_registry_that_wants_a_client_certificate_refuses_a_run_without_one(
    broker: str, topic: str, mtls_front: Front, pki: Path
) -> None:
    """No client certificate, or one from another CA: exit 3 naming the certificate settings, no topic."""
    without = {"SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION": "", "SCHEMA_REGISTRY_SSL_KEY_LOCATION": ""}
    without["SCHEMA_REGISTRY_SSL_KEY_PASSWORD"] = ""
    rogue = {
        "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION": str(pki / "rogue.pem"),
        "SCHEMA_REGISTRY_SSL_KEY_LOCATION": str(pki / "rogue.key"),
        "SCHEMA_REGISTRY_SSL_KEY_PASSWORD": "",
    }
    for change in (without, rogue):
        done = run_foot_traffic("run", *DAY, env=tls_env(broker, topic, mtls_front, pki, **change))
        assert done.returncode == 3, done.stderr
        assert "the registry refused this client's certificate" in done.stderr
        assert "not reachable (attempt" not in done.stderr
        assert_no_secret(done.stdout, done.stderr)
    assert mtls_front.forwarded == []
    assert not topic_exists(broker, topic)


def test_wrong_credentials_over_tls_are_refused_without_showing_them(
    broker: str, topic: str, tls_front: Front, pki: Path
) -> None:
    """The TLS handshake succeeds, the credentials do not: HTTP 401, exit 3, the password never printed."""
    wrong = f"{USER}:wrong-{PASSWORD}"
    done = run_foot_traffic(
        "run", *DAY, env=tls_env(broker, topic, tls_front, pki, SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=wrong)
    )
    assert done.returncode == 3, done.stderr
    assert "HTTP 401" in done.stderr
    assert "check SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" in done.stderr
    assert tls_front.refused
    assert tls_front.forwarded == []
    assert_no_secret(done.stdout, done.stderr)
    assert not topic_exists(broker, topic)
