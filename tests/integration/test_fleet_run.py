"""Runs with FLEET_ID against the real broker: the members together send one run's output, exactly once."""

from __future__ import annotations

import json
import re
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from foot_traffic.kafka.fleet import FAST_ENV
from tests.integration.conftest import (
    ProducerProcess,
    base_env,
    consume_committed,
    consume_committed_after_kill,
    wait_for_a_commit,
)
from tests.integration.test_run_kafka import summary
from tests.integration.test_shards import FOUR_DAYS, assert_union_is, backfill, stores_file, unsharded

pytestmark = pytest.mark.kafka

Start = Callable[..., ProducerProcess]
OWNING = re.compile(r"now owning (\d+) partition\(s\)")
FENCED_LINES = ("the transaction was not committed", ": lost [", "The producer failed for good")
"""What a member hung past its session logs first when resumed: a refused commit, lost partitions, a fenced producer."""


def fleet_env(broker: str, topic: str, **more: str) -> dict[str, str]:
    """The environment of an exactly-once fleet member with the group's short test timeouts."""
    return base_env(
        KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1", COMMIT_INTERVAL_MS="100", **{FAST_ENV: "1"}, **more
    )


@dataclass(frozen=True)
class Pair:
    """Two members of one fleet at work: their arguments and environment, the run they share, and the members."""

    args: list[str]
    env: dict[str, str]
    expected: list[bytes]
    first: ProducerProcess
    second: ProducerProcess


def two_members(
    broker: str,
    topic: str,
    producer_process: Start,
    tmp_path: Path,
    seed: str,
    *,
    speed: str,
    exactly_once: bool = True,
) -> Pair:
    """Two accelerated members of a new fleet on a 6-store, 4-day backfill, once the second has sent 500 events."""
    stores = str(stores_file(tmp_path, 6))
    fast = [*backfill(*FOUR_DAYS, seed=seed, customers=2000, speed=speed), "--stores-file", stores]
    expected = unsharded(*backfill(*FOUR_DAYS, seed=seed, customers=2000), "--stores-file", stores)
    env = fleet_env(broker, topic, FLEET_ID=f"t-{uuid.uuid4().hex[:8]}", LOG_LEVEL="INFO")
    if not exactly_once:
        env.pop("EXACTLY_ONCE")
    first = producer_process(fast, env)
    second = producer_process(fast, env)
    second.wait_for_emitted(500, timeout=120)
    if exactly_once:
        wait_for_a_commit(broker, topic)
    return Pair(fast, env, expected, first, second)


