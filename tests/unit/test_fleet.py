"""Fleet membership without a broker: the changes bookkeeping, committed marks, callbacks, commits, FLEET_ID."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import OFFSET_END, KafkaError, KafkaException, TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.cli.commands import main
from foot_traffic.cli.run_command import make_clock, simulated
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS
from foot_traffic.errors import ConfigError
from foot_traffic.kafka.client import ProducerClient
from foot_traffic.kafka.fleet import CommitRefusedError, Membership, Timeouts, control_topic, group_id
from foot_traffic.kafka.fleet_ledger import Changes, Ledger, Mark
from foot_traffic.metrics.health import Health
from foot_traffic.metrics.recorder import Metrics
from foot_traffic.run.recording import NoMetrics
from tests.unit.fakes import FakeProducer

Callback = Callable[[Any, list[TopicPartition]], None]
PLAN = {"SEED": "s", "START": "2025-01-01"}
"""What every member of a fleet must be given: one plan."""


class FakeConsumer:
    """The part of confluent_kafka.Consumer a Membership uses; ``script`` holds the callbacks the next poll fires."""

    def __init__(self, config: dict[str, Any], logger: logging.Logger | None = None) -> None:
        self.config = config
        self.script: list[tuple[str, list[int]]] = []
        self.marks: dict[int, tuple[int, str]] = {}
        self.callbacks: dict[str, Callback] = {}
        self.assigned: set[int] = set()
        self.positions: dict[int, int] = {}
        self.topic = ""

    def subscribe(self, topics: list[str], on_assign: Callback, on_revoke: Callback, on_lost: Callback) -> None:
        (self.topic,) = topics
        self.callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}

    def poll(self, timeout: float) -> None:
        script, self.script = self.script, []
        for kind, partitions in script:
            self.assigned = self.assigned | set(partitions) if kind == "assign" else self.assigned - set(partitions)
            self.callbacks[kind](self, [TopicPartition(self.topic, p) for p in partitions])

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.positions.update((tp.partition, tp.offset) for tp in partitions)

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        found = [(tp, self.marks.get(tp.partition)) for tp in partitions]
        return [TopicPartition(tp.topic, tp.partition, *mark) if mark else tp for tp, mark in found]

    def consumer_group_metadata(self) -> str:
        return "generation 7"

    def close(self) -> None:
        self.script.append(("revoke", sorted(self.assigned)))
        self.poll(0)


class Reports(NoMetrics):
    """A recorder that keeps the fleet's reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def fleet_rebalanced(self, owned: int) -> None:
        self.calls.append(("rebalanced", owned))

    def fleet_owned(self, owned: int) -> None:
        self.calls.append(("owned", owned))

    def fleet_handed_over(self, seconds: float) -> None:
        self.calls.append(("handed over", seconds))


