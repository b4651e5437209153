"""In-memory stand-ins for confluent-kafka's Producer and Message, shared by the unit tests of the Kafka sink."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from foot_traffic.kafka.sink import KafkaSink


class FakeMessage:
    """The part of confluent_kafka.Message a delivery report reads."""

    def __init__(self, topic: str, key: bytes, value: bytes) -> None:
        self._topic, self._key, self._value = topic, key, value

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


class FakeProducer:
    """Queues produce calls; ``deliver`` fires the oldest one's report with a chosen error.

    ``refuse`` makes every produce call raise it; ``full_for`` makes that many of them raise BufferError.
    """

    def __init__(self, config: dict[str, Any], logger: logging.Logger | None = None) -> None:
        self.config = config
        self.queue: list[tuple[FakeMessage, Callable[[KafkaError | None, FakeMessage], None]]] = []
        self.refuse: KafkaException | None = None
        self.full_for = 0
        self.purged = False

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        if self.refuse is not None:
            raise self.refuse
        if self.full_for:
            self.full_for -= 1
            raise BufferError("queue full")
        self.queue.append((FakeMessage(topic, key, value), on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def deliver(self, error: KafkaError | None) -> None:
        message, callback = self.queue.pop(0)
        callback(error, message)

    def flush(self, timeout: float = 0) -> int:
        return len(self.queue)

    def purge(self) -> None:
        self.purged = True
        while self.queue:
            self.deliver(KafkaError(KafkaError._PURGE_QUEUE))

    def __len__(self) -> int:
        return len(self.queue)


def fake_sink(bootstrap: str = "b:9092", topic: str = "t", **options: Any) -> tuple[KafkaSink, FakeProducer]:
    """A KafkaSink wired to a fake producer, and that producer; ``options`` are KafkaSink's keyword arguments."""
    made: list[FakeProducer] = []

    def factory(config: dict[str, Any], logger: logging.Logger | None = None) -> FakeProducer:
        made.append(FakeProducer(config, logger))
        return made[-1]

    sink = KafkaSink(bootstrap, topic, producer_factory=factory, **options)  # type: ignore[arg-type]
    return sink, made[0]
