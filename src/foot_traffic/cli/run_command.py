"""``foot-traffic run``: the composition root that wires the settings into a clock, a sink, metrics and the loop.

This is the only place that knows every concrete part: the service loop gets its
clock, sink, stop flag and recorder as arguments, and knows none of them by type.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from foot_traffic.cli import allocator, fleet_member, logs, summary
from foot_traffic.cli.summary import EXIT_INTERRUPTED
from foot_traffic.config import registry, security
from foot_traffic.config.settings import Settings
from foot_traffic.errors import DeliveryError
from foot_traffic.kafka import admin
from foot_traffic.kafka.checkpoints import CheckpointedSink
from foot_traffic.kafka.deadletter import DeadLetterFile
from foot_traffic.kafka.exactly_once import ExactlyOnce, prepare
from foot_traffic.kafka.fleet import Timeouts, timeouts
from foot_traffic.kafka.producer import KafkaSink, ValueSerializer
from foot_traffic.kafka.resume import fingerprint
from foot_traffic.kafka.transactions import Held
from foot_traffic.metrics.server import served
from foot_traffic.model import randomness
from foot_traffic.model.units import WHOLE
from foot_traffic.run import stopping
from foot_traffic.run.clock import AcceleratedClock, CatchUpClock, Clock, ManualClock, RealClock
from foot_traffic.run.ownership import Ownership
from foot_traffic.run.positions import Positions, ResumeAfter
from foot_traffic.run.progress import Progress
from foot_traffic.run.recording import NO_METRICS, Recorder
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink, Sink, StdoutSink

log = logging.getLogger("foot_traffic")


def make_clock(settings: Settings, start_us: int | None = None) -> Clock:
    """The clock the settings ask for: real, accelerated, as fast as possible, or backfill-then-live.

    ``start_us`` overrides START (a resumed run's clock starts where it stopped).
    """
    start = settings.start_us if start_us is None else start_us
    if settings.speed_is_max:
        begin = RealClock().now_us() if start is None else start
        return ManualClock(begin) if settings.until_us is not None else CatchUpClock(begin)
    if settings.speed is not None or start is not None:
        return AcceleratedClock(RealClock().now_us() if start is None else start, settings.speed or 1.0)
    return RealClock()


def simulated(settings: Settings) -> bool:
    """Whether the run's clock is simulated (SPEED or START set): a resumed run's then starts where the run stands."""
    return settings.speed_is_max or settings.speed is not None or settings.start is not None


def _progress(settings: Settings, clock: Clock) -> Progress | None:
    """A progress line for a backfill (a clock running as fast as possible) on a terminal, else None."""
    if not sys.stderr.isatty() or not math.isinf(clock.rate):
        return None
    if settings.log_format == "json":  # a line redrawn in place would break the one-object-a-line stream
        return None
    until = settings.until_us
    end: int | Callable[[], int] = until if until is not None else RealClock().now_us
    return Progress(sys.stderr, clock.now_us(), end, settings.timezone)


@dataclass(frozen=True, slots=True)
class _Output:
    """Where a run sends its events, and, for a resumed exactly-once run, where it picks up.

    ``queue_length`` reads the producer's queue, for a sink that has one (Kafka).
    """

    sink: Sink
    queue_length: Callable[[], int] | None = None
    seed: str | None = None
    plan_start: int | None = None
    resume: dict[str | None, ResumeAfter] = field(default_factory=dict)
    clock_start: int | None = None
    positions: Positions | None = None
    ownership: Ownership | None = None
    leave: Callable[[], None] | None = None
    """Leave the fleet (its last transaction committed) before the sink closes."""
    withdrawn: Callable[[], Held] = Held
    """Events of aborted transactions that a rewind sends again: the loop emitted them twice."""


def plan_settings(settings: Settings) -> dict[str, object]:
    """The settings a run's plan depends on (not the clock, the sink or the logging): exactly-once's fingerprint.

    A change here changes the fingerprint of every run, and a topic written before would no longer resume.
    A sharded run adds what cuts it into units: its shards' count and FLEET_PARTITIONS.
    """
    plan: dict[str, object] = {
        "topic": settings.topic,
        "weights": settings.weights,
        "base_daily_customers": settings.base_daily_customers,
        "daily_customers": settings.daily_customers,
        "variation_pct": settings.variation_pct,
        "timezone": str(settings.timezone),
        "arrival_model": settings.arrival_model,
        "daily_totals": settings.daily_totals,
        "daily_dispersion": settings.daily_dispersion,
        "calendar": settings.calendar,
        "stores": settings.stores,
    }
    if settings.shard is not None:
        plan |= {"shards": settings.shard.count, "fleet_partitions": settings.fleet_partitions}
    if settings.imperfections().on:  # when and how often events go: a restart must draw the same
        plan["imperfections"] = (settings.imperfections(), settings.explicit_outages())
    return plan


def transactional_id(settings: Settings) -> str:
    """KAFKA_TRANSACTIONAL_ID (default foot-traffic-<topic>), with -shard-<I>-of-<N> for a shard: one per process."""
    base = settings.transactional_id or f"foot-traffic-{settings.topic}"
    shard = settings.shard
    return base if shard is None else f"{base}-shard-{shard.index}-of-{shard.count}"


def exactly_once(settings: Settings, client: Mapping[str, str], fleet: Timeouts | None = None) -> ExactlyOnce:
    """What the exactly-once start-up needs from the settings (``client``: the Kafka client properties).

    A fleet member (``fleet``: its timeouts) has a transactional id of its own and the fleet's transaction timeout.
    """
    if fleet is not None and settings.fleet_id is not None:
        return replace(
            exactly_once(settings, client),
            transactional_id=fleet_member.transactional_id(settings, settings.fleet_id),
            fleet=True,
            producer=fleet.producer_properties(),
        )
    return ExactlyOnce(
        broker=settings.broker,
        topic=settings.topic,
        extra=client,
        replication_factor=settings.topic_replication_factor,
        timeout_s=settings.connect_timeout_seconds,
        transactional_id=transactional_id(settings),
        commit_interval_s=settings.commit_interval_ms / 1000,
        fingerprint=fingerprint(plan_settings(settings)),
        seed=settings.seed,
        start_us=settings.start_us,
        start_text=settings.start.isoformat() if settings.start else "",
        dated=settings.until is not None,
        shard=settings.shard,
        partitions=None if settings.shard is None else settings.fleet_partitions,
        entry_timestamps=settings.kafka_timestamp == "entry",
        imperfections=settings.imperfections(),
        attempts=settings.max_retries,
        backoff_s=settings.retry_backoff_seconds,
    )


def _warn_retention(settings: Settings, client: Mapping[str, str]) -> None:
    """Warn once when entry timestamps from START on are already older than the topic keeps records."""
    retention = admin.retention_ms(settings.broker, settings.topic, client, settings.connect_timeout_seconds)
    start_us = settings.start_us
    if retention is None or retention < 0 or start_us is None:
        return
    age_ms = time.time_ns() // 1_000_000 - start_us // 1000
    if age_ms > retention:
        log.warning(
            "KAFKA_TIMESTAMP=entry: events from START=%s on are %.1f day(s) old, past KAFKA_TOPIC=%r's "
            "retention.ms=%d; the broker may delete them at once",
            settings.start.isoformat() if settings.start else "",
            age_ms / 86_400_000,
            settings.topic,
            retention,
        )


def _open_output(settings: Settings, recorder: Recorder = NO_METRICS) -> _Output:
    """Open the sink: stdout, null, or Kafka (checked, topics created; transactional with EXACTLY_ONCE).

    With SCHEMA_REGISTRY_URL the registry is reached first, so nothing touches Kafka when it is not.
    """
    fleet = None if settings.fleet_id is None else timeouts(os.environ)
    if settings.sink == "stdout":
        return _Output(StdoutSink(sys.stdout.buffer))
    if settings.sink == "null":
        return _Output(MemorySink(keep=False))
    serializer = registry.connect(settings) if settings.schema_registry_url is not None else None
    client = _connect_kafka(settings)
    plain = None
    if not settings.exactly_once:
        plain = KafkaSink(
            settings.broker,
            settings.topic,
            extra={**client, "message.timeout.ms": settings.delivery_timeout_ms},
            dead_letters=DeadLetterFile(settings.dead_letter_file),
            serializer=serializer,
            metrics=recorder,
            entry_timestamps=settings.kafka_timestamp == "entry",
        )
        if fleet is None:
            return _Output(plain, plain.pending)
    return _committed_output(settings, client, recorder, serializer=serializer, plain=plain, fleet=fleet)


def _connect_kafka(settings: Settings) -> dict[str, Any]:
    """Reach the cluster and create the missing topics; return the client's security configuration."""
    topics = [settings.topic]
    if settings.exit_events_topic is not None:
        topics.append(settings.exit_events_topic)
    client = security.client_config(settings)
    admin.connect(
        settings.broker,
        topics,
        attempts=settings.max_retries,
        backoff_s=settings.retry_backoff_seconds,
        attempt_timeout_s=settings.connect_timeout_seconds,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        extra=client,
    )
    if settings.kafka_timestamp == "entry":
        _warn_retention(settings, client)
    return client


def _committed_output(
    settings: Settings,
    client: dict[str, Any],
    recorder: Recorder,
    *,
    serializer: ValueSerializer | None,
    plain: KafkaSink | None,
    fleet: Timeouts | None,
) -> _Output:
    """The output of a run that commits its progress: exactly once, or a fleet's checkpoints over ``plain``."""
    if fleet is not None:
        fleet_member.control_topic(settings, client)
    prepared = prepare(
        exactly_once(settings, client, fleet),
        settings.store_models,
        RealClock().now_us(),
        serializer=serializer if plain is None else None,
        metrics=recorder,
        settle=None if plain is None else plain.flush,
    )
    output = _Output(
        prepared.sink,
        prepared.sink.pending,
        prepared.seed,
        prepared.start_us,
        prepared.resume,
        prepared.clock_start_us if simulated(settings) else None,
        prepared.positions,
        withdrawn=lambda: prepared.sink.withdrawn,
    )
    if plain is not None:  # a fleet without EXACTLY_ONCE: events outside transactions, positions checkpointed
        interval = settings.commit_interval_ms / 1000
        events = CheckpointedSink(plain, prepared.sink, prepared.positions, interval_s=interval)
        output = replace(output, sink=events, queue_length=plain.pending)
    if fleet is None:
        return output
    try:
        member = fleet_member.join(
            settings, client, prepared.sink, prepared.positions, start_us=prepared.start_us, recorder=recorder
        )
    except BaseException:
        output.sink.close()
        raise
    return replace(output, ownership=member.ownership, leave=member.membership.close)


def run(settings: Settings) -> int:
    """Run with metrics served from before the connection to Kafka until the end, when METRICS_PORT is set.

    A backfill (SPEED=max with UNTIL) keeps freed memory for its next batches; a run that
    goes on in real time keeps the allocator's defaults, under which no event waits on it.
    """
    if settings.speed_is_max and settings.until is not None:
        allocator.keep_freed_memory()
    with served(settings.metrics_port, settings.metrics_host, settings.health_unreachable_seconds) as recorder:
        return _run_with(settings, recorder)


def _run_with(settings: Settings, recorder: Recorder) -> int:
    output = _open_output(settings, recorder)
    seed = settings.seed if output.seed is None else output.seed
    if seed is None:
        seed = secrets.token_hex(8)
        log.info("SEED is not set; this run uses SEED=%s (set it to replay the run)", seed)
    if settings.shard is not None and settings.start is None and output.plan_start is None:
        log.warning(
            "Shard %s without START cuts its first day at its own start; give every shard the same START "
            "for the shards together to equal one run",
            settings.shard,
        )
    if settings.fleet_id is not None:
        log.info("Member of fleet %s (consumer group foot-traffic.%s)", settings.fleet_id, settings.fleet_id)
    clock_start = settings.start_us if output.clock_start is None else output.clock_start
    stop = threading.Event()
    clock = make_clock(settings, clock_start)
    progress = _progress(settings, clock)
    service = Service(
        settings.store_models(),
        randomness.root_entropy(seed),
        output.sink,
        clock,
        poll_s=settings.poll_seconds,
        stop=stop,
        until_us=settings.until_us,
        sensor_topic=settings.exit_events_topic,
        progress=progress,
        start_us=output.plan_start,
        resume=output.resume,
        metrics=recorder,
        log_fields=logs.fields_wanted(),
        shard=settings.shard or WHOLE,
        partitions=settings.fleet_partitions,
        positions=output.positions,
        ownership=output.ownership,
        imperfections=settings.imperfections(),
    )
    with stopping.stop_on_signals(stop) as signals:
        return _produce(settings, service, output, progress=progress, recorder=recorder, signals=signals)


def _produce(
    settings: Settings,
    service: Service,
    output: _Output,
    *,
    progress: Progress | None,
    recorder: Recorder,
    signals: stopping.Signals,
) -> int:
    """Run the service, flush and close its sink, log the summary; return the exit status."""
    sink = service.sink
    target = {"stdout": "standard output", "null": "nowhere (null sink)"}.get(
        settings.sink, f"{settings.topic} on {settings.broker}"
    )
    log.info("Producing to %s", target)
    error: DeliveryError | None = None
    recorder.running(service.clock, output.queue_length)
    try:
        try:
            service.run()
        except DeliveryError as exc:
            error = exc
            log.error("%s", exc)
        finally:
            recorder.stopping()
            if progress is not None:
                progress.close()
        if output.leave is not None:
            output.leave()
        pending = sink.flush(settings.flush_timeout_seconds)
        if signals.aborting:  # the interrupt may have been swallowed inside the Kafka client's callbacks
            raise KeyboardInterrupt
        if pending:
            log.error(
                "%d event(s) still unconfirmed after %.1f s; counted as failed",
                pending,
                settings.flush_timeout_seconds,
            )
        sink.close()
    except BaseException as exc:
        if not stopping.is_abort(exc):
            raise
        signals.taken()
        log.error("Aborted by a second interrupt; unconfirmed events were not waited for")
        _summary(service, sink, output.withdrawn())
        return EXIT_INTERRUPTED
    counts = _summary(service, sink, output.withdrawn())
    ok = error is None and counts.failed == 0 and counts.delivered == counts.emitted + counts.sensor_events
    return 0 if ok else 1


def _summary(service: Service, sink: Sink, withdrawn: Held) -> summary.Counts:
    """Log the summary line and, for a worker, hand its numbers to the parent; return them.

    Events of aborted transactions that were sent again count once: ``withdrawn`` leaves the emitted counts.
    """
    c = service.counters
    emitted, sensors = c.emitted - withdrawn.events, c.sensor_emitted - withdrawn.others
    counts = summary.Counts(c.planned, emitted, sink.delivered, sink.failed, sensors, c.held)
    summary.log_summary(counts, sensors=service.sensor_topic is not None)
    summary.send_summary(counts)
    return counts
