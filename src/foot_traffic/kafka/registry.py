"""Schema Registry serialisation: events framed in the Confluent wire format, their schema registered.

With SCHEMA_REGISTRY_URL set, each event of the main topic is handed to
confluent-kafka's serializer: ``JSONSerializer`` with the shipped JSON Schema
(SCHEMA_REGISTRY_FORMAT=json) or ``AvroSerializer`` with its Avro twin (avro).
Either writes the Confluent wire format: a magic byte 0, the schema id as four
big-endian bytes, then the JSON text or the Avro binary record. The schema is
registered under ``<topic>-value`` (TopicNameStrategy) at start-up, which also
proves the registry reachable: after that the serializer and the deserializer
kept for dead letters work from their caches and never call the registry again.

The serializers live in the optional ``registry`` extra; nothing here imports
them before a run asks for the registry.
"""

from __future__ import annotations

import importlib
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from foot_traffic.config.security import MASK, Secret
from foot_traffic.errors import DeliveryError, FootTrafficError
from foot_traffic.events.schema import EVENT_AVRO_SCHEMA, EVENT_SCHEMA

if TYPE_CHECKING:
    from foot_traffic.config.settings import Settings

log = logging.getLogger(__name__)

_T = TypeVar("_T")

FORMATS = ("json", "avro")
"""Values of SCHEMA_REGISTRY_FORMAT."""

EXTRA_HINT = "pip install 'foot-traffic[registry]'"
"""How to install the serializers."""

MAGIC_BYTE = 0
"""First byte of every value in the Confluent wire format; the schema id follows in 4 big-endian bytes."""

_EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "json": (
        "jsonschema",
        "referencing",
        "confluent_kafka.schema_registry",
        "confluent_kafka.schema_registry.json_schema",
    ),
    "avro": ("fastavro", "confluent_kafka.schema_registry", "confluent_kafka.schema_registry.avro"),
}
"""What each format imports: the third-party modules first, so a missing one is named."""

_SAMPLE: dict[str, object] = {
    "event_type": "foot_traffic",
    "customer_id": "00000000-0000-4000-8000-000000000000",
    "entry_time": "2025-01-01T00:00:00.000000+00:00",
    "exit_time": "2025-01-01T00:10:00.000000+00:00",
    "trip_duration_minutes": 10,
    "weekday": "Wednesday",
    "time_slot": "00:00–09:59",
}
"""An event serialised (and dropped) at start-up: it registers the schema and fills the serializer's caches."""


class RegistryUnavailableError(FootTrafficError):
    """The schema registry could not be reached, or refused the schema or the credentials."""

    exit_status = 3


@dataclass(frozen=True, slots=True)
class TLS:
    """SCHEMA_REGISTRY_SSL_*: the CA an https:// registry's certificate is checked against, and this client's own."""

    ca_location: Path | None = None
    certificate_location: Path | None = None
    key_location: Path | None = None
    key_password: Secret | None = None

    @classmethod
    def of(cls, settings: Settings) -> TLS:
        """The TLS settings of a run."""
        return cls(
            settings.schema_registry_ssl_ca_location,
            settings.schema_registry_ssl_certificate_location,
            settings.schema_registry_ssl_key_location,
            settings.schema_registry_ssl_key_password,
        )

    def client_config(self) -> dict[str, str]:
        """The SchemaRegistryClient's ssl.* entries (none: the system's trust store, no client certificate)."""
        config: dict[str, str] = {}
        for key, value in (
            ("ssl.ca.location", self.ca_location),
            ("ssl.certificate.location", self.certificate_location),
            ("ssl.key.location", self.key_location),
            ("ssl.key.password", self.key_password),
        ):
            if value is not None:
                config[key] = value.reveal() if isinstance(value, Secret) else str(value)
        return config


TLS_SETTINGS = (
    ("schema_registry_ssl_ca_location", "SCHEMA_REGISTRY_SSL_CA_LOCATION"),
    ("schema_registry_ssl_certificate_location", "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION"),
    ("schema_registry_ssl_key_location", "SCHEMA_REGISTRY_SSL_KEY_LOCATION"),
    ("schema_registry_ssl_key_password", "SCHEMA_REGISTRY_SSL_KEY_PASSWORD"),
)
"""The TLS settings, by field name and variable."""


def parse_url(raw: str) -> str:
    """SCHEMA_REGISTRY_URL: one http:// or https:// URL with a host, without credentials, query or fragment."""
    expected = "an http:// or https:// URL such as http://localhost:8081, without user:password@, query or fragment"
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise ValueError(expected) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in text)
        or "," in text
        or (port is not None and port == 0)
    ):
        raise ValueError(expected)
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{expected} (credentials go in SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO)")
    return text.rstrip("/")