class Wall:
    """An injectable wall clock, in seconds since the epoch."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def member(**options: Any) -> tuple[Membership, FakeConsumer]:
    """A Membership of fleet ``f`` (8 partitions) on a fake consumer, and that consumer."""
    made: list[FakeConsumer] = []

    def factory(config: dict[str, Any], logger: logging.Logger | None = None) -> FakeConsumer:
        made.append(FakeConsumer(config, logger))
        return made[-1]

    membership = Membership("b:9092", "visits", "f", 8, factory=factory, **options)  # type: ignore[arg-type]
    return membership, made[0]


def assign(membership: Membership, consumer: FakeConsumer, *partitions: int) -> Changes:
    """Let the group assign ``partitions`` and take the changes."""
    consumer.script.append(("assign", list(partitions)))
    return membership.poll()


@pytest.mark.parametrize(
    ("before", "steps", "expected", "owned"),
    [
        (set(), [("assign", {1, 2})], Changes(frozenset({1, 2})), {1, 2}),
        (set(), [("assign", {1, 2}), ("revoke", {2})], Changes(frozenset({1}), frozenset({2})), {1}),
        ({1, 2}, [("revoke", {2}), ("assign", {2})], Changes(frozenset({2}), frozenset({2})), {1, 2}),
        ({1}, [("lose", {1}), ("assign", {1, 3})], Changes(frozenset({1, 3}), lost=frozenset({1})), {1, 3}),
        ({1, 2}, [], Changes(), {1, 2}),
    ],
)
def test_changes_collect_what_happened_since_the_last_take(
    before: set[int], steps: list[tuple[str, set[int]]], expected: Changes, owned: set[int]
) -> None:
    """Each take reports the assignments still held, every revocation and loss; a second take is empty."""
    ledger = Ledger()
    ledger.assign(before)
    ledger.take()
    for kind, partitions in steps:
        getattr(ledger, kind)(partitions)
    changes = ledger.take()
    assert changes == expected
    assert ledger.owned == owned
    assert not ledger.take()
    assert bool(changes) == bool(steps)


OPS = st.lists(st.tuples(st.sampled_from(["assign", "revoke", "lose", "take"]), st.sets(st.integers(0, 7))))


@given(OPS)
def test_a_loop_that_applies_each_take_owns_what_the_group_gave(ops: list[tuple[str, set[int]]]) -> None:
    """Stopping revoked and lost, then starting assigned, keeps the loop's view equal to the member's ownership."""
    ledger, view, owned = Ledger(), set[int](), set[int]()
    for kind, partitions in [*ops, ("take", set())]:
        if kind == "take":
            changes = ledger.take()
            view = (view - changes.revoked - changes.lost) | changes.assigned
            assert view == owned
        elif kind == "assign":
            ledger.assign(partitions)
            owned |= partitions
        else:
            getattr(ledger, kind)(partitions & owned)  # the group only takes back what it gave
            owned -= partitions
    assert ledger.owned == owned


@pytest.mark.parametrize(
    ("offset", "metadata", "expected"),
    [
        (-1001, None, Mark()),
        (-1001, "done 5", Mark()),
        (12, "open 1733220000000", Mark(12, False, 1733220000000)),
        (3, "done 42", Mark(3, True, 42)),
        (3, "done", Mark(3, True, None)),
        (7, "", Mark(7, False, None)),
        (7, "written by someone else", Mark(7, False, None)),
        (7, "done ４２", Mark(7, True, None)),
    ],
)
def test_marks_are_read_from_offsets_and_metadata(offset: int, metadata: str | None, expected: Mark) -> None:
    """The committed offset is the commit count; the metadata says done or open, and when."""
    assert Mark.parse(offset, metadata) == expected


@given(st.integers(1, 2**62), st.booleans(), st.one_of(st.none(), st.integers(0, 2**50)))
def test_a_marks_metadata_reads_back_as_the_same_mark(commits: int, done: bool, at_ms: int | None) -> None:
    """Writing a mark's metadata and reading it back with its offset gives the same mark."""
    mark = Mark(commits, done, at_ms)
    assert Mark.parse(commits, mark.metadata()) == mark


def test_the_next_mark_counts_one_more_commit_and_stays_done() -> None:
    """A commit adds one to the count, takes the new time, and never undoes done."""
    assert Mark(4, False, 1).next(done=False, at_ms=9) == Mark(5, False, 9)
    assert Mark(4, False, 1).next(done=True, at_ms=9) == Mark(5, True, 9)
    assert Mark(4, True, 1).next(done=False, at_ms=9) == Mark(5, True, 9)


def test_the_consumer_joins_the_fleets_group_cooperatively_with_only_security_properties() -> None:
    """Group foot-traffic.<FLEET_ID>, cooperative-sticky, read_committed, the timeouts, TLS but not linger.ms."""
    timeouts = Timeouts(session_ms=7000, heartbeat_ms=700, max_poll_interval_ms=70_000, transaction_ms=7000)
    _, consumer = member(extra={"security.protocol": "SSL", "linger.ms": 20}, timeouts=timeouts)
    assert consumer.topic == control_topic("visits") == "visits.foot-traffic-fleet"
    config = consumer.config
    assert config["group.id"] == group_id("f") == "foot-traffic.f"
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["isolation.level"] == "read_committed"
    assert config["enable.auto.commit"] is False
    assert (config["session.timeout.ms"], config["heartbeat.interval.ms"]) == (7000, 700)
    assert config["max.poll.interval.ms"] == 70_000
    assert config["security.protocol"] == "SSL"
    assert "linger.ms" not in config
    assert timeouts.producer_properties() == {"transaction.timeout.ms": 7000}


def test_the_default_timeouts_hand_a_dead_members_partitions_over_within_the_session_plus_two_seconds() -> None:
    """Survivors hear of a rebalance within a heartbeat, and a dead member's transaction expires by then."""
    timeouts = Timeouts()
    assert timeouts.heartbeat_ms <= 2000
    assert timeouts.heartbeat_ms * 3 <= timeouts.session_ms
    assert timeouts.transaction_ms <= timeouts.session_ms <= timeouts.max_poll_interval_ms


