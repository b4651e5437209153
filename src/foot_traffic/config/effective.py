"""The effective configuration, as ``foot-traffic config`` prints it: each setting, its value, its origin.

Secrets show as ``***``, and so do the values of sensitive KAFKA_PRODUCER_* properties.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from foot_traffic.config.producer import PRODUCER_PREFIX, is_sensitive, property_name
from foot_traffic.config.resolve import Origin, resolve
from foot_traffic.config.settings import SPECS, Settings
from foot_traffic.config.spec import Spec
from foot_traffic.secret import Secret

Value = str | int | float | bool | None
"""A setting's value as JSON holds it (None: unset)."""

HIDDEN = "***"


@dataclass(frozen=True, slots=True)
class Row:
    """One setting of the effective configuration."""

    variable: str
    value: Value
    origin: str


def rows(settings: Settings, origins: Mapping[str, Origin]) -> list[Row]:
    """Every setting in the README's order, then the KAFKA_PRODUCER_* properties, each with its origin."""
    table = [Row(spec.env, _value(spec, settings), str(origins.get(spec.env, "unset"))) for spec in SPECS]
    for variable, origin in origins.items():
        if variable.startswith(PRODUCER_PREFIX):
            prop = property_name(variable)
            raw = settings.producer_properties.get(prop)
            table.append(Row(variable, HIDDEN if is_sensitive(prop) and raw is not None else raw, str(origin)))
    return table


def show(env: Mapping[str, str], flags: Mapping[str, str | None], *, as_json: bool = False) -> str:
    """The effective configuration as aligned text or one JSON object; raises ConfigError if a setting is invalid."""
    table = rows(*resolve(env, flags))
    return as_json_text(table) if as_json else as_text(table)


def as_text(table: Sequence[Row]) -> str:
    """Three aligned columns: setting, value (blank when unset), origin."""
    lines = [("SETTING", "VALUE", "ORIGIN"), *((r.variable, _text(r.value), r.origin) for r in table)]
    widths = [max(len(line[i]) for line in lines) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in lines) + "\n"


def as_json_text(table: Sequence[Row]) -> str:
    """One JSON object: each setting's variable → its value and origin."""
    return json.dumps({r.variable: {"value": r.value, "origin": r.origin} for r in table}, ensure_ascii=False) + "\n"


def _value(spec: Spec, settings: Settings) -> Value:
    """A setting's effective value: numbers and booleans as such, anything else as text, a secret hidden."""
    value = getattr(settings, spec.name, None)
    if value is not None and (spec.secret or isinstance(value, Secret)):
        return HIDDEN
    if spec.name == "speed" and settings.speed_is_max:
        return "max"
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)  # a path, a time zone


def _text(value: Value) -> str:
    """A value on one line of text: booleans as true/false, unprintable characters escaped."""
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
