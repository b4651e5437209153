"""Secured clusters: TLS and SASL settings, their checks, and the librdkafka properties they become.

Secrets live in ``Secret`` values whose ``repr`` and ``str`` are ``'***'``, so no
settings dump, log line or error message can show them. Any environment
variable ``KAFKA_PRODUCER_<PROPERTY>`` passes the librdkafka producer property
``<property>`` through (lowercased, every ``_`` read as ``.``). Every value is
checked before anything starts, by a throwaway librdkafka client that never
connects: an unknown property, a bad value or a key that does not decrypt is a
configuration error (exit 2), not a failure at the first connection.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from foot_traffic.kafka.client import producer_config

if TYPE_CHECKING:
    from foot_traffic.config.settings import Settings

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
ENDPOINT_IDENTIFICATIONS = ("https", "none")
PRODUCER_PREFIX = "KAFKA_PRODUCER_"
"""Prefix of the pass-through variables: KAFKA_PRODUCER_LINGER_MS=20 sets linger.ms=20."""

MASK = "'***'"
"""How a secret value is shown, wherever a value would be quoted."""

_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS = ("SSL", "SASL_SSL")
_PROPERTY = re.compile(r"^[a-z0-9]+(\.[a-z0-9]+)*$")
_SENSITIVE = re.compile(r"password|secret|passphrase|private\.key|\.pem$|jaas|oauthbearer\.config")

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


class Secret:
    """A string that never shows itself: ``repr`` is ``'***'``, ``str`` is ``***``; ``reveal()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the Kafka client and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


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


def readable_file(raw: str) -> Path:
    """A file that exists and that this process can read."""
    try:
        path = Path(raw).expanduser()
    except RuntimeError:  # "~someone" with no such user
        raise ValueError("a readable file, but its ~user is not a known user") from None
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise ValueError("a readable file, but there is no such file") from None
    except IsADirectoryError:
        raise ValueError("a readable file, but it is a directory") from None
    except OSError as exc:
        raise ValueError(f"a readable file, but it cannot be read ({exc.strerror})") from None
    return path


def property_name(variable: str) -> str:
    """The librdkafka property a KAFKA_PRODUCER_* variable sets: KAFKA_PRODUCER_LINGER_MS → linger.ms."""
    return variable[len(PRODUCER_PREFIX) :].lower().replace("_", ".")


def client_config(settings: Settings) -> dict[str, str]:
    """The librdkafka properties of the security settings plus the KAFKA_PRODUCER_* pass-through."""
    return _config(lambda name: getattr(settings, name, None), settings.producer_properties)


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
    by_name = {spec.name: spec for spec in specs}
    known = {spec.env for spec in specs}

    def given(name: str) -> bool:
        spec = by_name[name]
        return flags.get(name) is not None or env.get(spec.env, "") != ""

    def source(name: str) -> str:
        spec = by_name[name]
        return spec.flag if flags.get(name) is not None else spec.env

    def shown(name: str) -> str:
        value = values[name]
        return MASK if isinstance(value, Secret) else repr(str(value))

    def quoted(name: str) -> str:
        where = f" (in {in_file[name]})" if in_file and name in in_file else ""
        return f"{source(name)}={shown(name)}{where}"

    before = len(problems)
    invalid = {name for name, _ in LIBRDKAFKA_NAMES if given(name) and name not in values}
    protocol = values.get("security_protocol")
    sasl = ("sasl_mechanism", "sasl_username", "sasl_password")
    tls = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location", "ssl_key_password")
    if protocol in _SASL:
        missing = [by_name[n].env for n in sasl if n not in values and n not in invalid]
        if missing:
            problems.append(
                f"{quoted('security_protocol')}: expected KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and "
                f"KAFKA_SASL_PASSWORD to be set; missing: {', '.join(missing)}"
            )
    elif protocol is not None:
        problems.extend(
            f"{quoted(n)}: expected KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT to use it "
            f"(KAFKA_SECURITY_PROTOCOL is {protocol}), or no value"
            for n in sasl
            if n in values
        )
    if protocol in _TLS:
        pairs = (
            ("ssl_key_location", "ssl_certificate_location", "a client key needs its certificate"),
            ("ssl_certificate_location", "ssl_key_location", "a client certificate needs its private key"),
            ("ssl_key_password", "ssl_key_location", "the password decrypts that key"),
        )
        problems.extend(
            f"{quoted(name)}: expected {by_name[needed].env} to be set too ({why})"
            for name, needed, why in pairs
            if name in values and not given(needed)
        )
    elif protocol is not None:
        problems.extend(
            f"{quoted(n)}: expected KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL to use it "
            f"(KAFKA_SECURITY_PROTOCOL is {protocol}), or no value"
            for n in tls
            if n in values
        )
    passthrough, origins = _read_passthrough(env, known, problems, in_file or {})
    values["producer_properties"] = passthrough
    if protocol in (None, "PLAINTEXT") and not passthrough:
        return
    whole = len(problems) == before and not invalid
    owners = {prop: (quoted(name), name) for name, prop in LIBRDKAFKA_NAMES if name in values}
    owners.update(origins)
    secrets = [v.reveal() for v in values.values() if isinstance(v, Secret)]
    secrets += [v for k, v in passthrough.items() if is_sensitive(k)]
    problems.extend(_try_on_librdkafka(_config(values.get, passthrough), owners, secrets, whole=whole))


