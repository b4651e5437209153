"""Count distinct visits per (store, date, slot) with an event-time watermark and an allowed lateness.

A small stream consumer of foot-traffic's events, in plain Python with
confluent-kafka, to copy and adapt. It does what a Flink, Spark or Kafka Streams
job must do with real-world data:

- **Event time.** A visit belongs to the window of its own ``entry_time``: the
  local date and the ``time_slot`` the event names, whatever the time it arrives.
- **Watermark.** Each partition's watermark is the latest ``entry_time`` read from
  it, less the allowed lateness; the consumer's watermark is the smallest of the
  partitions' (a partition that has reached its end is left out until it moves
  again). A window closes, and its count is final, once the watermark passes its end.
- **Allowed lateness.** An event whose window has already closed is dropped and
  counted in ``dropped_late``: it came later than the allowed lateness.
- **Deduplication.** With ``--dedupe`` (the default) a visit is counted once
  however many times it is read: a window remembers the ``customer_id`` of its
  visits until it closes. A copy that arrives after its window closed is dropped
  as late.

At the end of the topic (every partition at the end offset it had when reading
began) the input is over: every open window closes, as a bounded stream's windows
do. The counts are printed as one JSON document::

    {"windows": [{"store_id": null, "date": "2025-08-11", "slot": "07:00–09:59", "count": 42}, ...],
     "events": 700, "duplicates": 12, "dropped_late": 0}

Usage::

    python examples/windowed_consumer.py --topic foot-traffic-events --allowed-lateness-seconds 3700

With foot-traffic's late events (LATE_EVENTS_PCT, delays up to LATE_DELAY_MAX_SECONDS),
duplicates (DUPLICATE_EVENTS_PCT, up to DUPLICATE_DELAY_MAX_SECONDS after the first
copy) and sensor outages, the counts equal ``foot-traffic plan --json``'s slot counts
when the allowed lateness covers the longest delay and deduplication is on; they fall
short with a smaller lateness (late events dropped) and exceed it without deduplication.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

Window = tuple[str | None, dt.date, str]
"""A window's key: store_id (None for a single store), local date, slot label."""


@dataclass(frozen=True, slots=True)
class Visit:
    """What the windows need of one foot_traffic event."""

    customer_id: str
    entry: dt.datetime
    """The event's entry_time, with the store's UTC offset."""
    slot: str
    """The time_slot label, such as ``07:00–09:59``."""
    store_id: str | None = None

    @property
    def window(self) -> Window:
        """The window of the visit: its store, local date and slot."""
        return self.store_id, self.entry.date(), self.slot

    @property
    def window_end(self) -> dt.datetime:
        """The instant the visit's window ends: the minute after the last one of its slot label, that day.

        The label's end is read in the entry's UTC offset, so on a day the clocks
        change the window may close an hour early or late.
        """
        last = dt.time.fromisoformat(self.slot.rsplit("–", 1)[1])
        end = dt.datetime.combine(self.entry.date(), last, tzinfo=self.entry.tzinfo)
        return end + dt.timedelta(minutes=1)


def parse_visit(value: bytes | None) -> Visit | None:
    """The visit of one record value; None for anything else (an entry/exit sensor event, an empty value)."""
    if not value:
        return None
    event = json.loads(value)
    if event.get("event_type") != "foot_traffic":
        return None
    return Visit(
        customer_id=event["customer_id"],
        entry=dt.datetime.fromisoformat(event["entry_time"]),
        slot=event["time_slot"],
        store_id=event.get("store_id"),
    )


