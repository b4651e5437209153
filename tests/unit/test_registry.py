"""Schema Registry serialisation: the Avro schema, the wire format, settings, secrets and start-up.

Round trips run on confluent-kafka's mock registry client; the integration tests
(tests/integration/test_registry.py) prove the same against a real registry.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import fastavro
import pytest
from confluent_kafka import KafkaError
from confluent_kafka.schema_registry import SchemaRegistryClient

from foot_traffic.cli.commands import main
from foot_traffic.config import registry as registry_config
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import Settings
from foot_traffic.errors import ConfigError, DeliveryError
from foot_traffic.events.schema import EVENT_AVRO_SCHEMA, EVENT_SCHEMA
from foot_traffic.kafka import registry
from foot_traffic.kafka.deadletter import DeadLetterFile
from foot_traffic.kafka.registry import EventSerializer, RegistryUnavailableError
from foot_traffic.model.grid import datetime_to_us
from foot_traffic.model.plan import Model, StoreModel
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink
from tests.unit.conftest import KEY_PASSWORD, Pem
from tests.unit.fakes import fake_sink

START = datetime_to_us(dt.datetime(2025, 8, 11, tzinfo=dt.UTC))
UNTIL = datetime_to_us(dt.datetime(2025, 8, 12, tzinfo=dt.UTC))
URL = "http://127.0.0.1:8081/apis/ccompat/v7"
PASSWORD = "pa55-w0rd-never-shown"  # noqa: S105 - a made-up secret that must never show


def mock_client() -> Any:
    """A fresh in-memory registry client (confluent-kafka's own mock)."""
    return SchemaRegistryClient.new_client({"url": "mock://unit"})


def produced(stores: list[StoreModel]) -> list[tuple[str, bytes]]:
    """(key, plain JSON) of a simulated day."""
    sink = MemorySink()
    Service(stores, 11, sink, ManualClock(START), poll_s=0.5, until_us=UNTIL).run()
    assert sink.records
    return sink.records


ONE_STORE = [StoreModel(Model(daily_customers=300))]
TWO_STORES = [
    StoreModel(load_settings({"TIMEZONE": "Europe/Rome"}).model(), None),
    StoreModel(Model(daily_customers=200, store_key=1), "a-1"),
    StoreModel(Model(daily_customers=100, store_key=2), "b.2"),
]


def test_avro_schema_has_the_json_schemas_fields_in_order() -> None:
    """Same names in the same order; required ones are not nullable, store_id is null or a string."""
    avro_fields = EVENT_AVRO_SCHEMA["fields"]
    assert [f["name"] for f in avro_fields] == list(EVENT_SCHEMA["properties"])
    for field in avro_fields:
        name, kind = field["name"], field["type"]
        spec = EVENT_SCHEMA["properties"][name]
        if name in EVENT_SCHEMA["required"]:
            assert not isinstance(kind, list), f"{name} is required, so not a union with null"
        else:
            assert kind == ["null", "string"]
            assert field["default"] is None
        if "enum" in spec:
            assert kind["symbols"] == spec["enum"]
        elif "const" in spec:
            assert kind["symbols"] == [spec["const"]]
        elif spec["type"] == "integer":
            assert kind == "int"
        elif name in EVENT_SCHEMA["required"]:
            assert (spec["type"], kind) == ("string", "string")


def test_avro_schema_parses() -> None:
    """The Avro library accepts the schema as a named record."""
    parsed = fastavro.parse_schema(EVENT_AVRO_SCHEMA)
    assert isinstance(parsed, dict)
    assert parsed["name"] == "foot_traffic.FootTrafficEvent"


@pytest.mark.parametrize("fmt", ["json", "avro"])
@pytest.mark.parametrize("stores", [ONE_STORE, TWO_STORES], ids=["one-store", "stores-and-zone"])
def test_round_trip_gives_back_each_event(fmt: str, stores: list[StoreModel]) -> None:
    """Every event, framed and deserialised, equals the plain one; plain() restores its exact bytes."""
    serializer = EventSerializer(mock_client(), "events", fmt)
    schema = serializer.register()
    records = produced(stores)
    for _, value in records:
        wire = serializer(value)
        assert wire[0] == 0
        assert registry.schema_id(wire) == schema
        assert serializer.deserialize(wire) == json.loads(value)
        assert serializer.plain(wire) == value
    assert any(b'"store_id"' in v for _, v in records) == (stores is TWO_STORES)


def test_json_payload_is_the_plain_json_and_avro_is_binary() -> None:
    """JSON framing is the header plus the plain bytes; Avro framing decodes with the schema alone."""
    (key, value), *_ = produced(ONE_STORE)
    as_json = EventSerializer(mock_client(), "events", "json")
    as_json.register()
    assert as_json(value)[5:] == value
    as_avro = EventSerializer(mock_client(), "events", "avro")
    as_avro.register()
    wire = as_avro(value)
    record = fastavro.schemaless_reader(io.BytesIO(wire[5:]), fastavro.parse_schema(EVENT_AVRO_SCHEMA), None)
    assert record == {**json.loads(value), "store_id": None}
    assert len(wire) < len(value)
    assert key in value.decode()


@pytest.mark.parametrize("fmt", ["json", "avro"])
def test_same_seed_and_schema_id_give_the_same_bytes(fmt: str) -> None:
    """Two runs with the same SEED, each on a registry that gives the same id, frame identical bytes."""
    runs = []
    for _ in range(2):
        serializer = EventSerializer(mock_client(), "events", fmt)
        serializer.register()
        runs.append([serializer(value) for _, value in produced(TWO_STORES)])
    assert runs[0] == runs[1]


def test_a_value_of_another_kind_is_refused() -> None:
    """Framing something that is not an event raises DeliveryError; decoding a plain value raises ValueError."""
    serializer = EventSerializer(mock_client(), "events", "avro")
    serializer.register()
    with pytest.raises(DeliveryError, match="cannot serialise an event for events-value"):
        serializer(b'{"event_type":"foot_traffic"}')
    with pytest.raises(ValueError, match="not an event framed"):
        serializer.plain(b'{"event_type":"foot_traffic"}')
    with pytest.raises(ValueError, match="wire format"):
        registry.schema_id(b"{}")


def test_kafka_sink_frames_each_event_and_dead_letters_keep_plain_json(tmp_path: Any) -> None:
    """Batch and single sends produce framed values; a failed one reaches the dead-letter file as plain JSON."""
    serializer = EventSerializer(mock_client(), "events", "avro")
    serializer.register()
    letters = DeadLetterFile(tmp_path / "dl.jsonl")
    sink, producer = fake_sink("b:1", "events", dead_letters=letters, serializer=serializer)
    Service(ONE_STORE, 11, sink, ManualClock(START), poll_s=0.5, until_us=UNTIL).run()
    plain = produced(ONE_STORE)
    assert [(m.key().decode(), serializer.plain(m.value())) for m, _ in producer.queue] == plain
    assert all(m.value()[0] == 0 and m.value() != v for (m, _), (_, v) in zip(producer.queue, plain, strict=True))
    producer.deliver(KafkaError(KafkaError._MSG_TIMED_OUT))
    sink.send_to("elsewhere", "k", b'{"event_type":"other"}')
    assert producer.queue[-1][0].value() == b'{"event_type":"other"}'
    letters.close()
    (line,) = (tmp_path / "dl.jsonl").read_text().splitlines()
    assert json.loads(line)["value"] == plain[0][1].decode()
    assert (sink.failed, sink.delivered) == (1, 0)


def test_an_event_the_serializer_refuses_is_failed_and_dead_lettered(tmp_path: Any) -> None:
    """A serialisation failure counts the event as failed, keeps it, and stops the run with DeliveryError."""
    serializer = EventSerializer(mock_client(), "events", "avro")
    serializer.register()
    letters = DeadLetterFile(tmp_path / "dl.jsonl")
    sink, _ = fake_sink("b:1", "events", dead_letters=letters, serializer=serializer)
    with pytest.raises(DeliveryError):
        sink.send("k", b'{"event_type":"foot_traffic"}', None, "slot")
    letters.close()
    assert sink.failed == 1
    assert letters.written == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("localhost:8081", "an http:// or https:// URL"),
        ("ftp://host/x", "an http:// or https:// URL"),
        ("http://", "an http:// or https:// URL"),
        ("http://host:99999", "an http:// or https:// URL"),
        ("http://host:port", "an http:// or https:// URL"),
        ("http://host/x?y=1", "without user:password@, query or fragment"),
        ("http://a:8081,http://b:8081", "an http:// or https:// URL"),
        ("http://bad host:8081", "an http:// or https:// URL"),
    ],
)
def test_bad_urls_are_refused(raw: str, expected: str) -> None:
    """A URL that is not one plain http(s) address is a configuration error naming the variable."""
    with pytest.raises(ConfigError) as info:
        load_settings({"SCHEMA_REGISTRY_URL": raw})
    (problem,) = info.value.problems
    assert problem.startswith(f"SCHEMA_REGISTRY_URL={raw!r}: expected ")
    assert expected in problem