def test_two_workers_send_the_single_process_output_exactly_once(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """``--workers 2`` with EXACTLY_ONCE: the topic, read_committed, is one process's output, once (keys too)."""
    stores = str(stores_file(tmp_path, 4))
    args = [*backfill(*FOUR_DAYS, seed="workers", customers=400), "--stores-file", stores]
    expected = unsharded(*args)
    run = producer_process([*args, "--workers", "2"], fleet_env(broker, topic, LOG_LEVEL="INFO"))
    assert run.finish(240) == 0
    assert run.lines_with("the workers join fleet workers-")
    records = consume_committed(broker, topic)
    assert Counter(value for _, value in records) == Counter(expected)
    assert all(json.loads(value)["customer_id"] == key for key, value in records)
    assert_union_is(expected, [[value for _, value in records]])


def test_a_killed_member_is_replaced_and_the_run_is_sent_once(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """Two accelerated members; SIGKILL one mid-run, start a third: all exit 0, the topic is the plan once."""
    pair = two_members(broker, topic, producer_process, tmp_path, "fleet", speed="20000")
    survivor, victim = pair.first, pair.second
    victim.proc.kill()
    victim.finish(30)
    third = producer_process(pair.args, pair.env)
    assert survivor.finish(300) == 0
    assert third.finish(300) == 0
    assert [survivor.lines_with("Fleet "), third.lines_with("Fleet ")] != [[], []]
    values = [value for _, value in consume_committed_after_kill(broker, topic, len(pair.expected))]
    assert_union_is(pair.expected, [values])


def owning(member: ProducerProcess) -> int | None:
    """How many virtual partitions the member's latest assignment change left it (None: none logged yet)."""
    found = [int(m.group(1)) for line in member.stderr if (m := OWNING.search(line))]
    return found[-1] if found else None


def keep_log(tmp_path: Path, name: str, member: ProducerProcess) -> None:
    """Keep the member's whole standard error in ``tmp_path``, and print it (events left out) for a failure's report."""
    kept = tmp_path / f"{name}.stderr"
    kept.write_text("".join(line + "\n" for line in member.stderr))
    print(f"--- {name} member's standard error, whole in {kept}:")
    print("\n".join(line for line in member.stderr if "Emitted customer_id=" not in line))


def test_a_member_hung_past_its_session_is_fenced_and_nothing_is_duplicated(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """SIGSTOP a member (a hang, to the group) until the other owns every partition; resumed, it is fenced.

    On SIGCONT the hung member has its late commit refused, or learns first that it lost its partitions,
    or finds its producer fenced (the broker aborted its transaction, which outlived transaction.timeout.ms)
    and replaces it; whichever comes first, it aborts, both exit 0, their summaries add up to the plan, and
    the topic (read_committed) is the plan exactly once.
    """
    pair = two_members(broker, topic, producer_process, tmp_path, "hang", speed="5000")
    other, hung = pair.first, pair.second
    try:
        # both in the group, each with a share: a "now owning 64" of the other alone, before, is not the hang's
        other.wait_for(lambda: owning(other) not in {None, 0, 64}, 120, "the other to share the partitions")
        hung.proc.send_signal(signal.SIGSTOP)
        try:
            other.wait_for(lambda: owning(other) == 64, 120, "the hung one's partitions")
        finally:
            hung.proc.send_signal(signal.SIGCONT)
        hung.wait_for(
            lambda: any(hung.lines_with(text) for text in FENCED_LINES),
            60,
            "the hung member to be fenced",
        )
        assert other.finish(300) == 0
        assert hung.finish(300) == 0
    finally:
        keep_log(tmp_path, "other", other)
        keep_log(tmp_path, "hung", hung)
    sums = [summary(member) for member in (other, hung)]
    assert all(emitted == delivered and failed == 0 for _, emitted, delivered, failed in sums), sums
    assert sum(delivered for _, _, delivered, _ in sums) == len(pair.expected)
    assert_union_is(pair.expected, [[value for _, value in consume_committed(broker, topic)]])


def test_a_member_that_joins_a_finished_run_exits_at_once(broker: str, topic: str, producer_process: Start) -> None:
    """Once the fleet's run is complete, a new member finds nothing to run and exits 0, sending nothing."""
    args = backfill("2025-08-12", "2025-08-13", seed="late", customers=60)
    env = fleet_env(broker, topic, FLEET_ID=f"t-{uuid.uuid4().hex[:8]}")
    assert producer_process(args, env).finish(120) == 0
    sent = consume_committed(broker, topic)
    late = producer_process(args, env)
    assert late.finish(120) == 0
    assert consume_committed(broker, topic) == sent
    assert len(sent) == len(unsharded(*args))


def test_another_fleet_partitions_for_the_same_fleet_exits_2(broker: str, topic: str, producer_process: Start) -> None:
    """FLEET_PARTITIONS changed between runs of a fleet on one topic: exit 2, one line naming the setting."""
    args = backfill("2025-08-12", "2025-08-13", seed="p", customers=30)
    env = fleet_env(broker, topic, FLEET_ID=f"t-{uuid.uuid4().hex[:8]}", FLEET_PARTITIONS="8")
    assert producer_process(args, env).finish(120) == 0
    other = producer_process(args, {**env, "FLEET_PARTITIONS": "16"})
    assert other.finish(120) == 2
    assert other.lines_with("FLEET_PARTITIONS=16: expected 8, the partition count of the control topic")
    assert not other.lines_with("Traceback")


def test_a_fleet_without_exactly_once_sends_every_event_at_least_once(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """Two members without EXACTLY_ONCE; SIGKILL one mid-run, start a third: every planned event is in the topic."""
    pair = two_members(broker, topic, producer_process, tmp_path, "alo", speed="20000", exactly_once=False)
    survivor, victim, expected = pair.first, pair.second, Counter(pair.expected)
    victim.proc.kill()
    victim.finish(30)
    third = producer_process(pair.args, pair.env)
    assert survivor.finish(300) == 0
    assert third.finish(300) == 0
    found = Counter(value for _, value in consume_committed(broker, topic))
    assert set(found) == set(expected), "every planned event, and no other"
    assert all(found[value] >= count for value, count in expected.items())
