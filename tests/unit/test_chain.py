"""A chain's stores in bulk: the bytes and order of the event-by-event merge, window by window, one batch each."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from confluent_kafka import KafkaError

from foot_traffic.cli.logs import JsonFormatter, TextFormatter
from foot_traffic.events.encoding import Encoded, Group, MixedBatch, encode_mixed
from foot_traffic.events.event import batch_events
from foot_traffic.metrics.health import Health
from foot_traffic.metrics.recorder import Metrics
from foot_traffic.model.arrivals import CHUNK_TARGET, Batch, day_batches
from foot_traffic.model.grid import US_PER_DAY, datetime_to_us
from foot_traffic.model.plan import DayPlan, Model, StoreModel, plan_day
from foot_traffic.model.units import WHOLE, Shard
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.ownership import Fixed
from foot_traffic.run.positions import Positions, ResumeAfter
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink, StdoutSink
from tests.unit.fakes import SteppedClock, fake_sink

ROOT = 11
START = datetime_to_us(dt.datetime(2025, 10, 25, tzinfo=dt.UTC))
"""Two days before Europe's change of offset (26 October) and a week before America's (2 November)."""
START_DATE = dt.date(2025, 10, 25)
ZONES = [ZoneInfo(name) for name in ("UTC", "Europe/Rome", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns")]
IDS = ["s0", "store-1", "a-much-longer-store-2", "s3", "Zürich-4"]


def chain(n: int, *, zones: bool = True) -> list[StoreModel]:
    """``n`` stores with ids of several lengths in five time zones (half- and quarter-hour offsets), or all alike."""
    return [
        StoreModel(
            Model(daily_customers=30 + 11 * i, store_key=i + 1, tz=ZONES[i % 5] if zones else ZONES[0]),
            f"{IDS[i % 5]}-{i}" if zones else f"store-{i:03d}",
        )
        for i in range(n)
    ]


def run(
    stores: list[StoreModel],
    *,
    merge: bool = False,
    start_us: int = START,
    until_us: int | None = None,
    shard: Shard = WHOLE,
    log_fields: bool = False,
    resume: Mapping[str | None, ResumeAfter] | None = None,
) -> MemorySink:
    """Run ``stores`` from ``start_us`` to ``until_us`` on a manual clock, into memory; ``merge``: event by event."""
    sink = MemorySink()
    clock = ManualClock(start_us)
    service = Service(
        stores,
        ROOT,
        sink,
        clock,
        poll_s=0.5,
        start_us=start_us,
        until_us=until_us,
        shard=shard,
        log_fields=log_fields,
        resume=resume,
    )
    if merge:  # the same works through an ownership: the loop then merges them event by event
        service.ownership = Fixed(service.owned(start_us))
    service.run()
    return sink


def encoded_parts(parts: list[tuple[DayPlan, Batch, str | None]]) -> tuple[MixedBatch, list[bytes]]:
    """The parts' visits ordered by entry and encoded at once, and each visit's reference encoding in that order."""
    reference = [event.encode() for plan, batch, store_id in parts for event in batch_events(plan, batch, store_id)]
    entries = np.concatenate([batch.entries_us for _, batch, _ in parts])
    order = np.argsort(entries, kind="stable")
    groups = np.repeat(np.arange(len(parts)), [len(batch) for _, batch, _ in parts])
    infos = [Group(store_id, plan.labels[batch.slot], plan.weekday, plan.tz) for plan, batch, store_id in parts]
    durations = np.concatenate([batch.durations_min for _, batch, _ in parts])
    ids = np.concatenate([batch.ids for _, batch, _ in parts])
    mixed = encode_mixed(entries[order], durations[order], ids[order], groups[order], infos)
    return mixed, [reference[i] for i in order.tolist()]


def day_parts(stores: list[StoreModel], date: dt.date) -> Iterator[tuple[DayPlan, Batch, str | None]]:
    """Every sampled batch of each store's plan of ``date``."""
    for store in stores:
        plan = plan_day(store.model, ROOT, date)
        for batch in day_batches(ROOT, plan):
            yield plan, batch, store.store_id