def test_credentials_in_the_url_are_refused_without_showing_them() -> None:
    """user:password@ in the URL is refused and pointed at the secret setting (the value is still quoted)."""
    with pytest.raises(ConfigError) as info:
        load_settings({"SCHEMA_REGISTRY_URL": "https://u:p@host"})
    (problem,) = info.value.problems
    assert "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" in problem


def test_good_settings_are_kept() -> None:
    """A valid URL (trailing slash dropped), a format and user info make their way into the settings."""
    s = load_settings(
        {
            "SCHEMA_REGISTRY_URL": URL + "/",
            "SCHEMA_REGISTRY_FORMAT": "AVRO",
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": f"alice:{PASSWORD}",
        }
    )
    assert (s.schema_registry_url, s.schema_registry_format) == (URL, "avro")
    assert s.schema_registry_basic_auth_user_info is not None
    assert s.schema_registry_basic_auth_user_info.reveal() == f"alice:{PASSWORD}"
    assert PASSWORD not in repr(s)
    assert PASSWORD not in str(s)
    assert load_settings({}).schema_registry_url is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SCHEMA_REGISTRY_URL": URL, "SINK": "stdout"}, f"SCHEMA_REGISTRY_URL={URL!r} with SINK='stdout': expected"),
        ({"SCHEMA_REGISTRY_URL": URL, "SINK": "null"}, "with SINK='null': expected SINK=kafka"),
        ({"SCHEMA_REGISTRY_URL": URL, "EXIT_EVENTS_TOPIC": "x"}, "with EXIT_EVENTS_TOPIC: expected one or the other"),
        ({"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "a:b"}, "='***': expected SCHEMA_REGISTRY_URL to be set too"),
        ({"SCHEMA_REGISTRY_URL": URL, "SCHEMA_REGISTRY_FORMAT": "protobuf"}, "one of json, avro"),
    ],
)
def test_combinations_that_cannot_work_are_refused(env: dict[str, str], expected: str) -> None:
    """Registry framing is for the Kafka sink's main topic only, and credentials need a URL."""
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    (problem,) = info.value.problems
    assert expected in problem


