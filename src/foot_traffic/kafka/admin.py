"""Start-up against the cluster: reach it with bounded retries, and create the topics that are missing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from foot_traffic.errors import KafkaRefusedError, KafkaUnavailableError
from foot_traffic.kafka.client import ALL_BROKERS_DOWN, admin_config, client_log, describe_error, kafka_error, refusal
from foot_traffic.retry import Backoff, RetriesExhausted, Retryable, retrying

log = logging.getLogger(__name__)

CONNECT_SLICE_S = 0.25
"""First wait of a start-up attempt before the client's error reports are read; each next wait doubles."""


def connect(
    bootstrap: str,
    topics: Sequence[str],
    *,
    attempts: int,
    backoff_s: float,
    attempt_timeout_s: float,
    partitions: int,
    replication_factor: int,
    extra: Mapping[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Reach the cluster within ``attempts`` tries and make sure the topics exist.

    Raises KafkaRefusedError at once when the brokers refuse this client, KafkaUnavailableError
    naming the broker after the last attempt, or naming the topic and the reason when it cannot be created.
    """
    errors: list[KafkaError] = []
    admin = AdminClient(admin_config(bootstrap, extra), logger=client_log, error_cb=errors.append)

    def attempt() -> Any:
        try:
            return _list_topics(admin, attempt_timeout_s, errors)
        except KafkaException as exc:
            refused = refusal(errors)
            if refused is not None:
                raise KafkaRefusedError(f"cannot connect to Kafka at {bootstrap}: {refused}") from None
            reason = next((f"{e.name()}: {e.str()}" for e in reversed(errors) if e.code() != ALL_BROKERS_DOWN), "")
            errors.clear()
            raise Retryable(reason or describe_error(exc)) from None

    try:
        metadata = retrying(attempt, Backoff(attempts, backoff_s, sleep), f"Kafka at {bootstrap}")
    except RetriesExhausted as exc:
        raise KafkaUnavailableError(
            f"cannot reach Kafka at {bootstrap} after {attempts} attempt(s) "
            f"{backoff_s:g} s apart: {exc.reason}; check KAFKA_BROKER"
        ) from None
    log.info("Connected to Kafka at %s (%d broker(s))", bootstrap, len(metadata.brokers))
    for topic in topics:
        existing = metadata.topics.get(topic)
        if existing is None or existing.error is not None:
            _create_missing(
                admin, bootstrap, topic, partitions=partitions, rf=replication_factor, timeout_s=attempt_timeout_s
            )


def retention_ms(bootstrap: str, topic: str, extra: Mapping[str, Any] | None, timeout_s: float) -> int | None:
    """The topic's ``retention.ms`` (-1: kept forever); None when the broker does not say."""
    admin = AdminClient(admin_config(bootstrap, extra), logger=client_log)
    resource = ConfigResource("topic", topic)
    try:
        configs = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result(timeout_s)
    except KafkaException:
        return None
    entry = configs.get("retention.ms")
    return None if entry is None or entry.value is None else int(entry.value)


def _create_missing(
    admin: AdminClient, bootstrap: str, topic: str, *, partitions: int, rf: int, timeout_s: float
) -> None:
    """Create a topic the cluster lacks; KafkaUnavailableError naming it, the reason and the settings if it cannot."""
    try:
        create_topic(admin, topic, partitions=partitions, replication_factor=rf, timeout_s=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"topic {topic!r} does not exist on {bootstrap} and cannot be created "
            f"({partitions} partition(s), replication factor {rf}): {describe_error(exc)}; "
            "create it yourself, or adjust KAFKA_TOPIC_PARTITIONS / KAFKA_TOPIC_REPLICATION_FACTOR"
        ) from None


def ensure_state_topic(
    bootstrap: str, extra: Mapping[str, Any] | None, topic: str, replication_factor: int, timeout_s: float
) -> None:
    """Create exactly-once's state topic (one partition, compacted) when it is missing.

    Raises KafkaUnavailableError naming the topic when it cannot be created.
    """
    admin = AdminClient(admin_config(bootstrap, extra), logger=client_log)
    if topic in admin.list_topics(timeout=timeout_s).topics:
        return
    try:
        create_topic(
            admin,
            topic,
            partitions=1,
            replication_factor=replication_factor,
            timeout_s=timeout_s,
            config={"cleanup.policy": "compact"},
        )
    except KafkaException as exc:
        raise KafkaUnavailableError(f"cannot create the state topic {topic!r}: {describe_error(exc)}") from None


def create_topic(
    admin: AdminClient,
    topic: str,
    *,
    partitions: int,
    replication_factor: int,
    timeout_s: float,
    config: Mapping[str, str] | None = None,
) -> None:
    """Create ``topic``, or find that someone else just did; KafkaException for any other failure."""
    new = NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor, config=dict(config or {}))
    futures = admin.create_topics([new], request_timeout=timeout_s)
    try:
        futures[topic].result(timeout=timeout_s + 5)
    except KafkaException as exc:
        error = kafka_error(exc)
        if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise
    log.info("Created topic %s (%d partition(s), replication factor %d)", topic, partitions, replication_factor)


def _list_topics(admin: AdminClient, timeout_s: float, errors: list[KafkaError]) -> Any:
    """The cluster's metadata within ``timeout_s``, given up at once when the brokers refuse this client.

    librdkafka reports a failed login or TLS handshake only to the error
    callback and keeps reconnecting, so the attempt waits in growing slices and
    reads those reports between them.
    """
    deadline = time.monotonic() + timeout_s
    wait = CONNECT_SLICE_S
    while True:
        left = deadline - time.monotonic()
        try:
            return admin.list_topics(timeout=max(min(wait, left), 0.001))
        except KafkaException:
            admin.poll(0)
            if left <= wait or refusal(errors) is not None:
                raise
            wait *= 2