def parse_user_info(raw: str) -> Secret:
    """SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO: ``user:password`` with a non-empty user, kept as a Secret."""
    user, sep, _ = raw.partition(":")
    if not sep or not user or any(c in raw for c in "\r\n"):
        raise ValueError("user:password (a user name, a colon, then the password)")
    return Secret(raw)


def missing_extra(fmt: str, import_module: Callable[[str], object] = importlib.import_module) -> str | None:
    """Why the serializers of ``fmt`` cannot be imported (the import error), or None when they can."""
    for module in _EXTRA_MODULES[fmt]:
        try:
            import_module(module)
        except ImportError as exc:
            return str(exc)
    return None


def check(values: Mapping[str, Any], problems: list[str], *, in_file: Mapping[str, str] | None = None) -> None:
    """Check the registry settings together with the rest; append one line per problem.

    ``in_file`` names the configuration file of each setting read from one, by name.
    """

    def where(name: str) -> str:
        return f" (in {in_file[name]})" if in_file and name in in_file else ""

    def shown(name: str, env: str) -> str:
        value = values[name]
        return f"{env}={MASK if isinstance(value, Secret) else repr(str(value))}{where(name)}"

    url = values.get("schema_registry_url")
    dependent = (("schema_registry_basic_auth_user_info", "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"), *TLS_SETTINGS)
    if url is None:
        problems.extend(
            f"{shown(name, env)}: expected SCHEMA_REGISTRY_URL to be set too"
            for name, env in dependent
            if name in values
        )
        return
    _check_tls(values, url, problems, shown)
    quoted = f"SCHEMA_REGISTRY_URL={url!r}{where('schema_registry_url')}"
    sink = values.get("sink", "kafka")
    if sink != "kafka":
        problems.append(f"{quoted} with SINK={sink!r}: expected SINK=kafka (the registry's framing is for Kafka)")
    if values.get("exit_events_topic") is not None:
        problems.append(
            f"{quoted} with EXIT_EVENTS_TOPIC: expected one or the other "
            "(the entry/exit events have no registered schema)"
        )
    fmt = values.get("schema_registry_format", "json")
    if fmt in FORMATS:
        reason = missing_extra(fmt)
        if reason is not None:
            problems.append(f"{quoted}: expected the registry serializers to be installed ({reason}); {EXTRA_HINT}")


def _check_tls(values: Mapping[str, Any], url: str, problems: list[str], shown: Callable[[str, str], str]) -> None:
    """The SCHEMA_REGISTRY_SSL_* settings: for https:// only, a key with its certificate, and loadable by Python."""
    given = [(name, env) for name, env in TLS_SETTINGS if name in values]
    if not given:
        return
    if not url.lower().startswith("https://"):
        problems.extend(
            f"{shown(name, env)}: expected an https:// SCHEMA_REGISTRY_URL to use it (it is {url!r}), or no value"
            for name, env in given
        )
        return
    before = len(problems)
    certificate = "schema_registry_ssl_certificate_location"
    reasons = ("a client key needs its certificate", "it decrypts that key")
    needs_certificate = zip(TLS_SETTINGS[2:], reasons, strict=True)
    problems.extend(
        f"{shown(name, env)}: expected SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION to be set too ({why})"
        for (name, env), why in needs_certificate
        if name in values and certificate not in values
    )
    if len(problems) == before:
        problems.extend(_load_tls(TLS(*(values.get(name) for name, _ in TLS_SETTINGS)), shown))