def test_revocation_calls_the_hook_while_the_partitions_are_still_owned(caplog: pytest.LogCaptureFixture) -> None:
    """before_revoke sees the partitions still owned; then they are gone, reported, logged and counted."""
    seen: list[tuple[frozenset[int], bool, frozenset[int]]] = []
    reports = Reports()
    membership, consumer = member(metrics=reports)
    membership.before_revoke = lambda partitions, *, lost: seen.append((partitions, lost, membership.owned))
    caplog.set_level(logging.INFO, logger="foot_traffic.kafka.fleet")
    assert assign(membership, consumer, 0, 1, 2) == Changes(frozenset({0, 1, 2}))
    assert consumer.positions == dict.fromkeys([0, 1, 2], OFFSET_END)  # nothing to read: no offset-out-of-range
    consumer.script += [("revoke", [2]), ("assign", [])]
    assert membership.poll() == Changes(revoked=frozenset({2}))
    assert seen == [(frozenset({2}), False, frozenset({0, 1, 2}))]
    assert membership.owned == {0, 1}
    assert reports.calls == [("rebalanced", 3), ("owned", 2), ("rebalanced", 2)]
    assert [r.getMessage() for r in caplog.records] == [
        "Fleet f: assigned [0, 1, 2], revoked []; now owning 3 partition(s)",
        "Fleet f: assigned [], revoked [2]; now owning 2 partition(s)",
    ]


def test_a_loss_calls_the_hook_to_abort_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    """Lost partitions reach the hook with lost=True, are reported as lost, and a warning says so."""
    seen: list[tuple[frozenset[int], bool]] = []
    membership, consumer = member()
    membership.before_revoke = lambda partitions, *, lost: seen.append((partitions, lost))
    assign(membership, consumer, 4, 5)
    consumer.script.append(("lost", [4, 5]))
    assert membership.poll() == Changes(lost=frozenset({4, 5}))
    assert seen == [(frozenset({4, 5}), True)]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage().startswith("Fleet f: lost [4, 5] (dropped from the group")


def test_a_failing_hook_still_gives_the_partitions_up_and_its_error_reaches_the_loop() -> None:
    """The group takes the partitions whatever the hook does; its exception is the loop's to handle."""

    def fail(partitions: frozenset[int], *, lost: bool) -> None:
        raise RuntimeError("cannot commit")

    membership, consumer = member(before_revoke=fail)
    assign(membership, consumer, 1, 2)
    consumer.script.append(("revoke", [1]))
    with pytest.raises(RuntimeError, match="cannot commit"):
        membership.poll()
    assert membership.owned == {2}
    assert membership.poll() == Changes(revoked=frozenset({1}))


def test_closing_revokes_every_owned_partition_through_the_hook() -> None:
    """Leaving the group gives every partition up, the hook first."""
    seen: list[frozenset[int]] = []
    membership, consumer = member()
    membership.before_revoke = lambda partitions, *, lost: seen.append(partitions)  # noqa: PLW0108 - keyword lost
    assign(membership, consumer, 3, 6)
    membership.close()
    assert seen == [frozenset({3, 6})]
    assert membership.owned == frozenset()


def producer() -> tuple[ProducerClient, FakeProducer]:
    """A ProducerClient on a fake producer, and that producer."""
    made: list[FakeProducer] = []

    def factory(config: dict[str, Any], logger: logging.Logger | None = None) -> FakeProducer:
        made.append(FakeProducer(config, logger))
        return made[-1]

    return ProducerClient("b:9092", {}, lambda error: None, factory), made[0]  # type: ignore[arg-type]


def sent(fake: FakeProducer) -> list[tuple[int, int, str]]:
    """(partition, offset, metadata) of the offsets of the last send_offsets_to_transaction."""
    return [(tp.partition, tp.offset, tp.metadata) for tp in fake.offsets[-1][0]]


def test_a_commit_carries_one_growing_offset_per_owned_partition_with_the_group_metadata() -> None:
    """Offsets are each partition's commit count plus one, done partitions stay done, then the commit."""
    membership, consumer = member(wall=Wall(2.5))
    consumer.marks = {3: (4, "open 1000"), 6: (9, "done 1500")}
    assign(membership, consumer, 3, 5, 6)
    client, fake = producer()
    membership.commit(client, done={5}, timeout_s=1)
    assert sent(fake) == [(3, 5, "open 2500"), (5, 1, "done 2500"), (6, 10, "done 2500")]
    assert fake.offsets[-1][1] == "generation 7"
    assert fake.calls == ["offsets", "commit"]
    membership.commit(client, timeout_s=1)
    assert sent(fake) == [(3, 6, "open 2500"), (5, 2, "done 2500"), (6, 11, "done 2500")]