@pytest.mark.parametrize("zones", [True, False], ids=["zones-ids-weekdays", "one-width"])
def test_every_line_of_a_mixed_batch_is_the_reference_encoding(zones: bool) -> None:
    """Stores of several id lengths, zones (a DST change inside) and weekdays: each line is ``Event.encode``'s."""
    stores = chain(5, zones=zones)
    parts = list(day_parts(stores, dt.date(2025, 10, 26)))  # Sunday, Rome's change of offset
    if zones:  # a Tuesday, and St John's change of offset (Sunday 2 November)
        parts += [*day_parts(stores[:2], dt.date(2025, 10, 28)), *day_parts(stores[3:], dt.date(2025, 11, 2))]
    mixed, reference = encoded_parts(parts)
    assert len(mixed) == len(reference) > 200
    assert (len({len(line) for line in reference}) > 1) is zones  # lines of several widths, or of one
    assert mixed.lines == b"".join(line + b"\n" for line in reference)
    assert mixed.values(3, 40) == reference[3:40]
    assert [mixed.value(i) for i in (0, 17, len(mixed) - 1)] == [reference[i] for i in (0, 17, len(mixed) - 1)]
    assert [key.decode() for key in mixed.keys(5, 9)] == [json.loads(line)["customer_id"] for line in reference[5:9]]
    assert mixed.entry_time(7) == json.loads(reference[7])["entry_time"]
    assert bytes(mixed.segment(2, 4)) == reference[2] + b"\n" + reference[3] + b"\n"
    origins = [(json.loads(line)["store_id"], json.loads(line)["time_slot"]) for line in reference]
    assert [mixed.origin(i) for i in range(len(mixed))] == origins


@pytest.mark.parametrize("n", [2, 5, 12])
@pytest.mark.parametrize(
    ("start", "shard"),
    [(START, WHOLE), (START + 13 * 3600 * 10**6 + 17 * 60 * 10**6 + 5, WHOLE), (START, Shard(1, 3))],
    ids=["midnight", "mid-day", "shard"],
)
def test_the_bulk_path_sends_what_the_merge_sends_in_its_order(n: int, start: int, shard: Shard) -> None:
    """Several store counts, zones, a mid-day start, a shard and UNTIL: the same events, bytes and order."""
    until = START + 3 * US_PER_DAY + 5 * 3600 * 10**6
    bulk = run(chain(n), start_us=start, until_us=until, shard=shard)
    assert bulk.records
    assert bulk.records == run(chain(n), merge=True, start_us=start, until_us=until, shard=shard).records


@pytest.mark.parametrize("n", [1, 3, 7])
@pytest.mark.parametrize("start", [START, START + 15 * 3600 * 10**6 + 7], ids=["midnight", "mid-day"])
def test_with_sensor_events_the_bulk_path_writes_the_merges_lines_in_its_order(n: int, start: int) -> None:
    """Visits, entries after their visits and exits at their instants: the merge's lines, interleaved as it does."""

    def lines(merge: bool) -> bytes:
        out = io.BytesIO()
        clock = ManualClock(start)
        until = START + 2 * US_PER_DAY + 3600 * 10**6
        service = Service(
            chain(n), ROOT, StdoutSink(out), clock, poll_s=0.5, start_us=start, until_us=until, sensor_topic="sensors"
        )
        if merge:
            service.ownership = Fixed(service.owned(start))
        counters = service.run()
        assert counters.sensor_emitted > counters.emitted > 40
        return out.getvalue()

    bulk = lines(merge=False)
    kinds = Counter(json.loads(line)["event_type"] for line in bulk.splitlines())
    assert kinds["entry"] == kinds["foot_traffic"] > kinds["exit"] > 0
    assert bulk == lines(merge=True)


def test_without_an_end_the_bulk_path_runs_until_stopped_with_the_merges_events() -> None:
    """A run without UNTIL stopped by its sink sends what the merge sends before that point."""

    class StopAt(MemorySink):
        def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
            super().send_batch(batch, start, stop)
            if len(self.records) >= 2000:
                service.stop.set()

    sink = StopAt()
    service = Service(chain(4), ROOT, sink, ManualClock(START), poll_s=0.5, start_us=START)
    service.run()
    reference = run(chain(4), merge=True, until_us=START + 14 * US_PER_DAY).records
    assert len(reference) > len(sink.records) >= 2000
    assert sink.records == reference[: len(sink.records)]


