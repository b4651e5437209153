"""Settings: one frozen object built once from the environment and command-line flags.

Every setting has an environment variable and a flag; a flag overrides the
variable, which overrides the default. An empty variable counts as unset.
Every problem is reported at once, each naming the setting, the value and
what is expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foot_traffic.errors import ConfigError
from foot_traffic.plan import Model
from foot_traffic.weights import DEFAULT_WEIGHTS, WeightsFileError, WeightTable, load_weights_file

MAX_DAILY_CUSTOMERS = 1_000_000_000
"""Upper bound on any daily count: beyond it a day could not be simulated in a day."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SINKS = ("kafka", "stdout")


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


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        word = raw.strip().upper() if upper else raw.strip().lower()
        if word not in options:
            raise ValueError(f"one of {', '.join(options)}")
        return word

    return parse


def _broker(raw: str) -> str:
    expected = "a comma-separated list of host:port, port between 1 and 65535"
    parts = [p.strip() for p in raw.split(",")]
    for part in parts:
        address = part.split("://", 1)[1] if "://" in part else part
        host, sep, port = address.rpartition(":")
        if not sep or not _HOST.match(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(expected)
    return ",".join(parts)


def _topic(raw: str) -> str:
    if not _TOPIC.match(raw) or raw in {".", ".."}:
        raise ValueError("1 to 249 characters among letters, digits, '.', '_' and '-'")
    return raw


def _seed(raw: str) -> str:
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


@dataclass(frozen=True, slots=True)
class Spec:
    """How one setting is read: its variable, its flag, its parser, default and meaning."""

    name: str
    env: str
    parse: Callable[[str], Any]
    default: str | None
    help: str
    aliases: tuple[str, ...] = ()

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
    Spec("sink", "SINK", _choice(_SINKS), "kafka", "Where events go: kafka, or stdout as JSON lines."),
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
    weights: WeightTable = field(default=DEFAULT_WEIGHTS, repr=False)

    @property
    def poll_seconds(self) -> float:
        """Longest real wait between two clock checks: SLEEP / TIME_SCALE."""
        return self.sleep / self.time_scale

    @property
    def variation_pct(self) -> float:
        """The effective variation: 0 when disabled."""
        return 0.0 if self.disable_daily_variation else self.daily_variation_pct

    def model(self) -> Model:
        """The arrival model these settings describe."""
        return Model(
            weights=self.weights,
            base_daily_customers=self.base_daily_customers,
            daily_customers=self.daily_customers,
            variation_pct=self.variation_pct,
        )


def load_settings(env: Mapping[str, str], flags: Mapping[str, str | None] | None = None) -> Settings:
    """Build the settings from an environment mapping and flag values (by setting name).

    Raises ConfigError listing every invalid setting.
    """
    flags = flags or {}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for spec in SPECS:
        flag_value = flags.get(spec.name)
        if flag_value is not None:
            source, raw = spec.flag, flag_value
        elif env.get(spec.env, "") != "":
            source, raw = spec.env, env[spec.env]
        elif spec.default is not None:
            source, raw = "default", spec.default
        else:
            continue
        try:
            values[spec.name] = spec.parse(raw)
        except ValueError as exc:
            problems.append(f"{source}={raw!r}: expected {exc}")
    if "base_daily_customers" not in values and "default_daily_customers" in values:
        values["base_daily_customers"] = values["default_daily_customers"]
    weights_file = values.get("weights_file")
    if isinstance(weights_file, Path):
        try:
            values["weights"] = load_weights_file(weights_file)
        except WeightsFileError as exc:
            source = "--weights" if flags.get("weights_file") is not None else "WEIGHTS_FILE"
            problems.append(f"{source}={str(weights_file)!r}: {exc}")
    if problems:
        raise ConfigError(problems)
    return Settings(**values)