def test_a_refused_commit_raises_and_counts_nothing() -> None:
    """A refusal of the offsets (stale generation) is CommitRefusedError, and the next commit sends the same."""
    membership, consumer = member()
    assign(membership, consumer, 1)
    client, fake = producer()
    fake.refuse_offsets = KafkaException(KafkaError(KafkaError.UNKNOWN_MEMBER_ID))
    with pytest.raises(CommitRefusedError, match="UNKNOWN_MEMBER_ID"):
        membership.commit(client, timeout_s=1)
    assert "commit" not in fake.calls
    fake.refuse_offsets = None
    membership.commit(client, timeout_s=1)
    assert [offset for _, offset, _ in sent(fake)] == [1]


def test_a_member_that_owns_nothing_may_not_commit() -> None:
    """Without an owned partition the transaction would carry no offset, so no fencing: it is refused."""
    membership, _ = member()
    client, fake = producer()
    with pytest.raises(CommitRefusedError, match="owns no virtual partition"):
        membership.commit(client, timeout_s=1)
    assert fake.calls == []


def test_the_hand_over_time_runs_from_the_last_commit_to_the_first_event() -> None:
    """The first event of a newly assigned partition records now minus its last commit, once."""
    reports, wall = Reports(), Wall(100.0)
    membership, consumer = member(metrics=reports, wall=wall)
    consumer.marks = {2: (5, "open 96500")}
    assign(membership, consumer, 2, 3)
    membership.committed([2, 3])
    membership.started(2)
    membership.started(2)
    membership.started(3)
    assert [c for c in reports.calls if c[0] == "handed over"] == [("handed over", 3.5)]


def test_the_run_is_done_when_every_partition_is_committed_done() -> None:
    """all_done reads every partition of the fleet, owned or not."""
    membership, consumer = member()
    consumer.marks = dict.fromkeys(range(7), (1, "done 1"))
    assert not membership.all_done()
    consumer.marks[7] = (3, "done 2")
    assert membership.all_done()


@pytest.mark.parametrize("value", ["my fleet", "a/b", "", "..", "x" * 201, "fleet\n", "flotte-é"])
def test_a_fleet_id_unfit_for_a_group_id_or_topic_name_is_refused(value: str) -> None:
    """FLEET_ID must be 1 to 200 of letters, digits, '.', '_' and '-' (not only dots)."""
    if value == "":
        assert load_settings({"FLEET_ID": value}).fleet_id is None  # an empty variable is unset
        return
    with pytest.raises(ConfigError) as info:
        load_settings({"FLEET_ID": value})
    (problem,) = info.value.problems
    assert problem.startswith(f"FLEET_ID={value!r}: expected 1 to 200 characters among letters, digits")


def test_a_good_fleet_id_is_kept() -> None:
    """A topic-safe FLEET_ID is taken as written."""
    assert load_settings(PLAN, {"fleet_id": "chain-A_2.eu"}).fleet_id == "chain-A_2.eu"


def test_fleet_id_and_shard_together_are_refused() -> None:
    """A process is a fleet member or a static shard, never both: exit 2 naming both settings."""
    with pytest.raises(ConfigError) as info:
        load_settings({"FLEET_ID": "chain", "SHARD": "0/2", **PLAN})
    assert info.value.exit_status == 2
    assert [p for p in info.value.problems if p.startswith("FLEET_ID='chain' with SHARD: expected one or the other")]
    assert load_settings({"FLEET_ID": "chain", **PLAN}).fleet_id == "chain"