def _read_passthrough(
    env: Mapping[str, str], known: set[str], problems: list[str], in_file: Mapping[str, str]
) -> tuple[ProducerProperties, dict[str, tuple[str, str]]]:
    """The KAFKA_PRODUCER_* properties, and for each the variable=value that set it (as an error shows it)."""
    props: dict[str, str] = {}
    origins: dict[str, tuple[str, str]] = {}
    owned = {prop: variable for prop, variable in _OWNED.items() if variable in known}
    owned.update({prop: f"KAFKA_{name.upper()}" for name, prop in LIBRDKAFKA_NAMES})
    for variable in sorted(env):
        raw = env[variable]
        if not variable.startswith(PRODUCER_PREFIX) or raw == "":
            continue
        prop = property_name(variable)
        where = f" (in {in_file[variable]})" if variable in in_file else ""
        quoted = f"{variable}={MASK if is_sensitive(prop) else repr(raw)}{where}"
        if not _PROPERTY.match(prop):
            problems.append(
                f"{quoted}: expected KAFKA_PRODUCER_ followed by a librdkafka property name "
                "(letters and digits, '_' or '.' between words)"
            )
        elif prop in owned:
            problems.append(f"{quoted}: expected {owned[prop]} instead ({prop} has a setting of its own)")
        elif prop in origins:
            problems.append(f"{quoted}: expected one variable per property; {origins[prop][1]} also sets {prop}")
        else:
            props[prop] = raw
            origins[prop] = (quoted, variable)
    return ProducerProperties(props), origins


def _quiet_logger() -> logging.Logger:
    """A logger that drops everything: the throwaway client must not write to standard error."""
    logger = logging.Logger("foot_traffic.config.security.check")
    logger.addHandler(logging.NullHandler())
    logger.disabled = True
    return logger


def _client_error(config: Mapping[str, Any]) -> str | None:
    """What librdkafka says is wrong with ``config``, or None; the client is made without brokers and dropped."""
    try:
        Producer(dict(config), logger=_quiet_logger())
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        return error.str() if isinstance(error, KafkaError) else str(exc)
    return None


def _try_on_librdkafka(
    config: dict[str, str], owners: Mapping[str, tuple[str, str]], secrets: Sequence[str], *, whole: bool
) -> list[str]:
    """Problems librdkafka finds: in each pass-through property alone, then (if ``whole``) in the whole producer."""
    problems: list[str] = []
    passthrough = {prop: owner for prop, owner in owners.items() if owner[1].startswith(PRODUCER_PREFIX)}
    for prop, (quoted, _) in passthrough.items():
        message = _client_error({prop: config[prop]})
        # only errors of the property itself; creation errors may need other properties and come next
        if message is not None and not message.startswith("Failed to create"):
            problems.append(f"{quoted}: expected a librdkafka producer property and value; {_redact(message, secrets)}")
            config = {k: v for k, v in config.items() if k != prop}
    if problems or not whole:
        return problems
    message = _client_error({k: v for k, v in producer_config("", config).items() if k != "bootstrap.servers"})
    if message is None:
        return []
    mentioned = [(message.find(prop), owner[0]) for prop, owner in owners.items() if _names(message, prop)]
    quoted = min(mentioned)[1] if mentioned else owners.get("security.protocol", ("KAFKA_SECURITY_PROTOCOL", ""))[0]
    hint = ""
    if "ssl.key.location" in message:
        hint = " (a PEM private key; an encrypted one needs the right KAFKA_SSL_KEY_PASSWORD)"
    return [f"{quoted}: expected a value the Kafka client accepts; {_redact(message, secrets)}{hint}"]


def _names(message: str, prop: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(prop)}(?![\w.])", message) is not None


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