def test_user_info_without_a_colon_is_refused_masked() -> None:
    """A user info value that is not user:password is refused; the message shows '***', not the value."""
    with pytest.raises(ConfigError) as info:
        load_settings({"SCHEMA_REGISTRY_URL": URL, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": PASSWORD})
    (problem,) = info.value.problems
    assert problem == (
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO='***': expected user:password (a user name, a colon, then the password)"
    )


HTTPS = "https://127.0.0.1:8443/apis/ccompat/v7"


def tls_env(pem: Pem, **extra: str) -> dict[str, str]:
    """An https:// registry with a CA, a client certificate and its encrypted key."""
    return {
        "SCHEMA_REGISTRY_URL": HTTPS,
        "SCHEMA_REGISTRY_SSL_CA_LOCATION": str(pem.ca),
        "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION": str(pem.cert),
        "SCHEMA_REGISTRY_SSL_KEY_LOCATION": str(pem.key),
        "SCHEMA_REGISTRY_SSL_KEY_PASSWORD": KEY_PASSWORD,
        **extra,
    }


def test_tls_settings_reach_the_registry_client_and_the_password_is_masked(pem: Pem) -> None:
    """The four SCHEMA_REGISTRY_SSL_* settings become the client's ssl.* entries; repr shows no password."""
    settings = load_settings(tls_env(pem))
    config = registry.client_config(HTTPS, None, 5.0, registry_config.tls(settings))
    assert {k: v for k, v in config.items() if k.startswith("ssl.")} == {
        "ssl.ca.location": str(pem.ca),
        "ssl.certificate.location": str(pem.cert),
        "ssl.key.location": str(pem.key),
        "ssl.key.password": KEY_PASSWORD,
    }
    assert KEY_PASSWORD not in repr(settings)
    assert KEY_PASSWORD not in repr(registry_config.tls(settings))
    assert registry.client_config(HTTPS, None, 5.0, registry.TLS()) == {"url": HTTPS, "timeout": 5.0, "max.retries": 0}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"SCHEMA_REGISTRY_URL": ""},
            [
                f"SCHEMA_REGISTRY_SSL_{name}: expected SCHEMA_REGISTRY_URL to be set too"
                for name in ("CA_LOCATION={ca!r}", "CERTIFICATE_LOCATION={cert!r}", "KEY_LOCATION={key!r}")
            ]
            + ["SCHEMA_REGISTRY_SSL_KEY_PASSWORD='***': expected SCHEMA_REGISTRY_URL to be set too"],
        ),
        (
            {
                "SCHEMA_REGISTRY_URL": URL,
                "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION": "",
                "SCHEMA_REGISTRY_SSL_KEY_LOCATION": "",
            },
            [
                f"SCHEMA_REGISTRY_SSL_CA_LOCATION={{ca!r}}: expected an https:// SCHEMA_REGISTRY_URL to use it "
                f"(it is {URL!r}), or no value",
                f"SCHEMA_REGISTRY_SSL_KEY_PASSWORD='***': expected an https:// SCHEMA_REGISTRY_URL to use it "
                f"(it is {URL!r}), or no value",
            ],
        ),
        (
            {"SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION": ""},
            [
                "SCHEMA_REGISTRY_SSL_KEY_LOCATION={key!r}: expected SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION to be "
                "set too (a client key needs its certificate)",
                "SCHEMA_REGISTRY_SSL_KEY_PASSWORD='***': expected SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION to be "
                "set too (it decrypts that key)",
            ],
        ),
    ],
)
def test_tls_settings_that_cannot_work_are_refused(pem: Pem, change: dict[str, str], expected: list[str]) -> None:
    """TLS settings need an https:// URL, and a key (or its password) needs the certificate it goes with."""
    env = {k: v for k, v in (tls_env(pem) | change).items() if v}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    files = {"ca": str(pem.ca), "cert": str(pem.cert), "key": str(pem.key)}
    assert info.value.problems == [line.format(**files) for line in expected]


