"""The JSON Schema of the foot_traffic event (``foot-traffic schema``), and its Avro twin for the Schema Registry."""

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

EVENT_AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "FootTrafficEvent",
    "namespace": "foot_traffic",
    "doc": "One customer visit to a store, as produced by foot-traffic (Kafka key: customer_id). "
    "The same fields, in the same order, as the JSON Schema EVENT_SCHEMA.",
    "fields": [
        {"name": "event_type", "type": {"type": "enum", "name": "EventType", "symbols": ["foot_traffic"]}},
        {"name": "customer_id", "type": "string", "doc": "A version-4-shaped UUID drawn from the seeded generator."},
        {
            "name": "entry_time",
            "type": "string",
            "doc": "ISO 8601 with microseconds and the UTC offset of TIMEZONE at that instant.",
        },
        {"name": "exit_time", "type": "string", "doc": "entry_time + trip_duration_minutes, ISO 8601."},
        {"name": "trip_duration_minutes", "type": "int", "doc": "From 10 to 75."},
        {
            "name": "weekday",
            "type": {
                "type": "enum",
                "name": "Weekday",
                "symbols": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
            },
        },
        {"name": "time_slot", "type": "string", "doc": "The slot's label, e.g. 17:00–19:59 (with an en dash)."},
        {
            "name": "store_id",
            "type": ["null", "string"],
            "default": None,
            "doc": "Only when the run has more than one store; null otherwise.",
        },
    ],
}
"""The Avro record schema of the same event, for SCHEMA_REGISTRY_FORMAT=avro.

Timestamps stay ISO 8601 strings (with their UTC offset) rather than Avro
timestamp-micros, so a decoded event equals the JSON one field for field; the
optional ``store_id`` is a union with null whose default is null.
"""
