"""Settings: one frozen object built once from the environment and command-line flags.

Every setting has an environment variable and a flag, and may be a key of the
configuration file CONFIG_FILE: a flag overrides the variable, which overrides
the file, which overrides the default. An empty variable counts as unset.
Every problem is reported at once, each naming the setting, the value and
what is expected.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from foot_traffic.config.config_file import ConfigFile, Vocabulary, read_config_file
from foot_traffic.config.security import (
    ENDPOINT_IDENTIFICATIONS,
    NO_PROPERTIES,
    PRODUCER_PREFIX,
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    ProducerProperties,
    Secret,
    readable_file,
)
from foot_traffic.config.security import check as check_security
from foot_traffic.errors import ConfigError
from foot_traffic.kafka.deadletter import DEFAULT_DEAD_LETTER_FILE
from foot_traffic.kafka.registry import FORMATS as REGISTRY_FORMATS
from foot_traffic.kafka.registry import check as check_registry
from foot_traffic.kafka.registry import parse_url as registry_url
from foot_traffic.kafka.registry import parse_user_info as registry_user_info
from foot_traffic.model.calendar import EMPTY_CALENDAR, Calendar, CalendarFileError, load_calendar_file
from foot_traffic.model.grid import UTC, datetime_to_us
from foot_traffic.model.plan import ARRIVAL_MODELS, DAILY_TOTAL_MODELS, Model, StoreModel
from foot_traffic.model.stores import Store, StoresFileError, load_stores_file
from foot_traffic.model.weights import DEFAULT_WEIGHTS, WeightsFileError, WeightTable, load_weights_file

MAX_DAILY_CUSTOMERS = 1_000_000_000
"""Upper bound on any daily count: beyond it a day could not be simulated in a day."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SINKS = ("kafka", "stdout", "null")
LOG_FORMATS = ("text", "json")


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"an integer between {low} and {high}") from None
        if not low <= value <= high:
            raise ValueError(f"an integer between {low} and {high}")
        return value

    return parse