def test_tls_files_python_cannot_load_are_config_errors_naming_the_setting(pem: Pem, tmp_path: Path) -> None:
    """A CA that is no PEM, a wrong key password, an encrypted key without one: exit-2 problems, no password shown."""
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    unloadable = f"SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION={str(pem.cert)!r}: expected a PEM client certificate and"
    cases = [
        (
            tls_env(pem, SCHEMA_REGISTRY_SSL_CA_LOCATION=str(not_pem)),
            f"SCHEMA_REGISTRY_SSL_CA_LOCATION={str(not_pem)!r}: expected a PEM file of CA certificate(s); SSLError: ",
        ),
        (tls_env(pem, SCHEMA_REGISTRY_SSL_KEY_PASSWORD="wrong-" + KEY_PASSWORD), unloadable),
        ({k: v for k, v in tls_env(pem).items() if k != "SCHEMA_REGISTRY_SSL_KEY_PASSWORD"}, unloadable),
        (tls_env(pem, SCHEMA_REGISTRY_SSL_KEY_LOCATION=str(pem.ca)), unloadable),
    ]
    for env, start in cases:
        with pytest.raises(ConfigError) as info:
            load_settings(env)
        (problem,) = info.value.problems
        assert problem.startswith(start), problem
        assert KEY_PASSWORD not in problem


UNTRUSTED = "set SCHEMA_REGISTRY_SSL_CA_LOCATION to the CA that signed it"
REFUSED = "the registry refused this client's certificate"


def _wrapped(cause: BaseException) -> Exception:
    """``cause`` inside another exception, as the HTTP client raises it."""
    try:
        try:
            raise cause
        except BaseException as inner:
            raise ConnectionError("[transport] failed") from inner
    except ConnectionError as outer:
        return outer


