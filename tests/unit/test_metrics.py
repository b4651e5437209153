"""Metrics and health: counts by store and slot, occupancy, lateness, and the /healthz state machine."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import numpy as np
import pytest
from confluent_kafka import KafkaError
from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.events.encoding import encode_batch
from foot_traffic.events.event import Event, sensor_event
from foot_traffic.metrics.health import Health
from foot_traffic.metrics.occupancy import Occupancy
from foot_traffic.metrics.recorder import LATENESS_BUCKETS, Metrics
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.grid import US_PER_DAY, US_PER_MINUTE, US_PER_SECOND, datetime_to_us
from foot_traffic.model.imperfections import DUPLICATE, HELD, LATE, Imperfections, day_sending
from foot_traffic.model.plan import Model, StoreModel, plan_day
from foot_traffic.run.clock import AcceleratedClock, CatchUpClock, Clock, ManualClock
from foot_traffic.run.recording import NO_METRICS
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink
from foot_traffic.run.timeline import day_events
from tests.unit.fakes import SteppedClock, fake_sink

ROOT = 7
DATE = dt.date(2025, 1, 6)
MIDNIGHT = datetime_to_us(dt.datetime.combine(DATE, dt.time(), tzinfo=dt.UTC))
END = MIDNIGHT + US_PER_DAY


class Monotonic:
    """An injectable monotonic clock for the health check."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    """One sample of the registry, as a scrape would show it."""
    return metrics.registry.get_sample_value(name, labels)


def samples(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    """Every sample of a metric, keyed by its label values."""
    return {
        tuple(sample.labels.values()): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def run(stores: list[StoreModel], clock: Clock, metrics: Metrics, **options: Any) -> MemorySink:
    """One simulated day of ``stores`` into a memory sink, reported to ``metrics`` (a stepped clock's stop flag)."""
    sink = MemorySink()
    metrics.running(clock)
    stop = clock.stop if isinstance(clock, SteppedClock) else None
    Service(
        stores,
        ROOT,
        sink,
        clock,
        poll_s=options.pop("poll_s", 0.5),
        stop=stop,
        until_us=END,
        metrics=metrics,
        **options,
    ).run()
    return sink


def test_planned_and_emitted_are_counted_by_store_and_slot() -> None:
    """Two stores, one day: planned per (store, slot) is each plan's count, emitted matches the events sent."""
    stores = [
        StoreModel(Model(daily_customers=300, store_key=1), "a"),
        StoreModel(Model(daily_customers=120, store_key=2), "b"),
    ]
    metrics = Metrics(Health(60))
    sink = run(stores, ManualClock(MIDNIGHT), metrics)
    events = [json.loads(v) for _, v in sink.records]
    sent = Counter((e["store_id"], e["time_slot"]) for e in events)
    for store in stores:
        plan = plan_day(store.model, ROOT, DATE)
        assert store.store_id is not None
        for label, count in zip(plan.labels, plan.counts, strict=True):
            assert value(metrics, "foot_traffic_events_planned_total", store=store.store_id, slot=label) == count
            emitted = value(metrics, "foot_traffic_events_emitted_total", store=store.store_id, slot=label)
            assert emitted == sent[store.store_id, label] == count
    assert sum(samples(metrics, "foot_traffic_events_emitted_total").values()) == len(events) == 420


@pytest.mark.parametrize("clock", [ManualClock(MIDNIGHT), SteppedClock(MIDNIGHT)], ids=["batches", "one-by-one"])
def test_a_single_store_is_labelled_empty_on_every_path(clock: Clock) -> None:
    """Without store ids the store label is empty; vectorised batches and events sent one by one count alike."""
    metrics = Metrics(Health(60))
    sink = run([StoreModel(Model(daily_customers=500))], clock, metrics, poll_s=20.0)
    sent = Counter(json.loads(v)["time_slot"] for _, v in sink.records)
    assert samples(metrics, "foot_traffic_events_emitted_total") == {("", slot): n for slot, n in sent.items()}
    assert sum(sent.values()) == 500


def test_metrics_change_nothing_in_what_is_sent() -> None:
    """A run reporting to metrics sends the same bytes as a run without."""
    stores = [StoreModel(Model(daily_customers=200))]
    with_metrics = run(stores, ManualClock(MIDNIGHT), Metrics(Health(60)), sensor_topic="sensors")
    without = MemorySink()
    Service(stores, ROOT, without, ManualClock(MIDNIGHT), poll_s=0.5, until_us=END, sensor_topic="sensors").run()
    assert with_metrics.records == without.records
    assert with_metrics.other == without.other


def test_sensor_events_are_counted_by_store_and_kind() -> None:
    """Entry and exit sensor events are counted apart, per store."""
    metrics = Metrics(Health(60))
    sink = run([StoreModel(Model(daily_customers=150))], ManualClock(MIDNIGHT), metrics, sensor_topic="sensors")
    kinds = Counter(json.loads(v)["event_type"] for _, v in sink.other["sensors"])
    assert samples(metrics, "foot_traffic_sensor_events_emitted_total") == {
        ("", "entry"): kinds["entry"],
        ("", "exit"): kinds["exit"],
    }
    assert kinds["entry"] == 150
    assert 0 < kinds["exit"] < 150


def test_occupancy_and_clock_after_a_run_match_the_events() -> None:
    """At the end of a run, occupancy is the visits entered and not yet left at the clock; the clock gauge is it."""
    clock = ManualClock(MIDNIGHT)
    metrics = Metrics(Health(60))
    until = MIDNIGHT + 14 * 3600 * US_PER_SECOND + 123_456_789
    metrics.running(clock)
    sink = MemorySink()
    Service(Model(daily_customers=5000), ROOT, sink, clock, poll_s=0.5, until_us=until, metrics=metrics).run()
    clock._now = until - 1  # where a loop stopping at until leaves the clock
    second = (until - 1) // US_PER_SECOND
    plan = plan_day(Model(daily_customers=5000), ROOT, DATE)
    exits = [e.exit_us for e in day_events(ROOT, plan) if e.entry_us < until]
    inside = sum(1 for exit_us in exits if exit_us // US_PER_SECOND > second)
    assert len(sink.records) == len(exits)
    assert inside > 50
    assert value(metrics, "foot_traffic_occupancy", store="") == inside
    assert value(metrics, "foot_traffic_clock_seconds") == (until - 1) / US_PER_SECOND


def test_no_clock_gauge_before_the_loop_reads_the_clock() -> None:
    """The clock gauge stays empty until the loop has read the clock, so a scrape never starts it first."""
    metrics = Metrics(Health(60))
    clock = AcceleratedClock(MIDNIGHT, 60.0)
    metrics.running(clock)
    assert value(metrics, "foot_traffic_clock_seconds") is None
    assert clock._origin is None, "the scrape did not read the clock"
    clock.now_us()
    metrics.clock_read()
    reading = value(metrics, "foot_traffic_clock_seconds")
    assert reading is not None
    assert reading >= MIDNIGHT / US_PER_SECOND


@given(
    st.lists(st.tuples(st.integers(0, 600), st.integers(10, 75), st.integers(0, 40)), min_size=1, max_size=60),
    st.integers(0, 200),
)
def test_occupancy_counts_exits_after_now_like_brute_force(
    visits: list[tuple[int, int, int]], batch_size_seed: int
) -> None:
    """Batches of any size at increasing instants: the count at any later instant is exits after it, to the second."""
    base = MIDNIGHT + 123_456
    occupancy = Occupancy()
    entered: list[int] = []
    now = base
    size = 1 + batch_size_seed % 30
    for start in range(0, len(visits), size):
        group = visits[start : start + size]
        now += max(g[2] for g in group) * US_PER_SECOND * 7
        exits = [now - offset * US_PER_SECOND + minutes * US_PER_MINUTE for offset, minutes, _ in group]
        occupancy.enter(np.array(exits, dtype=np.int64), now)
        entered.extend(exits)
        for later in (now, now + 999_999, now + 17 * US_PER_MINUTE, now + 80 * US_PER_MINUTE):
            expected = sum(1 for e in entered if e // US_PER_SECOND > later // US_PER_SECOND)
            assert occupancy.count(later) == expected


def test_occupancy_empties_after_a_long_quiet_spell() -> None:
    """A jump past the ring's span leaves nobody inside, and the ring takes new visits again."""
    occupancy = Occupancy()
    occupancy.enter(np.array([MIDNIGHT + 30 * US_PER_MINUTE] * 20, dtype=np.int64), MIDNIGHT)
    assert occupancy.count(MIDNIGHT) == 20
    later = MIDNIGHT + 10 * 3600 * US_PER_SECOND
    occupancy.enter(np.array([later + US_PER_MINUTE], dtype=np.int64), later)
    assert occupancy.count(later) == 1
    assert occupancy.count(later + 2 * US_PER_MINUTE) == 0


def test_lateness_is_recorded_in_real_seconds_only_for_clocks_tied_to_real_time() -> None:
    """Live: now − entry lands in its bucket (divided by the speed); a backfill records nothing."""
    real = SteppedClock(MIDNIGHT)
    clock = CatchUpClock(MIDNIGHT - 10 * US_PER_SECOND, real=real)
    metrics = Metrics(Health(60))
    metrics.running(clock)
    plan = plan_day(Model(daily_customers=1000), ROOT, DATE)
    batch = next(b for b in day_batches(ROOT, plan) if len(b) >= 3)
    encoded = encode_batch(plan, batch)
    metrics.emitted(encoded, 0, 3)  # catching up: no lateness
    assert value(metrics, "foot_traffic_emission_lateness_seconds_count") == 0
    clock.live = True
    entries = encoded.entries_us[:3].tolist()
    real.now = entries[2] + 5_000  # 5 ms after the third entry: right on a bucket's bound, which holds it
    metrics.emitted(encoded, 0, 3)
    late = [(real.now - e) / US_PER_SECOND for e in entries]
    assert value(metrics, "foot_traffic_emission_lateness_seconds_count") == 3
    assert value(metrics, "foot_traffic_emission_lateness_seconds_sum") == pytest.approx(sum(late))
    for bound in LATENESS_BUCKETS:
        below = sum(1 for s in late if s <= bound)
        assert value(metrics, "foot_traffic_emission_lateness_seconds_bucket", le=f"{bound:g}") == below
    assert value(metrics, "foot_traffic_emission_lateness_seconds_bucket", le="0.0025") == 0
    assert value(metrics, "foot_traffic_emission_lateness_seconds_bucket", le="0.005") == 1


def test_lateness_is_divided_by_the_clock_rate() -> None:
    """On a clock at 24 simulated seconds per real second, 48 simulated seconds late is 2 real seconds late."""
    clock = SteppedClock(MIDNIGHT)
    clock.rate = 24.0
    metrics = Metrics(Health(60))
    metrics.running(clock)
    plan = plan_day(Model(daily_customers=1000), ROOT, DATE)
    encoded = encode_batch(plan, next(iter(day_batches(ROOT, plan))))
    clock.now = int(encoded.entries_us[0]) + 48 * US_PER_SECOND
    metrics.emitted(encoded, 0, 1)
    assert value(metrics, "foot_traffic_emission_lateness_seconds_sum") == 2.0
    assert value(metrics, "foot_traffic_emission_lateness_seconds_bucket", le="1") == 0
    assert value(metrics, "foot_traffic_emission_lateness_seconds_bucket", le="2.5") == 1


def test_a_backfill_clock_records_no_lateness() -> None:
    """A clock running as fast as possible (rate ∞) is not tied to real time: nothing is late."""
    clock = ManualClock(MIDNIGHT)
    metrics = Metrics(Health(60))
    metrics.running(clock)
    plan = plan_day(Model(daily_customers=1000), ROOT, DATE)
    encoded = encode_batch(plan, next(iter(day_batches(ROOT, plan))))
    now = clock.reach(int(encoded.entries_us[-1]) + 10 * US_PER_SECOND)
    metrics.emitted(encoded, 0, len(encoded.entries_us))
    assert value(metrics, "foot_traffic_emission_lateness_seconds_count") == 0
    inside = sum(1 for exit_us in encoded.exits_us.tolist() if exit_us // US_PER_SECOND > now // US_PER_SECOND)
    assert inside > 0
    assert value(metrics, "foot_traffic_occupancy", store="") == inside, "occupancy is still recorded"


def test_health_goes_from_starting_to_running_to_stopping() -> None:
    """503 before the run is connected, 200 while it runs, 503 once its loop has ended."""
    health = Health(60, Monotonic())
    code, reason = health.status()
    assert (code, reason.split(":")[0]) == (503, "starting")
    health.running(lambda: 0)
    assert health.status() == (200, "ok: running")
    health.stopping()
    assert health.status()[0] == 503
    assert health.status()[1].startswith("stopping:")


def test_health_turns_503_only_past_the_threshold_with_events_waiting() -> None:
    """Brokers down: 200 up to the threshold, 503 past it while events wait, 200 again once a delivery is confirmed."""
    clock, waiting = Monotonic(), [250]
    health = Health(30, clock)
    health.running(lambda: waiting[0])
    health.broker_down()
    clock.now += 30
    code, reason = health.status()
    assert code == 200
    assert "unreachable for 30 s" in reason
    clock.now += 1
    code, reason = health.status()
    assert code == 503
    assert reason == (
        "unhealthy: Kafka unreachable for 31 s, more than HEALTH_UNREACHABLE_SECONDS=30; 250 event(s) waiting"
    )
    assert "\n" not in reason
    waiting[0] = 0
    assert health.status()[0] == 200, "nothing waiting: an outage harms nothing"
    waiting[0] = 5
    health.broker_down()  # reported again: the outage still dates from the first report
    assert health.status()[0] == 503
    health.broker_up()
    assert health.status() == (200, "ok: running")


def test_kafka_sink_counts_confirmations_and_failures_by_store_and_slot() -> None:
    """Delivery reports are counted under their event's (store, slot), from batches and single events alike."""
    metrics = Metrics(Health(60))
    metrics.running(ManualClock(MIDNIGHT), lambda: 0)
    sink, producer = fake_sink(metrics=metrics)
    plan = plan_day(Model(daily_customers=600), ROOT, DATE)
    batch = next(iter(day_batches(ROOT, plan)))
    encoded = encode_batch(plan, batch, "s-1")
    sink.send_batch(encoded, 0, 5)
    event = Event("c1", MIDNIGHT + 3600 * US_PER_SECOND, 20, "Monday", "07:00–09:59", 'north "2"')
    sink.send(event.customer_id, event.encode(), event.store_id, event.time_slot)
    sink.send_to("sensors", "c2", sensor_event("entry", "c2", "2025-01-06T01:00:00.000000+00:00"))
    for error in (None, None, KafkaError(KafkaError._MSG_TIMED_OUT), None, None, None, None):
        producer.deliver(error)
    assert value(metrics, "foot_traffic_events_delivered_total", store="s-1", slot=encoded.time_slot) == 4
    assert value(metrics, "foot_traffic_events_failed_total", store="s-1", slot=encoded.time_slot) == 1
    assert value(metrics, "foot_traffic_events_delivered_total", store='north "2"', slot="07:00–09:59") == 1
    assert (sink.delivered, sink.failed) == (6, 1), "the sensor event is counted by the sink, not by slot"


def test_kafka_sink_reports_outages_to_the_health_check() -> None:
    """The all-brokers-down report starts the unreachable timer; the next confirmed delivery stops it."""
    clock = Monotonic()
    metrics = Metrics(Health(5, clock))
    metrics.running(ManualClock(MIDNIGHT), lambda: 1)
    sink, producer = fake_sink(metrics=metrics)
    producer.config["error_cb"](KafkaError(KafkaError._ALL_BROKERS_DOWN))
    clock.now += 6
    assert metrics.health.status()[0] == 503
    sink.send("c1", b"{}", None, "00:00–06:59")
    producer.deliver(None)
    assert metrics.health.status()[0] == 200


def test_delivery_counters_are_kafka_only() -> None:
    """Without a producer queue (stdout, null) the delivery counters are not exported; the queue gauge is 0."""
    metrics = Metrics(Health(60))
    metrics.running(ManualClock(MIDNIGHT))
    metrics.planned(None, ["00:00–23:59"], [3])
    assert value(metrics, "foot_traffic_events_planned_total", store="", slot="00:00–23:59") == 3
    assert value(metrics, "foot_traffic_events_delivered_total", store="", slot="00:00–23:59") is None
    assert value(metrics, "foot_traffic_producer_queue_length") == 0
    metrics.running(ManualClock(MIDNIGHT), lambda: 42)
    assert value(metrics, "foot_traffic_events_delivered_total", store="", slot="00:00–23:59") == 0
    assert value(metrics, "foot_traffic_producer_queue_length") == 42


def test_kafka_sink_counts_under_the_labels_it_is_given_without_reading_the_event() -> None:
    """The store and slot come with the send: a value that is not even JSON is counted under them."""
    metrics = Metrics(Health(60))
    metrics.running(ManualClock(MIDNIGHT), lambda: 0)
    sink, producer = fake_sink(metrics=metrics)
    sink.send("c1", b"not json", 'a "quoted"\\ store', 'odd "slot"')
    producer.deliver(None)
    assert value(metrics, "foot_traffic_events_delivered_total", store='a "quoted"\\ store', slot='odd "slot"') == 1


def test_the_no_op_recorder_is_disabled() -> None:
    """Without METRICS_PORT the recorder reports itself disabled, so the sink keeps its plain callback."""
    assert NO_METRICS.enabled is False
    sink, _ = fake_sink()
    assert sink._report(None, "x") == sink._on_delivery


def test_late_duplicate_and_held_copies_are_counted_per_store() -> None:
    """The late, duplicate and held counters equal the copies of those kinds sent; every copy counts as emitted."""
    metrics = Metrics(Health(60))
    model = Model(daily_customers=3000)
    imp = Imperfections(late_pct=0.1, duplicate_pct=0.05, outages_per_day=3)
    run([StoreModel(model)], ManualClock(MIDNIGHT), metrics, imperfections=imp)
    plan = plan_day(model, ROOT, DATE)
    sending = day_sending(imp, ROOT, model, plan)
    kinds: Counter[str] = Counter()
    for rank in range(len(sending)):
        flags = sending.flags(rank)
        kinds.update(kind for kind, flag in (("late", LATE), ("duplicate", DUPLICATE), ("held", HELD)) if flags & flag)
    assert kinds["late"] > 0
    assert kinds["held"] > 0
    for kind in ("late", "duplicate", "held"):
        assert samples(metrics, f"foot_traffic_{kind}_events_total") == {("",): kinds[kind]}
    assert sum(samples(metrics, "foot_traffic_events_emitted_total").values()) == len(sending)


def test_late_copies_are_not_emission_lateness() -> None:
    """In real time, a late copy's delay (minutes here) is not counted as the loop's lateness."""
    metrics = Metrics(Health(60))
    clock = SteppedClock(MIDNIGHT)
    imp = Imperfections(late_pct=0.2, late_mean_s=600)
    run([StoreModel(Model(daily_customers=3000))], clock, metrics, poll_s=60, imperfections=imp)
    assert (value(metrics, "foot_traffic_late_events_total", store="") or 0) > 0
    late_s = value(metrics, "foot_traffic_emission_lateness_seconds_sum")
    assert late_s is not None
    assert late_s < 1.0


def test_second_copies_do_not_enter_the_store_twice() -> None:
    """Occupancy counts each customer once whether or not its event went twice."""
    model = Model(daily_customers=3000)
    twice, once = Metrics(Health(60)), Metrics(Health(60))
    run(
        [StoreModel(model)],
        SteppedClock(MIDNIGHT),
        twice,
        poll_s=60,
        imperfections=Imperfections(duplicate_pct=0.5, duplicate_max_s=0),
    )
    run([StoreModel(model)], SteppedClock(MIDNIGHT), once, poll_s=60)
    assert (value(twice, "foot_traffic_duplicate_events_total", store="") or 0) > 1000
    assert samples(twice, "foot_traffic_occupancy") == samples(once, "foot_traffic_occupancy")
    assert samples(twice, "foot_traffic_clock_seconds") == samples(once, "foot_traffic_clock_seconds")
