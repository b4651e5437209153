"""The ``foot-traffic`` command line: ``run`` streams events, ``plan`` prints the plan, ``config`` the settings.

Exit status: 0 success; 1 some events were not delivered; 2 invalid input
(nothing started, nothing sent); 3 Kafka unreachable or topic unusable;
130 aborted by a second interrupt, or interrupted (SIGINT) before the run's
loop started or while ``report`` or ``plan`` worked.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from foot_traffic.cli import logs
from foot_traffic.cli.completion import script as completion_script
from foot_traffic.cli.parser import build_parser
from foot_traffic.config import effective, registry, security
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS, Settings
from foot_traffic.errors import ConfigError, DeliveryError, FootTrafficError
from foot_traffic.events.event import format_instant
from foot_traffic.events.schema import EVENT_SCHEMA
from foot_traffic.kafka import sink as kafka_sink
from foot_traffic.kafka import transactions as exactly_once
from foot_traffic.kafka.deadletter import DeadLetterFile
from foot_traffic.metrics import prometheus as metrics
from foot_traffic.model import randomness
from foot_traffic.model.grid import UTC, datetime_to_us
from foot_traffic.model.plan import DayPlan, plan_day
from foot_traffic.report.command import main as report_main
from foot_traffic.run import stopping
from foot_traffic.run.clock import AcceleratedClock, CatchUpClock, Clock, ManualClock, RealClock
from foot_traffic.run.progress import Progress
from foot_traffic.run.service import ResumeAfter, Service
from foot_traffic.run.sinks import MemorySink, Sink, StdoutSink

log = logging.getLogger("foot_traffic")

EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a command interrupted by Ctrl-C."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``foot-traffic`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "schema":
        print(json.dumps(EVENT_SCHEMA, indent=2, ensure_ascii=False))
        return 0
    if args.command == "completion":
        sys.stdout.write(completion_script(args.shell, build_parser()))
        return 0
    return _configured(args)


def _configured(args: argparse.Namespace) -> int:
    """Run a command that reads the settings: config, plan, report or run."""
    flags = {spec.name: getattr(args, spec.name) for spec in SPECS}
    try:
        if args.command == "config":
            sys.stdout.write(effective.show(os.environ, flags, as_json=args.json))
            return 0
        settings = load_settings(os.environ, flags)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"foot-traffic: error: {problem}", file=sys.stderr)
        return exc.exit_status
    logs.configure(settings.log_level, settings.log_format)
    try:
        return _command(settings, args)
    except FootTrafficError as exc:
        log.error("%s", exc)
        return exc.exit_status
    except KeyboardInterrupt:  # Ctrl-C outside a run's loop (which stops gracefully): connecting, a report, a plan
        log.error("Interrupted by SIGINT before %s finished", args.command)
        return EXIT_INTERRUPTED


def _command(settings: Settings, args: argparse.Namespace) -> int:
    """Run a command that needs the settings: plan, report or run."""
    if args.command == "plan":
        return _plan(settings, args)
    if args.command == "report":
        return report_main(settings, args)
    return _run(settings)


def _parse_plan_args(args: argparse.Namespace) -> tuple[dt.date, int, int | None]:
    problems = []
    start = dt.datetime.now(UTC).date()
    if args.date is not None:
        try:
            start = dt.date.fromisoformat(args.date)
        except ValueError:
            problems.append(f"--date={args.date!r}: expected a date as YYYY-MM-DD")
    days = 1
    try:
        days = int(args.days)
        if not 1 <= days <= 36_600:
            raise ValueError
    except ValueError:
        problems.append(f"--days={args.days!r}: expected an integer between 1 and 36600")
    # a day's plan needs the dates on either side to exist: datetime ends at years 1 and 9999
    if not problems and not (start.year >= 2 and start.toordinal() + days - 1 <= dt.date(9998, 12, 31).toordinal()):
        problems.append(f"--date={start.isoformat()!r} with --days={days}: expected dates in the years 2 to 9998")
    now_us = None
    if args.now is not None:
        try:
            moment = dt.datetime.fromisoformat(args.now)
            now_us = datetime_to_us(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        except ValueError:
            problems.append(f"--now={args.now!r}: expected an ISO-8601 instant such as 2025-08-12T15:30:00+00:00")
    if problems:
        raise ConfigError(problems)
    return start, days, now_us


def _plan(settings: Settings, args: argparse.Namespace) -> int:
    try:
        start, days, now_us = _parse_plan_args(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"foot-traffic: error: {problem}", file=sys.stderr)
        return exc.exit_status
    if settings.seed is None and settings.variation_pct > 0 and settings.daily_customers is None:
        log.warning("SEED is not set: day-to-day variation makes this plan differ from any run")
    root = randomness.root_entropy(settings.seed)
    for store in settings.store_models():
        for offset in range(days):
            plan = plan_day(store.model, root, start + dt.timedelta(days=offset), now_us=now_us)
            if args.json:
                print(json.dumps(plan_json(plan, store.store_id), ensure_ascii=False))
            else:
                prefix = "" if store.store_id is None else f"[store {store.store_id}] "
                print(prefix + plan.log_line())
    return 0


def plan_json(plan: DayPlan, store_id: str | None = None) -> dict[str, object]:
    """A plan as the JSON object printed by ``plan --json``."""
    fields: dict[str, object] = {
        "date": plan.date.isoformat(),
        "weekday": plan.weekday,
        "total": plan.total,
        "day_total": plan.day_total,
        "mean_total": plan.mean_total,
        "factor": plan.factor,
        "slots": [
            {
                "label": label,
                "start": format_instant(plan.bounds[i], plan.tz),
                "end": format_instant(plan.bounds[i + 1], plan.tz),
                "count": count,
            }
            for i, (label, count) in enumerate(zip(plan.labels, plan.counts, strict=True))
        ],
    }
    if store_id is not None:
        fields["store_id"] = store_id
    return fields


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


def _progress(settings: Settings, clock: Clock) -> Progress | None:
    if not sys.stderr.isatty() or isinstance(clock, RealClock) or not settings.speed_is_max:
        return None
    if settings.log_format == "json":  # a line redrawn in place would break the one-object-a-line stream
        return None
    until = settings.until_us
    end: int | Callable[[], int] = until if until is not None else RealClock().now_us
    return Progress(sys.stderr, clock.now_us(), end, settings.timezone)


@dataclass(frozen=True, slots=True)
class _Output:
    """Where a run sends its events, and, for a resumed exactly-once run, where it picks up."""

    sink: Sink
    seed: str | None = None
    plan_start: int | None = None
    resume: dict[str | None, ResumeAfter] = field(default_factory=dict)
    clock_start: int | None = None


def _open_output(settings: Settings, recorder: metrics.Recorder = metrics.NO_METRICS) -> _Output:
    """Open the sink: stdout, null, or Kafka (checked, topics created; transactional with EXACTLY_ONCE).

    With SCHEMA_REGISTRY_URL the registry is reached first, so nothing touches Kafka when it is not.
    """
    if settings.sink == "stdout":
        return _Output(StdoutSink(sys.stdout.buffer))
    if settings.sink == "null":
        return _Output(MemorySink(keep=False))
    serializer = registry.connect(settings) if settings.schema_registry_url is not None else None
    topics = [settings.topic]
    if settings.exit_events_topic is not None:
        topics.append(settings.exit_events_topic)
    client = security.client_config(settings)
    kafka_sink.connect(
        settings.broker,
        topics,
        attempts=settings.max_retries,
        backoff_s=settings.retry_backoff_seconds,
        attempt_timeout_s=settings.connect_timeout_seconds,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        extra=client,
    )
    if not settings.exactly_once:
        return _Output(
            kafka_sink.KafkaSink(
                settings.broker,
                settings.topic,
                extra={**client, "message.timeout.ms": settings.delivery_timeout_ms},
                dead_letters=DeadLetterFile(settings.dead_letter_file),
                serializer=serializer,
                metrics=recorder,
            )
        )
    prepared = exactly_once.prepare(
        settings, settings.store_models, client, RealClock().now_us(), serializer=serializer, metrics=recorder
    )
    simulated = settings.speed_is_max or settings.speed is not None
    return _Output(
        prepared.sink,
        prepared.seed,
        prepared.start_us,
        prepared.resume,
        prepared.clock_start_us if simulated else None,
    )


def _run(settings: Settings) -> int:
    """Run with metrics served from before the connection to Kafka until the end, when METRICS_PORT is set."""
    with metrics.served(settings.metrics_port, settings.metrics_host, settings.health_unreachable_seconds) as recorder:
        return _run_with(settings, recorder)


def _run_with(settings: Settings, recorder: metrics.Recorder) -> int:
    output = _open_output(settings, recorder)
    sink = output.sink
    seed = settings.seed if output.seed is None else output.seed
    if seed is None:
        seed = secrets.token_hex(8)
        log.info("SEED is not set; this run uses SEED=%s (set it to replay the run)", seed)
    clock_start = settings.start_us if output.clock_start is None else output.clock_start
    stop = threading.Event()
    clock = make_clock(settings, clock_start)
    progress = _progress(settings, clock)
    service = Service(
        settings.store_models(),
        randomness.root_entropy(seed),
        sink,
        clock,
        poll_s=settings.poll_seconds,
        stop=stop,
        until_us=settings.until_us,
        sensor_topic=settings.exit_events_topic,
        progress=progress,
        start_us=output.plan_start,
        resume=output.resume,
        metrics=recorder,
    )
    with stopping.stop_on_signals(stop) as signals:
        return _produce(settings, service, progress=progress, recorder=recorder, clock=clock, signals=signals)


def _produce(
    settings: Settings,
    service: Service,
    *,
    progress: Progress | None,
    recorder: metrics.Recorder,
    clock: Clock,
    signals: stopping.Signals,
) -> int:
    """Run the service, flush and close its sink, log the summary; return the exit status."""
    sink = service.sink
    target = {"stdout": "standard output", "null": "nowhere (null sink)"}.get(
        settings.sink, f"{settings.topic} on {settings.broker}"
    )
    log.info("Producing to %s", target)
    error: DeliveryError | None = None
    recorder.running(clock, sink.pending if isinstance(sink, kafka_sink.KafkaSink) else None)
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
        _summary(service, sink)
        return EXIT_INTERRUPTED
    _summary(service, sink)
    sent = service.counters.emitted + service.counters.sensor_emitted
    ok = error is None and sink.failed == 0 and sink.delivered == sent
    return 0 if ok else 1


def _summary(service: Service, sink: Sink) -> None:
    c = service.counters
    sensors = f" sensor_events={c.sensor_emitted}" if service.sensor_topic is not None else ""
    fields = {"planned": c.planned, "emitted": c.emitted, "delivered": sink.delivered, "failed": sink.failed}
    if service.sensor_topic is not None:
        fields["sensor_events"] = c.sensor_emitted
    log.info(
        "Summary: planned=%d emitted=%d delivered=%d failed=%d%s",
        c.planned,
        c.emitted,
        sink.delivered,
        sink.failed,
        sensors,
        extra=fields,
    )
