"""``foot-traffic run`` against a second, secured broker: SASL_SSL (SCRAM-SHA-512, PLAIN) and mutual TLS.

The session fixture makes a throwaway CA with openssl, a broker keystore (PKCS12)
and client certificates, and starts a broker of its own through scripts/kafka.sh
(its own home directory and ports; the shared broker is never touched) with four
listeners: PLAINTEXT (readiness checks and test set-up), CONTROLLER, SASL_SSL with
SCRAM-SHA-512 and PLAIN, and SSL requiring a client certificate.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from foot_traffic.config.resolve import load_settings
from foot_traffic.config.security import client_config
from tests.integration.conftest import ROOT, base_env, free_port
from tests.integration.pki import KEY_PASSWORD, STORE_PASSWORD, make_pki

pytestmark = pytest.mark.kafka

PASSWORD = "alice-S3cret-4b1d9e"  # noqa: S105  # distinctive, so that any leak is found
WRONG_PASSWORD = "wr0ng-Pa55-e61b3c"  # noqa: S105
SECRETS = (PASSWORD, KEY_PASSWORD, WRONG_PASSWORD)
RUN = ["--speed", "max", "--start", "2025-08-12", "--until", "2025-08-12T01:00:00", "--daily-customers", "100000"]
RUN += ["--seed", "secured"]
CONNECT_TIMEOUT_S = 5
"""KAFKA_CONNECT_TIMEOUT_SECONDS of the failing runs; with MAX_RETRIES=3 the retry budget is about 3 × 5 s."""


@dataclass(frozen=True)
class SecureBroker:
    """Addresses of the secured broker's listeners and the PEM files clients use."""

    plaintext: str
    sasl_ssl: str
    ssl: str
    ca: Path
    other_ca: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _broker_properties(d: Path, ports: dict[str, int]) -> str:
    listeners = ",".join(f"{name}://127.0.0.1:{port}" for name, port in ports.items())
    return "\n".join(
        [
            f"listeners={listeners}",
            f"advertised.listeners={listeners}",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={d / 'broker.p12'}",
            f"ssl.keystore.password={STORE_PASSWORD}",
            f"ssl.key.password={STORE_PASSWORD}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={d / 'ca.pem'}",
            "listener.name.ssl.ssl.client.auth=required",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.plain.sasl.jaas.config="
            f'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="{PASSWORD}";',
            "",
        ]
    )


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A second broker with SASL_SSL and SSL listeners, started for the session and stopped after it."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    d = tmp_path_factory.mktemp("secure-kafka")
    make_pki(d)
    ports = {name: free_port() for name in ("PLAINTEXT", "CONTROLLER", "SASL_SSL", "SSL")}
    (d / "extra.properties").write_text(_broker_properties(d, ports))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env |= {
        "KAFKA_HOME_DIR": str(d / "home"),
        "KAFKA_PORT": str(ports["PLAINTEXT"]),
        "KAFKA_CONTROLLER_PORT": str(ports["CONTROLLER"]),
        "KAFKA_EXTRA_PROPERTIES": str(d / "extra.properties"),
        "KAFKA_FORMAT_ARGS": f"--add-scram\nSCRAM-SHA-512=[name=alice,password={PASSWORD}]",
    }
    script = ["bash", str(ROOT / "scripts" / "kafka.sh")]
    try:
        up = subprocess.run([*script, "up"], env=env, capture_output=True, text=True, timeout=240, check=False)
        if up.returncode != 0:
            pytest.fail(f"the secured broker did not start:\n{up.stdout}\n{up.stderr}")
        for port in (ports["SASL_SSL"], ports["SSL"]):
            _wait_for_port(port, 30)
        yield SecureBroker(
            plaintext=f"127.0.0.1:{ports['PLAINTEXT']}",
            sasl_ssl=f"127.0.0.1:{ports['SASL_SSL']}",
            ssl=f"127.0.0.1:{ports['SSL']}",
            ca=d / "ca.pem",
            other_ca=d / "other.pem",
            client_cert=d / "client.pem",
            client_key=d / "client.key",
            rogue_cert=d / "rogue.pem",
            rogue_key=d / "rogue.key",
        )
    finally:
        subprocess.run([*script, "down"], env=env, capture_output=True, timeout=60, check=False)


def _wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.2)


def sasl_env(broker: SecureBroker, mechanism: str, password: str = PASSWORD, **more: str) -> dict[str, str]:
    """Settings of a SASL_SSL run as alice."""
    return {
        "KAFKA_BROKER": broker.sasl_ssl,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": "alice",
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CA_LOCATION": str(broker.ca),
        **more,
    }


