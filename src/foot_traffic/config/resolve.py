"""Reading the settings: layers and origins, each value parsed, and the checks that span several settings.

A flag overrides the variable, which overrides the configuration file CONFIG_FILE,
which overrides the default. An empty variable counts as unset. Every problem is
reported at once, each naming the setting, the value and what is expected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from foot_traffic.config import registry, security, shards
from foot_traffic.config.config_file import ConfigFile, Vocabulary, read_config_file
from foot_traffic.config.files import load_calendar_file, load_stores_file, load_weights_file
from foot_traffic.config.parsers import FILE_PARSERS
from foot_traffic.config.producer import PRODUCER_PREFIX
from foot_traffic.config.settings import MAX_DAILY_CUSTOMERS, SPECS, SPECS_BY_NAME, Settings, to_us
from foot_traffic.config.spec import Spec
from foot_traffic.errors import ConfigError
from foot_traffic.kafka.fleet import timeouts as fleet_timeouts
from foot_traffic.model.calendar import EMPTY_CALENDAR, Calendar, CalendarFileError
from foot_traffic.model.grid import UTC
from foot_traffic.model.stores import Store, StoresFileError
from foot_traffic.model.units import DEFAULT_PARTITIONS
from foot_traffic.model.weights import WeightsFileError

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
    passthrough=PRODUCER_PREFIX,
)
"""The keys a configuration file may hold, and which of them are secrets or paths."""

_FILES: tuple[tuple[str, str, Callable[[Path], Any], type[ValueError]], ...] = (
    ("weights_file", "weights", load_weights_file, WeightsFileError),
    ("calendar_file", "calendar", load_calendar_file, CalendarFileError),
    ("stores_file", "stores", load_stores_file, StoresFileError),
)
"""Each file setting, the field its content fills, its loader and the loader's error."""


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
    origins.update(_passthrough_origins(layers))
    in_file = _in_file(origins)
    security.check(values, layers.merged(), flags, problems, SPECS, in_file=in_file)
    registry.check(values, problems, in_file=in_file)
    problems.extend(_combination_problems(values))
    problems.extend(_fleet_problems(values, env, origins))
    problems.extend(_shard_problems(values, env, origins))
    _fall_back(values, origins)
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


def _fall_back(values: dict[str, Any], origins: dict[str, Origin]) -> None:
    """Give an unset setting with a fallback the other setting's value (BASE_DAILY_CUSTOMERS from the default)."""
    names = {spec.env: spec.name for spec in SPECS}
    for spec in SPECS:
        other = None if spec.fallback is None else names[spec.fallback]
        if other is not None and spec.name not in values and other in values:
            values[spec.name] = values[other]
            origins[spec.env] = DEFAULT


def _combination_problems(values: Mapping[str, Any]) -> list[str]:
    """Settings valid alone but not together: UNTIL before START, EXACTLY_ONCE with what it cannot do, and so on."""
    problems = []
    tz = values.get("timezone", UTC)
    start, until = values.get("start"), values.get("until")
    if isinstance(start, dt.datetime) and isinstance(until, dt.datetime) and to_us(until, tz) <= to_us(start, tz):
        problems.append(f"UNTIL={until.isoformat()!r}: expected an instant after START={start.isoformat()!r}")
    if values.get("exactly_once") and values.get("sink", "kafka") != "kafka":
        problems.append(f"EXACTLY_ONCE=true with SINK={values['sink']!r}: expected SINK=kafka")
    if values.get("exactly_once") and values.get("exit_events_topic") is not None:
        problems.append("EXACTLY_ONCE=true with EXIT_EVENTS_TOPIC: expected one or the other (not supported together)")
    if values.get("exit_events_topic") is not None and _imperfect(values):
        problems.append(
            f"EXIT_EVENTS_TOPIC={values['exit_events_topic']!r} with LATE_EVENTS_PCT, DUPLICATE_EVENTS_PCT or "
            "SENSOR_OUTAGES_PER_DAY: "
            "expected one or the other (sensor events of late or repeated visits are not supported)"
        )
    if values.get("fleet_id") is not None and values.get("shard_spec") is not None:
        problems.append(
            f"FLEET_ID={values['fleet_id']!r} with SHARD: expected one or the other "
            "(a fleet's members are given their partitions by Kafka, a shard takes a fixed share)"
        )
    port, workers = values.get("metrics_port"), values.get("workers", 1)
    if isinstance(workers, int) and workers > 1 and values.get("shard_spec") is not None:
        # each worker is given its own part: a SHARD on the parent's command line would override it
        problems.append(
            f"WORKERS={str(workers)!r} with SHARD={str(values['shard_spec'])!r}: expected one or the other "
            "(the workers split the run among themselves; to run one shard, leave WORKERS at 1)"
        )
    if isinstance(port, int) and isinstance(workers, int) and workers > 1 and port + workers > 65535:
        # worker i serves METRICS_PORT + 1 + i: the last one must still be a port
        problems.append(
            f"METRICS_PORT={str(port)!r} with WORKERS={str(workers)!r}: expected METRICS_PORT + WORKERS <= 65535 "
            "(each worker serves the next port up)"
        )
    return problems


