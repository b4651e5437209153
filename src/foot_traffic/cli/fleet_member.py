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
from foot_traffic.kafka.fleet import Membership, ensure_control_topic, timeouts
from foot_traffic.kafka.fleet_run import FleetOwnership, FleetRun
from foot_traffic.kafka.resume import read_state
from foot_traffic.kafka.transactions import TransactionalKafkaSink
from foot_traffic.model.units import Unit
from foot_traffic.run.ownership import run_units
from foot_traffic.run.positions import Position, Positions
from foot_traffic.run.recording import Recorder

READ_BACK_S = 60.0
"""Longest wait to read the units' positions back: a dead member's open transaction holds them until it expires."""


def transactional_id(settings: Settings, fleet_id: str) -> str:
    """A transactional id of this member alone: members never fence each other, the group's generation does."""
    base = settings.transactional_id or f"foot-traffic-{settings.topic}"
    return f"{base}-{fleet_id}-{uuid.uuid4().hex[:12]}"


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
        timeouts=timeouts(os.environ),
        metrics=recorder,
    )
    timeout_s = max(settings.connect_timeout_seconds, READ_BACK_S)
    units = tuple(run_units(settings.store_models(), start_us, settings.until_us))
    run = FleetRun(units, settings.fleet_partitions, settings.until_us is not None, timeout_s)

    def progress() -> Mapping[Unit, Position]:
        return read_state(settings.broker, settings.topic, client, timeout_s).progress

    ownership = FleetOwnership(membership, sink, positions, run, read_progress=progress)
    return Member(ownership, membership)
