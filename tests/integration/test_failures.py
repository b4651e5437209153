"""Nothing lost: a broker outage, an outage longer than the delivery timeout, and leader failover.

Each test starts and kills brokers of its own (scripts/kafka.sh, scripts/kafka-cluster.sh)
with their own state directories and ports; the shared broker of ``make test`` is never touched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # type: ignore[attr-defined]

from tests.integration.conftest import ROOT, ProducerProcess, base_env, consume_all, free_port
from tests.integration.test_metrics import healthz, poll
from tests.integration.test_run_kafka import emitted_ids, summary

KAFKA_SH = ROOT / "scripts" / "kafka.sh"
CLUSTER_SH = ROOT / "scripts" / "kafka-cluster.sh"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
FAST = "20000000"  # customers per day: about 230 events per second in real time
DOWN, UP, FAILED = "are down", "reachable again", "Delivery failed"
OUTAGE_S = 30.0
# scripts/kafka.sh reads these; the brokers of these tests set their own
BROKER_VARIABLES = {
    "KAFKA_HOME_DIR",
    "KAFKA_HOST",
    "KAFKA_PORT",
    "KAFKA_CONTROLLER_PORT",
    "KAFKA_NODE_ID",
    "KAFKA_QUORUM_VOTERS",
    "KAFKA_EXTRA_PROPERTIES",
    "KAFKA_CLIENT_CONFIG",
    "KAFKA_FORMAT_ARGS",
    "KAFKA_CLUSTER_DIR",
    "KAFKA_CLUSTER_PORT",
}

Start = Callable[..., ProducerProcess]

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def script_env(**overrides: str) -> dict[str, str]:
    """The environment of scripts/kafka*.sh: this one without broker variables, plus ``overrides``.

    The brokers of these tests only JIT-compile with C1: they start in about half the time
    on a small machine, which is what these tests wait for most.
    """
    env = {k: v for k, v in os.environ.items() if k not in BROKER_VARIABLES}
    env["KAFKA_OPTS"] = f"{env.get('KAFKA_OPTS', '')} -XX:TieredStopAtLevel=1".strip()
    env.update(overrides)
    return env


def run_script(script: Path, command: str, env: dict[str, str], timeout: float = 240) -> None:
    """Run a broker script; fail the test with its output if it fails."""
    done = subprocess.run(
        ["bash", str(script), command], check=False, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        pytest.fail(f"{script.name} {command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def kill_broker(home: Path) -> int:
    """SIGKILL the broker whose state is in ``home`` (only if its command line names that home); return its pid."""
    pid = int((home / "kafka.pid").read_text().strip())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "kafka.Kafka" in cmdline
    assert str(home / "server.properties") in cmdline, f"pid {pid} is not the broker of {home}"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(pid):
        assert time.monotonic() < deadline, f"broker pid {pid} survived SIGKILL"
        time.sleep(0.05)
    return pid


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@dataclass
class OwnBroker:
    """A single-node broker of these tests, with its own state directory and ports."""

    home: Path
    port: int
    controller_port: int

    @property
    def address(self) -> str:
        """Its bootstrap address."""
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return script_env(
            KAFKA_HOME_DIR=str(self.home), KAFKA_PORT=str(self.port), KAFKA_CONTROLLER_PORT=str(self.controller_port)
        )

    def up(self) -> None:
        """Start it (no-op when up) and wait until it serves requests."""
        run_script(KAFKA_SH, "up", self._env())

    def kill(self) -> int:
        """SIGKILL it."""
        return kill_broker(self.home)

    def down(self) -> None:
        """Stop it if it runs."""
        run_script(KAFKA_SH, "down", self._env())


@pytest.fixture(scope="module")
def outage_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnBroker]:
    """A broker these tests may kill: started once for the module, stopped at its end."""
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    broker = OwnBroker(tmp_path_factory.mktemp("kafka") / "outage", port, controller_port)
    try:
        broker.up()
        yield broker
    finally:
        broker.down()


_MORE_FAILED = re.compile(r"Delivery failed for (\d+) more event")


def logged_failures(process: ProducerProcess) -> int:
    """Failed deliveries the log reports: one per line naming a customer, N per condensed line."""
    total = 0
    for line in process.lines_with(FAILED):
        more = _MORE_FAILED.search(line)
        total += int(more.group(1)) if more else 1
    return total


class Tally:
    """Counts of some phrases in a producer's standard error, kept up to date incrementally.

    Accelerated runs log hundreds of thousands of lines; conditions re-checked on every
    new line must not rescan them all.
    """

    def __init__(self, process: ProducerProcess, *phrases: str) -> None:
        self.process = process
        self.counts = dict.fromkeys(("Emitted customer_id=", *phrases), 0)
        self._seen = 0

    def __getitem__(self, phrase: str) -> int:
        lines = self.process.stderr
        end = len(lines)
        for line in lines[self._seen : end]:
            for known in self.counts:
                if known in line:
                    self.counts[known] += 1
        self._seen = end
        return self.counts[phrase]

    @property
    def emitted(self) -> int:
        """Per-event log lines so far."""
        return self["Emitted customer_id="]


def warnings_and_errors(process: ProducerProcess) -> list[str]:
    """Lines logged at WARNING or above."""
    return [line for line in process.stderr if re.search(r" (WARNING|ERROR|CRITICAL) ", line)]


def dead_letters(path: Path) -> list[dict[str, str]]:
    """The dead-letter file's records ([] if there is no file)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def lines_in(path: Path) -> int:
    """Complete lines in a file being appended to (0 if there is no file)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_broker_outage_loses_nothing_and_is_logged_once(
    outage_broker: OwnBroker, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """Broker SIGKILLed for 30 s, then restarted: the producer rides it out, warns once each way, loses nothing."""
    outage_broker.up()
    dead_letter_file = tmp_path / "dead-letters.jsonl"
    env = base_env(
        KAFKA_BROKER=outage_broker.address,
        KAFKA_TOPIC=topic,
        DAILY_CUSTOMERS=FAST,
        SEED="outage",
        KAFKA_TOPIC_REPLICATION_FACTOR="1",
        DEAD_LETTER_FILE=str(dead_letter_file),
    )
    process = producer_process([], env)
    tally = Tally(process, DOWN, UP, FAILED)
    process.wait_for(lambda: tally.emitted >= 200, 90, "200 emitted events")

    outage_broker.kill()
    killed_at = time.monotonic()
    process.wait_for(lambda: tally[DOWN] >= 1, 30, "the outage warning")
    during = tally.emitted
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - killed_at)))
    assert process.proc.poll() is None, "the producer keeps running through the outage"
    assert tally.emitted > during + 1000, "events keep being emitted (and queued) during the outage"

    outage_broker.up()
    process.wait_for(lambda: tally[UP] >= 1, 120, "the recovery line")
    resumed = tally.emitted
    process.wait_for(lambda: tally.emitted >= resumed + 200, 60, "200 more events after the recovery")
    assert process.stop() == 0

    ids = emitted_ids(process)
    _, emitted, delivered, failed = summary(process)
    assert (emitted, delivered, failed) == (len(ids), len(ids), 0)
    assert len(process.lines_with(DOWN)) == 1
    assert len(process.lines_with(UP)) == 1
    assert not process.lines_with(FAILED)
    noisy = warnings_and_errors(process)
    assert len(noisy) < 20, "\n".join(noisy)
    assert all(LOG_LINE.match(line) for line in process.stderr), "only our own log lines, no client chatter"
    assert not any("librdkafka" in line for line in process.stderr)
    assert not dead_letter_file.exists()
    keys = [r.key for r in consume_all(outage_broker.address, topic)]
    assert len(set(keys)) == len(keys), "no duplicates"
    assert keys == ids, "every emitted event exactly once, in order"


def test_healthz_turns_503_past_the_unreachable_threshold_and_200_when_kafka_returns(
    outage_broker: OwnBroker, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """/healthz: 200 while running, 503 once the broker has been down longer than the threshold, 200 once it is back."""
    threshold = 5.0
    outage_broker.up()
    port = free_port()
    env = base_env(
        KAFKA_BROKER=outage_broker.address,
        KAFKA_TOPIC=topic,
        DAILY_CUSTOMERS=FAST,
        SEED="health",
        KAFKA_TOPIC_REPLICATION_FACTOR="1",
        DEAD_LETTER_FILE=str(tmp_path / "dead-letters.jsonl"),
        METRICS_PORT=str(port),
        HEALTH_UNREACHABLE_SECONDS=f"{threshold:g}",
    )
    process = producer_process([], env)
    tally = Tally(process, DOWN, UP)
    process.wait_for(lambda: tally.emitted >= 200, 90, "200 emitted events")
    assert healthz(port) == (200, "ok: running")

    outage_broker.kill()
    process.wait_for(lambda: tally[DOWN] >= 1, 30, "the outage warning")
    seen_down = time.monotonic()
    answer = healthz(port)
    assert answer is not None
    assert answer[0] == 200, "still healthy below the threshold"
    assert answer[1].startswith("ok: running; Kafka unreachable for ")
    _, reason = poll(process, lambda: h if (h := healthz(port)) and h[0] == 503 else None, 30, "a 503")
    assert time.monotonic() - seen_down >= threshold - 1.0, "not before the threshold (the line is read late)"
    assert reason.startswith("unhealthy: Kafka unreachable for ")
    assert f"more than HEALTH_UNREACHABLE_SECONDS={threshold:g}; " in reason
    assert reason.endswith(" event(s) waiting")

    outage_broker.up()
    process.wait_for(lambda: tally[UP] >= 1, 120, "the recovery line")
    assert healthz(port) == (200, "ok: running")
    assert process.stop() == 0
    assert summary(process)[3] == 0
    assert all(LOG_LINE.match(line) for line in process.stderr), "the HTTP server writes nothing to standard error"


def test_outage_longer_than_the_delivery_timeout_fills_the_dead_letter_file(
    outage_broker: OwnBroker, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """Events that Kafka cannot confirm within KAFKA_DELIVERY_TIMEOUT_MS are each in the dead-letter file; exit 1."""
    outage_broker.up()
    dead_letter_file = tmp_path / "dead-letters.jsonl"
    env = base_env(
        KAFKA_BROKER=outage_broker.address,
        KAFKA_TOPIC=topic,
        DAILY_CUSTOMERS=FAST,
        SEED="timeout",
        KAFKA_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_DELIVERY_TIMEOUT_MS="5000",
        DEAD_LETTER_FILE=str(dead_letter_file),
    )
    launched_at = time.monotonic()
    process = producer_process([], env)
    tally = Tally(process, DOWN, FAILED)
    process.wait_for(lambda: tally.emitted >= 200, 90, "200 emitted events")
    outage_broker.kill()
    dead_by = dt.datetime.now(dt.UTC)
    # the dead-letter file gets a line per failed event at once (the log condenses them)
    process.wait_for(lambda: lines_in(dead_letter_file) >= 200, 60, "200 events past the delivery timeout")
    # no event fails before its delivery timeout: an event in flight at the kill may have been
    # produced well before it (the broker lags on a loaded machine), but never before the launch
    assert time.monotonic() - launched_at >= 5.0
    assert process.proc.poll() is None, "timed-out events do not stop the producer"
    assert process.stop() == 1

    ids = emitted_ids(process)
    _, emitted, delivered, failed = summary(process)
    letters = dead_letters(dead_letter_file)
    assert emitted == len(ids)
    assert failed == len(letters) == logged_failures(process)
    # condensed: ten lines name a customer, the rest are summed about every 10 s and at the end
    assert len(process.lines_with("Delivery failed for customer_id=")) == 10
    assert len(process.lines_with(FAILED)) < 10 + 10
    assert delivered + failed == emitted
    assert len(process.lines_with(DOWN)) == 1
    (note,) = process.lines_with("Dead letters:")
    assert f"{failed} undelivered event(s) appended to {dead_letter_file}" in note
    for letter in letters:
        assert list(letter) == ["topic", "key", "value", "error"]
        assert letter["topic"] == topic
        event = json.loads(letter["value"])
        assert event["customer_id"] == letter["key"]
        assert event["event_type"] == "foot_traffic"
        assert letter["error"].startswith(("_MSG_TIMED_OUT: ", "_TIMED_OUT_QUEUE: ", "_PURGE_QUEUE: "))
    dead_ids = [letter["key"] for letter in letters]
    assert len(set(dead_ids)) == len(dead_ids)
    # Confirmations come in order: the first `delivered` events, then only failures.
    assert set(dead_ids) == set(ids[delivered:])

    outage_broker.up()  # only to read what it holds
    records = consume_all(outage_broker.address, topic)
    keys = [r.key for r in records]
    assert len(set(keys)) == len(keys), "no duplicates"
    # Everything confirmed is there, and nothing emitted after the outage began. A request
    # in flight when the broker died may have been written without being confirmed: such
    # an event is both in the topic and a dead letter ("possibly persisted").
    assert keys[:delivered] == ids[:delivered]
    possibly_persisted = keys[delivered:]
    assert possibly_persisted == ids[delivered : len(keys)]
    # a live event leaves at or after its entry_time, so one the dead broker holds entered before it died
    entries = [dt.datetime.fromisoformat(json.loads(r.value)["entry_time"]) for r in records]
    assert all(entry < dead_by for entry in entries)
    assert set(keys) | set(dead_ids) == set(ids), "union equals the emitted set"
    outage_broker.down()


def test_a_second_signal_aborts_a_flush_that_waits_for_a_dead_broker(
    outage_broker: OwnBroker, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """First SIGTERM: stop and flush (which cannot finish: the broker is gone). Second: exit 130 at once."""
    outage_broker.up()
    env = base_env(
        KAFKA_BROKER=outage_broker.address,
        KAFKA_TOPIC=topic,
        DAILY_CUSTOMERS=FAST,
        SEED="abort",
        KAFKA_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_FLUSH_TIMEOUT_SECONDS="600",
    )
    process = producer_process([], env)
    tally = Tally(process, DOWN)
    process.wait_for(lambda: tally.emitted >= 100, 90, "100 emitted events")
    outage_broker.kill()
    process.wait_for(lambda: tally[DOWN] >= 1, 30, "the outage warning")
    process.proc.send_signal(signal.SIGTERM)
    process.wait_for(lambda: bool(process.lines_with("Received SIGTERM")), 10, "the stop to be logged")
    assert process.proc.poll() is None, "the flush waits for the broker"
    process.proc.send_signal(signal.SIGTERM)
    assert process.finish(20) == 130
    assert process.lines_with("Aborted by a second interrupt; unconfirmed events were not waited for")
    _, emitted, delivered, _ = summary(process)
    assert emitted == len(emitted_ids(process))
    assert delivered < emitted, "some events were still waiting for the broker"


@dataclass
class Cluster:
    """The 3-node cluster of scripts/kafka-cluster.sh, in a directory and on ports of its own."""

    directory: Path
    base_port: int

    @property
    def bootstrap(self) -> str:
        """Every node's address."""
        return ",".join(f"127.0.0.1:{self.base_port + 100 * i}" for i in range(3))

    def _env(self) -> dict[str, str]:
        return script_env(KAFKA_CLUSTER_DIR=str(self.directory), KAFKA_CLUSTER_PORT=str(self.base_port))

    def up(self) -> None:
        """Start every node that is not running, and wait until each serves requests."""
        run_script(CLUSTER_SH, "up", self._env())

    def down(self) -> None:
        """Stop every node."""
        run_script(CLUSTER_SH, "down", self._env(), timeout=120)

    def kill(self, node: int) -> int:
        """SIGKILL one node."""
        return kill_broker(self.directory / f"node-{node}")


