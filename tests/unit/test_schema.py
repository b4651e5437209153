"""The event's JSON Schema: printed by ``foot-traffic schema`` and met by every produced event."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from jsonschema import Draft202012Validator

from foot_traffic.cli.commands import main
from foot_traffic.config.resolve import load_settings
from foot_traffic.events.schema import EVENT_SCHEMA
from foot_traffic.model.grid import datetime_to_us
from foot_traffic.model.plan import Model, StoreModel
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink

START = datetime_to_us(dt.datetime(2025, 8, 11, tzinfo=dt.UTC))
UNTIL = datetime_to_us(dt.datetime(2025, 8, 14, tzinfo=dt.UTC))
VALIDATOR = Draft202012Validator(EVENT_SCHEMA)


def test_schema_command_prints_a_valid_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """foot-traffic schema prints the shipped schema, itself a valid 2020-12 JSON Schema."""
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == EVENT_SCHEMA
    Draft202012Validator.check_schema(printed)


@pytest.mark.parametrize(
    "stores",
    [
        [StoreModel(Model(base_daily_customers=3000))],
        [StoreModel(load_settings({"TIMEZONE": "Europe/Rome", "ARRIVAL_MODEL": "smooth"}).model())],
        [
            StoreModel(Model(daily_customers=500, store_key=1), "a-1"),
            StoreModel(Model(daily_customers=300, store_key=2), "b.2"),
        ],
    ],
)
def test_every_produced_event_meets_the_schema(stores: list[StoreModel]) -> None:
    """Events of three simulated days, in UTC, in a local zone and with several stores, all validate."""
    sink = MemorySink()
    Service(stores, 5, sink, ManualClock(START), poll_s=0.5, until_us=UNTIL).run()
    assert sink.records
    for _, value in sink.records:
        VALIDATOR.validate(json.loads(value))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trip_duration_minutes", 5),
        ("entry_time", "2025-08-12T17:52:24+00:00"),
        ("weekday", "Funday"),
        ("time_slot", "17:00-19:59"),
        ("customer_id", "not-a-uuid"),
        ("extra", 1),
    ],
)
def test_the_schema_rejects_what_the_producer_never_writes(field: str, value: object) -> None:
    """A wrong value or an unknown field fails validation, so the schema is not vacuous."""
    sink = MemorySink()
    Service(Model(daily_customers=10), 5, sink, ManualClock(START), poll_s=0.5, until_us=UNTIL).run()
    event = json.loads(sink.records[0][1])
    event[field] = value
    assert not VALIDATOR.is_valid(event)
