"""Settings: every setting declared once, as a field of the frozen object built once per run.

Every setting has an environment variable and a flag, and may be a key of the
configuration file CONFIG_FILE (see foot_traffic.config.resolve for how the
layers combine and how values are checked).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from foot_traffic.config import parsers as p
from foot_traffic.config import shards
from foot_traffic.config.producer import NO_PROPERTIES, ProducerProperties
from foot_traffic.config.spec import Fallback, Group, setting, specs
from foot_traffic.kafka.deadletter import DEFAULT_DEAD_LETTER_FILE
from foot_traffic.model.calendar import EMPTY_CALENDAR, Calendar
from foot_traffic.model.grid import datetime_to_us
from foot_traffic.model.imperfections import OUTAGE_ORDERS, Imperfections, Windows
from foot_traffic.model.plan import ARRIVAL_MODELS, DAILY_TOTAL_MODELS, Model, StoreModel
from foot_traffic.model.stores import Store
from foot_traffic.model.units import DEFAULT_PARTITIONS, MAX_PARTITIONS, Shard
from foot_traffic.model.weights import DEFAULT_WEIGHTS, WeightTable
from foot_traffic.secret import Secret

MAX_WORKERS = 256
"""Upper bound on WORKERS: far beyond the cores of one machine, low enough that a typo is caught."""
MAX_DAILY_CUSTOMERS = 1_000_000_000
"""Upper bound on any daily count: beyond it a day could not be simulated in a day."""

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
ENDPOINT_IDENTIFICATIONS = ("https", "none")
FORMATS = ("json", "avro")
"""Values of SCHEMA_REGISTRY_FORMAT."""
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SINKS = ("kafka", "stdout", "null")
KAFKA_TIMESTAMPS = ("emit", "entry")
"""Values of KAFKA_TIMESTAMP."""

OUTAGES_PER_DAY_MAX = 1440.0
"""One outage a minute on average: more is no sensor, and each one is drawn and kept for the day."""

KAFKA = Group("Kafka", "the brokers, the topics, start-up, delivery and exactly-once")
SECURITY = Group("security", "TLS and SASL to the brokers (KAFKA_PRODUCER_* variables pass any other property)")
REGISTRY = Group("schema registry", "registry-framed events (JSON Schema or Avro) and the registry's TLS")
MODEL = Group("model", "how many customers come, when, and to which stores")
TIME = Group("time", "the clock: real, accelerated or as fast as possible, and the simulated span")
OUTPUT = Group("output", "where events go, where undelivered ones are kept, where settings come from")
OBSERVABILITY = Group("observability", "logs, Prometheus metrics and the health check")
SCALE_OUT = Group("scale-out", "several processes share a run: units of work, shards, a fleet, local workers")
IMPERFECTIONS = Group(
    "imperfections", "late, duplicated and held events, record timestamps: when and how often each event is sent"
)
GROUPS = (KAFKA, SECURITY, REGISTRY, MODEL, TIME, OUTPUT, OBSERVABILITY, SCALE_OUT, IMPERFECTIONS)
"""The groups, in the order ``--help`` shows them."""

_CUSTOMERS = p.int_in(0, MAX_DAILY_CUSTOMERS)
_DEFAULT_CUSTOMERS = "100"
"""DEFAULT_DAILY_CUSTOMERS's default, which BASE_DAILY_CUSTOMERS also takes when both are unset."""
_POSITIVE = p.number(0, math.inf, low_open=True)
_FRACTION = p.number(0, 1)
_CA = "PEM file of the CA certificate(s) that sign the"
_NEVER_SHOWN = "(a secret: never shown)"
_REGISTRY = "https:// SCHEMA_REGISTRY_URL:"


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration of one run; each setting's field declares it, in the README's order."""

    broker: str = setting(
        "KAFKA_BROKER", p.broker, "kafka:9092", "Kafka bootstrap server(s), host:port[,host:port…].",
        group=KAFKA, aliases=("--broker",),
    )  # fmt: skip
    topic: str = setting(
        "KAFKA_TOPIC", p.topic, "foot_traffic", "Kafka topic for events.", group=KAFKA, aliases=("--topic",)
    )
    sleep: float = setting(
        "SLEEP", _POSITIVE, "0.5", "Longest wait in seconds between two clock checks (base loop sleep).", group=TIME
    )
    time_scale: float = setting(
        "TIME_SCALE", _POSITIVE, "1.0",
        "Divides SLEEP: higher means more frequent clock checks. Does not change timestamps.", group=TIME,
    )  # fmt: skip
    default_daily_customers: int = setting(
        "DEFAULT_DAILY_CUSTOMERS",
        _CUSTOMERS,
        _DEFAULT_CUSTOMERS,
        "Legacy default of BASE_DAILY_CUSTOMERS.",
        group=MODEL,
    )
    base_daily_customers: int = setting(
        "BASE_DAILY_CUSTOMERS", _CUSTOMERS, None,
        "Mean daily total of an average weekday, scaled by weekday popularity. Default: DEFAULT_DAILY_CUSTOMERS.",
        group=MODEL, fallback=Fallback("DEFAULT_DAILY_CUSTOMERS", _DEFAULT_CUSTOMERS),
    )  # fmt: skip
    daily_customers: int | None = setting(
        "DAILY_CUSTOMERS", _CUSTOMERS, None,
        "If set, the fixed total of every day (no weekday scaling, no variation); 0 is a closed day.", group=MODEL,
    )  # fmt: skip
    daily_variation_pct: float = setting(
        "DAILY_VARIATION_PCT", p.number(0, 1), "0.10",
        "Day-to-day variation: total × uniform factor in [1 − p, 1 + p].", group=MODEL,
    )  # fmt: skip
    disable_daily_variation: bool = setting(
        "DISABLE_DAILY_VARIATION", p.boolean, "0",
        "If true, no day-to-day variation whatever DAILY_VARIATION_PCT says.", group=MODEL,
    )  # fmt: skip
    seed: str | None = setting(
        "SEED", p.text, None,
        "Any string; fixes every random draw (plan, times, durations, customer ids). "
        "Unset: fresh entropy, logged at start.", group=MODEL,
    )  # fmt: skip
    max_retries: int = setting(
        "MAX_RETRIES",
        p.int_in(1, 1000),
        "6",
        "Start-up attempts to reach Kafka (and its transaction coordinator, with EXACTLY_ONCE).",
        group=KAFKA,
    )
    retry_backoff_seconds: float = setting(
        "RETRY_BACKOFF_SECONDS", p.number(0, 3600), "5.0", "Wait between two start-up attempts.", group=KAFKA
    )
    weights_file: Path | None = setting(
        "WEIGHTS_FILE", p.path, None,
        "TOML or JSON file replacing the weights and the slot grid (see examples/weights.toml).",
        group=MODEL, aliases=("--weights",),
    )  # fmt: skip
    log_level: str = setting(
        "LOG_LEVEL", p.Choice(LOG_LEVELS, upper=True), "INFO",
        "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.", group=OBSERVABILITY,
    )  # fmt: skip
    sink: str = setting(
        "SINK", p.Choice(SINKS), "kafka",
        "Where events go: kafka, stdout (JSON lines), or null (discarded, for benchmarks).", group=OUTPUT,
    )  # fmt: skip
    topic_partitions: int = setting(
        "KAFKA_TOPIC_PARTITIONS", p.int_in(1, 10_000), "1",
        "Partitions of the topic when the producer creates it.", group=KAFKA,
    )  # fmt: skip
    topic_replication_factor: int = setting(
        "KAFKA_TOPIC_REPLICATION_FACTOR", p.int_in(1, 32), "1",
        "Replication factor of the topic when the producer creates it.", group=KAFKA,
    )  # fmt: skip
    speed: float | None = setting(
        "SPEED", p.speed, None,
        "Simulated seconds per real second (e.g. 60), or max: as fast as possible. "
        "Unset: the real clock (1 when START is set).", group=TIME,
    )  # fmt: skip
    start: dt.datetime | None = setting(
        "START", p.instant, None,
        "Simulated start instant, ISO 8601 (no offset: in TIMEZONE). Default: now.", group=TIME,
    )  # fmt: skip
    until: dt.datetime | None = setting(
        "UNTIL", p.instant, None, "Simulated end instant (exclusive), ISO 8601. Default: never.", group=TIME
    )
    timezone: dt.tzinfo = setting(
        "TIMEZONE", p.zone, "UTC", "IANA time zone of the slot grid, weekdays, days and timestamps.", group=TIME
    )
    arrival_model: str = setting(
        "ARRIVAL_MODEL", p.Choice(ARRIVAL_MODELS), "uniform",
        "uniform (the specification's), poisson (Poisson slot counts) or smooth (interpolated intensity).",
        group=MODEL,
    )  # fmt: skip
    daily_totals: str = setting(
        "DAILY_TOTALS", p.Choice(DAILY_TOTAL_MODELS), "uniform",
        "Day-to-day law of the total: uniform (±DAILY_VARIATION_PCT) or gamma-poisson (over-dispersed).",
        group=MODEL,
    )  # fmt: skip
    daily_dispersion: float = setting(
        "DAILY_DISPERSION", p.number(0, 10), "0.05",
        "gamma-poisson only: Var(total) = mean + DAILY_DISPERSION × mean².", group=MODEL,
    )  # fmt: skip
    calendar_file: Path | None = setting(
        "CALENDAR_FILE", p.path, None,
        "TOML or JSON calendar: opening hours, closed days, multipliers.", group=MODEL,
    )  # fmt: skip
    stores_file: Path | None = setting(
        "STORES_FILE", p.path, None,
        "TOML or JSON list of stores: id, scale, weights profile, time zone.", group=MODEL,
    )  # fmt: skip
    exit_events_topic: str | None = setting(
        "EXIT_EVENTS_TOPIC", p.topic, None,
        "If set, also send an entry event at entry_time and an exit event at exit_time to this topic.", group=KAFKA,
    )  # fmt: skip
    exactly_once: bool = setting(
        "EXACTLY_ONCE", p.boolean, "0",
        "If true: transactional producer; a restart after a crash resumes the same plan with no gap and no "
        "duplicate (consumers read with isolation.level=read_committed).", group=KAFKA,
    )  # fmt: skip
    transactional_id: str | None = setting(
        "KAFKA_TRANSACTIONAL_ID", p.text, None,
        "Transactional id of EXACTLY_ONCE runs. Default: foot-traffic-<KAFKA_TOPIC>.", group=KAFKA,
    )  # fmt: skip
    commit_interval_ms: int = setting(
        "COMMIT_INTERVAL_MS", p.int_in(1, 600_000), "200",
        "EXACTLY_ONCE: longest time a transaction stays open before it is committed; a fleet without it: how "
        "often a member checkpoints. At most 5000 in a fleet.", group=KAFKA,
    )  # fmt: skip
    connect_timeout_seconds: float = setting(
        "KAFKA_CONNECT_TIMEOUT_SECONDS", p.number(0, 3600, low_open=True), "10",
        "Time allowed to each start-up attempt.", group=KAFKA,
    )  # fmt: skip
    flush_timeout_seconds: float = setting(
        "KAFKA_FLUSH_TIMEOUT_SECONDS", p.number(0, 3600), "30",
        "Longest wait for outstanding deliveries at shutdown.", group=KAFKA,
    )  # fmt: skip
    security_protocol: str = setting(
        "KAFKA_SECURITY_PROTOCOL", p.Choice(SECURITY_PROTOCOLS, upper=True), "PLAINTEXT",
        "Protocol to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL login over TLS).",
        group=SECURITY,
    )  # fmt: skip
    sasl_mechanism: str | None = setting(
        "KAFKA_SASL_MECHANISM", p.Choice(SASL_MECHANISMS, upper=True), None,
        "SASL_* protocols: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.", group=SECURITY,
    )  # fmt: skip
    sasl_username: str | None = setting(
        "KAFKA_SASL_USERNAME", str, None, "SASL_* protocols: the user name.", group=SECURITY
    )
    sasl_password: Secret | None = setting(
        "KAFKA_SASL_PASSWORD", Secret, None, f"SASL_* protocols: the password {_NEVER_SHOWN}.",
        group=SECURITY, secret=True,
    )  # fmt: skip
    ssl_ca_location: Path | None = setting(
        "KAFKA_SSL_CA_LOCATION", p.readable_file, None,
        f"SSL/SASL_SSL: {_CA} brokers' certificates. Default: the system's trust store.", group=SECURITY,
    )  # fmt: skip
    ssl_certificate_location: Path | None = setting(
        "KAFKA_SSL_CERTIFICATE_LOCATION", p.readable_file, None,
        "SSL/SASL_SSL: PEM file of this client's certificate (brokers that require client authentication).",
        group=SECURITY,
    )  # fmt: skip
    ssl_key_location: Path | None = setting(
        "KAFKA_SSL_KEY_LOCATION", p.readable_file, None,
        "SSL/SASL_SSL: PEM file of this client's private key (with KAFKA_SSL_CERTIFICATE_LOCATION).",
        group=SECURITY,
    )  # fmt: skip
    ssl_key_password: Secret | None = setting(
        "KAFKA_SSL_KEY_PASSWORD", Secret, None, f"SSL/SASL_SSL: password of an encrypted private key {_NEVER_SHOWN}.",
        group=SECURITY, secret=True,
    )  # fmt: skip
    ssl_endpoint_identification: str = setting(
        "KAFKA_SSL_ENDPOINT_IDENTIFICATION", p.Choice(ENDPOINT_IDENTIFICATIONS), "https",
        "SSL/SASL_SSL: https checks that the broker's certificate names the host connected to; none does not.",
        group=SECURITY,
    )  # fmt: skip
    delivery_timeout_ms: int = setting(
        "KAFKA_DELIVERY_TIMEOUT_MS", p.int_in(1000, 2_147_483_647), "120000",
        "Longest time an event may wait for Kafka's confirmation (message.timeout.ms); "
        "after it, the event goes to DEAD_LETTER_FILE.", group=KAFKA,
    )  # fmt: skip
    dead_letter_file: Path = setting(
        "DEAD_LETTER_FILE", p.output_file, DEFAULT_DEAD_LETTER_FILE,
        "JSON-lines file that receives every event Kafka could not confirm (created on the first one).",
        group=OUTPUT,
    )  # fmt: skip
    config_file: Path | None = setting(
        "CONFIG_FILE", p.path, None,
        "TOML file of settings keyed by their variables' names (below the environment and the flags).",
        group=OUTPUT, aliases=("--config",),
    )  # fmt: skip
    log_format: str = setting(
        "LOG_FORMAT", p.Choice(LOG_FORMATS), "text", "Log lines: text, or json (one object a line).",
        group=OBSERVABILITY,
    )  # fmt: skip
    schema_registry_url: str | None = setting(
        "SCHEMA_REGISTRY_URL", p.registry_url, None,
        "Schema registry (Confluent-compatible API) URL; if set, events are registry-framed. Unset: plain JSON.",
        group=REGISTRY,
    )  # fmt: skip
    schema_registry_format: str = setting(
        "SCHEMA_REGISTRY_FORMAT", p.Choice(FORMATS), "json",
        "SCHEMA_REGISTRY_URL: json (JSON Schema) or avro (Avro record), both in the Confluent wire format.",
        group=REGISTRY,
    )  # fmt: skip
    schema_registry_basic_auth_user_info: Secret | None = setting(
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", p.user_info, None,
        f"SCHEMA_REGISTRY_URL: user:password for HTTP basic authentication {_NEVER_SHOWN}.",
        group=REGISTRY, secret=True,
    )  # fmt: skip
    schema_registry_ssl_ca_location: Path | None = setting(
        "SCHEMA_REGISTRY_SSL_CA_LOCATION", p.readable_file, None,
        f"{_REGISTRY} {_CA} registry's certificate. Default: the system's trust store.", group=REGISTRY,
    )  # fmt: skip
    schema_registry_ssl_certificate_location: Path | None = setting(
        "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION", p.readable_file, None,
        f"{_REGISTRY} PEM file of this client's certificate (a registry requiring mutual TLS).", group=REGISTRY,
    )  # fmt: skip
    schema_registry_ssl_key_location: Path | None = setting(
        "SCHEMA_REGISTRY_SSL_KEY_LOCATION", p.readable_file, None,
        f"{_REGISTRY} PEM file of this client's private key (with the certificate above).", group=REGISTRY,
    )  # fmt: skip
    schema_registry_ssl_key_password: Secret | None = setting(
        "SCHEMA_REGISTRY_SSL_KEY_PASSWORD", Secret, None,
        f"{_REGISTRY} the password of an encrypted client key {_NEVER_SHOWN}.", group=REGISTRY, secret=True,
    )  # fmt: skip
    metrics_port: int | None = setting(
        "METRICS_PORT", p.int_in(1, 65535), None,
        "If set, serve Prometheus metrics on /metrics and a health check on /healthz at this TCP port.",
        group=OBSERVABILITY,
    )  # fmt: skip
    metrics_host: str = setting(
        "METRICS_HOST", p.listen_host, "127.0.0.1",
        "METRICS_PORT: the address to listen on; 0.0.0.0 (or ::) for every interface, as in a container.",
        group=OBSERVABILITY,
    )  # fmt: skip
    health_unreachable_seconds: float = setting(
        "HEALTH_UNREACHABLE_SECONDS", p.number(0, 86_400, low_open=True), "60",
        "METRICS_PORT: /healthz answers 503 once Kafka has been unreachable this long with events waiting.",
        group=OBSERVABILITY,
    )  # fmt: skip
    fleet_partitions: int = setting(
        "FLEET_PARTITIONS", p.int_in(1, MAX_PARTITIONS), str(DEFAULT_PARTITIONS),
        "Virtual partitions the units of work (stores, or stores and dates with UNTIL) are hashed into; "
        "fixed for the life of a run.", group=SCALE_OUT,
    )  # fmt: skip
    shard_spec: shards.ShardSpec | None = setting(
        "SHARD", shards.parse, None,
        "I/N: run only the units whose virtual partition mod N is I (0 <= I < N <= FLEET_PARTITIONS); auto/N: I "
        "from JOB_COMPLETION_INDEX, else the host name's -<ordinal>. Needs SEED; not with WORKERS > 1.",
        group=SCALE_OUT,
    )  # fmt: skip
    fleet_id: str | None = setting(
        "FLEET_ID", p.fleet_id, None,
        "If set, join the fleet of that name (consumer group foot-traffic.<FLEET_ID>) and run only the units "
        "of the virtual partitions Kafka assigns to this process. Needs SEED and START.", group=SCALE_OUT,
    )  # fmt: skip
    workers: int = setting(
        "WORKERS", p.int_in(1, MAX_WORKERS), "1",
        "Processes that share the run on this machine: a parent starts and supervises them, merges their "
        "output and sums their summaries.", group=SCALE_OUT,
    )  # fmt: skip
    late_events_pct: float = setting(
        "LATE_EVENTS_PCT", _FRACTION, "0",
        "Fraction in [0, 1] of the visits sent late: at entry_time + a delay (the law below).", group=IMPERFECTIONS,
    )  # fmt: skip
    late_delay_mean_seconds: float = setting(
        "LATE_DELAY_MEAN_SECONDS", _POSITIVE, "300",
        "Mean of a late visit's delay in seconds: exponential, capped at LATE_DELAY_MAX_SECONDS.", group=IMPERFECTIONS,
    )  # fmt: skip
    late_delay_max_seconds: float = setting(
        "LATE_DELAY_MAX_SECONDS", _POSITIVE, "3600",
        "Longest delay of a late visit in seconds: the delay is min(exponential draw, this cap).", group=IMPERFECTIONS,
    )  # fmt: skip
    duplicate_events_pct: float = setting(
        "DUPLICATE_EVENTS_PCT", _FRACTION, "0",
        "Fraction in [0, 1] of the visits sent twice: same key, same bytes.", group=IMPERFECTIONS,
    )  # fmt: skip
    duplicate_delay_max_seconds: float = setting(
        "DUPLICATE_DELAY_MAX_SECONDS", p.number(0, math.inf), "60",
        "The second copy goes uniformly in [0, this] seconds after the first.", group=IMPERFECTIONS,
    )  # fmt: skip
    sensor_outages_per_day: float = setting(
        "SENSOR_OUTAGES_PER_DAY", p.number(0, OUTAGES_PER_DAY_MAX), "0",
        "Mean number of sensor outages per store and day (Poisson, at most 1440); a visit during one is held until "
        "it ends.",
        group=IMPERFECTIONS,
    )  # fmt: skip
    sensor_outage_mean_minutes: float = setting(
        "SENSOR_OUTAGE_MEAN_MINUTES", _POSITIVE, "30",
        "Mean duration of a sensor outage in minutes (exponential, ending at the end of its day at the latest).",
        group=IMPERFECTIONS,
    )  # fmt: skip
    sensor_outage_order: str = setting(
        "SENSOR_OUTAGE_ORDER", p.Choice(OUTAGE_ORDERS), "in-order",
        "Order of the held visits in the burst that ends an outage: in-order (by entry) or shuffled.",
        group=IMPERFECTIONS,
    )  # fmt: skip
    kafka_timestamp: str = setting(
        "KAFKA_TIMESTAMP", p.Choice(KAFKA_TIMESTAMPS), "emit",
        "Each record's timestamp: emit (the time of sending) or entry (its entry_time, for event-time consumers).",
        group=IMPERFECTIONS,
    )  # fmt: skip
    # derived while the settings are read, not settings of their own
    producer_properties: ProducerProperties = NO_PROPERTIES
    weights: WeightTable = field(default=DEFAULT_WEIGHTS, repr=False)
    calendar: Calendar = field(default=EMPTY_CALENDAR, repr=False)
    stores: tuple[Store, ...] = field(default=(), repr=False)
    speed_is_max: bool = False
    shard: Shard | None = None
    """SHARD with auto's index found; None for an unsharded run."""

    @property
    def start_us(self) -> int | None:
        """The simulated start as epoch microseconds (a naive START is local to TIMEZONE)."""
        return None if self.start is None else to_us(self.start, self.timezone)

    @property
    def until_us(self) -> int | None:
        """The simulated end as epoch microseconds (a naive UNTIL is local to TIMEZONE)."""
        return None if self.until is None else to_us(self.until, self.timezone)

    @property
    def poll_seconds(self) -> float:
        """Longest real wait between two clock checks: SLEEP / TIME_SCALE."""
        return self.sleep / self.time_scale

    @property
    def variation_pct(self) -> float:
        """The effective variation: 0 when disabled."""
        return 0.0 if self.disable_daily_variation else self.daily_variation_pct

    def imperfections(self) -> Imperfections:
        """The imperfections these settings ask for (each law off at its zero)."""
        return Imperfections(
            late_pct=self.late_events_pct,
            late_mean_s=self.late_delay_mean_seconds,
            late_max_s=self.late_delay_max_seconds,
            duplicate_pct=self.duplicate_events_pct,
            duplicate_max_s=self.duplicate_delay_max_seconds,
            outages_per_day=self.sensor_outages_per_day,
            outage_mean_min=self.sensor_outage_mean_minutes,
            shuffled=self.sensor_outage_order == "shuffled",
            explicit=self.explicit_outages() != ((), {}),
        )

    def explicit_outages(self) -> tuple[tuple[tuple[str, Windows], ...], dict[dt.date, Windows]]:
        """The outages the stores and calendar files give: each store's, and each date's."""
        by_date = {date: rule.outages for date, rule in self.calendar.dates.items() if rule.outages}
        return tuple((s.id, s.outages) for s in self.stores if s.outages), by_date

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
            outages=() if store is None else store.outages,
        )


def to_us(moment: dt.datetime, tz: dt.tzinfo) -> int:
    """An instant as epoch microseconds, a naive one read in ``tz``."""
    return datetime_to_us(moment if moment.tzinfo else moment.replace(tzinfo=tz))


SPECS = specs(Settings)
"""Every setting, in the order the README documents them."""

SPECS_BY_NAME = {spec.name: spec for spec in SPECS}