def ssl_env(broker: SecureBroker, **more: str) -> dict[str, str]:
    """Settings of a mutual-TLS run with the CA-signed client certificate."""
    return {
        "KAFKA_BROKER": broker.ssl,
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CA_LOCATION": str(broker.ca),
        "KAFKA_SSL_CERTIFICATE_LOCATION": str(broker.client_cert),
        "KAFKA_SSL_KEY_LOCATION": str(broker.client_key),
        "KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD,
        **more,
    }


@dataclass(frozen=True)
class Outcome:
    """Exit status, everything written, and how long the run took."""

    rc: int
    stdout: str
    stderr: str
    elapsed_s: float


def run(settings: dict[str, str], *args: str) -> Outcome:
    """``foot-traffic run ARGS`` with these settings (and no other) as a subprocess."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "foot_traffic", "run", *args],
        env=base_env(**settings),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@pytest.fixture(scope="session")
def expected_events() -> list[bytes]:
    """The events of RUN, as the stdout sink writes them (the same SEED gives the same bytes)."""
    outcome = run({"SINK": "stdout", "LOG_LEVEL": "WARNING"}, *RUN)
    assert outcome.rc == 0, outcome.stderr
    events = [line.encode() for line in outcome.stdout.splitlines()]
    assert len(events) > 1000
    return events


def consume(settings: dict[str, str], topic: str, timeout_s: float = 60) -> list[bytes]:
    """Every record of the topic's single partition, read with the same security settings as the producer."""
    config = client_config(load_settings(settings))
    consumer = Consumer(
        {
            "bootstrap.servers": settings["KAFKA_BROKER"],
            "group.id": f"ft-test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout_s)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while len(values) < end:
            if time.monotonic() > deadline:
                pytest.fail(f"read {len(values)} of {end} records of {topic} before the timeout")
            for msg in consumer.consume(1000, timeout=1.0):
                assert msg.error() is None, msg.error()
                value = msg.value()
                assert isinstance(value, bytes)
                values.append(value)
        return values
    finally:
        consumer.close()


def topic_exists(broker: SecureBroker, topic: str) -> bool:
    """Whether the secured broker knows the topic (asked on its PLAINTEXT listener)."""
    return topic in AdminClient({"bootstrap.servers": broker.plaintext}).list_topics(timeout=30).topics


def fresh_topic() -> str:
    """A new topic name."""
    return f"ft-sec-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_sasl_ssl_run_delivers_every_event(
    secure_broker: SecureBroker, expected_events: list[bytes], mechanism: str
) -> None:
    """With the right credentials and CA, a SASL_SSL run exits 0 and a SASL_SSL consumer reads every event."""
    settings = sasl_env(secure_broker, mechanism, KAFKA_TOPIC=fresh_topic())
    outcome = run(settings, *RUN, "--log-level", "WARNING")
    assert outcome.rc == 0, outcome.stderr
    assert consume(settings, settings["KAFKA_TOPIC"]) == expected_events


def test_mutual_tls_run_delivers_every_event(secure_broker: SecureBroker, expected_events: list[bytes]) -> None:
    """With a client certificate signed by the CA (its key encrypted), an SSL run delivers every event."""
    settings = ssl_env(secure_broker, KAFKA_TOPIC=fresh_topic())
    outcome = run(settings, *RUN, "--log-level", "WARNING")
    assert outcome.rc == 0, outcome.stderr
    assert consume(settings, settings["KAFKA_TOPIC"]) == expected_events


def failing(settings: dict[str, str]) -> dict[str, str]:
    """Settings whose retry budget (MAX_RETRIES × KAFKA_CONNECT_TIMEOUT_SECONDS + backoffs) is about 17 s."""
    return {
        **settings,
        "KAFKA_TOPIC": fresh_topic(),
        "MAX_RETRIES": "3",
        "KAFKA_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT_S),
        "RETRY_BACKOFF_SECONDS": "1",
    }


def assert_refused(broker: SecureBroker, settings: dict[str, str], outcome: Outcome, *needles: str) -> None:
    """Exit 3 at the first attempt, well within one attempt's time, a clear reason, no topic, no event."""
    assert outcome.rc == 3, outcome.stderr
    assert outcome.elapsed_s < CONNECT_TIMEOUT_S + 5, f"took {outcome.elapsed_s:.1f} s"
    for needle in needles:
        assert needle in outcome.stderr
    assert "retrying" not in outcome.stderr
    assert "Emitted" not in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert not topic_exists(broker, settings["KAFKA_TOPIC"])


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_wrong_password_fails_fast_and_produces_nothing(secure_broker: SecureBroker, mechanism: str) -> None:
    """A wrong password: 'authentication failed', exit 3 without using up the retries, no topic created."""
    settings = failing(sasl_env(secure_broker, mechanism, WRONG_PASSWORD))
    outcome = run(settings, *RUN)
    assert_refused(secure_broker, settings, outcome, "authentication failed", "KAFKA_SASL_PASSWORD")


def test_untrusted_broker_certificate_fails_fast(secure_broker: SecureBroker) -> None:
    """A CA that did not sign the broker's certificate: 'SSL handshake failed … certificate verify failed', exit 3."""
    settings = failing(sasl_env(secure_broker, "SCRAM-SHA-512", KAFKA_SSL_CA_LOCATION=str(secure_broker.other_ca)))
    outcome = run(settings, *RUN)
    assert_refused(secure_broker, settings, outcome, "SSL handshake failed", "certificate verify failed")
    assert "not trusted" in outcome.stderr


def test_untrusted_client_certificate_is_refused(secure_broker: SecureBroker) -> None:
    """A client certificate from another CA is rejected by the broker: exit 3, nothing produced."""
    rogue = {"KAFKA_SSL_CERTIFICATE_LOCATION": str(secure_broker.rogue_cert)}
    rogue |= {"KAFKA_SSL_KEY_LOCATION": str(secure_broker.rogue_key), "KAFKA_SSL_KEY_PASSWORD": ""}
    settings = failing(ssl_env(secure_broker, **rogue))
    outcome = run(settings, *RUN)
    assert_refused(secure_broker, settings, outcome, "rejected this client's TLS handshake")


def test_secrets_never_appear_in_any_output(secure_broker: SecureBroker) -> None:
    """Successful, refused and misconfigured runs, at DEBUG with librdkafka's own debug logs: no secret anywhere."""
    debug = {"LOG_LEVEL": "DEBUG", "KAFKA_PRODUCER_DEBUG": "conf,security,broker"}
    short = [*RUN[:5], "2025-08-12T00:05:00", *RUN[6:]]
    sasl_ok = sasl_env(secure_broker, "SCRAM-SHA-512", KAFKA_TOPIC=fresh_topic(), **debug)
    tls_ok = ssl_env(secure_broker, KAFKA_TOPIC=fresh_topic(), **debug)
    outcomes = {
        "sasl ok": (run(sasl_ok, *short), 0),
        "tls ok": (run(tls_ok, *short), 0),
        "wrong password": (run(failing(sasl_env(secure_broker, "PLAIN", WRONG_PASSWORD, **debug)), *short), 3),
        "bad mechanism": (run(sasl_env(secure_broker, "SCRAM-SHA-1", **debug), *short), 2),
        "wrong key password": (run(ssl_env(secure_broker, KAFKA_SSL_KEY_PASSWORD=WRONG_PASSWORD), *short), 2),
        "password without SASL": (run(ssl_env(secure_broker, KAFKA_SASL_PASSWORD=PASSWORD), *short), 2),
        "password flag": (
            run({}, *short, "--kafka-sasl-password", PASSWORD, "--kafka-ssl-key-password", KEY_PASSWORD),
            2,
        ),
        "secret pass-through": (run({"KAFKA_PRODUCER_SASL_PASSWORD": PASSWORD}, *short), 2),
    }
    for name, (outcome, rc) in outcomes.items():
        assert outcome.rc == rc, f"{name}: {outcome.stderr[-3000:]}"
        for secret in SECRETS:
            assert secret not in outcome.stdout, f"{name}: secret on standard output"
            assert secret not in outcome.stderr, f"{name}: secret on standard error"
    assert "sasl.password = [redacted]" in outcomes["sasl ok"][0].stderr, "librdkafka's config dump was logged"
    assert "KAFKA_SASL_PASSWORD='***'" in outcomes["password without SASL"][0].stderr
    assert "--kafka-sasl-password='***'" in outcomes["password flag"][0].stderr
    for settings in (sasl_ok, tls_ok, sasl_env(secure_broker, "PLAIN", WRONG_PASSWORD)):
        text = repr(load_settings(settings)) + str(load_settings(settings))
        assert not any(secret in text for secret in SECRETS)