def _free_block(offsets: tuple[int, ...]) -> int:
    """A base port such that base + each offset is free on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000)
        if all(_port_free(base + offset) for offset in offsets):
            return base
    pytest.fail("no free block of ports for the cluster")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A running 3-node KRaft cluster, stopped at the end of the test."""
    running = Cluster(tmp_path / "cluster", _free_block((0, 1, 100, 101, 200, 201)))
    try:
        running.up()
        yield running
    finally:
        running.down()


def test_leader_failover_loses_and_duplicates_nothing(cluster: Cluster, topic: str, producer_process: Start) -> None:
    """SIGKILL the partition leader three times during an accelerated run: every confirmed event is there once."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    partitions = 3
    new = NewTopic(topic, num_partitions=partitions, replication_factor=3, config={"min.insync.replicas": "2"})
    admin.create_topics([new])[topic].result(timeout=60)

    def leaders() -> dict[int, int]:
        meta = admin.list_topics(topic, timeout=10).topics[topic]
        return {p: meta.partitions[p].leader for p in range(partitions)}

    def fully_replicated() -> bool:
        meta = admin.list_topics(topic, timeout=10).topics[topic]
        return all(len(meta.partitions[p].isrs) == 3 for p in range(partitions))

    def high_watermarks() -> list[int]:
        wanted = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}  # type: ignore[no-untyped-call]
        ends = {tp.partition: f.result().offset for tp, f in admin.list_offsets(wanted, request_timeout=5).items()}
        return [ends[p] for p in range(partitions)]

    def holds(condition: Callable[[], bool]) -> bool:
        try:
            return condition()
        except KafkaException:  # a client still asking the dead node: ask again
            return False

    def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not holds(condition):
            assert process.proc.poll() is None, "the producer keeps running"
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.2)

    env = base_env(KAFKA_BROKER=cluster.bootstrap, KAFKA_TOPIC=topic, SEED="failover")
    args = ["--speed", "1000", "--start", "2025-08-11", "--daily-customers", "100000"]
    process = producer_process(args, env)
    tally = Tally(process, DOWN, FAILED)
    process.wait_for(lambda: tally.emitted >= 1000, 90, "1000 emitted events")
    until(fully_replicated, 60, "every replica in sync")
    killed = []
    for round_ in range(3):
        partition = round_ % partitions
        leader = leaders()[partition]
        assert leader in (1, 2, 3), f"partition {partition} has a leader"
        before = high_watermarks()
        cluster.kill(leader)
        killed.append(leader)
        # Leadership moves to an in-sync follower and writes go on with two replicas.
        until(lambda: leader not in leaders().values(), 60, f"leadership to leave node {leader}")  # noqa: B023
        until(
            lambda: all(a > b for a, b in zip(high_watermarks(), before, strict=True)),  # noqa: B023
            60,
            "every partition to take writes without the dead node",
        )
        cluster.up()
        until(fully_replicated, 90, f"node {leader} back in sync")
    emitted_so_far = tally.emitted
    process.wait_for(lambda: tally.emitted >= emitted_so_far + 1000, 60, "1000 more events")
    assert process.stop() == 0

    ids = emitted_ids(process)
    _, emitted, delivered, failed = summary(process)
    assert (emitted, delivered, failed) == (len(ids), len(ids), 0)
    records = consume_all(cluster.bootstrap, topic)
    keys = [r.key for r in records]
    assert len(set(keys)) == len(keys), "no duplicates"
    assert set(keys) == set(ids), "every confirmed event is in the topic"
    position = {key: i for i, key in enumerate(ids)}
    for p in range(partitions):
        order = [position[r.key] for r in records if r.partition == p]
        assert order == sorted(order), f"partition {p} keeps the emission order"
    assert not process.lines_with(FAILED)
    assert len(killed) == 3
