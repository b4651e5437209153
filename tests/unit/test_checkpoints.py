"""A fleet member without EXACTLY_ONCE: events outside transactions, positions checkpointed after their events."""

from __future__ import annotations

import datetime as dt

import pytest

from foot_traffic.cli.commands import main
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS
from foot_traffic.errors import ConfigError, DeliveryError
from foot_traffic.kafka.checkpoints import CheckpointedSink
from foot_traffic.kafka.fleet import FAST_ENV
from foot_traffic.kafka.resume import state_topic
from foot_traffic.kafka.transactions import TransactionalKafkaSink
from foot_traffic.run.positions import Position, Positions
from tests.unit.fakes import FakeProducer, fake_sink

START = 1_755_000_000_000_000
DAY = dt.date(2025, 8, 12)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def member() -> tuple[CheckpointedSink, FakeProducer, FakeProducer, Positions, Clock]:
    """A checkpointed sink (interval 1 s) over two fake producers: the events' and the checkpoints'."""
    events, event_producer = fake_sink(topic="t")
    plain, checkpoint_producer = fake_sink(topic="t")
    clock = Clock()
    checkpoints = TransactionalKafkaSink(plain, commit_interval_s=1.0, timeout_s=1, settle=events.flush)
    positions = Positions(dated=True, start_us=START)
    checkpoints.carry(None, positions)
    sink = CheckpointedSink(events, checkpoints, positions, interval_s=1.0, monotonic=clock)
    return sink, event_producer, checkpoint_producer, positions, clock


def test_events_go_outside_transactions_and_positions_in_a_checkpoint_after_them() -> None:
    """Events use the plain producer; past the interval a checkpoint commits the moved positions, and no event."""
    sink, events, checkpoints, positions, clock = member()
    positions.note("a", DAY, 0, done=False)
    sink.send("c1", b"{}", "a", "s")
    assert events.calls == [], "the events' producer has no transaction"
    assert checkpoints.calls == ["init"], "within the interval: no checkpoint"
    clock.now = 0.5
    positions.note("a", DAY, 1, done=False)
    sink.send("c2", b"{}", "a", "s")
    events.deliver(None)
    events.deliver(None)
    clock.now = 1.0
    sink.poll()
    assert checkpoints.calls == ["init", "begin", "commit"]
    ((message, _),) = checkpoints.queue
    assert (message.topic(), message.key()) == (state_topic("t"), b"unit:a|2025-08-12")
    assert Position.decode(message.value()) == Position(DAY, 1, False, START)
    assert (sink.delivered, sink.failed) == (2, 0)


def test_a_checkpoint_waits_for_its_events_and_refuses_to_lead_unconfirmed_ones() -> None:
    """Events still unconfirmed after the timeout: the checkpoint is aborted, its positions kept for a later one."""
    sink, events, checkpoints, positions, clock = member()
    positions.note("a", DAY, 0, done=False)
    clock.now = 1.0
    with pytest.raises(DeliveryError, match=r"1 event\(s\) still unconfirmed after 1\.0 s; their positions are not"):
        sink.send("c1", b"{}", "a", "s")  # the fake never confirms by itself: the settle times out
    assert checkpoints.calls == ["init", "begin", "abort"]
    assert positions.pending(), "the position is not taken: a later checkpoint still carries it"
    events.deliver(None)
    sink.flush(0)
    assert checkpoints.calls == ["init", "begin", "abort", "begin", "commit"]
    assert not positions.pending()


def test_events_sent_again_count_again() -> None:
    """At least once: an event sent twice after a rewind is delivered twice, and emitted twice by the loop."""
    sink, events, _, _, _ = member()
    for _ in range(2):
        sink.send("c1", b"{}", "a", "s")
        events.deliver(None)
    assert (sink.delivered, sink.failed) == (2, 0)


FLEET = {"FLEET_ID": "north", "SEED": "s", "START": "2025-01-01"}
"""A fleet member's settings, as a fleet needs them."""


def problems(env: dict[str, str]) -> list[str]:
    """The problems loading these settings reports."""
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_a_fleet_member_needs_kafka_not_exactly_once() -> None:
    """FLEET_ID runs on Kafka with or without EXACTLY_ONCE; another sink or exit events exit 2, named."""
    assert load_settings(FLEET).fleet_id == "north"
    assert load_settings(FLEET | {"EXACTLY_ONCE": "1"}).exactly_once
    assert problems(FLEET | {"SINK": "stdout", "EXIT_EVENTS_TOPIC": "sensors"}) == [
        "FLEET_ID='north' with SINK='stdout': expected SINK=kafka (a fleet's members agree through Kafka's "
        "group protocol); for other sinks use SHARD",
        "FLEET_ID='north' with EXIT_EVENTS_TOPIC: expected one or the other (a unit handed over would lose "
        "the exits of visits its previous owner sent)",
    ]


@pytest.mark.parametrize(
    ("env", "limit", "timeout"),
    [
        (FLEET, 5000, 10_000),
        (FLEET | {"EXACTLY_ONCE": "1"}, 5000, 10_000),
        (FLEET | {FAST_ENV: "1"}, 3000, 6000),  # the tests' short fleet timeouts
    ],
)
def test_a_commit_interval_past_half_the_transaction_timeout_is_refused(
    env: dict[str, str], limit: int, timeout: int
) -> None:
    """COMMIT_INTERVAL_MS above half the fleet's transaction timeout is bad input, naming it and the bound."""
    assert load_settings(env | {"COMMIT_INTERVAL_MS": str(limit)}).commit_interval_ms == limit
    assert problems(env | {"COMMIT_INTERVAL_MS": str(limit + 1)}) == [
        f"COMMIT_INTERVAL_MS='{limit + 1}' with FLEET_ID='north': expected at most {limit}, "
        f"half the fleet's transaction timeout ({timeout} ms)"
    ]


def test_a_commit_interval_of_workers_that_form_a_fleet_is_checked_too() -> None:
    """WORKERS > 1 with EXACTLY_ONCE on Kafka makes a fleet: the same bound; a run that is no fleet has none."""
    workers = {"WORKERS": "2", "EXACTLY_ONCE": "1", "SEED": "s", "START": "2025-01-01", "COMMIT_INTERVAL_MS": "6000"}
    assert problems(workers) == [
        "COMMIT_INTERVAL_MS='6000' with WORKERS='2' and EXACTLY_ONCE=true (a fleet of workers): expected at most "
        "5000, half the fleet's transaction timeout (10000 ms)"
    ]
    assert load_settings(workers | {"WORKERS": "1"}).commit_interval_ms == 6000
    assert load_settings(workers | {"EXACTLY_ONCE": "0"}).commit_interval_ms == 6000


def test_the_command_refuses_a_long_commit_interval_before_connecting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run --fleet-id`` with COMMIT_INTERVAL_MS=6000: exit 2, one ``foot-traffic: error:`` line, no log line."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv(FAST_ENV, raising=False)
    args = ["--fleet-id", "north", "--seed", "s", "--start", "2025-01-01", "--commit-interval-ms", "6000"]
    assert main(["run", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "foot-traffic: error: --commit-interval-ms='6000' with --fleet-id='north': expected at most 5000, "
        "half the fleet's transaction timeout (10000 ms)\n"
    )