def _load_tls(tls: TLS, shown: Callable[[str, str], str]) -> list[str]:
    """Problems Python's ssl finds in the CA file and the client's certificate and key, each naming its setting."""
    try:
        context = ssl.create_default_context(cafile=None if tls.ca_location is None else str(tls.ca_location))
    except (ssl.SSLError, OSError, ValueError) as exc:
        return [f"{shown(*TLS_SETTINGS[0])}: expected a PEM file of CA certificate(s); {type(exc).__name__}: {exc}"]
    if tls.certificate_location is None:
        return []
    try:
        context.load_cert_chain(
            str(tls.certificate_location),
            None if tls.key_location is None else str(tls.key_location),
            _no_password if tls.key_password is None else tls.key_password.reveal(),
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        return [
            f"{shown(*TLS_SETTINGS[1])}: expected a PEM client certificate and its private key (in "
            "SCHEMA_REGISTRY_SSL_KEY_LOCATION or the same file; an encrypted key needs the right "
            f"SCHEMA_REGISTRY_SSL_KEY_PASSWORD); {type(exc).__name__}: {exc}"
        ]
    return []


def subject(topic: str) -> str:
    """The subject of a topic's values under TopicNameStrategy."""
    return f"{topic}-value"


def client_config(url: str, user_info: Secret | None, timeout_s: float, tls: TLS | None = None) -> dict[str, Any]:
    """The SchemaRegistryClient configuration; the client itself does not retry (start-up does)."""
    config: dict[str, Any] = {"url": url, "timeout": timeout_s, "max.retries": 0}
    if user_info is not None:
        config["basic.auth.user.info"] = user_info.reveal()
    if tls is not None:
        config.update(tls.client_config())
    return config


def schema_id(value: bytes) -> int:
    """The schema id of a value in the Confluent wire format; ValueError if it is not framed."""
    if len(value) < 5 or value[0] != MAGIC_BYTE:
        raise ValueError("not in the Confluent wire format (magic byte 0 and a 4-byte schema id)")
    return int.from_bytes(value[1:5], "big")


def plain_json(event: Mapping[str, object]) -> bytes:
    """An event as foot-traffic's compact JSON (a null store_id left out): the bytes of the plain sink."""
    fields = {k: v for k, v in event.items() if not (k == "store_id" and v is None)}
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


class EventSerializer:
    """Frames one topic's events for the registry: plain event JSON in, Confluent wire format out, and back.

    ``client`` is a confluent-kafka SchemaRegistryClient (or its mock).
    """

    def __init__(self, client: Any, topic: str, fmt: str) -> None:
        from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: PLC0415 - the extra

        self.topic = topic
        self.format = fmt
        self.subject = subject(topic)
        self.schema_id: int | None = None
        self._context = SerializationContext(topic, MessageField.VALUE)
        if fmt == "avro":
            from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer  # noqa: PLC0415

            self._serializer = AvroSerializer(client, json.dumps(EVENT_AVRO_SCHEMA))
            self._deserializer = AvroDeserializer(client)
        else:
            from confluent_kafka.schema_registry.json_schema import (  # noqa: PLC0415
                JSONDeserializer,
                JSONSerializer,
            )

            # No per-event validation: the events come from one encoder whose output the test suite
            # validates against this schema, and validating each one costs about nine times the framing.
            self._serializer = JSONSerializer(json.dumps(EVENT_SCHEMA), client, conf={"validate": False})
            self._deserializer = JSONDeserializer(None, schema_registry_client=client, conf={"validate": False})

    def register(self) -> int:
        """Register the schema under the topic's subject (if it is not yet), warm the caches; return its id."""
        framed = self.serialize_event(_SAMPLE)
        self.schema_id = schema_id(framed)
        self.deserialize(framed)
        return self.schema_id

    def serialize_event(self, event: Mapping[str, object]) -> bytes:
        """One event (a mapping of its fields) in the wire format."""
        fields = {k: v for k, v in event.items() if not (k == "store_id" and v is None)}
        value = self._serializer(fields, self._context)
        if not isinstance(value, bytes):
            raise TypeError(f"the serializer returned {type(value).__name__}, not bytes")
        return value

    def __call__(self, value: bytes) -> bytes:
        """Frame one event given as plain JSON; DeliveryError if the serializer refuses it."""
        try:
            return self.serialize_event(json.loads(value))
        except Exception as exc:  # the serializers raise their own errors as well as ValueError and TypeError
            raise DeliveryError(f"cannot serialise an event for {self.subject} ({self.format}): {exc}") from None

    def deserialize(self, value: bytes) -> dict[str, object]:
        """A framed value back to the event's fields (store_id left out when null)."""
        decoded = self._deserializer(value, self._context)
        if not isinstance(decoded, dict):
            raise TypeError(f"the deserializer returned {type(decoded).__name__}, not an object")
        return {k: v for k, v in decoded.items() if not (k == "store_id" and v is None)}

    def plain(self, value: bytes) -> bytes:
        """A framed value back to the plain JSON of the event (dead letters, resuming); ValueError if it is not one."""
        try:
            return plain_json(self.deserialize(value))
        except Exception as exc:  # the deserializers raise their own errors on a foreign value
            raise ValueError(f"not an event framed for {self.subject}: {exc}") from None


def connect(settings: Settings, *, client: Any = None, sleep: Callable[[float], None] = time.sleep) -> EventSerializer:
    """Reach the registry (MAX_RETRIES attempts, RETRY_BACKOFF_SECONDS apart) and register the event's schema.

    Raises RegistryUnavailableError naming the URL: at once when the registry
    answers with a refusal (credentials, a wrong path, a schema it rejects),
    after the last attempt when it cannot be reached or fails.
    """
    url = settings.schema_registry_url
    if url is None:
        raise ValueError("SCHEMA_REGISTRY_URL is not set")
    own = client is None
    if client is None:
        client = new_client(
            url, settings.schema_registry_basic_auth_user_info, settings.connect_timeout_seconds, TLS.of(settings)
        )
    try:
        return _register(settings, url, EventSerializer(client, settings.topic, settings.schema_registry_format), sleep)
    except RegistryUnavailableError:
        if own:
            client.close()
        raise


def _register(
    settings: Settings, url: str, serializer: EventSerializer, sleep: Callable[[float], None]
) -> EventSerializer:
    """Register the schema within MAX_RETRIES attempts; the serializer, ready, or RegistryUnavailableError."""
    registered = call_registry(
        serializer.register,
        url=url,
        attempts=settings.max_retries,
        backoff_s=settings.retry_backoff_seconds,
        sleep=sleep,
        refusal=f"cannot register the {settings.schema_registry_format} schema of {serializer.subject} "
        f"at the schema registry at {url}",
    )
    log.info(
        "Schema registry at %s: subject %s, %s schema id %d",
        url,
        serializer.subject,
        settings.schema_registry_format,
        registered,
    )
    return serializer


def new_client(url: str, user_info: Secret | None, timeout_s: float, tls: TLS | None = None) -> Any:
    """A SchemaRegistryClient for ``url`` (the CLI's logging set-up keeps its HTTP library's INFO lines quiet)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415 - the extra

    return SchemaRegistryClient(client_config(url, user_info, timeout_s, tls))


def call_registry(
    request: Callable[[], _T],
    *,
    url: str,
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], None],
    refusal: str,
    special: Callable[[Any], None] | None = None,
) -> _T:
    """``request``'s answer, tried ``attempts`` times ``backoff_s`` apart while the registry cannot be reached.

    A refusal (HTTP 4xx other than 408 and 429) is final at once: RegistryUnavailableError
    starting with ``refusal`` and ending with a hint; ``special`` sees each SchemaRegistryError
    first and may raise an error of its own. After the last attempt, RegistryUnavailableError
    naming the URL and the last error.
    """
    from confluent_kafka.schema_registry import SchemaRegistryError  # noqa: PLC0415 - the extra

    last_error = ""
    for attempt in range(1, attempts + 1):
        try:
            return request()
        except SchemaRegistryError as exc:
            if special is not None:
                special(exc)
            status = exc.http_status_code
            if 400 <= status < 500 and status not in (408, 429):
                raise RegistryUnavailableError(
                    f"{refusal}: HTTP {status}: {exc.error_message}; {_hint(status)}"
                ) from None
            last_error = f"HTTP {status}: {exc.error_message}"
        except Exception as exc:  # the HTTP client's transport errors (refused, timed out, unknown host, TLS)
            last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            refused = _tls_refusal(exc)
            if refused is not None:
                raise RegistryUnavailableError(f"{refusal}: {last_error}; {refused}") from None
        if attempt < attempts:
            log.warning(
                "Schema registry at %s not reachable (attempt %d of %d): %s; retrying in %.1f s",
                url,
                attempt,
                attempts,
                last_error,
                backoff_s,
            )
            sleep(backoff_s)
    raise RegistryUnavailableError(
        f"cannot reach the schema registry at {url} after {attempts} attempt(s) {backoff_s:g} s apart: "
        f"{last_error}; check SCHEMA_REGISTRY_URL"
    )


def _no_password() -> str:
    """An encrypted key without SCHEMA_REGISTRY_SSL_KEY_PASSWORD fails to load, rather than prompting on a terminal."""
    return ""


def _tls_refusal(exc: BaseException) -> str | None:
    """A hint when ``exc`` is a TLS handshake that will fail again (untrusted server, refused client); else None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                "the registry's certificate is not trusted: set SCHEMA_REGISTRY_SSL_CA_LOCATION to the CA that "
                "signed it (and check that SCHEMA_REGISTRY_URL names a host the certificate is for)"
            )
        text = str(cause).upper()
        if isinstance(cause, ssl.SSLError) and ("CERTIFICATE" in text or "UNKNOWN_CA" in text):
            return (
                "the registry refused this client's certificate: check SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION "
                "and SCHEMA_REGISTRY_SSL_KEY_LOCATION (a certificate signed by a CA the registry trusts)"
            )
        cause = cause.__cause__ or cause.__context__
    return None


def _hint(status: int) -> str:
    if status in (401, 403):
        return "check SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"
    if status == 404:
        return "check SCHEMA_REGISTRY_URL (the base of the Confluent-compatible API, e.g. …/apis/ccompat/v7)"
    if status == 409:
        return "the subject's compatibility rule rejects this schema; use another topic or relax the rule"
    return "check SCHEMA_REGISTRY_URL and the registry's logs"