def test_each_store_sends_its_plans_visits() -> None:
    """Per store, the events sent are the visits its day plans count (the first day from the mid-day start)."""
    start = START + 9 * 3600 * 10**6
    stores = chain(6, zones=False)
    sink = run(stores, start_us=start, until_us=START + 2 * US_PER_DAY)
    counts = Counter(json.loads(value)["store_id"] for _, value in sink.records)
    for store in stores:
        first = plan_day(store.model, ROOT, dt.date(2025, 10, 25), now_us=start).total
        assert counts[store.store_id] == first + plan_day(store.model, ROOT, dt.date(2025, 10, 26)).total


def test_a_backfill_is_ordered_by_entry_with_ties_in_the_stores_order() -> None:
    """Three stores with one model (the same visits): each visit comes three times, in the file's store order."""
    model = Model(daily_customers=200, store_key=5)
    stores = [StoreModel(model, store_id) for store_id in ("c", "a", "b")]
    events = [json.loads(value) for _, value in run(stores, until_us=START + US_PER_DAY).records]
    assert len(events) == 600
    instants = [datetime_to_us(dt.datetime.fromisoformat(event["entry_time"])) for event in events]
    assert instants == sorted(instants)
    assert [event["store_id"] for event in events] == ["c", "a", "b"] * 200
    assert all(len({e["customer_id"] for e in events[i : i + 3]}) == 1 for i in range(0, 600, 3))


def test_in_real_time_each_event_goes_when_due_never_before() -> None:
    """On a clock that moves only while the loop waits, each hand-over happens at its last event's entry."""
    clock = SteppedClock(START)
    handed: list[tuple[int, list[int]]] = []

    class Watch(MemorySink):
        def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
            super().send_batch(batch, start, stop)
            handed.append((clock.now, batch.entries_us[start:stop].tolist()))

    sink = Watch()
    Service(chain(4), ROOT, sink, clock, poll_s=30.0, stop=clock.stop, until_us=START + US_PER_DAY).run()
    assert len(sink.records) == sum(len(entries) for _, entries in handed) > 100
    assert all(max(entries) == now for now, entries in handed), "each hand-over at the instant its events fall due"
    flat = [entry for _, entries in handed for entry in entries]
    assert flat == sorted(flat)


def a_mixed_batch() -> MixedBatch:
    """A day of three stores' visits in one mixed batch."""
    return encoded_parts(list(day_parts(chain(3), dt.date(2025, 10, 27))))[0]


def by_store_and_slot(values: list[bytes]) -> Counter[tuple[str, str]]:
    """How many events of each (store, slot), read from their JSON."""
    return Counter((json.loads(v)["store_id"], json.loads(v)["time_slot"]) for v in values)


def test_the_kafka_sink_produces_a_mixed_batch_and_counts_each_store_and_slot() -> None:
    """Keys and values in order; each delivery report counts in its own (store, slot), failures included."""
    metrics = Metrics(Health(60))
    sink, producer = fake_sink(metrics=metrics)
    batch = a_mixed_batch()
    sink.send_batch(batch, 0, len(batch))
    values = [m.value() for m, _ in producer.queue]
    assert values == batch.values(0, len(batch))
    assert [m.key() for m, _ in producer.queue] == [json.loads(v)["customer_id"].encode() for v in values]
    failed = values[4]
    producer.deliver(None)
    producer.deliver(None)
    producer.deliver(None)
    producer.deliver(None)
    producer.deliver(KafkaError(KafkaError._MSG_TIMED_OUT))
    producer.deliver_all()
    delivered = by_store_and_slot(values) - by_store_and_slot([failed])
    got = {key: t.delivered for key, t in metrics._tallies.items() if t.delivered}
    assert got == dict(delivered)
    assert {key: t.failed for key, t in metrics._tallies.items() if t.failed} == dict(by_store_and_slot([failed]))
    assert (sink.delivered, sink.failed) == (len(values) - 1, 1)


def test_metrics_count_a_mixed_batch_per_store_and_slot() -> None:
    """A hand-over of a mixed batch adds each (store, slot)'s own count to its emitted counter."""
    metrics = Metrics(Health(60))
    batch = a_mixed_batch()
    metrics.emitted(batch, 10, len(batch) - 3)
    got = {key: t.emitted for key, t in metrics._tallies.items()}
    assert got == dict(by_store_and_slot(batch.values(10, len(batch) - 3)))