def _number(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    bracket = "(" if low_open else "["
    upper = "" if math.isinf(high) else f", {high:g}]"
    expected = (
        f"a number > {low:g}"
        if low_open and math.isinf(high)
        else f"a number >= {low:g}"
        if math.isinf(high)
        else f"a number in {bracket}{low:g}{upper}"
    )

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            raise ValueError(expected)
        return value

    return parse


def _bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("one of 1/0, true/false, yes/no, on/off")


@dataclass(frozen=True, slots=True)
class Choice:
    """Parser of a setting that takes one word of a fixed list (case-insensitive)."""

    options: tuple[str, ...]
    upper: bool = False

    def __call__(self, raw: str) -> str:
        """The word, in the list's case; ValueError naming the choices otherwise."""
        word = raw.strip().upper() if self.upper else raw.strip().lower()
        if word not in self.options:
            raise ValueError(f"one of {', '.join(self.options)}")
        return word


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Choice:
    return Choice(options, upper)


def _broker(raw: str) -> str:
    expected = "a comma-separated list of host:port, port between 1 and 65535"
    parts = [p.strip() for p in raw.split(",")]
    for part in parts:
        address = part.split("://", 1)[1] if "://" in part else part
        host, sep, port = address.rpartition(":")
        # fullmatch: "$" would accept a trailing newline; isascii: isdigit accepts "²" and "١٢"
        if (
            not sep
            or not _HOST.fullmatch(host)
            or not (port.isascii() and port.isdigit())
            or not 1 <= int(port) <= 65535
        ):
            raise ValueError(expected)
    return ",".join(parts)


def _topic(raw: str) -> str:
    if not _TOPIC.fullmatch(raw) or raw in {".", ".."}:
        raise ValueError("1 to 249 characters among letters, digits, '.', '_' and '-'")
    return raw


def _seed(raw: str) -> str:
    try:
        raw.encode("utf-8")  # bytes that are not UTF-8 reach os.environ and argv as lone surrogates
    except UnicodeEncodeError:
        raise ValueError("text in UTF-8") from None
    return raw


def _speed(raw: str) -> float | None:
    """A positive speed-up factor, or None for "max"."""
    if raw.strip().lower() == "max":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value > 1e9:
        raise ValueError("a number > 0 of simulated seconds per real second, or max")
    return value


def _instant(raw: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("an ISO-8601 date or instant such as 2025-08-12 or 2025-08-12T15:30:00+02:00") from None
    # a day's plan needs the dates and UTC offsets on either side to exist: datetime ends at years 1 and 9999
    if not 2 <= moment.year <= 9998:
        raise ValueError("an ISO-8601 date or instant in the years 2 to 9998")
    return moment


def _zone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of the database, such as America
        raise ValueError("an IANA time zone name such as UTC or Europe/Rome") from None


def _path(raw: str) -> Path:
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # "~someone" with no such user
        raise ValueError("a file path whose ~user is a known user") from None


def _output_file(raw: str) -> Path:
    """A file to append to: not a directory, in a directory that exists."""
    path = _path(raw)
    try:
        usable = not path.is_dir() and path.parent.is_dir()
    except OSError:  # is_dir() raises on a name too long or a permission denied, not only answers False
        usable = False
    if not usable:
        raise ValueError("a file path (not a directory) in an existing directory")
    return path


_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _listen_host(raw: str) -> str:
    """An address to listen on: an IPv4 or IPv6 address (brackets optional), or a host name."""
    host = raw.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if host.isascii() and all(_HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit():
        return host
    raise ValueError("an IP address to listen on, such as 127.0.0.1, 0.0.0.0 or ::, or a host name")


FILE_PARSERS: frozenset[Callable[[str], Any]] = frozenset({_path, _output_file, readable_file})
"""Parsers whose settings name a file (shell completion offers file names for them)."""

BOOL_PARSER: Callable[[str], bool] = _bool
"""Parser of the on/off settings."""


@dataclass(frozen=True, slots=True)
class Spec:
    """How one setting is read: its variable, its flag, its parser, default and meaning."""

    name: str
    env: str
    parse: Callable[[str], Any]
    default: str | None
    help: str
    aliases: tuple[str, ...] = ()
    secret: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag, derived from the variable's name."""
        return "--" + self.env.lower().replace("_", "-")


SPECS: tuple[Spec, ...] = (
    Spec(
        "broker",
        "KAFKA_BROKER",
        _broker,
        "kafka:9092",
        "Kafka bootstrap server(s), host:port[,host:port…].",
        ("--broker",),
    ),
    Spec("topic", "KAFKA_TOPIC", _topic, "foot_traffic", "Kafka topic for events.", ("--topic",)),
    Spec(
        "sleep",
        "SLEEP",
        _number(0, math.inf, low_open=True),
        "0.5",
        "Longest wait in seconds between two clock checks (base loop sleep).",
    ),
    Spec(
        "time_scale",
        "TIME_SCALE",
        _number(0, math.inf, low_open=True),
        "1.0",
        "Divides SLEEP: higher means more frequent clock checks. Does not change timestamps.",
    ),
    Spec(
        "default_daily_customers",
        "DEFAULT_DAILY_CUSTOMERS",
        _int_in(0, MAX_DAILY_CUSTOMERS),
        "100",
        "Legacy default of BASE_DAILY_CUSTOMERS.",
    ),
    Spec(
        "base_daily_customers",
        "BASE_DAILY_CUSTOMERS",
        _int_in(0, MAX_DAILY_CUSTOMERS),
        None,
        "Mean daily total of an average weekday, scaled by weekday popularity. Default: DEFAULT_DAILY_CUSTOMERS.",
    ),
    Spec(
        "daily_customers",
        "DAILY_CUSTOMERS",
        _int_in(0, MAX_DAILY_CUSTOMERS),
        None,
        "If set, the fixed total of every day (no weekday scaling, no variation); 0 is a closed day.",
    ),
    Spec(
        "daily_variation_pct",
        "DAILY_VARIATION_PCT",
        _number(0, 1),
        "0.10",
        "Day-to-day variation: total × uniform factor in [1 − p, 1 + p].",
    ),
    Spec(
        "disable_daily_variation",
        "DISABLE_DAILY_VARIATION",
        _bool,
        "0",
        "If true, no day-to-day variation whatever DAILY_VARIATION_PCT says.",
    ),
    Spec(
        "seed",
        "SEED",
        _seed,
        None,
        "Any string; fixes every random draw (plan, times, durations, customer ids). "
        "Unset: fresh entropy, logged at start.",
    ),
    Spec("max_retries", "MAX_RETRIES", _int_in(1, 1000), "6", "Start-up attempts to reach Kafka."),
    Spec(
        "retry_backoff_seconds", "RETRY_BACKOFF_SECONDS", _number(0, 3600), "5.0", "Wait between two start-up attempts."
    ),
    Spec(
        "weights_file",
        "WEIGHTS_FILE",
        _path,
        None,
        "TOML or JSON file replacing the weights and the slot grid (see examples/weights.toml).",
        ("--weights",),
    ),
    Spec(
        "log_level",
        "LOG_LEVEL",
        _choice(_LOG_LEVELS, upper=True),
        "INFO",
        "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.",
    ),
    Spec(
        "sink",
        "SINK",
        _choice(_SINKS),
        "kafka",
        "Where events go: kafka, stdout (JSON lines), or null (discarded, for benchmarks).",
    ),
    Spec(
        "topic_partitions",
        "KAFKA_TOPIC_PARTITIONS",
        _int_in(1, 10_000),
        "1",
        "Partitions of the topic when the producer creates it.",
    ),
    Spec(
        "topic_replication_factor",
        "KAFKA_TOPIC_REPLICATION_FACTOR",
        _int_in(1, 32),
        "1",
        "Replication factor of the topic when the producer creates it.",
    ),
    Spec(
        "speed",
        "SPEED",
        _speed,
        None,
        "Simulated seconds per real second (e.g. 60), or max: as fast as possible. "
        "Unset: the real clock (1 when START is set).",
    ),
    Spec("start", "START", _instant, None, "Simulated start instant, ISO 8601 (no offset: in TIMEZONE). Default: now."),
    Spec("until", "UNTIL", _instant, None, "Simulated end instant (exclusive), ISO 8601. Default: never."),
    Spec("timezone", "TIMEZONE", _zone, "UTC", "IANA time zone of the slot grid, weekdays, days and timestamps."),
    Spec(
        "arrival_model",
        "ARRIVAL_MODEL",
        _choice(ARRIVAL_MODELS),
        "uniform",
        "uniform (the specification's), poisson (Poisson slot counts) or smooth (interpolated intensity).",
    ),
    Spec(
        "daily_totals",
        "DAILY_TOTALS",
        _choice(DAILY_TOTAL_MODELS),
        "uniform",
        "Day-to-day law of the total: uniform (±DAILY_VARIATION_PCT) or gamma-poisson (over-dispersed).",
    ),
    Spec(
        "daily_dispersion",
        "DAILY_DISPERSION",
        _number(0, 10),
        "0.05",
        "gamma-poisson only: Var(total) = mean + DAILY_DISPERSION × mean².",
    ),
    Spec(
        "calendar_file", "CALENDAR_FILE", _path, None, "TOML or JSON calendar: opening hours, closed days, multipliers."
    ),
    Spec(
        "stores_file", "STORES_FILE", _path, None, "TOML or JSON list of stores: id, scale, weights profile, time zone."
    ),
    Spec(
        "exit_events_topic",
        "EXIT_EVENTS_TOPIC",
        _topic,
        None,
        "If set, also send an entry event at entry_time and an exit event at exit_time to this topic.",
    ),
    Spec(
        "exactly_once",
        "EXACTLY_ONCE",
        _bool,
        "0",
        "If true: transactional producer; a restart after a crash resumes the same plan with no gap and no "
        "duplicate (consumers read with isolation.level=read_committed).",
    ),
    Spec(
        "transactional_id",
        "KAFKA_TRANSACTIONAL_ID",
        _seed,
        None,
        "Transactional id of EXACTLY_ONCE runs. Default: foot-traffic-<KAFKA_TOPIC>.",
    ),
    Spec(
        "commit_interval_ms",
        "COMMIT_INTERVAL_MS",
        _int_in(1, 600_000),
        "200",
        "EXACTLY_ONCE: longest time a transaction stays open before it is committed.",
    ),
    Spec(
        "connect_timeout_seconds",
        "KAFKA_CONNECT_TIMEOUT_SECONDS",
        _number(0, 3600, low_open=True),
        "10",
        "Time allowed to each start-up attempt.",
    ),
    Spec(
        "flush_timeout_seconds",
        "KAFKA_FLUSH_TIMEOUT_SECONDS",
        _number(0, 3600),
        "30",
        "Longest wait for outstanding deliveries at shutdown.",
    ),
    Spec(
        "security_protocol",
        "KAFKA_SECURITY_PROTOCOL",
        _choice(SECURITY_PROTOCOLS, upper=True),
        "PLAINTEXT",
        "Protocol to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL login over TLS).",
    ),
    Spec(
        "sasl_mechanism",
        "KAFKA_SASL_MECHANISM",
        _choice(SASL_MECHANISMS, upper=True),
        None,
        "SASL_* protocols: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    ),
    Spec("sasl_username", "KAFKA_SASL_USERNAME", str, None, "SASL_* protocols: the user name."),
    Spec(
        "sasl_password",
        "KAFKA_SASL_PASSWORD",
        Secret,
        None,
        "SASL_* protocols: the password (a secret: never shown).",
        secret=True,
    ),
    Spec(
        "ssl_ca_location",
        "KAFKA_SSL_CA_LOCATION",
        readable_file,
        None,
        "SSL/SASL_SSL: PEM file of the CA certificate(s) that sign the brokers' certificates. "
        "Default: the system's trust store.",
    ),
    Spec(
        "ssl_certificate_location",
        "KAFKA_SSL_CERTIFICATE_LOCATION",
        readable_file,
        None,
        "SSL/SASL_SSL: PEM file of this client's certificate (brokers that require client authentication).",
    ),
    Spec(
        "ssl_key_location",
        "KAFKA_SSL_KEY_LOCATION",
        readable_file,
        None,
        "SSL/SASL_SSL: PEM file of this client's private key (with KAFKA_SSL_CERTIFICATE_LOCATION).",
    ),
    Spec(
        "ssl_key_password",
        "KAFKA_SSL_KEY_PASSWORD",
        Secret,
        None,
        "SSL/SASL_SSL: password of an encrypted private key (a secret: never shown).",
        secret=True,
    ),
    Spec(
        "ssl_endpoint_identification",
        "KAFKA_SSL_ENDPOINT_IDENTIFICATION",
        _choice(ENDPOINT_IDENTIFICATIONS),
        "https",
        "SSL/SASL_SSL: https checks that the broker's certificate names the host connected to; none does not.",
    ),
    Spec(
        "delivery_timeout_ms",
        "KAFKA_DELIVERY_TIMEOUT_MS",
        _int_in(1000, 2_147_483_647),
        "120000",
        "Longest time an event may wait for Kafka's confirmation (message.timeout.ms); "
        "after it, the event goes to DEAD_LETTER_FILE.",
    ),
    Spec(
        "dead_letter_file",
        "DEAD_LETTER_FILE",
        _output_file,
        DEFAULT_DEAD_LETTER_FILE,
        "JSON-lines file that receives every event Kafka could not confirm (created on the first one).",
    ),
    Spec(
        "config_file",
        "CONFIG_FILE",
        _path,
        None,
        "TOML file of settings keyed by their variables' names (below the environment and the flags).",
        ("--config",),
    ),
    Spec("log_format", "LOG_FORMAT", _choice(LOG_FORMATS), "text", "Log lines: text, or json (one object a line)."),
    Spec(
        "schema_registry_url",
        "SCHEMA_REGISTRY_URL",
        registry_url,
        None,
        "Schema registry (Confluent-compatible API) URL; if set, events are registry-framed. Unset: plain JSON.",
    ),
    Spec(
        "schema_registry_format",
        "SCHEMA_REGISTRY_FORMAT",
        _choice(REGISTRY_FORMATS),
        "json",
        "SCHEMA_REGISTRY_URL: json (JSON Schema) or avro (Avro record), both in the Confluent wire format.",
    ),
    Spec(
        "schema_registry_basic_auth_user_info",
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        registry_user_info,
        None,
        "SCHEMA_REGISTRY_URL: user:password for HTTP basic authentication (a secret: never shown).",
        secret=True,
    ),
    Spec(
        "schema_registry_ssl_ca_location",
        "SCHEMA_REGISTRY_SSL_CA_LOCATION",
        readable_file,
        None,
        "https:// SCHEMA_REGISTRY_URL: PEM file of the CA certificate(s) that sign the registry's certificate. "
        "Default: the system's trust store.",
    ),
    Spec(
        "schema_registry_ssl_certificate_location",
        "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION",
        readable_file,
        None,
        "https:// SCHEMA_REGISTRY_URL: PEM file of this client's certificate (a registry requiring mutual TLS).",
    ),
    Spec(
        "schema_registry_ssl_key_location",
        "SCHEMA_REGISTRY_SSL_KEY_LOCATION",
        readable_file,
        None,
        "https:// SCHEMA_REGISTRY_URL: PEM file of this client's private key (with the certificate above).",
    ),
    Spec(
        "schema_registry_ssl_key_password",
        "SCHEMA_REGISTRY_SSL_KEY_PASSWORD",
        Secret,
        None,
        "https:// SCHEMA_REGISTRY_URL: the password of an encrypted client key (a secret: never shown).",
        secret=True,
    ),
    Spec(
        "metrics_port",
        "METRICS_PORT",
        _int_in(1, 65535),
        None,
        "If set, serve Prometheus metrics on /metrics and a health check on /healthz at this TCP port.",
    ),
    Spec(
        "metrics_host",
        "METRICS_HOST",
        _listen_host,
        "127.0.0.1",
        "METRICS_PORT: the address to listen on; 0.0.0.0 (or ::) for every interface, as in a container.",
    ),
    Spec(
        "health_unreachable_seconds",
        "HEALTH_UNREACHABLE_SECONDS",
        _number(0, 86_400, low_open=True),
        "60",
        "METRICS_PORT: /healthz answers 503 once Kafka has been unreachable this long with events waiting.",
    ),
)
"""Every setting, in the order the README documents them."""

SPECS_BY_NAME = {spec.name: spec for spec in SPECS}


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration of one run."""

    broker: str = "kafka:9092"
    topic: str = "foot_traffic"
    sleep: float = 0.5
    time_scale: float = 1.0
    default_daily_customers: int = 100
    base_daily_customers: int = 100
    daily_customers: int | None = None
    daily_variation_pct: float = 0.10
    disable_daily_variation: bool = False
    seed: str | None = None
    max_retries: int = 6
    retry_backoff_seconds: float = 5.0
    weights_file: Path | None = None
    log_level: str = "INFO"
    sink: str = "kafka"
    topic_partitions: int = 1
    topic_replication_factor: int = 1
    connect_timeout_seconds: float = 10.0
    flush_timeout_seconds: float = 30.0
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: Secret | None = None
    ssl_endpoint_identification: str = "https"
    producer_properties: ProducerProperties = NO_PROPERTIES
    delivery_timeout_ms: int = 120_000
    dead_letter_file: Path = Path(DEFAULT_DEAD_LETTER_FILE)
    speed: float | None = None
    start: dt.datetime | None = None
    until: dt.datetime | None = None
    timezone: dt.tzinfo = UTC
    arrival_model: str = "uniform"
    daily_totals: str = "uniform"
    daily_dispersion: float = 0.05
    calendar_file: Path | None = None
    stores_file: Path | None = None
    exit_events_topic: str | None = None
    exactly_once: bool = False
    transactional_id: str | None = None
    commit_interval_ms: int = 200
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    health_unreachable_seconds: float = 60.0
    schema_registry_url: str | None = None
    schema_registry_format: str = "json"
    schema_registry_basic_auth_user_info: Secret | None = None
    schema_registry_ssl_ca_location: Path | None = None
    schema_registry_ssl_certificate_location: Path | None = None
    schema_registry_ssl_key_location: Path | None = None
    schema_registry_ssl_key_password: Secret | None = None
    config_file: Path | None = None
    log_format: str = "text"
    weights: WeightTable = field(default=DEFAULT_WEIGHTS, repr=False)
    calendar: Calendar = field(default=EMPTY_CALENDAR, repr=False)
    stores: tuple[Store, ...] = field(default=(), repr=False)
    speed_is_max: bool = False

    @property
    def start_us(self) -> int | None:
        """The simulated start as epoch microseconds (a naive START is local to TIMEZONE)."""
        return None if self.start is None else _to_us(self.start, self.timezone)

    @property
    def until_us(self) -> int | None:
        """The simulated end as epoch microseconds (a naive UNTIL is local to TIMEZONE)."""
        return None if self.until is None else _to_us(self.until, self.timezone)

    @property
    def poll_seconds(self) -> float:
        """Longest real wait between two clock checks: SLEEP / TIME_SCALE."""
        return self.sleep / self.time_scale

    @property
    def variation_pct(self) -> float:
        """The effective variation: 0 when disabled."""
        return 0.0 if self.disable_daily_variation else self.daily_variation_pct

    def store_models(self) -> list[StoreModel]:
        """One model per store of STORES_FILE (ids on events only when there are several), or the single store."""
        if not self.stores:
            return [StoreModel(self.model())]
        several = len(self.stores) > 1
        return [StoreModel(self.model(store), store.id if several else None) for store in self.stores]

    def model(self, store: Store | None = None) -> Model:
        """The arrival model these settings describe, for one store if given."""
        return Model(
            weights=self.weights if store is None or store.weights is None else store.weights,
            base_daily_customers=self.base_daily_customers,
            daily_customers=self.daily_customers,
            variation_pct=self.variation_pct,
            tz=self.timezone if store is None or store.timezone is None else ZoneInfo(store.timezone),
            arrival_model=self.arrival_model,
            daily_totals=self.daily_totals,
            dispersion=self.daily_dispersion,
            calendar=self.calendar,
            scale=1.0 if store is None else store.scale,
            store_key=0 if store is None else store.stream_key,
        )


def _to_us(moment: dt.datetime, tz: dt.tzinfo) -> int:
    return datetime_to_us(moment if moment.tzinfo else moment.replace(tzinfo=tz))


OriginKind = Literal["flag", "environment", "config file", "default", "unset"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a setting's value comes from: a flag, the environment, the configuration file, its default, nowhere."""

    kind: OriginKind
    detail: str = ""
    """The flag, or the configuration file's path."""

    def __str__(self) -> str:
        return f"{self.kind} {self.detail}" if self.detail else self.kind


UNSET = Origin("unset")
DEFAULT = Origin("default")
ENVIRONMENT = Origin("environment")

_VOCABULARY = Vocabulary(
    known=frozenset(spec.env for spec in SPECS),
    secret=frozenset(spec.env for spec in SPECS if spec.secret),
    paths=frozenset(spec.env for spec in SPECS if spec.parse in FILE_PARSERS),
    reserved=SPECS_BY_NAME["config_file"].env,
)
"""The keys a configuration file may hold, and which of them are secrets or paths."""


@dataclass(frozen=True, slots=True)
class _Layers:
    """The places a setting's value may come from, highest precedence first."""

    env: Mapping[str, str]
    flags: Mapping[str, str | None]
    config: ConfigFile | None = None

    def pick(self, spec: Spec) -> tuple[Origin, str, str] | None:
        """The text a setting receives, its origin, and how a message quotes it; None when unset."""
        flag_value = self.flags.get(spec.name)
        if flag_value is not None:
            return Origin("flag", spec.flag), flag_value, f"{spec.flag}={_shown(spec, flag_value)}"
        if self.env.get(spec.env, "") != "":
            raw = self.env[spec.env]
            return ENVIRONMENT, raw, f"{spec.env}={_shown(spec, raw)}"
        entry = None if self.config is None else self.config.entries.get(spec.env)
        if self.config is not None and entry is not None:
            origin = Origin("config file", str(self.config.path))
            return origin, entry.raw, f"{spec.env}={entry.shown}{self.config.where}"
        if spec.default is not None:
            return DEFAULT, spec.default, f"default={_shown(spec, spec.default)}"
        return None

    def merged(self) -> Mapping[str, str]:
        """The environment with the file's settings beneath it, as the checks of several settings read it."""
        if self.config is None:
            return self.env
        beneath = {variable: entry.raw for variable, entry in self.config.entries.items()}
        return beneath | {variable: raw for variable, raw in self.env.items() if raw != ""}


def _shown(spec: Spec, raw: str) -> str:
    return "'***'" if spec.secret else repr(raw)


def load_settings(env: Mapping[str, str], flags: Mapping[str, str | None] | None = None) -> Settings:
    """Build the settings from an environment mapping and flag values (by setting name).

    Raises ConfigError listing every invalid setting.
    """
    return resolve(env, flags)[0]


def resolve(
    env: Mapping[str, str], flags: Mapping[str, str | None] | None = None
) -> tuple[Settings, dict[str, Origin]]:
    """Build the settings and say where each came from, by variable (KAFKA_PRODUCER_* ones included).

    A flag beats its variable, which beats CONFIG_FILE, which beats the default.
    Raises ConfigError listing every invalid setting.
    """
    flags = flags or {}
    values: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    problems: list[str] = []
    _read(SPECS_BY_NAME["config_file"], _Layers(env, flags), values, origins, problems)
    layers = _Layers(env, flags, _read_config(values, origins, problems))
    for spec in SPECS:
        if spec.name != "config_file":
            _read(spec, layers, values, origins, problems)
    if "speed" in values and values["speed"] is None:
        values["speed_is_max"] = True
    _load_files(values, origins, problems)
    env = layers.merged()
    origins.update(_passthrough_origins(layers))
    check_security(values, env, flags, problems, SPECS, in_file=_in_file(origins))
    check_registry(values, problems, in_file=_in_file(origins))
    tz = values.get("timezone", UTC)
    start, until = values.get("start"), values.get("until")
    if isinstance(start, dt.datetime) and isinstance(until, dt.datetime) and _to_us(until, tz) <= _to_us(start, tz):
        problems.append(f"UNTIL={until.isoformat()!r}: expected an instant after START={start.isoformat()!r}")
    if values.get("exactly_once") and values.get("sink", "kafka") != "kafka":
        problems.append(f"EXACTLY_ONCE=true with SINK={values['sink']!r}: expected SINK=kafka")
    if values.get("exactly_once") and values.get("exit_events_topic") is not None:
        problems.append("EXACTLY_ONCE=true with EXIT_EVENTS_TOPIC: expected one or the other (not supported together)")
    if "base_daily_customers" not in values and "default_daily_customers" in values:
        values["base_daily_customers"] = values["default_daily_customers"]
        origins[SPECS_BY_NAME["base_daily_customers"].env] = DEFAULT
    _check_peak_total(values, origins, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(**values), origins


def _read(spec: Spec, layers: _Layers, values: dict[str, Any], origins: dict[str, Origin], problems: list[str]) -> None:
    """Parse one setting from the highest layer that gives it, recording its origin or what is wrong."""
    picked = layers.pick(spec)
    if picked is None:
        origins[spec.env] = UNSET
        return
    origins[spec.env], raw, quoted = picked
    try:
        values[spec.name] = spec.parse(raw)
    except ValueError as exc:
        problems.append(f"{quoted}: expected {exc}")


def _read_config(values: dict[str, Any], origins: dict[str, Origin], problems: list[str]) -> ConfigFile | None:
    """Read the configuration file CONFIG_FILE names, if any, reporting what is wrong with it."""
    path = values.get("config_file")
    if not isinstance(path, Path):
        return None
    config, found = read_config_file(path, _quote("config_file", repr(str(path)), origins), _VOCABULARY)
    problems.extend(found)
    return config


def _in_file(origins: Mapping[str, Origin]) -> dict[str, str]:
    """The configuration file of each setting read from one: by name, by variable for KAFKA_PRODUCER_* ones."""
    names = {spec.env: spec.name for spec in SPECS}
    return {names.get(v, v): origin.detail for v, origin in origins.items() if origin.kind == "config file"}


def _passthrough_origins(layers: _Layers) -> dict[str, Origin]:
    """Where each KAFKA_PRODUCER_* property came from: the environment or the configuration file."""
    origins: dict[str, Origin] = {}
    config = layers.config
    for variable, raw in sorted(layers.merged().items()):
        if variable.startswith(PRODUCER_PREFIX) and raw != "":
            if config is None or layers.env.get(variable, "") != "":
                origins[variable] = ENVIRONMENT
            else:
                origins[variable] = Origin("config file", str(config.path))
    return origins


_FILES: tuple[tuple[str, str, Callable[[Path], Any], type[ValueError]], ...] = (
    ("weights_file", "weights", load_weights_file, WeightsFileError),
    ("calendar_file", "calendar", load_calendar_file, CalendarFileError),
    ("stores_file", "stores", load_stores_file, StoresFileError),
)


def _check_peak_total(values: dict[str, Any], origins: Mapping[str, Origin], problems: list[str]) -> None:
    """Reject calendar multipliers and store scales that lift a day's mean total beyond MAX_DAILY_CUSTOMERS.

    The daily counts are capped because a bigger day cannot be simulated in a day; a multiplier of 1e300
    would otherwise pass validation and exhaust memory when the day is sampled.
    """
    count = values.get("daily_customers")
    if count is None:
        count = values.get("base_daily_customers", 0)
    calendar: Calendar = values.get("calendar", EMPTY_CALENDAR)
    stores: tuple[Store, ...] = values.get("stores", ())
    multiplier = max([1.0, *(override.multiplier for override in calendar.dates.values())])
    scale = max((store.scale for store in stores), default=1.0)
    peak = count * multiplier * scale
    if peak <= MAX_DAILY_CUSTOMERS:
        return
    culprits = [name for name, factor in (("calendar_file", multiplier), ("stores_file", scale)) if factor > 1]
    named = []
    for name in culprits:
        named.append(_quote(name, repr(str(values[name])), origins))
    problems.append(
        f"{' and '.join(named)}: expected multipliers and scales that keep a day's mean total within "
        f"{MAX_DAILY_CUSTOMERS}; {count} customers × {multiplier:g} × {scale:g} = {peak:g}"
    )


def _quote(name: str, shown: str, origins: Mapping[str, Origin]) -> str:
    """How a message names a file setting and its value: its (first) flag, its variable, or its key in the file."""
    spec = SPECS_BY_NAME[name]
    origin = origins.get(spec.env, UNSET)
    if origin.kind == "flag":
        return f"{(spec.aliases or (spec.flag,))[0]}={shown}"
    where = f" (in {origin.detail})" if origin.kind == "config file" else ""
    return f"{spec.env}={shown}{where}"


def _load_files(values: dict[str, Any], origins: Mapping[str, Origin], problems: list[str]) -> None:
    """Read the weights, calendar and stores files the settings name, reporting what is wrong with them."""
    for name, target, loader, error in _FILES:
        path = values.get(name)
        if not isinstance(path, Path):
            continue
        try:
            values[target] = loader(path)
        except error as exc:
            problems.append(f"{_quote(name, repr(str(path)), origins)}: {exc}")
