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
them before a run asks for the registry. The settings behind the parameters are
read and checked in foot_traffic.config.registry.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from foot_traffic.errors import DeliveryError, FootTrafficError
from foot_traffic.events.schema import EVENT_AVRO_SCHEMA, EVENT_SCHEMA
from foot_traffic.retry import Backoff, RetriesExhausted, Retryable, retrying
from foot_traffic.secret import Secret

log = logging.getLogger(__name__)

_T = TypeVar("_T")

EXTRA_HINT = "pip install 'foot-traffic[registry]'"
"""How to install the serializers."""

MAGIC_BYTE = 0
"""First byte of every value in the Confluent wire format; the schema id follows in 4 big-endian bytes."""

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


def connect(
    url: str,
    topic: str,
    fmt: str,
    *,
    user_info: Secret | None,
    tls: TLS | None,
    timeout_s: float,
    backoff: Backoff,
    client: Any = None,
) -> EventSerializer:
    """Reach the registry at ``url`` (``backoff.attempts`` attempts) and register the event's ``fmt`` schema.

    Raises RegistryUnavailableError naming the URL: at once when the registry
    answers with a refusal (credentials, a wrong path, a schema it rejects),
    after the last attempt when it cannot be reached or fails.
    """
    own = client is None
    if client is None:
        client = new_client(url, user_info, timeout_s, tls)
    serializer = EventSerializer(client, topic, fmt)
    try:
        registered = call_registry(
            serializer.register,
            url=url,
            attempts=backoff.attempts,
            backoff_s=backoff.seconds,
            sleep=backoff.sleep,
            refusal=f"cannot register the {fmt} schema of {serializer.subject} at the schema registry at {url}",
        )
    except RegistryUnavailableError:
        if own:
            client.close()
        raise
    log.info("Schema registry at %s: subject %s, %s schema id %d", url, serializer.subject, fmt, registered)
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

    def attempt() -> _T:
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
            raise Retryable(f"HTTP {status}: {exc.error_message}") from None
        except Exception as exc:  # the HTTP client's transport errors (refused, timed out, unknown host, TLS)
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            refused = _tls_refusal(exc)
            if refused is not None:
                raise RegistryUnavailableError(f"{refusal}: {reason}; {refused}") from None
            raise Retryable(reason) from None

    try:
        return retrying(attempt, Backoff(attempts, backoff_s, sleep), f"Schema registry at {url}")
    except RetriesExhausted as exc:
        raise RegistryUnavailableError(
            f"cannot reach the schema registry at {url} after {attempts} attempt(s) {backoff_s:g} s apart: "
            f"{exc.reason}; check SCHEMA_REGISTRY_URL"
        ) from None


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
