"""Secured clusters: validation messages, secrets that never show, the librdkafka mapping and the pass-through."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from foot_traffic.config.producer import ProducerProperties, property_name
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.security import client_config
from foot_traffic.config.settings import SPECS
from foot_traffic.errors import ConfigError, KafkaRefusedError, KafkaUnavailableError
from foot_traffic.kafka import admin, client
from foot_traffic.secret import Secret
from tests.unit.conftest import KEY_PASSWORD, Pem

PASSWORD = "pa55-Unit-7f3a9c"  # noqa: S105  # a test secret, to look for in every output
SASL = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "alice",
    "KAFKA_SASL_PASSWORD": PASSWORD,
}


def problems_of(env: dict[str, str], flags: dict[str, str | None] | None = None) -> list[str]:
    """The configuration problems of ``env`` (and flags); fails the test if there are none."""
    with pytest.raises(ConfigError) as info:
        load_settings(env, flags)
    return info.value.problems


def test_secret_never_renders_its_value() -> None:
    """repr, str and format of a Secret are masks; reveal() gives the value; equality compares values."""
    secret = Secret(PASSWORD)
    assert (repr(secret), str(secret), f"{secret}", f"{secret!r}") == ("'***'", "***", "***", "'***'")
    assert secret.reveal() == PASSWORD
    assert secret == Secret(PASSWORD)
    assert secret != Secret("other")


def test_settings_repr_masks_secrets(pem: Pem) -> None:
    """Neither password appears in the settings' repr, str or in the error of a bad run."""
    tls = {"KAFKA_SSL_CA_LOCATION": str(pem.ca), "KAFKA_SSL_CERTIFICATE_LOCATION": str(pem.cert)}
    tls |= {"KAFKA_SSL_KEY_LOCATION": str(pem.key), "KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD}
    settings = load_settings({**SASL, **tls, "KAFKA_PRODUCER_SASL_OAUTHBEARER_CLIENT_SECRET": "oauth-s3cret"})
    for text in (repr(settings), str(settings)):
        assert PASSWORD not in text
        assert KEY_PASSWORD not in text
        assert "oauth-s3cret" not in text
        assert "sasl_password='***'" in text
        assert "ssl_key_password='***'" in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "KAFKA_SECURITY_PROTOCOL='SASL_SSL': expected KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD to be set; missing: KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD",
        ),
        (
            {**SASL, "KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_PASSWORD": ""},
            "KAFKA_SECURITY_PROTOCOL='SASL_PLAINTEXT': expected KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD to be set; missing: KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SASL_PASSWORD": PASSWORD},
            "KAFKA_SASL_PASSWORD='***': expected KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT to use it "
            "(KAFKA_SECURITY_PROTOCOL is PLAINTEXT), or no value",
        ),
        (
            SASL | {"KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "KAFKA_SSL_KEY_PASSWORD='***': expected KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL to use it "
            "(KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT), or no value",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD},
            "KAFKA_SSL_KEY_PASSWORD='***': expected KAFKA_SSL_KEY_LOCATION to be set too "
            "(the password decrypts that key)",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_LOCATION": "/dev/null"},
            "KAFKA_SSL_KEY_LOCATION='/dev/null': expected KAFKA_SSL_CERTIFICATE_LOCATION to be set too "
            "(a client key needs its certificate)",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTIFICATE_LOCATION": "/dev/null"},
            "KAFKA_SSL_CERTIFICATE_LOCATION='/dev/null': expected KAFKA_SSL_KEY_LOCATION to be set too "
            "(a client certificate needs its private key)",
        ),
        (
            {"KAFKA_SSL_CA_LOCATION": "/dev/null"},
            "KAFKA_SSL_CA_LOCATION='/dev/null': expected KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL to use it "
            "(KAFKA_SECURITY_PROTOCOL is PLAINTEXT), or no value",
        ),
        (
            {**SASL, "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "KAFKA_SASL_MECHANISM='GSSAPI': expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
    ],
)
def test_combinations_are_checked_with_clear_messages(env: dict[str, str], expected: str) -> None:
    """Each incoherent combination gives exactly one line naming the variable, its value and what is expected."""
    problems = problems_of(env)
    assert problems == [expected]
    assert not any(PASSWORD in p or KEY_PASSWORD in p for p in problems)


