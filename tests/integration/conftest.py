"""Fixtures for tests against the real local Apache Kafka broker (started by ``make test``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from foot_traffic.config.settings import SPECS

BROKER = os.environ.get("FOOT_TRAFFIC_TEST_BROKER", "127.0.0.1:9092")
ROOT = Path(__file__).resolve().parents[2]
REGISTRY = os.environ.get("FOOT_TRAFFIC_TEST_REGISTRY", "http://127.0.0.1:8081/apis/ccompat/v7")


@pytest.fixture(scope="session")
def broker() -> str:
    """The bootstrap address of a running broker; the test fails if none answers."""
    AdminClient({"bootstrap.servers": BROKER}).list_topics(timeout=30)
    return BROKER


@pytest.fixture(scope="session")
def schema_registry() -> str:
    """The URL of the schema registry's Confluent-compatible API (FOOT_TRAFFIC_TEST_REGISTRY); fails if none answers."""
    with urllib.request.urlopen(f"{REGISTRY}/subjects", timeout=30) as response:  # noqa: S310 - a fixed test URL
        assert response.status == 200, f"no schema registry answers at {REGISTRY}"
    return REGISTRY


@pytest.fixture
def topic() -> str:
    """A fresh topic name for one test."""
    return f"ft-test-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    """The current environment without any setting, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in {s.env for s in SPECS}}
    env.update(overrides)
    return env


def run_foot_traffic(
    *args: str, env: Mapping[str, str], cwd: Path = ROOT, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``foot-traffic ARGS`` to its end, its output captured as text; the caller checks the exit status."""
    return subprocess.run(
        [sys.executable, "-m", "foot_traffic", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


class ProducerProcess:
    """``foot-traffic run`` (or another ``command``) as a subprocess whose standard error (and output) is collected."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        capture_stdout: bool = False,
        command: str = "run",
        program: Sequence[str] = (sys.executable, "-m", "foot_traffic"),
        new_session: bool = False,
    ) -> None:
        self.proc = subprocess.Popen(
            [*program, command, *args],
            env=env,
            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            start_new_session=new_session,
        )
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True)]
        if capture_stdout:
            self._readers.append(threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True))
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Block until ``condition`` holds (re-checked on every new line), or fail the test."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    pytest.fail(f"timed out waiting for {what}; stderr tail:\n" + "\n".join(self.stderr[-20:]))
                self._changed.wait(min(left, 0.5))

    def lines_with(self, needle: str) -> list[str]:
        """Standard-error lines containing ``needle``."""
        return [line for line in self.stderr if needle in line]

    def emitted(self) -> int:
        """Events logged as emitted so far (one INFO line each)."""
        return len(self.lines_with("Emitted customer_id="))

    def wait_for_emitted(self, count: int, timeout: float = 90) -> None:
        """Block until ``count`` events have been logged as emitted, or fail the test."""
        self.wait_for(lambda: self.emitted() >= count, timeout, f"{count} emitted events")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig``, wait for the exit status and for the output to be read to its end."""
        self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the process to exit and its output to be drained; fail with its last lines if it does not exit."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            for reader in self._readers:
                reader.join(10)
            self.close()  # pipes left open would be reported by a later, unrelated test
            tail = "\n".join(self.stderr[-30:])
            pytest.fail(f"the producer did not exit within {timeout:g} s; stderr tail:\n{tail}")
        for reader in self._readers:
            reader.join(timeout)
        self.close()
        return rc

    def close(self) -> None:
        """Close the pipes to the process."""
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def producer_process() -> Iterator[Callable[..., ProducerProcess]]:
    """Start producer subprocesses; any left running at the end of the test is killed, and every one's pipes closed."""
    started: list[ProducerProcess] = []

    def start(args: list[str], env: dict[str, str], **options: Any) -> ProducerProcess:
        process = ProducerProcess(args, env, **options)
        started.append(process)
        return process

    yield start
    for process in started:  # each one's pipes closed too, even after it exited: a later test would report them
        if process.proc.poll() is None:
            process.proc.kill()
        process.finish(10)


@dataclass(frozen=True)
class Record:
    """One consumed Kafka record."""

    key: str
    value: bytes
    partition: int
    offset: int


def consume_all(broker: str, topic: str, timeout: float = 60) -> list[Record]:
    """Every record of the topic, from the beginning up to its current end, in partition order."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"ft-test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        partitions = sorted(metadata.topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Record] = []
        seen = dict.fromkeys(partitions, 0)
        deadline = time.monotonic() + timeout
        while any(seen[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                pytest.fail(f"consumed {seen} of {ends} records of {topic} before the timeout")
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error():
                    pytest.fail(f"consumer error: {msg.error()}")
                key, value, partition, offset = msg.key(), msg.value(), msg.partition(), msg.offset()
                assert isinstance(key, bytes), "every record has a key"
                assert isinstance(value, bytes), "every record has a value"
                assert partition is not None
                assert offset is not None
                records.append(Record(key.decode(), value, partition, offset))
                seen[partition] = offset + 1
        return records
    finally:
        consumer.close()


def _committed_reader(broker: str, topic: str) -> Consumer:
    """A read_committed consumer of partition 0 of ``topic``, from its start, in a group of its own."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"ft-test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    return consumer


def consume_committed(broker: str, topic: str) -> list[tuple[str, bytes]]:
    """(key, value) of every committed record of a single-partition topic, as a read_committed consumer sees it.

    The end is only seen once no transaction is open: call it when the producer has stopped.
    """
    consumer = _committed_reader(broker, topic)
    records: list[tuple[str, bytes]] = []
    try:
        while True:
            msg = consumer.poll(10)
            assert msg is not None, "the consumer stalled before the end of the topic"
            error = msg.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error.str()
                return records
            key, value = msg.key(), msg.value()
            assert isinstance(key, bytes)
            assert isinstance(value, bytes)
            records.append((key.decode(), value))
    finally:
        consumer.close()


def consume_committed_after_kill(
    broker: str, topic: str, at_least: int, timeout: float = 90
) -> list[tuple[str, bytes]]:
    """As :func:`consume_committed`, once a SIGKILLed producer's open transaction no longer holds the end back.

    A read_committed reader's end is the last stable offset, which a dead producer's open
    transaction holds back until the broker aborts it (``transaction.timeout.ms`` after it
    began, checked every cleanup interval); read again until ``at_least`` records are seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        records = consume_committed(broker, topic)
        if len(records) >= at_least or time.monotonic() > deadline:
            return records


def wait_for_a_commit(broker: str, topic: str, timeout: float = 30) -> None:
    """Block until a first transaction has committed records to ``topic``, so a restart has a tail to resume after.

    A read_committed consumer sees a record only once its transaction has committed; while
    a producer runs, some transaction is always open, so this waits for a record, not an end.
    """
    consumer = _committed_reader(broker, topic)
    deadline = time.monotonic() + timeout
    try:
        while True:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                return
            assert time.monotonic() < deadline, f"no transaction committed to {topic} within {timeout:g} s"
    finally:
        consumer.close()


def topic_exists(broker: str, topic: str) -> bool:
    """Whether the cluster knows the topic."""
    metadata = AdminClient({"bootstrap.servers": broker}).list_topics(timeout=30)
    return topic in metadata.topics