@dataclass
class Windows:
    """Tumbling event-time windows of distinct visits, closed by a watermark (pure: no Kafka, no clock)."""

    allowed_lateness: dt.timedelta
    dedupe: bool = True
    closed: dict[Window, int] = field(default_factory=dict)
    """Final counts of the windows the watermark has passed."""
    events: int = 0
    duplicates: int = 0
    """Copies of a visit already counted in its (open) window, not counted again."""
    dropped_late: int = 0
    """Events whose window had closed when they arrived."""
    _open: dict[Window, set[str]] = field(default_factory=dict)
    _counts: dict[Window, int] = field(default_factory=dict)
    _ends: list[tuple[dt.datetime, int, Window]] = field(default_factory=list)
    """The open windows' ends, as a heap: the next to close comes first (the int breaks ties)."""
    _latest: dict[int, dt.datetime | None] = field(default_factory=dict)
    """Each active partition's latest entry_time (None: nothing read from it yet)."""

    def expect(self, partitions: Iterable[int]) -> None:
        """Hold the watermark back until each of ``partitions`` has given an event or reached its end."""
        for partition in partitions:
            self._latest.setdefault(partition, None)

    @property
    def watermark(self) -> dt.datetime | None:
        """Event time up to which every window is complete: the smallest partition's latest entry, less the lateness."""
        latest = list(self._latest.values())
        if not latest or None in latest:
            return None
        return min(t for t in latest if t is not None) - self.allowed_lateness

    def add(self, visit: Visit, partition: int = 0) -> str:
        """Take one visit read from ``partition``; return what became of it: counted, duplicate or late."""
        self.events += 1
        key = visit.window
        outcome = self._place(visit, key)
        latest = self._latest.get(partition)
        if latest is None or visit.entry > latest:
            self._latest[partition] = visit.entry
            self._close_passed()
        return outcome

    def _place(self, visit: Visit, key: Window) -> str:
        watermark = self.watermark
        if key in self.closed or (watermark is not None and visit.window_end <= watermark):
            self.dropped_late += 1
            return "late"
        if key not in self._open:
            self._open[key] = set()
            heapq.heappush(self._ends, (visit.window_end, len(self.closed) + len(self._open), key))
        ids = self._open[key]
        if self.dedupe:
            if visit.customer_id in ids:
                self.duplicates += 1
                return "duplicate"
            ids.add(visit.customer_id)
        self._counts[key] = self._counts.get(key, 0) + 1
        return "counted"

    def idle(self, partition: int) -> None:
        """Leave out a partition that has reached its end, so that it does not hold the watermark back."""
        self._latest.pop(partition, None)
        self._close_passed()

    def _close_passed(self, watermark: dt.datetime | None = None) -> None:
        """Close the windows that end by the watermark (by default the current one), earliest first."""
        watermark = watermark or self.watermark
        while watermark is not None and self._ends and self._ends[0][0] <= watermark:
            _, _, key = heapq.heappop(self._ends)
            self.closed[key] = self._counts.pop(key, 0)
            del self._open[key]

    def finish(self) -> dict[Window, int]:
        """End of input: close every open window and return all the final counts."""
        self._close_passed(dt.datetime.max.replace(tzinfo=dt.UTC))
        return dict(self.closed)


def summary(windows: Windows) -> dict[str, object]:
    """The JSON document of the final counts, windows in (store, date, slot) order."""
    counts = windows.finish()
    ordered = sorted(counts.items(), key=lambda item: (item[0][0] or "", item[0][1], item[0][2]))
    return {
        "windows": [
            {"store_id": store, "date": date.isoformat(), "slot": slot, "count": count}
            for (store, date, slot), count in ordered
        ],
        "events": windows.events,
        "duplicates": windows.duplicates,
        "dropped_late": windows.dropped_late,
    }


def consume(broker: str, topic: str, windows: Windows, batch: int = 10_000) -> None:
    """Read ``topic`` from its start to the end offsets it has now, into ``windows``."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"windowed-consumer-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        pending = set()
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                pending.add(partition)
        windows.expect(pending)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while pending:
            for message in consumer.consume(batch, timeout=1.0):
                error, partition = message.error(), message.partition() or 0
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(partition)
                    windows.idle(partition)
                elif error is not None:
                    raise RuntimeError(f"cannot read {topic} partition {partition}: {error.str()}")
                elif (visit := parse_visit(message.value())) is not None:
                    windows.add(visit, partition)
    finally:
        consumer.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, count the topic's windows, print the counts as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--broker", default="127.0.0.1:9092", help="Kafka bootstrap servers.")
    parser.add_argument("--topic", default="foot-traffic-events", help="topic of foot-traffic's events.")
    parser.add_argument(
        "--allowed-lateness-seconds",
        type=float,
        default=0.0,
        help="how far behind the latest entry_time an event may arrive and still be counted. Default: 0.",
    )
    parser.add_argument(
        "--dedupe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count each customer_id once per window. Default: on.",
    )
    args = parser.parse_args(argv)
    if args.allowed_lateness_seconds < 0:
        parser.error(f"--allowed-lateness-seconds={args.allowed_lateness_seconds}: expected 0 or more")
    windows = Windows(dt.timedelta(seconds=args.allowed_lateness_seconds), dedupe=args.dedupe)
    consume(args.broker, args.topic, windows)
    json.dump(summary(windows), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
