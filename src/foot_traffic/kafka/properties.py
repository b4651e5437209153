"""What the Kafka client makes of producer properties: a trial without brokers, and the Python client's types.

librdkafka takes every property as text, but confluent-kafka-python reads a few
itself before librdkafka sees them (its ``Handle`` set-up and the producer's
special properties): ``delivery.report.only.error`` must be a bool, and
``default.topic.config`` (a dict) and ``logger`` (a logging.Logger) must be
Python objects. Its callbacks (``error_cb``, ``on_delivery``, ...) have
underscores, which a KAFKA_PRODUCER_* variable cannot spell, so librdkafka
reports them as unknown properties.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException, Producer

from foot_traffic.kafka.client import kafka_error

_BOOLEANS = {"true": True, "false": False}

PYTHON_OBJECTS: Mapping[str, str] = {
    "default.topic.config": "a Python dict of topic properties (set each property on its own instead)",
    "logger": "a Python logging.Logger (foot-traffic's logs carry librdkafka's lines already)",
}
"""Properties whose value only a Python object can be, and what that object is."""

REPORTS_EVERY_DELIVERY = "delivery.report.only.error"
"""The Python client's one boolean property: the Kafka sink sets it itself where its counts allow, false opts out."""


SYNONYMS: tuple[tuple[str, str], ...] = (
    ("acks", "request.required.acks"),
    ("linger.ms", "queue.buffering.max.ms"),
    ("compression.type", "compression.codec"),
    ("retries", "message.send.max.retries"),
    ("max.in.flight", "max.in.flight.requests.per.connection"),
    ("sasl.mechanism", "sasl.mechanisms"),
    ("bootstrap.servers", "metadata.broker.list"),
    ("delivery.timeout.ms", "message.timeout.ms"),
)
"""librdkafka's aliases: an error message may name a property by its other name."""


def spellings(prop: str) -> tuple[str, ...]:
    """``prop`` and any other name librdkafka gives the same property."""
    return (prop, *(b if a == prop else a for a, b in SYNONYMS if prop in (a, b)))


def value_problem(prop: str, raw: str) -> str | None:
    """What is expected instead of ``raw`` for a property the Python client types itself; None if it is fine."""
    if prop in PYTHON_OBJECTS:
        return f"no value: {prop} takes {PYTHON_OBJECTS[prop]}, which a variable cannot hold"
    if prop == REPORTS_EVERY_DELIVERY:
        word = raw.strip().lower()
        if word == "true":
            return (
                f"false or no value: foot-traffic sets {prop} itself where its counts allow "
                "(no METRICS_PORT, no EXACTLY_ONCE); elsewhere it counts every event's delivery report"
            )
        if word not in _BOOLEANS:
            return "true or false"
    return None


def typed(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the values the Python client types itself converted from text (true/false to a bool)."""
    result = dict(config)
    value = result.get(REPORTS_EVERY_DELIVERY)
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        result[REPORTS_EVERY_DELIVERY] = _BOOLEANS[value.strip().lower()]
    return result


def _quiet_logger() -> logging.Logger:
    """A logger that drops everything: the throwaway client must not write to standard error."""
    logger = logging.Logger("foot_traffic.kafka.properties.trial")
    logger.addHandler(logging.NullHandler())
    logger.disabled = True
    return logger


def client_error(config: Mapping[str, Any]) -> str | None:
    """What the client says is wrong with ``config``, or None; the client is made without brokers and dropped.

    The Python client's own checks raise TypeError, ValueError or AttributeError rather than
    KafkaException: they are reported the same way, as text.
    """
    try:
        Producer(typed(config), logger=_quiet_logger())
    except KafkaException as exc:
        error = kafka_error(exc)
        return str(exc) if error is None else error.str()
    except (TypeError, ValueError, AttributeError) as exc:
        return str(exc)
    return None
