"""Static shards against the real broker: together they produce one run's output, once, even across a crash."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from foot_traffic.model.grid import datetime_to_us, local_date
from foot_traffic.model.units import Unit
from tests.integration.conftest import (
    ProducerProcess,
    base_env,
    consume_all,
    consume_committed,
    run_foot_traffic,
    wait_for_a_commit,
)

Start = Callable[..., ProducerProcess]


def backfill(start: str, until: str, *, seed: str, customers: int, speed: str = "max") -> list[str]:
    """The flags of a backfill from ``start`` to ``until``."""
    return ["--speed", speed, "--start", start, "--until", until, "--seed", seed, "--daily-customers", str(customers)]


FOUR_DAYS = ("2025-08-12T09:30", "2025-08-16T09:30")
"""Four days from mid-morning: the first day's plan is cut at START, the same for every shard."""
ZONES = {"s0": "Europe/Rome", "s3": "America/New_York"}


def stores_file(folder: Path, count: int) -> Path:
    """A stores file of ``count`` stores, two of them in zones of their own (their dates are local)."""
    lines = []
    for i in range(count):
        lines += ["[[store]]", f'id = "s{i}"', f"scale = {0.5 + i / 10}"]
        if f"s{i}" in ZONES:
            lines.append(f'timezone = "{ZONES[f"s{i}"]}"')
    path = folder / "stores.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def unsharded(*args: str) -> list[bytes]:
    """The lines one process writes to standard output for these arguments."""
    proc = run_foot_traffic("run", "--sink", "stdout", "--log-level", "WARNING", *args, env=base_env())
    assert proc.returncode == 0, proc.stderr
    return [line.encode() for line in proc.stdout.splitlines()]


def by_unit(values: list[bytes], *, dated: bool = True) -> dict[Unit, list[bytes]]:
    """Events grouped by unit (store, and entry's local date in the store's zone), each group in the order given."""
    groups: dict[Unit, list[bytes]] = defaultdict(list)
    for value in values:
        event = json.loads(value)
        store = event.get("store_id")
        entry = datetime_to_us(dt.datetime.fromisoformat(event["entry_time"]))
        date = local_date(entry, ZoneInfo(ZONES.get(store, "UTC")))
        groups[Unit(store, date if dated else None)].append(value)
    return dict(groups)


def assert_union_is(expected: list[bytes], parts: list[list[bytes]]) -> None:
    """The parts together are ``expected`` as a multiset (nothing lost, nothing twice), each unit whole, in order."""
    assert all(parts), "every shard has units of its own"
    assert Counter(v for part in parts for v in part) == Counter(expected)
    units = by_unit(expected)
    for part in parts:
        for unit, values in by_unit(part).items():
            assert values == units[unit], f"unit {unit} is whole and in order"


@pytest.mark.kafka
def test_three_shards_of_a_six_store_backfill_equal_one_run(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """Shards 0/3, 1/3, 2/3 of a 6-store, 4-day backfill, side by side to one topic: one run's output, once."""
    stores = str(stores_file(tmp_path, 6))
    args = [*backfill(*FOUR_DAYS, seed="shards", customers=300), "--stores-file", stores]
    expected = unsharded(*args)
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic)
    shards = [producer_process([*args, "--shard", f"{i}/3"], env) for i in range(3)]
    assert [shard.finish(120) for shard in shards] == [0, 0, 0]
    records = consume_all(broker, topic)
    assert_union_is(expected, [[r.value for r in records]])
    produced = [[line for line in shard.stderr if "Summary:" in line] for shard in shards]
    emitted = [int(lines[0].split("emitted=")[1].split()[0]) for lines in produced]
    assert all(emitted), "each shard sent a part"
    assert sum(emitted) == len(expected)


@pytest.mark.kafka
def test_a_single_stores_fortnight_spreads_over_two_shards(broker: str, topic: str, producer_process: Start) -> None:
    """One store's 14 days: both of 2 shards send some of its days, and together they send the fortnight once."""
    args = backfill("2025-08-01", "2025-08-15", seed="f", customers=500)
    expected = unsharded(*args)
    parts = []
    for i in range(2):
        shard_topic = f"{topic}-{i}"
        env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=shard_topic, LOG_LEVEL="WARNING")
        assert producer_process([*args, "--shard", f"{i}/2"], env).finish(120) == 0
        parts.append([r.value for r in consume_all(broker, shard_topic)])
    assert_union_is(expected, parts)
    days = [{unit.date for unit in by_unit(part)} for part in parts]
    assert not days[0] & days[1], "a day is one shard's"
    assert len(days[0] | days[1]) == 14


@pytest.mark.kafka
def test_a_shard_killed_mid_run_and_restarted_leaves_the_run_once(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """EXACTLY_ONCE shards: SIGKILL shard 1/3 mid-run, restart it; the committed topic is one run, exactly once."""
    stores = str(stores_file(tmp_path, 6))
    args = [*backfill(*FOUR_DAYS, seed="shards", customers=3000, speed="40000"), "--stores-file", stores]
    expected = unsharded(*backfill(*FOUR_DAYS, seed="shards", customers=3000), "--stores-file", stores)
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1", COMMIT_INTERVAL_MS="100")
    others = [producer_process([*args, "--shard", f"{i}/3"], env) for i in (0, 2)]
    victim = producer_process([*args, "--shard", "1/3"], env)
    victim.wait_for_emitted(2000, timeout=120)
    wait_for_a_commit(broker, topic)
    victim.proc.kill()
    victim.finish(30)
    again = producer_process([*args, "--shard", "1/3"], env)
    assert again.finish(300) == 0
    assert again.lines_with("Resuming of store ")
    assert [other.finish(300) for other in others] == [0, 0]
    values = [value for _, value in consume_committed(broker, topic)]
    assert_union_is(expected, [values])


@pytest.mark.kafka
def test_another_shard_count_on_the_same_topic_is_refused(broker: str, topic: str, producer_process: Start) -> None:
    """A topic written by 2 exactly-once shards refuses a shard of 3, and an unsharded run: exit 2, naming N."""
    args = backfill("2025-08-12", "2025-08-13", seed="n", customers=50)
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, EXACTLY_ONCE="1")
    assert producer_process([*args, "--shard", "0/2"], env).finish(120) == 0
    three = producer_process([*args, "--shard", "0/3"], env)
    assert three.finish(120) == 2
    assert three.lines_with(f"KAFKA_TOPIC={topic!r}: it holds a run of 2 shards; expected SHARD=I/2, or a new topic")
    whole = producer_process(args, env)
    assert whole.finish(120) == 2
    assert whole.lines_with("it holds a run of 2 shards; expected SHARD=I/2")
