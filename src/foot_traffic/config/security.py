"""Secured clusters: TLS and SASL settings, their checks, and the librdkafka properties they become.

Secrets live in ``Secret`` values whose ``repr`` and ``str`` are ``'***'``, so no
settings dump, log line or error message can show them. Every value, the
KAFKA_PRODUCER_* pass-through included, is checked before anything starts, by a
throwaway Kafka client that never connects: an unknown property, a bad value or
a key that does not decrypt is a configuration error (exit 2), not a failure at
the first connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from foot_traffic.config.producer import PRODUCER_PREFIX, Owners, is_sensitive, read_passthrough
from foot_traffic.config.settings import Settings
from foot_traffic.kafka.client import producer_config
from foot_traffic.kafka.properties import client_error, spellings, typed
from foot_traffic.secret import MASK, Secret

_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS = ("SSL", "SASL_SSL")
_SASL_SETTINGS = ("sasl_mechanism", "sasl_username", "sasl_password")
_TLS_SETTINGS = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location", "ssl_key_password")
_TLS_PAIRS = (
    ("ssl_key_location", "ssl_certificate_location", "a client key needs its certificate"),
    ("ssl_certificate_location", "ssl_key_location", "a client certificate needs its private key"),
    ("ssl_key_password", "ssl_key_location", "the password decrypts that key"),
)
"""A TLS setting, the one it needs beside it, and why."""

LIBRDKAFKA_NAMES: tuple[tuple[str, str], ...] = (
    ("security_protocol", "security.protocol"),
    ("sasl_mechanism", "sasl.mechanisms"),
    ("sasl_username", "sasl.username"),
    ("sasl_password", "sasl.password"),
    ("ssl_ca_location", "ssl.ca.location"),
    ("ssl_certificate_location", "ssl.certificate.location"),
    ("ssl_key_location", "ssl.key.location"),
    ("ssl_key_password", "ssl.key.password"),
    ("ssl_endpoint_identification", "ssl.endpoint.identification.algorithm"),
)
"""Each security setting and the librdkafka property it sets."""

_OWNED: dict[str, str] = {
    "bootstrap.servers": "KAFKA_BROKER",
    "metadata.broker.list": "KAFKA_BROKER",
    "sasl.mechanism": "KAFKA_SASL_MECHANISM",
    "message.timeout.ms": "KAFKA_DELIVERY_TIMEOUT_MS",
    "delivery.timeout.ms": "KAFKA_DELIVERY_TIMEOUT_MS",
    "transactional.id": "KAFKA_TRANSACTIONAL_ID",
}
"""Properties (besides the security ones) that a setting of their own controls, when that setting exists."""


def client_config(settings: Settings) -> dict[str, Any]:
    """The librdkafka properties of the security settings plus the KAFKA_PRODUCER_* pass-through.

    Values are text, but for the properties the Python client types itself (see foot_traffic.kafka.properties).
    """
    return typed(_config(lambda name: getattr(settings, name, None), settings.producer_properties))


def _config(get: Callable[[str], Any], passthrough: Mapping[str, str]) -> dict[str, str]:
    config: dict[str, str] = {}
    for name, prop in LIBRDKAFKA_NAMES:
        value = get(name)
        if value is not None:
            config[prop] = value.reveal() if isinstance(value, Secret) else str(value)
    config.update(passthrough)
    return config


class _SpecLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def env(self) -> str: ...
    @property
    def flag(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Given:
    """The security settings as given: which were set, and how a message quotes each."""

    values: Mapping[str, Any]
    env: Mapping[str, str]
    flags: Mapping[str, str | None]
    by_name: Mapping[str, _SpecLike]
    in_file: Mapping[str, str]

    def given(self, name: str) -> bool:
        """Whether a setting received a value (a valid one or not)."""
        return self.flags.get(name) is not None or self.env.get(self.by_name[name].env, "") != ""

    def quoted(self, name: str) -> str:
        """``SETTING=value`` (or ``--flag=value``) as a message shows it, a secret masked."""
        spec = self.by_name[name]
        source = spec.flag if self.flags.get(name) is not None else spec.env
        value = self.values[name]
        shown = MASK if isinstance(value, Secret) else repr(str(value))
        where = f" (in {self.in_file[name]})" if name in self.in_file else ""
        return f"{source}={shown}{where}"


def check(
    values: dict[str, Any],
    env: Mapping[str, str],
    flags: Mapping[str, str | None],
    problems: list[str],
    specs: Sequence[_SpecLike],
    *,
    in_file: Mapping[str, str] | None = None,
) -> None:
    """Check the security settings together, read KAFKA_PRODUCER_*, and try the result on librdkafka.

    Sets ``values["producer_properties"]``; appends one line per problem, naming
    the variable (or flag), its value ('***' for a secret) and what is expected.
    ``in_file`` names the configuration file of each setting read from one, by name
    (by variable for a KAFKA_PRODUCER_* one).
    """
    given = _Given(values, env, flags, {spec.name: spec for spec in specs}, in_file or {})
    before = len(problems)
    invalid = {name for name, _ in LIBRDKAFKA_NAMES if given.given(name) and name not in values}
    protocol = values.get("security_protocol")
    problems.extend(_sasl_problems(given, protocol, invalid))
    problems.extend(_tls_problems(given, protocol))
    known = {spec.env for spec in specs}
    owned = {prop: variable for prop, variable in _OWNED.items() if variable in known}
    owned.update({prop: f"KAFKA_{name.upper()}" for name, prop in LIBRDKAFKA_NAMES})
    passthrough, origins = read_passthrough(env, owned, problems, given.in_file)
    values["producer_properties"] = passthrough
    if protocol in (None, "PLAINTEXT") and not passthrough:
        return
    whole = len(problems) == before and not invalid
    owners = {prop: (given.quoted(name), name) for name, prop in LIBRDKAFKA_NAMES if name in values}
    owners.update(origins)
    secrets = [v.reveal() for v in values.values() if isinstance(v, Secret)]
    secrets += [v for k, v in passthrough.items() if is_sensitive(k)]
    problems.extend(_try_on_librdkafka(_config(values.get, passthrough), owners, secrets, whole=whole))


def _sasl_problems(given: _Given, protocol: str | None, invalid: set[str]) -> list[str]:
    """A SASL protocol without its three settings, or SASL settings without a SASL protocol."""
    if protocol in _SASL:
        missing = [given.by_name[n].env for n in _SASL_SETTINGS if n not in given.values and n not in invalid]
        if not missing:
            return []
        return [
            f"{given.quoted('security_protocol')}: expected KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and "
            f"KAFKA_SASL_PASSWORD to be set; missing: {', '.join(missing)}"
        ]
    if protocol is None:
        return []
    return [
        f"{given.quoted(n)}: expected KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT to use it "
        f"(KAFKA_SECURITY_PROTOCOL is {protocol}), or no value"
        for n in _SASL_SETTINGS
        if n in given.values
    ]


def _tls_problems(given: _Given, protocol: str | None) -> list[str]:
    """A client key or certificate without its pair, or TLS settings without a TLS protocol."""
    if protocol in _TLS:
        return [
            f"{given.quoted(name)}: expected {given.by_name[needed].env} to be set too ({why})"
            for name, needed, why in _TLS_PAIRS
            if name in given.values and not given.given(needed)
        ]
    if protocol is None:
        return []
    return [
        f"{given.quoted(n)}: expected KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL to use it "
        f"(KAFKA_SECURITY_PROTOCOL is {protocol}), or no value"
        for n in _TLS_SETTINGS
        if n in given.values
    ]


def _try_on_librdkafka(config: dict[str, str], owners: Owners, secrets: Sequence[str], *, whole: bool) -> list[str]:
    """Problems librdkafka finds: in each pass-through property alone, then (if ``whole``) in the whole producer."""
    problems: list[str] = []
    passthrough = {prop: owner for prop, owner in owners.items() if owner[1].startswith(PRODUCER_PREFIX)}
    for prop, (quoted, _) in passthrough.items():
        message = client_error({prop: config[prop]})
        # only errors of the property itself; creation errors may need other properties and come next
        if message is not None and not message.startswith("Failed to create"):
            problems.append(f"{quoted}: expected a librdkafka producer property and value; {_redact(message, secrets)}")
            config = {k: v for k, v in config.items() if k != prop}
    if problems or not whole:
        return problems
    message = client_error({k: v for k, v in producer_config("", config).items() if k != "bootstrap.servers"})
    if message is None:
        return []
    mentioned = [
        (message.find(name), owner[0])
        for prop, owner in owners.items()
        for name in spellings(prop)
        if _names(message, name)
    ]
    quoted = min(mentioned)[1] if mentioned else _unnamed(owners)
    hint = ""
    if "ssl.key.location" in message:
        hint = " (a PEM private key; an encrypted one needs the right KAFKA_SSL_KEY_PASSWORD)"
    return [f"{quoted}: expected a value the Kafka client accepts; {_redact(message, secrets)}{hint}"]


def _unnamed(owners: Owners) -> str:
    """Who to name for an error that names no property: the pass-through variables, else the protocol."""
    passthrough = [quoted for quoted, variable in owners.values() if variable.startswith(PRODUCER_PREFIX)]
    if passthrough:
        return " with ".join(passthrough)
    return owners.get("security.protocol", ("KAFKA_SECURITY_PROTOCOL", ""))[0]


def _names(message: str, prop: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(prop)}(?![\w.])", message) is not None


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
