"""A run with FLEET_ID: join the fleet and run the units of the virtual partitions Kafka assigns to this process.

The composition of a member: the control topic (created with FLEET_PARTITIONS
partitions, or checked against them), the membership in the fleet's group, and the
ownership the loop polls, which commits every transaction through the group.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from foot_traffic.config.settings import Settings
from foot_traffic.errors import ConfigError
from foot_traffic.kafka.fleet import Membership, Timeouts, ensure_control_topic
from foot_traffic.kafka.fleet_run import FleetOwnership, FleetRun
from foot_traffic.kafka.resume import read_state
from foot_traffic.kafka.transactions import TransactionalKafkaSink
from foot_traffic.model.units import Unit
from foot_traffic.run.ownership import run_units
from foot_traffic.run.positions import Position, Positions
from foot_traffic.run.recording import Recorder

FAST_ENV = "FOOT_TRAFFIC_TEST_FLEET_FAST"
"""Test-only: when "1", the group's shortest timeouts (a 6 s session), so that tests move partitions in seconds."""
FAST = Timeouts(session_ms=6000, heartbeat_ms=500, max_poll_interval_ms=30_000, transaction_ms=6000)
READ_BACK_S = 60.0
"""Longest wait to read the units' positions back: a dead member's open transaction holds them until it expires."""


def timeouts(env: Mapping[str, str] = os.environ) -> Timeouts:
    """The fleet's timeouts: the defaults, or the tests' short ones."""
    return FAST if env.get(FAST_ENV) == "1" else Timeouts()


def transactional_id(settings: Settings, fleet_id: str) -> str:
    """A transactional id of this member alone: members never fence each other, the group's generation does."""
    base = settings.transactional_id or f"foot-traffic-{settings.topic}"
    return f"{base}-{fleet_id}-{uuid.uuid4().hex[:12]}"


def check(settings: Settings, fleet: Timeouts) -> None:
    """Raise ConfigError unless COMMIT_INTERVAL_MS stays well below the fleet's transaction timeout (half of it).

    A member commits its transactions (with EXACTLY_ONCE) or its checkpoints (without) within that timeout.
    """
    if settings.commit_interval_ms * 2 > fleet.transaction_ms:
        raise ConfigError(
            [
                f"COMMIT_INTERVAL_MS={settings.commit_interval_ms}: expected at most {fleet.transaction_ms // 2}, "
                f"half the fleet's transaction timeout ({fleet.transaction_ms} ms)"
            ]
        )


def control_topic(settings: Settings, client: Mapping[str, str]) -> None:
    """Create the fleet's control topic, or check its partition count against FLEET_PARTITIONS (exit 2 if other)."""
    ensure_control_topic(
        settings.broker,
        client,
        settings.topic,
        partitions=settings.fleet_partitions,
        replication_factor=settings.topic_replication_factor,
        timeout_s=settings.connect_timeout_seconds,
    )


@dataclass(frozen=True, slots=True)
class Member:
    """A joined member: the ownership the loop polls, and the membership to leave at the end."""

    ownership: FleetOwnership
    membership: Membership


def join(
    settings: Settings,
    client: Mapping[str, str],
    sink: TransactionalKafkaSink,
    positions: Positions,
    *,
    start_us: int,
    recorder: Recorder,
) -> Member:
    """Join fleet FLEET_ID with the exactly-once ``sink``, whose run started at ``start_us``."""
    assert settings.fleet_id is not None  # noqa: S101 - only called for a fleet
    membership = Membership(
        settings.broker,
        settings.topic,
        settings.fleet_id,
        settings.fleet_partitions,
        extra=client,
        timeouts=timeouts(),
        metrics=recorder,
    )
    timeout_s = max(settings.connect_timeout_seconds, READ_BACK_S)
    units = tuple(run_units(settings.store_models(), start_us, settings.until_us))
    run = FleetRun(units, settings.fleet_partitions, settings.until_us is not None, timeout_s)

    def progress() -> Mapping[Unit, Position]:
        return read_state(settings.broker, settings.topic, client, timeout_s).progress

    ownership = FleetOwnership(membership, sink, positions, run, read_progress=progress)
    return Member(ownership, membership)
