"""The JSON Schema of the foot_traffic event, shipped with the package (``foot-traffic schema``)."""

from __future__ import annotations

from typing import Any

_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}$"

EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:foot-traffic:event:1",
    "title": "foot_traffic event",
    "description": "One customer visit to a store, as produced by foot-traffic (Kafka key: customer_id).",
    "type": "object",
    "properties": {
        "event_type": {"const": "foot_traffic"},
        "customer_id": {
            "type": "string",
            "description": "A version-4-shaped UUID drawn from the seeded generator.",
            "pattern": r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        },
        "entry_time": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with microseconds and the UTC offset of TIMEZONE at that instant.",
            "pattern": _TIMESTAMP,
        },
        "exit_time": {
            "type": "string",
            "format": "date-time",
            "description": "entry_time + trip_duration_minutes.",
            "pattern": _TIMESTAMP,
        },
        "trip_duration_minutes": {"type": "integer", "minimum": 10, "maximum": 75},
        "weekday": {
            "enum": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        },
        "time_slot": {
            "type": "string",
            "description": "The slot's label, e.g. 17:00–19:59 (with an en dash).",
            "pattern": "^([01]\\d|2[0-3]):[0-5]\\d\u2013([01]\\d|2[0-3]):[0-5]\\d$",
        },
        "store_id": {
            "type": "string",
            "description": "Only when the run has more than one store.",
            "pattern": r"^[A-Za-z0-9._-]{1,64}$",
        },
    },
    "required": [
        "event_type",
        "customer_id",
        "entry_time",
        "exit_time",
        "trip_duration_minutes",
        "weekday",
        "time_slot",
    ],
    "additionalProperties": False,
}
