"""Throughput of Schema Registry framing against plain JSON, measured in the same run.

Produces the same simulated day (same SEED) three times to fresh topics of the
local broker: plain JSON (the vectorised batch path), then framed by the
registry's JSON Schema serializer, then by its Avro serializer (one serializer
call per event). Each figure is the best of REPEATS runs, from the first event
to the last delivery report.

Needs the local broker and registry (``make kafka-up registry-up``) at
FOOT_TRAFFIC_BENCH_BROKER (default 127.0.0.1:9092) and FOOT_TRAFFIC_BENCH_REGISTRY
(default http://127.0.0.1:8081/apis/ccompat/v7). Run: ``.venv/bin/python bench/registry.py``.
"""

from __future__ import annotations

import os
import time
import uuid

from foot_traffic.config.registry import connect as connect_registry
from foot_traffic.config.resolve import load_settings
from foot_traffic.kafka.admin import connect
from foot_traffic.kafka.producer import KafkaSink, ValueSerializer
from foot_traffic.model.randomness import root_entropy
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service

BROKER = os.environ.get("FOOT_TRAFFIC_BENCH_BROKER", "127.0.0.1:9092")
REGISTRY = os.environ.get("FOOT_TRAFFIC_BENCH_REGISTRY", "http://127.0.0.1:8081/apis/ccompat/v7")
EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def one_run(mode: str) -> float:
    """Events per second of one simulated day produced to a fresh topic in ``mode`` (plain, json or avro)."""
    topic = f"ft-bench-{uuid.uuid4().hex[:12]}"
    env = {
        "KAFKA_BROKER": BROKER,
        "KAFKA_TOPIC": topic,
        "DAILY_CUSTOMERS": str(EVENTS),
        "SEED": "bench",
        "START": "2025-08-12",
        "UNTIL": "2025-08-13",
        "SPEED": "max",
        "LOG_LEVEL": "WARNING",
    }
    if mode != "plain":
        env.update(SCHEMA_REGISTRY_URL=REGISTRY, SCHEMA_REGISTRY_FORMAT=mode)
    settings = load_settings(env)
    serializer: ValueSerializer | None = connect_registry(settings) if mode != "plain" else None
    connect(BROKER, [topic], attempts=3, backoff_s=1, attempt_timeout_s=10, partitions=1, replication_factor=1)
    sink = KafkaSink(BROKER, topic, serializer=serializer)
    start_us, until_us = settings.start_us, settings.until_us
    assert start_us is not None
    assert until_us is not None
    service = Service(
        settings.model(), root_entropy("bench"), sink, ManualClock(start_us), poll_s=0.5, until_us=until_us
    )
    began = time.perf_counter()
    service.run()
    left = sink.flush(60)
    elapsed = time.perf_counter() - began
    sink.close()
    assert left == 0, f"{left} events unconfirmed"
    assert sink.delivered == service.counters.emitted == EVENTS, (sink.delivered, service.counters.emitted)
    return EVENTS / elapsed


def main() -> None:
    """Measure the three modes, interleaved, and print events/s and the ratio to plain JSON."""
    modes = ("plain", "json", "avro")
    best = dict.fromkeys(modes, 0.0)
    for _ in range(REPEATS):
        for mode in modes:
            best[mode] = max(best[mode], one_run(mode))
    print(f"{EVENTS} events, best of {REPEATS} runs, broker {BROKER}, registry {REGISTRY}")
    print(f"{'mode':<22} {'events/s':>10} {'vs plain':>9}")
    for mode, label in (("plain", "plain JSON"), ("json", "registry JSON Schema"), ("avro", "registry Avro")):
        print(f"{label:<22} {best[mode]:>10,.0f} {best[mode] / best['plain']:>9.3f}")


if __name__ == "__main__":
    main()
