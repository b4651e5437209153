"""In-memory stand-ins shared by the unit tests: confluent-kafka's Producer and Message, and real time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from foot_traffic.kafka.producer import KafkaSink

FENCED = KafkaError(KafkaError._FENCED, "Failed to end transaction: fenced by a newer instance", fatal=True)
"""The fatal error of a producer the broker fenced, as the Python client raises it."""
FAILED = KafkaError(KafkaError._FATAL, "Unable to produce message: Local: Fatal error")
"""What a produce call of a producer that failed for good raises."""


class FakeMessage:
    """The part of confluent_kafka.Message a delivery report reads."""

    def __init__(self, topic: str, key: bytes, value: bytes, partition: int = -1) -> None:
        self._topic, self._key, self._value = topic, key, value
        self.partition = partition
        """The partition the producer named (-1: the partitioner's choice)."""

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


class FakeProducer:
    """Queues produce calls; ``deliver`` fires the oldest one's report with a chosen error.

    A confirmation calls nothing back when ``delivery.report.only.error`` is true, as in the Python client.
    ``full_for`` makes that many produce calls raise BufferError, then ``refuse`` makes every one raise it
    after the first ``accept_first``.
    Transaction calls are recorded in ``calls``; ``refuse_commit`` makes a commit raise it, ``refuse_offsets``
    a send_offsets_to_transaction, ``refuse_begin`` a begin_transaction, ``refuse_init`` the next
    init_transactions calls; the offsets sent, with their group metadata, are kept in ``offsets``.
    ``fence`` makes it a producer the broker fenced, as the Python client shows one: its next poll raises
    the fatal error, a produce ``FAILED``, and every transaction call the fatal error again.
    """

    def __init__(self, config: dict[str, Any], logger: logging.Logger | None = None) -> None:
        self.config = config
        self.queue: list[tuple[FakeMessage, Callable[[KafkaError | None, FakeMessage], None]]] = []
        self.refuse: KafkaException | None = None
        self.accept_first = 0
        self.partitions: dict[str, int] = {}
        """Partition counts of the topics whose metadata ``list_topics`` gives; others are unknown."""
        self.full_for = 0
        self.purged = False
        self.calls: list[str] = []
        self.refuse_commit: KafkaException | None = None
        self.refuse_offsets: KafkaException | None = None
        self.refuse_begin: KafkaException | None = None
        self.refuse_init: list[KafkaException] = []
        """Errors the next init_transactions calls raise, one each, in order."""
        self.offsets: list[tuple[list[Any], Any]] = []
        self.timestamps: list[int] = []
        self.fenced = False
        self._fatal_unserved = False
        self.made: list[FakeProducer] = [self]
        """Every producer its factory made, in order (a sink replaces one that failed for good)."""

    def fence(self, *, served: bool = False) -> None:
        """Fail for good, as a producer whose transaction the broker aborted for outliving its timeout.

        Unless ``served`` (by a poll before), the next poll raises the fatal error.
        """
        self.fenced = True
        self._fatal_unserved = not served

    def _fatal(self, name: str) -> None:
        """Record a transaction call; a fenced producer raises its fatal error instead."""
        if self.fenced:
            raise KafkaException(FENCED)
        self.calls.append(name)

    def produce(
        self, topic: str, value: bytes, key: bytes, partition: int, on_delivery: Any, *, timestamp: int = 0
    ) -> None:
        if self.fenced:
            raise KafkaException(FAILED)
        if self.full_for:
            self.full_for -= 1
            raise BufferError("queue full")
        if self.refuse is not None and self.accept_first:
            self.accept_first -= 1
        elif self.refuse is not None:
            raise self.refuse
        self.timestamps.append(timestamp)
        self.queue.append((FakeMessage(topic, key, value, partition), on_delivery))

    def poll(self, timeout: float = 0) -> int:
        if self._fatal_unserved:  # the Python client raises a fatal error from the poll that serves it
            self._fatal_unserved = False
            raise KafkaException(FENCED)
        return 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        if topic not in self.partitions:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
        found = SimpleNamespace(error=None, partitions=dict.fromkeys(range(self.partitions[topic])))
        return SimpleNamespace(topics={topic: found})

    def deliver(self, error: KafkaError | None) -> None:
        message, callback = self.queue.pop(0)
        if error is None and self.config.get("delivery.report.only.error") is True:
            return  # as the Python client does: a confirmation calls nothing back
        if callback is not None:
            callback(error, message)

    def deliver_all(self, error: KafkaError | None = None) -> None:
        """Fire the delivery report of every queued message with ``error`` (None: each is acknowledged)."""
        while self.queue:
            self.deliver(error)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return len(self.queue)

    def purge(self) -> None:
        self.purged = True
        self.deliver_all(KafkaError(KafkaError._PURGE_QUEUE))

    def __len__(self) -> int:
        return len(self.queue)

    def init_transactions(self, timeout: float) -> None:
        self._fatal("init")
        if self.refuse_init:
            raise self.refuse_init.pop(0)

    def begin_transaction(self) -> None:
        if self.refuse_begin is not None:
            raise self.refuse_begin
        self._fatal("begin")

    def send_offsets_to_transaction(self, offsets: list[Any], group: Any, timeout: float) -> None:
        if self.refuse_offsets is not None:
            raise self.refuse_offsets
        self._fatal("offsets")
        self.offsets.append((offsets, group))

    def commit_transaction(self, timeout: float) -> None:
        if self.refuse_commit is not None:
            raise self.refuse_commit
        self._fatal("commit")

    def abort_transaction(self, timeout: float) -> None:
        self._fatal("abort")


def fake_sink(
    bootstrap: str = "b:9092", topic: str = "t", partitions: int | None = None, **options: Any
) -> tuple[KafkaSink, FakeProducer]:
    """A KafkaSink wired to a fake producer, and that producer; ``options`` are KafkaSink's keyword arguments.

    ``partitions`` is the topic's partition count its metadata gives; None: its metadata cannot be read.
    """
    made: list[FakeProducer] = []

    def factory(config: dict[str, Any], logger: logging.Logger | None = None) -> FakeProducer:
        made.append(FakeProducer(config, logger))
        made[-1].made = made
        if partitions is not None:
            made[-1].partitions[topic] = partitions
        return made[-1]

    sink = KafkaSink(bootstrap, topic, producer_factory=factory, **options)  # type: ignore[arg-type]
    return sink, made[0]


class SteppedClock:
    """Real time that passes only while the service loop waits on its stop flag, which then takes no real time.

    Pass ``clock.stop`` as the loop's stop flag: each wait moves the clock forward by its timeout, as real time
    would (``rate`` simulated seconds per real second: an accelerated clock), and is recorded in ``waits``
    (timeout, now after it).
    """

    def __init__(self, now_us: int, rate: float = 1.0) -> None:
        self.now = now_us
        self.rate = rate
        self.waits: list[tuple[float, int]] = []
        self.stop = _PassingStop(self)

    def now_us(self) -> int:
        return self.now

    def sleep_time(self, deadline_us: int) -> float:
        return max(0.0, (deadline_us - self.now) / 1e6 / self.rate)

    def reach(self, until_us: int) -> int:
        return self.now


class _PassingStop(threading.Event):
    """A stop flag whose waits move a SteppedClock instead of sleeping."""

    def __init__(self, clock: SteppedClock) -> None:
        super().__init__()
        self._clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "the loop always waits with a timeout"
        self._clock.now += round(timeout * 1e6 * self._clock.rate)
        self._clock.waits.append((timeout, self._clock.now))
        return self.is_set()
