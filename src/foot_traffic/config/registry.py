"""The schema registry settings, checked together with the rest, and the registry client they describe.

The client itself (the serializers, the retrying calls) is foot_traffic.kafka.registry;
this module turns the settings into its parameters.
"""

from __future__ import annotations

import importlib
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

from foot_traffic.config.settings import FORMATS, Settings
from foot_traffic.kafka.registry import EXTRA_HINT, TLS, EventSerializer
from foot_traffic.kafka.registry import connect as connect_registry
from foot_traffic.retry import Backoff
from foot_traffic.secret import MASK, Secret

_EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "json": (
        "jsonschema",
        "referencing",
        "confluent_kafka.schema_registry",
        "confluent_kafka.schema_registry.json_schema",
    ),
    "avro": ("fastavro", "confluent_kafka.schema_registry", "confluent_kafka.schema_registry.avro"),
}
"""What each format imports: the third-party modules first, so a missing one is named."""

TLS_SETTINGS = (
    ("schema_registry_ssl_ca_location", "SCHEMA_REGISTRY_SSL_CA_LOCATION"),
    ("schema_registry_ssl_certificate_location", "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION"),
    ("schema_registry_ssl_key_location", "SCHEMA_REGISTRY_SSL_KEY_LOCATION"),
    ("schema_registry_ssl_key_password", "SCHEMA_REGISTRY_SSL_KEY_PASSWORD"),
)
"""The TLS settings, by field name and variable."""


def tls(settings: Settings) -> TLS:
    """The TLS settings of a run's registry client."""
    return TLS(
        settings.schema_registry_ssl_ca_location,
        settings.schema_registry_ssl_certificate_location,
        settings.schema_registry_ssl_key_location,
        settings.schema_registry_ssl_key_password,
    )


def connect(settings: Settings, *, client: Any = None, sleep: Callable[[float], None] = time.sleep) -> EventSerializer:
    """Reach the registry SCHEMA_REGISTRY_URL names (MAX_RETRIES attempts, RETRY_BACKOFF_SECONDS apart).

    See foot_traffic.kafka.registry.connect.
    """
    url = settings.schema_registry_url
    if url is None:
        raise ValueError("SCHEMA_REGISTRY_URL is not set")
    return connect_registry(
        url,
        settings.topic,
        settings.schema_registry_format,
        user_info=settings.schema_registry_basic_auth_user_info,
        tls=tls(settings),
        timeout_s=settings.connect_timeout_seconds,
        backoff=Backoff(settings.max_retries, settings.retry_backoff_seconds, sleep),
        client=client,
    )


def missing_extra(fmt: str, import_module: Callable[[str], object] = importlib.import_module) -> str | None:
    """Why the serializers of ``fmt`` cannot be imported (the import error), or None when they can."""
    for module in _EXTRA_MODULES[fmt]:
        try:
            import_module(module)
        except ImportError as exc:
            return str(exc)
    return None


def check(values: Mapping[str, Any], problems: list[str], *, in_file: Mapping[str, str] | None = None) -> None:
    """Check the registry settings together with the rest; append one line per problem.

    ``in_file`` names the configuration file of each setting read from one, by name.
    """

    def where(name: str) -> str:
        return f" (in {in_file[name]})" if in_file and name in in_file else ""

    def shown(name: str, env: str) -> str:
        value = values[name]
        return f"{env}={MASK if isinstance(value, Secret) else repr(str(value))}{where(name)}"

    url = values.get("schema_registry_url")
    dependent = (("schema_registry_basic_auth_user_info", "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"), *TLS_SETTINGS)
    if url is None:
        problems.extend(
            f"{shown(name, env)}: expected SCHEMA_REGISTRY_URL to be set too"
            for name, env in dependent
            if name in values
        )
        return
    _check_tls(values, url, problems, shown)
    quoted = f"SCHEMA_REGISTRY_URL={url!r}{where('schema_registry_url')}"
    sink = values.get("sink", "kafka")
    if sink != "kafka":
        problems.append(f"{quoted} with SINK={sink!r}: expected SINK=kafka (the registry's framing is for Kafka)")
    if values.get("exit_events_topic") is not None:
        problems.append(
            f"{quoted} with EXIT_EVENTS_TOPIC: expected one or the other "
            "(the entry/exit events have no registered schema)"
        )
    fmt = values.get("schema_registry_format", "json")
    if fmt in FORMATS:
        reason = missing_extra(fmt)
        if reason is not None:
            problems.append(f"{quoted}: expected the registry serializers to be installed ({reason}); {EXTRA_HINT}")


def _check_tls(values: Mapping[str, Any], url: str, problems: list[str], shown: Callable[[str, str], str]) -> None:
    """The SCHEMA_REGISTRY_SSL_* settings: for https:// only, a key with its certificate, and loadable by Python."""
    given = [(name, env) for name, env in TLS_SETTINGS if name in values]
    if not given:
        return
    if not url.lower().startswith("https://"):
        problems.extend(
            f"{shown(name, env)}: expected an https:// SCHEMA_REGISTRY_URL to use it (it is {url!r}), or no value"
            for name, env in given
        )
        return
    before = len(problems)
    certificate = "schema_registry_ssl_certificate_location"
    reasons = ("a client key needs its certificate", "it decrypts that key")
    needs_certificate = zip(TLS_SETTINGS[2:], reasons, strict=True)
    problems.extend(
        f"{shown(name, env)}: expected SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION to be set too ({why})"
        for (name, env), why in needs_certificate
        if name in values and certificate not in values
    )
    if len(problems) == before:
        problems.extend(_load_tls(TLS(*(values.get(name) for name, _ in TLS_SETTINGS)), shown))


def _load_tls(tls: TLS, shown: Callable[[str, str], str]) -> list[str]:
    """Problems Python's ssl finds in the CA file and the client's certificate and key, each naming its setting."""
    try:
        context = ssl.create_default_context(cafile=None if tls.ca_location is None else str(tls.ca_location))
    except (ssl.SSLError, OSError, ValueError) as exc:
        return [f"{shown(*TLS_SETTINGS[0])}: expected a PEM file of CA certificate(s); {type(exc).__name__}: {exc}"]
    if tls.certificate_location is None:
        return []
    try:
        context.load_cert_chain(
            str(tls.certificate_location),
            None if tls.key_location is None else str(tls.key_location),
            _no_password if tls.key_password is None else tls.key_password.reveal(),
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        return [
            f"{shown(*TLS_SETTINGS[1])}: expected a PEM client certificate and its private key (in "
            "SCHEMA_REGISTRY_SSL_KEY_LOCATION or the same file; an encrypted key needs the right "
            f"SCHEMA_REGISTRY_SSL_KEY_PASSWORD); {type(exc).__name__}: {exc}"
        ]
    return []


def _no_password() -> str:
    """An encrypted key without SCHEMA_REGISTRY_SSL_KEY_PASSWORD fails to load, rather than prompting on a terminal."""
    return ""