@pytest.mark.parametrize("name", ["sasl_password", "ssl_key_password"])
def test_a_secret_given_as_a_flag_is_masked_too(name: str) -> None:
    """A secret from the command line is named by its flag and shown as '***'."""
    (problem,) = problems_of({}, {name: PASSWORD})
    flag = "--kafka-" + name.replace("_", "-")
    assert problem.startswith(f"{flag}='***': expected KAFKA_SECURITY_PROTOCOL ")
    assert PASSWORD not in problem


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file this process may not read is refused before anything starts."""
    path = tmp_path / "ca.pem"
    path.write_text("x")

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)  # chmod 0 would not stop root
    (problem,) = problems_of({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(path)})
    assert problem == (
        f"KAFKA_SSL_CA_LOCATION={str(path)!r}: expected a readable file, but it cannot be read (Permission denied)"
    )


def test_files_librdkafka_cannot_load_are_config_errors(pem: Pem) -> None:
    """A CA file without a certificate, or a key its password does not decrypt, is exit 2 naming the variable."""
    (problem,) = problems_of({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(pem.key)})
    assert problem.startswith(f"KAFKA_SSL_CA_LOCATION={str(pem.key)!r}: expected a value the Kafka client accepts; ")
    assert "ssl.ca.location failed" in problem
    wrong = "wrong-" + KEY_PASSWORD
    tls = {"KAFKA_SSL_CERTIFICATE_LOCATION": str(pem.cert), "KAFKA_SSL_KEY_LOCATION": str(pem.key)}
    (problem,) = problems_of({"KAFKA_SECURITY_PROTOCOL": "SSL", **tls, "KAFKA_SSL_KEY_PASSWORD": wrong})
    assert problem.startswith(f"KAFKA_SSL_KEY_LOCATION={str(pem.key)!r}: expected a value the Kafka client accepts")
    assert "KAFKA_SSL_KEY_PASSWORD" in problem
    assert wrong not in problem
    assert KEY_PASSWORD not in problem


def test_client_config_maps_to_librdkafka_names(pem: Pem) -> None:
    """Every security setting becomes its librdkafka property; secrets are revealed only there."""
    tls = {"KAFKA_SSL_CA_LOCATION": str(pem.ca), "KAFKA_SSL_CERTIFICATE_LOCATION": str(pem.cert)}
    tls |= {"KAFKA_SSL_KEY_LOCATION": str(pem.key), "KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD}
    settings = load_settings({**SASL, **tls, "KAFKA_SSL_ENDPOINT_IDENTIFICATION": "NONE"})
    assert client_config(settings) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(pem.ca),
        "ssl.certificate.location": str(pem.cert),
        "ssl.key.location": str(pem.key),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.endpoint.identification.algorithm": "none",
    }


def test_plaintext_by_default() -> None:
    """Without security settings the client speaks PLAINTEXT and nothing else is set."""
    settings = load_settings({})
    assert client_config(settings) == {
        "security.protocol": "PLAINTEXT",
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert settings.producer_properties == ProducerProperties()


@pytest.mark.parametrize(
    ("variable", "prop"),
    [
        ("KAFKA_PRODUCER_MESSAGE_TIMEOUT_MS", "message.timeout.ms"),
        ("KAFKA_PRODUCER_LINGER_MS", "linger.ms"),
        ("KAFKA_PRODUCER_COMPRESSION_TYPE", "compression.type"),
        ("KAFKA_PRODUCER_message.max.bytes", "message.max.bytes"),
        ("KAFKA_PRODUCER_DEBUG", "debug"),
    ],
)
def test_property_names(variable: str, prop: str) -> None:
    """The rest of the name, in lower case, every '_' read as '.'."""
    assert property_name(variable) == prop


def test_passthrough_reaches_the_client_config() -> None:
    """KAFKA_PRODUCER_* variables become a frozen mapping of producer properties, passed to the client."""
    env = {"KAFKA_PRODUCER_LINGER_MS": "20", "KAFKA_PRODUCER_compression.type": "lz4", "KAFKA_PRODUCER_DEBUG": ""}
    settings = load_settings(env)
    assert dict(settings.producer_properties) == {"linger.ms": "20", "compression.type": "lz4"}
    assert client_config(settings)["linger.ms"] == "20"
    assert client_config(settings)["compression.type"] == "lz4"
    with pytest.raises(TypeError):
        settings.producer_properties["linger.ms"] = "1"  # type: ignore[index]
    assert hash(settings.producer_properties) == hash(load_settings(env).producer_properties)


def test_sensitive_passthrough_values_are_masked() -> None:
    """A pass-through property holding a secret is masked in repr and in errors."""
    props = ProducerProperties({"sasl.oauthbearer.client.secret": "oauth-s3cret", "linger.ms": "5"})
    assert repr(props) == "ProducerProperties({'linger.ms': '5', 'sasl.oauthbearer.client.secret': '***'})"
    (problem,) = problems_of({"KAFKA_PRODUCER_SSL_KEYSTORE_PASSWORD": "ks-s3cret", "KAFKA_PRODUCER_ACKS": "1"})
    assert "ks-s3cret" not in problem
    assert problem.startswith("KAFKA_PRODUCER_ACKS='1': expected a value the Kafka client accepts; ")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"KAFKA_PRODUCER_LINGER_MSS": "5"},
            "KAFKA_PRODUCER_LINGER_MSS='5': expected a librdkafka producer property and value; "
            'No such configuration property: "linger.mss"',
        ),
        (
            {"KAFKA_PRODUCER_LINGER_MS": "soon"},
            "KAFKA_PRODUCER_LINGER_MS='soon': expected a librdkafka producer property and value; Invalid value",
        ),
        (
            {"KAFKA_PRODUCER_ACKS": "1"},
            "KAFKA_PRODUCER_ACKS='1': expected a value the Kafka client accepts; Failed to create producer: "
            "`acks` must be set to `all` when `enable.idempotence` is true",
        ),
        (
            {"KAFKA_PRODUCER_BOOTSTRAP_SERVERS": "h:1"},
            "KAFKA_PRODUCER_BOOTSTRAP_SERVERS='h:1': expected KAFKA_BROKER instead "
            "(bootstrap.servers has a setting of its own)",
        ),
        (
            {"KAFKA_PRODUCER_SASL_PASSWORD": PASSWORD},
            "KAFKA_PRODUCER_SASL_PASSWORD='***': expected KAFKA_SASL_PASSWORD instead "
            "(sasl.password has a setting of its own)",
        ),
        (
            {"KAFKA_PRODUCER_LINGER_MS": "5", "KAFKA_PRODUCER_linger.ms": "6"},
            "KAFKA_PRODUCER_linger.ms='6': expected one variable per property; KAFKA_PRODUCER_LINGER_MS also sets "
            "linger.ms",
        ),
        (
            {"KAFKA_PRODUCER_": "x"},
            "KAFKA_PRODUCER_='x': expected KAFKA_PRODUCER_ followed by a librdkafka property name",
        ),
        (
            {"KAFKA_PRODUCER_LINGER-MS": "5"},
            "KAFKA_PRODUCER_LINGER-MS='5': expected KAFKA_PRODUCER_ followed by a librdkafka property name",
        ),
    ],
)
def test_bad_passthrough_is_a_config_error(env: dict[str, str], expected: str) -> None:
    """An unknown property, a bad value, a conflict or a property with its own setting: one clear line each."""
    (problem,) = problems_of(env)
    assert problem.startswith(expected)
    assert PASSWORD not in problem


def test_every_bad_passthrough_is_reported_together() -> None:
    """Several bad KAFKA_PRODUCER_* variables and a bad setting are all reported at once."""
    problems = problems_of({"KAFKA_PRODUCER_A_B_C": "1", "KAFKA_PRODUCER_LINGER_MS": "x", "SLEEP": "0"})
    assert [p.split("=")[0] for p in problems] == ["SLEEP", "KAFKA_PRODUCER_A_B_C", "KAFKA_PRODUCER_LINGER_MS"]


def test_delivery_timeout_has_its_own_setting_when_there_is_one() -> None:
    """message.timeout.ms is refused in favour of KAFKA_DELIVERY_TIMEOUT_MS when that setting exists."""
    env = {"KAFKA_PRODUCER_MESSAGE_TIMEOUT_MS": "30000"}
    if "KAFKA_DELIVERY_TIMEOUT_MS" in {s.env for s in SPECS}:
        (problem,) = problems_of(env)
        assert problem.startswith("KAFKA_PRODUCER_MESSAGE_TIMEOUT_MS='30000': expected KAFKA_DELIVERY_TIMEOUT_MS")
    else:
        assert load_settings(env).producer_properties == ProducerProperties({"message.timeout.ms": "30000"})


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (
            KafkaError._AUTHENTICATION,
            "sasl_ssl://b:9094/bootstrap: SASL authentication error: Authentication failed during authentication "
            "due to invalid credentials with SASL mechanism SCRAM-SHA-512",
            "authentication failed: ",
        ),
        (
            KafkaError._SSL,
            "ssl://b:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
            "the broker's certificate is not trusted: ",
        ),
        (
            KafkaError._TRANSPORT,
            "ssl://b:9093/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate",
            "the broker rejected this client's TLS handshake: ",
        ),
        (KafkaError._SSL, "ssl://b:9093/bootstrap: SSL handshake failed: unsupported protocol", "SSL handshake failed"),
        (KafkaError._TRANSPORT, "b:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused", None),
        (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down", None),
    ],
)
def test_refusals_are_told_from_outages(code: int, text: str, expected: str | None) -> None:
    """A failed login or TLS handshake is a refusal with a clear reason; a broker that is down is not."""
    refusal = client.refusal([KafkaError(code, text)])
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.startswith(expected)
        assert text in refusal


class FakeAdmin:
    """An AdminClient whose brokers never answer; poll() reports ``report`` to the error callback."""

    report: KafkaError | None = None
    made = 0

    def __init__(self, config: dict[str, Any], logger: Any = None, error_cb: Callable[[KafkaError], None] = print):
        self.config = config
        self.error_cb = error_cb
        FakeAdmin.made += 1

    def list_topics(self, timeout: float) -> None:
        raise KafkaException(
            KafkaError(KafkaError._TRANSPORT, "Failed to get metadata: Local: Broker transport failure")
        )

    def poll(self, timeout: float = 0) -> int:
        if self.report is not None:
            self.error_cb(self.report)
        return 0


def connect_with(monkeypatch: pytest.MonkeyPatch, report: KafkaError | None, attempts: int) -> list[float]:
    """Run connect() against FakeAdmin; return the back-off sleeps it asked for."""
    monkeypatch.setattr(admin, "AdminClient", FakeAdmin)
    monkeypatch.setattr(FakeAdmin, "report", report)
    sleeps: list[float] = []
    admin.connect(
        "b:9094",
        ["t"],
        attempts=attempts,
        backoff_s=5,
        attempt_timeout_s=0.3,
        partitions=1,
        replication_factor=1,
        extra={"security.protocol": "SASL_SSL", "sasl.password": PASSWORD, "linger.ms": "5"},
        sleep=sleeps.append,
    )
    return sleeps


def test_a_refused_login_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """Authentication failure ends start-up at the first attempt, with exit status 3 and no secret."""
    auth = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed")
    with pytest.raises(KafkaRefusedError) as info:
        connect_with(monkeypatch, auth, attempts=6)
    assert info.value.exit_status == 3
    assert str(info.value).startswith("cannot connect to Kafka at b:9094: authentication failed: ")
    assert PASSWORD not in str(info.value)


def test_an_unreachable_broker_is_still_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a refusal every attempt is used, and the admin client gets only the security properties."""
    with pytest.raises(KafkaUnavailableError) as info:
        connect_with(monkeypatch, None, attempts=3)
    assert not isinstance(info.value, KafkaRefusedError)
    assert "after 3 attempt(s)" in str(info.value)


def test_admin_client_gets_security_properties_only() -> None:
    """The start-up check's admin client receives security., sasl., ssl. and enable.ssl. properties only."""
    extra = {"security.protocol": "SSL", "ssl.ca.location": "ca.pem", "enable.ssl.certificate.verification": "true"}
    config = client.admin_config("b:1", {**extra, "linger.ms": "5"})
    assert config == {"bootstrap.servers": "b:1", **extra}