def test_the_stdout_sink_writes_a_mixed_batchs_lines() -> None:
    """The lines written are the batch's events [start, stop), one JSON a line."""
    out = io.BytesIO()
    batch = a_mixed_batch()
    StdoutSink(out).send_batch(batch, 5, 60)
    assert out.getvalue().splitlines() == batch.values(5, 60)


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_the_info_lines_are_the_merges_in_its_order(formatter: logging.Formatter) -> None:
    """Plan and Emitted lines of a chain run: the merge's lines, in the same order (times aside)."""

    def lines(merge: bool) -> list[str]:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger = logging.getLogger("foot_traffic")
        logger.addHandler(handler)
        level = logger.level
        logger.setLevel(logging.INFO)
        try:
            run(chain(4), merge=merge, until_us=START + 2 * US_PER_DAY, log_fields=isinstance(formatter, JsonFormatter))
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        if isinstance(formatter, JsonFormatter):
            return [
                json.dumps({k: v for k, v in json.loads(line).items() if k != "time"})
                for line in stream.getvalue().splitlines()
            ]
        return [line.split(" ", 2)[2] for line in stream.getvalue().splitlines()]

    bulk = lines(merge=False)
    assert sum("Planned total" in line for line in bulk) == 2 + 3 + 3 + 3  # UTC: 2 dates; Rome, Kolkata, Kathmandu: 3
    assert sum("Emitted customer_id=" in line for line in bulk) > 300
    assert bulk == lines(merge=True)


def test_each_hand_over_carries_each_stores_last_position_in_it_never_ahead() -> None:
    """Before a window's events go, each store's noted index is its last event's among its day's: read from output."""
    positions = Positions(dated=True, start_us=START)
    sent: Counter[tuple[str | None, str]] = Counter()
    checked = 0

    class Check(MemorySink):
        def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
            nonlocal checked
            noted = {(unit.store_id, str(unit.date)): p for unit, p in positions.take().items() if p.index >= 0}
            super().send_batch(batch, start, stop)
            handed = set()
            for value in batch.values(start, stop):
                event = json.loads(value)
                handed.add((event["store_id"], event["entry_time"][:10]))
                sent[event["store_id"], event["entry_time"][:10]] += 1
            assert handed == set(noted), "a position for every store handed over, and only for those"
            for (store_id, date), position in noted.items():
                assert position.index == sent[store_id, date] - 1, "the position of the last event sent"
                checked += 1

    stores = chain(4, zones=False)
    until = START + 2 * US_PER_DAY
    service = Service(stores, ROOT, Check(), ManualClock(START), poll_s=0.5, until_us=until, positions=positions)
    service.run()
    assert checked > 10
    assert sum(sent.values()) == sum(
        plan_day(s.model, ROOT, START_DATE + dt.timedelta(days=d)).total for s in stores for d in (0, 1)
    )


@pytest.mark.parametrize("sensors", [False, True])
def test_a_busy_window_goes_a_chunk_at_a_time_with_the_merges_bytes(sensors: bool) -> None:
    """Two stores of 400,000 visits a day: each hand-over and each encoded range holds at most CHUNK_TARGET visits."""
    sizes: list[int] = []

    class Sizes(MemorySink):
        def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
            sizes.append(len(batch) if sensors else stop - start)  # with sensors: the encoded range, sent one by one
            super().send_batch(batch, start, stop)

    stores = [StoreModel(Model(daily_customers=400_000, store_key=k, tz=ZONES[0]), f"big-{k}") for k in (1, 2)]
    until = START + US_PER_DAY // 4
    sink, topic = Sizes(), "sensors" if sensors else None
    Service(stores, ROOT, sink, ManualClock(START), poll_s=0.5, until_us=until, sensor_topic=topic).run()
    merged = MemorySink()
    service = Service(stores, ROOT, merged, ManualClock(START), poll_s=0.5, until_us=until, sensor_topic=topic)
    service.ownership = Fixed(service.owned(START))
    service.run()
    assert max(sizes) == CHUNK_TARGET, "an hour of two busy stores holds more than a chunk"
    assert sink.records == merged.records
    assert sink.other == merged.other
