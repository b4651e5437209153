"""A one-off measure of the Kafka sink's produce loop: the loop thread's CPU time, apart from the rest of the run.

Produces one day of BACKFILL_RECORDS events, encoded beforehand, through ``KafkaSink.send_batch`` to a fresh
topic of the local broker and flushes; the figure is the loop thread's CPU time (``time.thread_time``), which
other processes on a shared machine do not stretch as they stretch the wall clock. Variants: every delivery
report against failed ones only, and a topic of one partition (named by the sink) against three (placed by
librdkafka's partitioner). Best of REPEATS runs each, the variants interleaved. The results belong in
bench/notes.py, with the conditions they were taken in.

Run: ``.venv/bin/python bench/produce_loop.py`` (broker at FOOT_TRAFFIC_BENCH_BROKER, default 127.0.0.1:9092).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the bench package lives beside src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench.common import BACKFILL_RECORDS, BROKER, REPEATS, best_interleaved, fresh_topic, print_variants
from foot_traffic.events.encoding import EncodedBatch, encode_batch
from foot_traffic.kafka.producer import KafkaSink
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.plan import Model, plan_day

VARIANTS: dict[str, tuple[dict[str, Any], int]] = {
    "every delivery report, 1 partition": ({"delivery.report.only.error": False}, 1),
    "failed reports only, 1 partition (the default)": ({}, 1),
    "failed reports only, 3 partitions": ({}, 3),
}
"""Each variant's producer properties and its topic's partition count."""


def loop_cpu(batches: list[EncodedBatch], extra: dict[str, Any], partitions: int) -> float:
    """Seconds of this thread's CPU to hand every batch to a new sink and flush it; every event must be delivered."""
    topic = fresh_topic()
    admin = AdminClient({"bootstrap.servers": BROKER})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    sink = KafkaSink(BROKER, topic, extra=extra)
    began = time.thread_time()
    for batch in batches:
        sink.send_batch(batch, 0, len(batch))
    left = sink.flush(120)
    cpu = time.thread_time() - began
    sink.close()
    expected = sum(len(b) for b in batches)
    if left or sink.failed or sink.delivered != expected:
        raise RuntimeError(f"{sink.delivered} delivered, {sink.failed} failed, {left} pending of {expected}")
    return cpu


def main() -> int:
    """Measure every variant, best of REPEATS, interleaved; print one line each with its ratio to the first."""
    plan = plan_day(Model(daily_customers=BACKFILL_RECORDS), 1, dt.date(2025, 8, 12))
    batches = [encode_batch(plan, b) for b in day_batches(1, plan)]
    best = best_interleaved(VARIANTS, lambda variant: loop_cpu(batches, *variant), min)
    title = f"{BACKFILL_RECORDS:,} events, one day, acks=all, idempotent, loop-thread CPU, best of {REPEATS}:"
    print_variants(title, best, lambda cpu: f"{cpu:.3f} s, {BACKFILL_RECORDS / cpu:,.0f} ev per CPU-s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