SEEDLESS = (
    ": expected SEED set too, the same for every member (the first member to commit writes the "
    "run's seed; members that start together would each draw their own)"
)
STARTLESS = (
    ": expected START set too, the same for every member (the first member to commit writes the "
    "run's start instant; members that start together would each take their own)"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FLEET_ID": "north", "START": "2025-01-01"}, [f"FLEET_ID='north'{SEEDLESS}"]),
        ({"FLEET_ID": "north", "SEED": "s", "EXACTLY_ONCE": "1"}, [f"FLEET_ID='north'{STARTLESS}"]),
        (
            {"FLEET_ID": "north", "EXACTLY_ONCE": "1"},
            [f"FLEET_ID='north'{SEEDLESS}", f"FLEET_ID='north'{STARTLESS}"],
        ),
        (
            {"WORKERS": "3", "EXACTLY_ONCE": "1", "START": "2025-01-01"},
            [f"WORKERS='3' and EXACTLY_ONCE=true (a fleet of workers){SEEDLESS}"],
        ),
        (
            {"WORKERS": "2", "EXACTLY_ONCE": "1", "SEED": "s"},
            [f"WORKERS='2' and EXACTLY_ONCE=true (a fleet of workers){STARTLESS}"],
        ),
    ],
)
def test_a_fleet_needs_seed_and_start(env: dict[str, str], expected: list[str]) -> None:
    """A fleet, named or made by exactly-once workers, without SEED or START: one line for each one missing."""
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.problems == expected
    assert load_settings(env | PLAN).seed == "s"


def test_runs_that_make_no_fleet_need_neither_seed_nor_start() -> None:
    """One exactly-once process, or workers that are static shards (no EXACTLY_ONCE), draw their own."""
    assert load_settings({"EXACTLY_ONCE": "1"}).seed is None
    assert load_settings({"WORKERS": "2"}).start is None
    assert load_settings({"SHARD": "0/2", "SEED": "s"}).start is None


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--fleet-id", "north", "--start", "2025-01-01"], {}, f"--fleet-id='north'{SEEDLESS}"),
        ([], {"FLEET_ID": "north", "SEED": "s"}, f"FLEET_ID='north'{STARTLESS}"),
        (
            ["--workers", "2", "--exactly-once", "1", "--seed", "s"],
            {},
            f"--workers='2' and EXACTLY_ONCE=true (a fleet of workers){STARTLESS}",
        ),
        (
            [],
            {"WORKERS": "2", "EXACTLY_ONCE": "1", "START": "2025-01-01"},
            f"WORKERS='2' and EXACTLY_ONCE=true (a fleet of workers){SEEDLESS}",
        ),
    ],
)
def test_the_command_refuses_a_fleet_without_seed_or_start(
    args: list[str], env: dict[str, str], line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` as a fleet member without SEED or START: exit 2 and that one error line, before connecting."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    assert main(["run", *args]) == 2
    assert capsys.readouterr() == ("", f"foot-traffic: error: {line}\n")


def test_fleet_metrics_appear_once_the_run_is_a_member() -> None:
    """Partitions owned, rebalances and the hand-over histogram; none of them in a run outside a fleet."""
    metrics = Metrics(Health(60))
    assert metrics.registry.get_sample_value("foot_traffic_fleet_rebalances_total") is None
    metrics.fleet_rebalanced(32)
    metrics.fleet_rebalanced(22)
    metrics.fleet_owned(21)
    metrics.fleet_handed_over(7.5)
    metrics.fleet_handed_over(0.2)
    value = metrics.registry.get_sample_value
    assert value("foot_traffic_fleet_partitions_owned") == 21
    assert value("foot_traffic_fleet_rebalances_total") == 2
    assert value("foot_traffic_fleet_handover_seconds_count") == 2
    assert value("foot_traffic_fleet_handover_seconds_sum") == pytest.approx(7.7)
    assert value("foot_traffic_fleet_handover_seconds_bucket", {"le": "0.5"}) == 1
    assert value("foot_traffic_fleet_handover_seconds_bucket", {"le": "5"}) == 1
    assert value("foot_traffic_fleet_handover_seconds_bucket", {"le": "10"}) == 2


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FLEET_ID": "north", **PLAN}, True),  # START without SPEED: simulated time at speed 1
        ({"FLEET_ID": "north", "SPEED": "max", **PLAN}, True),
        ({"EXACTLY_ONCE": "1", "SPEED": "60"}, True),
        ({"EXACTLY_ONCE": "1"}, False),  # the wall clock: it sends at once what fell due meanwhile
    ],
)
def test_a_member_on_a_simulated_clock_starts_it_where_the_fleet_stands(env: dict[str, str], expected: bool) -> None:
    """Any clock but the wall clock is simulated: a joining member's, or a restart's, starts at the fleet's instant."""
    settings = load_settings(env)
    assert simulated(settings) is expected
    if expected:
        stands = 1_600_000_000_000_000  # 2020-09-13, far from both START and now
        assert make_clock(settings, stands).now_us() == stands