@pytest.mark.parametrize(
    ("cause", "hint"),
    [
        (ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), UNTRUSTED),
        (ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"), REFUSED),
        (ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca"), REFUSED),
    ],
)
def test_a_tls_handshake_that_will_fail_again_is_final_at_once(cause: BaseException, hint: str) -> None:
    """No retry for an untrusted server or a refused client certificate: exit 3 with the setting to check."""
    slept: list[float] = []

    def request() -> int:
        raise _wrapped(cause)

    with pytest.raises(RegistryUnavailableError) as info:
        registry.call_registry(request, url=HTTPS, attempts=5, backoff_s=1.0, sleep=slept.append, refusal="cannot")
    assert slept == []
    message = str(info.value)
    assert message.startswith("cannot: ConnectionError: [transport] failed; ")
    assert hint in message


def test_transport_errors_other_than_tls_are_retried() -> None:
    """A refused connection (a registry still starting) is tried MAX_RETRIES times."""
    slept: list[float] = []

    def request() -> int:
        raise _wrapped(ConnectionRefusedError(111, "Connection refused"))

    with pytest.raises(RegistryUnavailableError, match="after 3 attempt"):
        registry.call_registry(request, url=HTTPS, attempts=3, backoff_s=0.5, sleep=slept.append, refusal="cannot")
    assert slept == [0.5, 0.5]


@pytest.mark.parametrize(("fmt", "module"), [("avro", "fastavro"), ("json", "jsonschema")])
def test_missing_extra_is_exit_2_with_the_install_hint(
    fmt: str, module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the serializers' modules, run stops before anything starts, saying how to install them."""
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", URL)
    monkeypatch.setenv("SCHEMA_REGISTRY_FORMAT", fmt)
    assert main(["run"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"foot-traffic: error: SCHEMA_REGISTRY_URL={URL!r}: expected the registry serializers")
    assert line.endswith("pip install 'foot-traffic[registry]'")
    assert module in line


def registry_settings(url: str, **extra: str) -> Settings:
    """Settings of a run against ``url`` that give up quickly."""
    return load_settings(
        {
            "SCHEMA_REGISTRY_URL": url,
            "KAFKA_TOPIC": "events",
            "MAX_RETRIES": "3",
            "RETRY_BACKOFF_SECONDS": "0.5",
            "KAFKA_CONNECT_TIMEOUT_SECONDS": "2",
            **extra,
        }
    )


def test_unreachable_registry_is_retried_then_reported_with_its_url(caplog: pytest.LogCaptureFixture) -> None:
    """Connection refused: MAX_RETRIES attempts RETRY_BACKOFF_SECONDS apart, then one error naming the URL."""
    with socket.socket() as s:  # a port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/apis/ccompat/v7"
    slept: list[float] = []
    with pytest.raises(RegistryUnavailableError) as info:
        registry_config.connect(registry_settings(url), sleep=slept.append)
    assert slept == [0.5, 0.5]
    assert str(info.value).startswith(f"cannot reach the schema registry at {url} after 3 attempt(s) 0.5 s apart: ")
    assert str(info.value).endswith("check SCHEMA_REGISTRY_URL")
    assert info.value.exit_status == 3
    retries = [r.getMessage() for r in caplog.records if "not reachable (attempt" in r.getMessage()]
    assert len(retries) == 2
    assert retries[1].startswith(f"Schema registry at {url} not reachable (attempt 2 of 3): ")
    assert retries[1].endswith("; retrying in 0.5 s")


class _Refusing(BaseHTTPRequestHandler):
    """Answers every request 401 and remembers the Authorization headers it saw."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self._refuse()

    def do_POST(self) -> None:
        self._refuse()

    def _refuse(self) -> None:
        _Refusing.seen.append(self.headers.get("Authorization", ""))
        body = b'{"error_code": 40101, "message": "Unauthorized"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test's output quiet."""


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A local HTTP server that refuses every request with 401; yields its base URL."""
    _Refusing.seen = []
    server = HTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_refused_credentials_stop_at_once_without_showing_the_password(
    refusing_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 is exit 3 at the first attempt; the credentials were sent, and no output shows the password."""
    for name, value in {
        "SCHEMA_REGISTRY_URL": refusing_server,
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": f"alice:{PASSWORD}",
        "KAFKA_BROKER": "127.0.0.1:1",
        "KAFKA_TOPIC": "events",
        "MAX_RETRIES": "5",
        "RETRY_BACKOFF_SECONDS": "30",
        "LOG_LEVEL": "DEBUG",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 3
    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert _Refusing.seen
    assert set(_Refusing.seen) == {expected}
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert f"at the schema registry at {refusing_server}: HTTP 401" in errors[0]
    assert "check SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" in errors[0]
    assert PASSWORD not in out.err + out.out
    assert expected.split()[1] not in out.err + out.out
