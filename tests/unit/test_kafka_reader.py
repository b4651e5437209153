"""The report's topic reader: the consumer's settings, finding the topic's partitions within MAX_RETRIES tries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from foot_traffic.errors import KafkaUnavailableError
from foot_traffic.kafka import reader as reader_module
from foot_traffic.kafka.reader import TopicReader, consumer_config
from foot_traffic.retry import Backoff

BOOTSTRAP = "broker-a:9092"
TOPIC = "visits"


@dataclass
class Described:
    """A topic as the cluster's metadata describes it."""

    partitions: dict[int, object]
    error: object = None


@dataclass
class Metadata:
    """The cluster's answer to list_topics."""

    topics: dict[str, Described] = field(default_factory=dict)


class FakeConsumer:
    """A consumer whose list_topics fails ``failures`` times (reporting ``reported`` through error_cb), then answers."""

    failures = 0
    reported: KafkaError | None = None
    answer = Metadata()

    def __init__(self, config: dict[str, Any], logger: logging.Logger, error_cb: Callable[[Any], None]) -> None:
        self.config = config
        self.error_cb = error_cb
        self.calls = 0

    def list_topics(self, topic: str, timeout: float) -> Metadata:
        self.calls += 1
        if self.calls <= self.failures:
            if self.reported is not None:
                self.error_cb(self.reported)
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "list_topics timed out"))
        return self.answer


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeConsumer]:
    """FakeConsumer in place of confluent_kafka's Consumer, reset for the test."""

    class Consumer(FakeConsumer):
        pass

    monkeypatch.setattr(reader_module, "Consumer", Consumer)
    return Consumer


def partitions(attempts: int, sleeps: list[float]) -> list[int] | None:
    """The topic's partitions as the reader finds them, with waits recorded in ``sleeps`` instead of slept."""
    reader = TopicReader(BOOTSTRAP, TOPIC, {}, timeout_s=2.0)
    return reader.partitions(Backoff(attempts, 0.5, sleeps.append))


def test_the_consumer_takes_only_the_security_properties() -> None:
    """security.*, sasl.*, ssl.* and enable.ssl.* reach the consumer; the producer's pass-through does not."""
    client = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "ssl.ca.location": "/ca.pem",
        "enable.ssl.certificate.verification": "false",
        "linger.ms": "5",
    }
    config = consumer_config(BOOTSTRAP, client)
    assert {k: v for k, v in config.items() if k in client} == {k: v for k, v in client.items() if k != "linger.ms"}
    assert (config["bootstrap.servers"], config["isolation.level"], config["enable.auto.commit"]) == (
        BOOTSTRAP,
        "read_committed",
        False,
    )
    assert config["group.id"] != consumer_config(BOOTSTRAP, client)["group.id"]


def test_partitions_are_found_after_failed_attempts_with_a_log_line_each(
    fake: type[FakeConsumer], caplog: pytest.LogCaptureFixture
) -> None:
    """Two failures then an answer: two warnings naming the client's last error, two waits, sorted partitions."""
    fake.failures = 2
    fake.reported = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    fake.answer = Metadata({TOPIC: Described({2: None, 0: None, 1: None})})
    sleeps: list[float] = []
    with caplog.at_level(logging.WARNING):
        assert partitions(3, sleeps) == [0, 1, 2]
    assert sleeps == [0.5, 0.5]
    assert [r.getMessage() for r in caplog.records] == [
        f"Kafka at {BOOTSTRAP} not reachable (attempt {i} of 3): 1/1 brokers are down; retrying in 0.5 s"
        for i in (1, 2)
    ]


def test_an_unreachable_cluster_is_one_error_naming_the_broker_and_the_last_reason(fake: type[FakeConsumer]) -> None:
    """Every attempt failing without an error callback: KafkaUnavailableError with the exception's own text."""
    fake.failures = 3
    sleeps: list[float] = []
    with pytest.raises(KafkaUnavailableError) as info:
        partitions(3, sleeps)
    reason = str(KafkaError(KafkaError._TRANSPORT, "list_topics timed out"))
    assert str(info.value) == f"cannot reach Kafka at {BOOTSTRAP} after 3 attempt(s): {reason}; check KAFKA_BROKER"
    assert sleeps == [0.5, 0.5]


@pytest.mark.parametrize(
    "described",
    [None, Described({}), Described({0: None}, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))],
)
def test_a_missing_or_empty_topic_has_no_partitions(fake: type[FakeConsumer], described: Described | None) -> None:
    """A topic absent from the metadata, without partitions or with an error: None, at the first answer."""
    fake.answer = Metadata({TOPIC: described} if described is not None else {})
    sleeps: list[float] = []
    assert partitions(3, sleeps) is None
    assert sleeps == []
