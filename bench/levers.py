"""A one-off measure of producer levers on the Kafka backfill (reports, compression, batches) against the default.

Each variant is the same one-day backfill of BACKFILL_RECORDS events to a fresh topic of the local broker, with
KAFKA_PRODUCER_* variables on top of the defaults; best of REPEATS runs each, the variants interleaved. The
results belong in bench/notes.py, with the conditions they were taken in.

Run: ``.venv/bin/python bench/levers.py`` (broker at FOOT_TRAFFIC_BENCH_BROKER, default 127.0.0.1:9092).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the bench package lives beside src/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BACKFILL_RECORDS, REPEATS, best_interleaved, kafka_backfill, print_variants

VARIANTS: dict[str, dict[str, str]] = {
    "default (compression none, linger.ms=5, failed delivery reports only)": {},
    "every delivery report": {"KAFKA_PRODUCER_DELIVERY_REPORT_ONLY_ERROR": "false"},
    "compression lz4": {"KAFKA_PRODUCER_COMPRESSION_TYPE": "lz4"},
    "compression zstd": {"KAFKA_PRODUCER_COMPRESSION_TYPE": "zstd"},
    "linger.ms=50": {"KAFKA_PRODUCER_LINGER_MS": "50"},
    "linger.ms=50, batch.num.messages=100000, batch.size=4000000, lz4": {
        "KAFKA_PRODUCER_LINGER_MS": "50",
        "KAFKA_PRODUCER_BATCH_NUM_MESSAGES": "100000",
        "KAFKA_PRODUCER_BATCH_SIZE": "4000000",
        "KAFKA_PRODUCER_COMPRESSION_TYPE": "lz4",
    },
}


def main() -> int:
    """Measure every variant, best of REPEATS, interleaved; print each with its ratio to the default (the first)."""
    best = best_interleaved(VARIANTS, lambda env: kafka_backfill(BACKFILL_RECORDS, "WARNING", env=env))
    title = f"{BACKFILL_RECORDS:,} events, one day, acks=all, idempotent, best of {REPEATS}:"
    print_variants(title, best, lambda rate: f"{rate:,.0f} ev/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