def _imperfect(values: Mapping[str, Any]) -> bool:
    """Whether the settings turn any imperfection law on."""
    return any(values.get(name, 0) for name in ("late_events_pct", "duplicate_events_pct", "sensor_outages_per_day"))


def _fleet(values: Mapping[str, Any], origins: Mapping[str, Origin]) -> str | None:
    """How a message names the fleet these settings make: FLEET_ID, or WORKERS with EXACTLY_ONCE on Kafka; else None."""
    fleet_id, workers = values.get("fleet_id"), values.get("workers", 1)
    if fleet_id is not None:
        return _quote("fleet_id", repr(fleet_id), origins)
    if isinstance(workers, int) and workers > 1 and values.get("exactly_once") and values.get("sink") == "kafka":
        return _quote("workers", repr(str(workers)), origins) + " and EXACTLY_ONCE=true (a fleet of workers)"
    return None


def _fleet_problems(values: Mapping[str, Any], env: Mapping[str, str], origins: Mapping[str, Origin]) -> list[str]:
    """A fleet runs on Kafka one plan that all its members agree on, and commits well within its transaction timeout.

    Its units are handed over without the exits still to come of their visits, so no EXIT_EVENTS_TOPIC.
    """
    fleet = _fleet(values, origins)
    if fleet is None:
        return []
    problems = []
    if values.get("sink", "kafka") != "kafka":
        problems.append(
            f"{fleet} with SINK={values['sink']!r}: expected SINK=kafka (a fleet's members agree "
            "through Kafka's group protocol); for other sinks use SHARD"
        )
    if values.get("exit_events_topic") is not None:
        problems.append(
            f"{fleet} with EXIT_EVENTS_TOPIC: expected one or the other (a unit handed over "
            "would lose the exits of visits its previous owner sent)"
        )
    for variable, what, verb in (("SEED", "seed", "draw"), ("START", "start instant", "take")):
        if values.get(variable.lower()) is None:
            problems.append(
                f"{fleet}: expected {variable} set too, the same for every member (the first member to commit "
                f"writes the run's {what}; members that start together would each {verb} their own)"
            )
    interval, transaction_ms = values.get("commit_interval_ms"), fleet_timeouts(env).transaction_ms
    if isinstance(interval, int) and interval * 2 > transaction_ms:
        # a member commits its transactions (EXACTLY_ONCE) or its checkpoints (without) within that timeout
        problems.append(
            f"{_quote('commit_interval_ms', repr(str(interval)), origins)} with {fleet}: expected at most "
            f"{transaction_ms // 2}, half the fleet's transaction timeout ({transaction_ms} ms)"
        )
    return problems


def _shard_problems(values: dict[str, Any], env: Mapping[str, str], origins: Mapping[str, Origin]) -> list[str]:
    """Find the shard SHARD names (``auto``'s index in ``env``), within FLEET_PARTITIONS and with SEED set.

    Every shard must draw the same plan: without SEED each would draw from its own fresh entropy.
    """
    spec = values.get("shard_spec")
    if spec is None:
        return []
    quoted = _quote("shard_spec", repr(str(spec)), origins)
    found, problems = shards.shard(spec, quoted, env, values.get("fleet_partitions", DEFAULT_PARTITIONS))
    if values.get("seed") is None:
        problems.append(
            f"{quoted} without SEED: expected SEED set too, the same for every shard: each shard draws its "
            "part of one plan, and without SEED each would draw from its own fresh entropy"
        )
    if not problems:
        values["shard"] = found
    return problems


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
    named = [_quote(name, repr(str(values[name])), origins) for name in culprits]
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
