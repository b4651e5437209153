"""Speed of ``foot-traffic report`` reading plain JSON, registry-framed JSON and registry-framed Avro values.

The same simulated day (DAILY_CUSTOMERS=BENCH_EVENTS, one SEED) is measured two ways:

- *decode*: the values, in memory, through the report's reader (``kafka_chunk`` in
  batches of 50,000, then ``read_events``) into its numpy columns; Avro values look
  their schema up in confluent-kafka's mock registry client (once, as the real one
  would), so the figure is decoding alone. Best of REPEATS.
- *from Kafka* (skipped when no broker answers): the day produced into fresh
  topics in each mode, then read back with the report's own consumer, fetch
  included, against the registry at FOOT_TRAFFIC_BENCH_REGISTRY. Best of REPEATS.

Run: ``.venv/bin/python bench/report_decode.py`` (broker and registry up for the second part;
FOOT_TRAFFIC_BENCH_BROKER default 127.0.0.1:9092, FOOT_TRAFFIC_BENCH_REGISTRY default
http://127.0.0.1:8081/apis/ccompat/v7).
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from foot_traffic.config.registry import connect as connect_registry
from foot_traffic.config.resolve import load_settings
from foot_traffic.kafka.admin import connect
from foot_traffic.kafka.producer import KafkaSink, ValueSerializer
from foot_traffic.kafka.registry import EventSerializer
from foot_traffic.model.randomness import root_entropy
from foot_traffic.report.inputs.events import Events
from foot_traffic.report.inputs.framing import FramedValues, RegistrySource
from foot_traffic.report.inputs.kafka import KAFKA_BATCH, KafkaSource, kafka_chunk, kafka_chunks
from foot_traffic.report.inputs.lines import read_events
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink

BROKER = os.environ.get("FOOT_TRAFFIC_BENCH_BROKER", "127.0.0.1:9092")
REGISTRY = os.environ.get("FOOT_TRAFFIC_BENCH_REGISTRY", "http://127.0.0.1:8081/apis/ccompat/v7")
EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
MODES = (("plain", "plain JSON"), ("json", "registry JSON Schema"), ("avro", "registry Avro"))


class _Message:
    """The part of a consumed message the reader names a value by."""

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def day_settings(mode: str, topic: str) -> Any:
    """The benchmark day's settings for one mode and topic."""
    env = {
        "KAFKA_BROKER": BROKER,
        "KAFKA_TOPIC": topic,
        "DAILY_CUSTOMERS": str(EVENTS),
        "SEED": "bench",
        "START": "2025-08-12",
        "UNTIL": "2025-08-13",
        "LOG_LEVEL": "WARNING",
    }
    if mode != "plain":
        env.update(SCHEMA_REGISTRY_URL=REGISTRY, SCHEMA_REGISTRY_FORMAT=mode)
    return load_settings(env)


def plain_day() -> list[bytes]:
    """The day's events as the producer's JSON lines."""
    settings = day_settings("plain", "unused")
    sink = MemorySink()
    clock = ManualClock(settings.start_us)
    Service(settings.model(), root_entropy("bench"), sink, clock, poll_s=0.5, until_us=settings.until_us).run()
    return [value for _, value in sink.records]


def best_rate(count: int, run: Callable[[], Events]) -> float:
    """Events per second of the best of REPEATS runs; every run must read ``count`` events."""
    best = float("inf")
    for _ in range(REPEATS):
        began = time.perf_counter()
        events = run()
        best = min(best, time.perf_counter() - began)
        assert len(events) == count, (len(events), count)
    return count / best


def decode_rates(lines: list[bytes]) -> dict[str, float]:
    """Events per second of the reader on the values of each mode, in memory."""
    client = SchemaRegistryClient.new_client({"url": "mock://bench"})
    values = {"plain": lines}
    for fmt in ("json", "avro"):
        serializer = EventSerializer(client, f"bench-{fmt}", fmt)
        serializer.register()
        values[fmt] = [serializer(line) for line in lines]
    messages = [_Message(offset) for offset in range(len(lines))]

    def read(batch: list[bytes]) -> Events:
        framing = FramedValues(RegistrySource("mock://bench"), client=client)
        return read_events(
            kafka_chunk("bench", batch[i : i + KAFKA_BATCH], messages[i : i + KAFKA_BATCH], framing)
            for i in range(0, len(batch), KAFKA_BATCH)
        )

    return {mode: best_rate(len(lines), functools.partial(read, values[mode])) for mode, _ in MODES}


def produce(mode: str) -> str:
    """A fresh topic holding the day in ``mode``; its name."""
    topic = f"ft-bench-{uuid.uuid4().hex[:12]}"
    settings = day_settings(mode, topic)
    serializer: ValueSerializer | None = connect_registry(settings) if mode != "plain" else None
    connect(BROKER, [topic], attempts=3, backoff_s=1, attempt_timeout_s=10, partitions=1, replication_factor=1)
    sink = KafkaSink(BROKER, topic, serializer=serializer)
    clock = ManualClock(settings.start_us)
    Service(settings.model(), root_entropy("bench"), sink, clock, poll_s=0.5, until_us=settings.until_us).run()
    assert sink.flush(60) == 0
    sink.close()
    return topic


def kafka_rates() -> dict[str, float]:
    """Events per second of the report's reader on topics of each mode, fetch from the local broker included."""
    topics = {mode: produce(mode) for mode, _ in MODES}

    def read(mode: str) -> Events:
        registry = RegistrySource(REGISTRY) if mode != "plain" else None
        return read_events(kafka_chunks(KafkaSource(BROKER, topics[mode], {}, registry=registry)))

    return {mode: best_rate(EVENTS, functools.partial(read, mode)) for mode, _ in MODES}


def broker_answers() -> bool:
    """Whether a broker answers at BROKER within a few seconds."""
    try:
        AdminClient({"bootstrap.servers": BROKER}).list_topics(timeout=5)
    except Exception:  # any failure means no broker to measure against
        return False
    return True


def main() -> None:
    """Print events/s of each mode, decoding alone and read from Kafka, and the ratio to plain JSON."""
    lines = plain_day()
    print(f"{len(lines)} events, best of {REPEATS} runs")
    tables = [("decode (in memory)", decode_rates(lines))]
    if broker_answers():
        tables.append((f"from Kafka ({BROKER}, registry {REGISTRY})", kafka_rates()))
    for title, rates in tables:
        print(f"\n{title}\n{'mode':<22} {'events/s':>10} {'vs plain':>9}")
        for mode, label in MODES:
            print(f"{label:<22} {rates[mode]:>10,.0f} {rates[mode] / rates['plain']:>9.3f}")


if __name__ == "__main__":
    main()
