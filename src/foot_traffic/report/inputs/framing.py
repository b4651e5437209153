"""Kafka values in the Schema Registry framing, for ``foot-traffic report``: back to plain event JSON.

A framed value is a magic byte 0, a schema id in four big-endian bytes, then
the payload: the event's JSON (a JSON Schema) or its Avro binary encoding (an
Avro schema). With SCHEMA_REGISTRY_URL set, the registry says which, once per
schema id; an Avro id's writer schema is fetched and parsed once too, and its
payloads are decoded with fastavro's ``schemaless_reader`` (confluent-kafka's
AvroDeserializer does the same plus per-call rule and context handling, four to
six times slower). Each decoded record is written back as the producer's
compact JSON, so it reaches the same column parser as a plain event, and the
same checks name a bad field by partition and offset.

Without the URL only JSON payloads can be read: a framed value whose payload is
not JSON (Avro) is bad input naming the setting. A registry that cannot be
reached is retried like Kafka, then RegistryUnavailableError (exit status 3).

The registry's client and fastavro (the ``registry`` extra) are imported only
when a value needs them.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from foot_traffic.events.schema import EVENT_AVRO_SCHEMA
from foot_traffic.kafka.registry import EXTRA_HINT, TLS, call_registry, new_client
from foot_traffic.report.inputs.events import EventsInputError
from foot_traffic.secret import Secret

log = logging.getLogger(__name__)

HEADER = 5
"""Bytes before the payload: the magic byte 0 and the 4-byte schema id."""
_MAGIC = b"\x00"
_HEAD = operator.itemgetter(slice(0, HEADER))
_JSON_FIRST = frozenset(b'{["-0123456789tfn \t\r\n')
"""Bytes a JSON payload can start with (an Avro foot_traffic event starts with 0, its event_type's index)."""
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_STORE_KEY = ',"store_id":'


@dataclass(frozen=True, slots=True)
class RegistrySource:
    """Where the schemas of framed values are looked up (SCHEMA_REGISTRY_*), and how long to try."""

    url: str
    user_info: Secret | None = None
    tls: TLS | None = None
    attempts: int = 1
    backoff_s: float = 5.0
    timeout_s: float = 10.0


def _event_json(record: Any) -> bytes:
    """A record of foot-traffic's own Avro schema as the producer's JSON line (null store_id left out)."""
    store = record["store_id"]
    return (
        f'{{"event_type":{encode_basestring(record["event_type"])},'
        f'"customer_id":{encode_basestring(record["customer_id"])},'
        f'"entry_time":{encode_basestring(record["entry_time"])},'
        f'"exit_time":{encode_basestring(record["exit_time"])},'
        f'"trip_duration_minutes":{record["trip_duration_minutes"]:d},'
        f'"weekday":{encode_basestring(record["weekday"])},'
        f'"time_slot":{encode_basestring(record["time_slot"])}'
        f"{'' if store is None else _STORE_KEY + encode_basestring(store)}}}"
    ).encode()


def _any_json(record: Any) -> bytes:
    """A record of another writer schema as compact JSON (null store_id left out); TypeError if JSON cannot hold it."""
    if isinstance(record, dict) and "store_id" in record and record["store_id"] is None:
        record = {k: v for k, v in record.items() if k != "store_id"}
    return _ENCODE(record).encode()


class _AvroReader:
    """Decodes the payloads of one Avro schema id."""

    def __init__(self, schema_id: int, parsed: Any, own: bool) -> None:
        import fastavro  # noqa: PLC0415 - the registry extra, checked by the caller

        self.schema_id = schema_id
        self._parsed = parsed
        self._read = fastavro.schemaless_reader
        self._to_json = _event_json if own else _any_json

    def lines(self, values: Sequence[bytes], indices: Iterable[int], where: Callable[[int], str]) -> list[bytes]:
        """The JSON lines of the values at ``indices``; EventsInputError at the first that is not a whole record."""
        read, parsed, to_json = self._read, self._parsed, self._to_json
        out = []
        for i in indices:
            value = values[i]
            stream = io.BytesIO(value)
            stream.seek(HEADER)
            try:
                record = read(stream, parsed, None)
            except Exception as exc:  # fastavro raises EOFError, IndexError, UnicodeDecodeError, ValueError...
                raise EventsInputError(
                    f"{where(i)}: not an Avro record of schema id {self.schema_id} "
                    f"({type(exc).__name__}: {exc}); expected one foot_traffic event per record"
                ) from None
            if stream.tell() != len(value):
                raise EventsInputError(
                    f"{where(i)}: {len(value) - stream.tell()} byte(s) after the Avro record of schema id "
                    f"{self.schema_id}; expected one foot_traffic event per record"
                )
            try:
                out.append(to_json(record))
            except (TypeError, ValueError) as exc:
                raise EventsInputError(
                    f"{where(i)}: the Avro record of schema id {self.schema_id} holds a value JSON cannot hold "
                    f"({exc}); expected a foot_traffic event (the fields of foot-traffic's Avro schema)"
                ) from None
        return out


class FramedValues:
    """Turns a batch's framed values into plain event JSON, looking up each schema id once.

    ``registry`` None means SCHEMA_REGISTRY_URL is not set: JSON payloads are
    read, anything else is refused. ``client`` replaces the SchemaRegistryClient
    otherwise made from ``registry`` (a test's mock); a client made here is closed
    by :meth:`close`.
    """

    def __init__(
        self, registry: RegistrySource | None = None, *, client: Any = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.registry = registry
        self._client = client
        self._own_client = client is None
        self._sleep = sleep
        self._kinds: dict[int, _AvroReader | None] = {}
        """By schema id: the Avro reader, or None for a JSON payload."""

    def decode(self, values: list[bytes], where: Callable[[int], str]) -> list[bytes]:
        """The values as JSON lines: framed JSON without its header, framed Avro decoded, any other value as it is."""
        heads = set(map(_HEAD, values))
        if len(heads) == 1 and values[0][:1] == _MAGIC:  # the usual batch: every value framed with one schema id
            return self._group(values, range(len(values)), where)
        groups: dict[bytes, list[int]] = {}
        for i, value in enumerate(values):
            if value[:1] == _MAGIC:
                groups.setdefault(value[:HEADER], []).append(i)
        out = list(values)
        for indices in groups.values():
            for i, line in zip(indices, self._group(values, indices, where), strict=True):
                out[i] = line
        return out

    def _group(self, values: list[bytes], indices: Sequence[int], where: Callable[[int], str]) -> list[bytes]:
        """The JSON lines of values that share one header."""
        first = indices[0]
        if len(values[first]) < HEADER:
            raise EventsInputError(
                f"{where(first)}: {len(values[first])} byte(s) starting with the magic byte 0, shorter than the "
                "Schema Registry framing (magic byte 0 and a 4-byte schema id); expected one foot_traffic event"
            )
        reader = self._kind(values[first], where(first))
        if reader is None:
            return [values[i][HEADER:] for i in indices]
        return reader.lines(values, indices, where)

    def _kind(self, value: bytes, where: str) -> _AvroReader | None:
        schema_id = int.from_bytes(value[1:HEADER], "big")
        if schema_id in self._kinds:
            return self._kinds[schema_id]
        if self.registry is not None:
            kind = self._from_registry(schema_id, self.registry, where)
        elif len(value) > HEADER and value[HEADER] not in _JSON_FIRST:
            raise EventsInputError(
                f"{where}: a value in the Schema Registry framing (schema id {schema_id}) whose payload is not JSON, "
                f"such as Avro; expected SCHEMA_REGISTRY_URL to be set to the registry holding schema id {schema_id} "
                "(e.g. http://localhost:8081), to decode it"
            )
        else:
            kind = None
        self._kinds[schema_id] = kind
        return kind

    def _from_registry(self, schema_id: int, registry: RegistrySource, where: str) -> _AvroReader | None:
        """None for a JSON schema, a reader for an Avro one; EventsInputError for any other kind."""
        schema = self._call(lambda client: client.get_schema(schema_id), f"schema id {schema_id}", registry, where)
        kind = str(schema.schema_type or "AVRO").upper()
        log.info("Schema registry at %s: schema id %d is %s", registry.url, schema_id, kind)
        if kind == "JSON":
            return None
        if kind != "AVRO":
            raise EventsInputError(
                f"{where}: schema id {schema_id} is a {kind} schema in the registry at {registry.url}; "
                "expected JSON or AVRO, the formats foot-traffic writes"
            )
        try:
            import fastavro  # noqa: PLC0415 - the registry extra
            from fastavro.schema import to_parsing_canonical_form  # noqa: PLC0415
        except ImportError as exc:
            raise EventsInputError(
                f"{where}: schema id {schema_id} is Avro; reading it needs fastavro ({exc}); {EXTRA_HINT}"
            ) from None
        named: dict[str, Any] = {}
        self._add_references(schema, named, registry, where, set())
        try:
            writer = json.loads(schema.schema_str)
            parsed = fastavro.parse_schema(writer, named_schemas=named)
            own = not schema.references and to_parsing_canonical_form(writer) == _own_canonical_form()
        except Exception as exc:  # json's ValueError, fastavro's SchemaParseException, UnknownType...
            raise EventsInputError(
                f"{where}: schema id {schema_id} in the registry at {registry.url} is not an Avro schema fastavro "
                f"reads ({type(exc).__name__}: {exc}); expected a record schema such as foot-traffic's"
            ) from None
        return _AvroReader(schema_id, parsed, own)

    def _add_references(
        self, schema: Any, named: dict[str, Any], registry: RegistrySource, where: str, seen: set[tuple[str, int]]
    ) -> None:
        """Parse the schemas a schema refers to (and theirs, first) into ``named``, as the writer did."""
        import fastavro  # noqa: PLC0415 - the registry extra, imported by the caller

        for reference in schema.references or ():
            key = (str(reference.subject), int(reference.version))
            if key in seen:
                continue
            seen.add(key)
            what = f"version {key[1]} of subject {key[0]} (a reference of schema {reference.name})"
            registered = self._call(functools.partial(_get_version, key), what, registry, where)
            self._add_references(registered.schema, named, registry, where, seen)
            try:
                fastavro.parse_schema(json.loads(registered.schema.schema_str), named_schemas=named)
            except Exception as exc:  # json's ValueError, fastavro's SchemaParseException, UnknownType...
                raise EventsInputError(
                    f"{where}: {what} in the registry at {registry.url} is not an Avro schema fastavro reads "
                    f"({type(exc).__name__}: {exc})"
                ) from None

    def _call(self, request: Callable[[Any], Any], what: str, registry: RegistrySource, where: str) -> Any:
        """One request to the registry, within ``attempts`` tries; the answer, or RegistryUnavailableError."""

        def not_found(exc: Any) -> None:
            if exc.http_status_code == 404 and 40400 <= exc.error_code < 40500:  # the registry's own "not found"
                raise EventsInputError(
                    f"{where}: {what} is not in the schema registry at {registry.url} (HTTP 404: "
                    f"{exc.error_message}); expected SCHEMA_REGISTRY_URL to be the registry the values were "
                    "written with"
                ) from None

        return call_registry(
            lambda: request(self._registry_client(registry)),
            url=registry.url,
            attempts=registry.attempts,
            backoff_s=registry.backoff_s,
            sleep=self._sleep,
            refusal=f"cannot read {what} from the schema registry at {registry.url}",
            special=not_found,
        )

    def _registry_client(self, registry: RegistrySource) -> Any:
        if self._client is None:
            self._client = new_client(registry.url, registry.user_info, registry.timeout_s, registry.tls)
        return self._client

    def close(self) -> None:
        """Close the registry client made here, if any."""
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None


def _get_version(key: tuple[str, int], client: Any) -> Any:
    return client.get_version(*key)


@functools.cache
def _own_canonical_form() -> str:
    from fastavro.schema import to_parsing_canonical_form  # noqa: PLC0415 - the registry extra

    return str(to_parsing_canonical_form(EVENT_AVRO_SCHEMA))
