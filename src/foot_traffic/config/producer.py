"""The KAFKA_PRODUCER_* pass-through: any variable KAFKA_PRODUCER_<PROPERTY> sets a librdkafka producer property.

The property is ``<property>`` lowercased, every ``_`` read as ``.``:
KAFKA_PRODUCER_LINGER_MS=20 sets linger.ms=20.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from foot_traffic.kafka.properties import value_problem
from foot_traffic.secret import MASK

PRODUCER_PREFIX = "KAFKA_PRODUCER_"
"""Prefix of the pass-through variables: KAFKA_PRODUCER_LINGER_MS=20 sets linger.ms=20."""

_PROPERTY = re.compile(r"^[a-z0-9]+(\.[a-z0-9]+)*$")
_SENSITIVE = re.compile(r"password|secret|passphrase|private\.key|\.pem$|jaas|oauthbearer\.config")


class ProducerProperties(Mapping[str, str]):
    """Read-only librdkafka properties from KAFKA_PRODUCER_* variables; ``repr`` masks sensitive values."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = dict(sorted((items or {}).items()))

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._items == dict(other)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k!r}: {MASK if is_sensitive(k) else repr(v)}" for k, v in self._items.items())
        return f"ProducerProperties({{{shown}}})"


NO_PROPERTIES = ProducerProperties()


def is_sensitive(prop: str) -> bool:
    """Whether a librdkafka property holds a secret (a password, a private key, a token config)."""
    return _SENSITIVE.search(prop) is not None


def property_name(variable: str) -> str:
    """The librdkafka property a KAFKA_PRODUCER_* variable sets: KAFKA_PRODUCER_LINGER_MS → linger.ms."""
    return variable[len(PRODUCER_PREFIX) :].lower().replace("_", ".")


Owners = dict[str, tuple[str, str]]
"""For each pass-through property, the variable=value that set it (as an error shows it) and the variable."""


def read_passthrough(
    env: Mapping[str, str], owned: Mapping[str, str], problems: list[str], in_file: Mapping[str, str]
) -> tuple[ProducerProperties, Owners]:
    """The KAFKA_PRODUCER_* properties of ``env``, and who set each; one problem line per bad variable.

    ``owned`` maps the properties that a setting of their own controls to that setting's variable;
    ``in_file`` names the configuration file of each variable read from one.
    """
    props: dict[str, str] = {}
    origins: Owners = {}
    for variable in sorted(env):
        raw = env[variable]
        if not variable.startswith(PRODUCER_PREFIX) or raw == "":
            continue
        prop = property_name(variable)
        where = f" (in {in_file[variable]})" if variable in in_file else ""
        quoted = f"{variable}={MASK if is_sensitive(prop) else repr(raw)}{where}"
        problem = _problem(prop, raw, owned, origins)
        if problem is not None:
            problems.append(f"{quoted}: expected {problem}")
        else:
            props[prop] = raw
            origins[prop] = (quoted, variable)
    return ProducerProperties(props), origins


def _problem(prop: str, raw: str, owned: Mapping[str, str], seen: Owners) -> str | None:
    """What is expected instead of one pass-through variable, or None when it is fine on its own."""
    if not _PROPERTY.match(prop):
        return "KAFKA_PRODUCER_ followed by a librdkafka property name (letters and digits, '_' or '.' between words)"
    if prop in owned:
        return f"{owned[prop]} instead ({prop} has a setting of its own)"
    if prop in seen:
        return f"one variable per property; {seen[prop][1]} also sets {prop}"
    return value_problem(prop, raw)
