"""The ``foot-traffic`` command line: ``run`` streams events, ``plan`` prints the plan.

Exit status: 0 success; 1 some events were not delivered; 2 invalid input
(nothing started, nothing sent); 3 Kafka unreachable or topic unusable;
130 aborted by a second interrupt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from foot_traffic import __version__, kafka_sink, logs, randomness
from foot_traffic.clock import RealClock
from foot_traffic.errors import ConfigError, DeliveryError, FootTrafficError
from foot_traffic.event import format_utc
from foot_traffic.grid import UTC, datetime_to_us
from foot_traffic.plan import DayPlan, plan_day
from foot_traffic.service import Service
from foot_traffic.settings import SPECS, Settings, load_settings
from foot_traffic.sinks import Sink, StdoutSink

log = logging.getLogger("foot_traffic")

EXAMPLES = {
    "run": (
        "examples:\n"
        "  KAFKA_BROKER=localhost:9092 DAILY_CUSTOMERS=20 foot-traffic run\n"
        "  foot-traffic run --sink stdout --seed demo --daily-customers 100000\n"
    ),
    "plan": (
        "examples:\n"
        "  foot-traffic plan --date 2025-08-12 --days 7 --seed demo\n"
        "  foot-traffic plan --date 2025-08-12 --now 2025-08-12T15:30:00+00:00 --json\n"
    ),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors name the flag and what is expected, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each overrides its environment variable)")
    for spec in SPECS:
        default = f" Default: {spec.default}." if spec.default is not None else ""
        group.add_argument(
            spec.flag,
            *spec.aliases,
            dest=spec.name,
            metavar=spec.env,
            help=f"{spec.help}{default}",
        )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command and flag."""
    parser = _Parser(
        prog="foot-traffic",
        description="Simulate customers arriving at a store and stream one JSON event per visit to Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser(
        "run",
        help="stream events in real time",
        epilog=EXAMPLES["run"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_settings(run)
    plan = commands.add_parser(
        "plan",
        help="print the plan that run would follow, without Kafka",
        epilog=EXAMPLES["plan"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("--date", help="first date, YYYY-MM-DD. Default: today (UTC).")
    plan.add_argument("--days", default="1", help="number of days. Default: 1.")
    plan.add_argument("--now", help="apply the mid-day start rule at this ISO-8601 instant.")
    plan.add_argument("--json", action="store_true", help="one JSON object per day per line.")
    _add_settings(plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``foot-traffic`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    flags = {spec.name: getattr(args, spec.name) for spec in SPECS}
    try:
        settings = load_settings(os.environ, flags)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"foot-traffic: error: {problem}", file=sys.stderr)
        return exc.exit_status
    logs.configure(settings.log_level)
    try:
        if args.command == "plan":
            return _plan(settings, args)
        return _run(settings)
    except FootTrafficError as exc:
        log.error("%s", exc)
        return exc.exit_status


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
    model = settings.model()
    for offset in range(days):
        plan = plan_day(model, root, start + dt.timedelta(days=offset), now_us=now_us)
        print(json.dumps(plan_json(plan), ensure_ascii=False) if args.json else plan.log_line())
    return 0


def plan_json(plan: DayPlan) -> dict[str, object]:
    """A plan as the JSON object printed by ``plan --json``."""
    return {
        "date": plan.date.isoformat(),
        "weekday": plan.weekday,
        "total": plan.total,
        "day_total": plan.day_total,
        "mean_total": plan.mean_total,
        "factor": plan.factor,
        "slots": [
            {
                "label": label,
                "start": format_utc(plan.bounds[i]),
                "end": format_utc(plan.bounds[i + 1]),
                "count": count,
            }
            for i, (label, count) in enumerate(zip(plan.labels, plan.counts, strict=True))
        ],
    }


def _run(settings: Settings) -> int:
    seed = settings.seed
    if seed is None:
        seed = secrets.token_hex(8)
        log.info("SEED is not set; this run uses SEED=%s (set it to replay the run)", seed)
    sink: Sink
    if settings.sink == "stdout":
        sink = StdoutSink(sys.stdout.buffer)
    else:
        kafka_sink.connect(
            settings.broker,
            settings.topic,
            attempts=settings.max_retries,
            backoff_s=settings.retry_backoff_seconds,
            attempt_timeout_s=settings.connect_timeout_seconds,
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
        )
        sink = kafka_sink.KafkaSink(settings.broker, settings.topic)
    stop = threading.Event()
    service = Service(
        settings.model(),
        randomness.root_entropy(seed),
        sink,
        RealClock(),
        poll_s=settings.poll_seconds,
        stop=stop,
    )
    _install_signal_handlers(stop)
    log.info(
        "Producing to %s", "standard output" if settings.sink == "stdout" else f"{settings.topic} on {settings.broker}"
    )
    error: DeliveryError | None = None
    try:
        try:
            service.run()
        except DeliveryError as exc:
            error = exc
            log.error("%s", exc)
        pending = sink.flush(settings.flush_timeout_seconds)
        if pending:
            log.error(
                "%d event(s) still unconfirmed after %.1f s; counted as failed", pending, settings.flush_timeout_seconds
            )
        sink.close()
    except KeyboardInterrupt:
        log.error("Aborted by a second interrupt; unconfirmed events were not waited for")
        _summary(service, sink)
        return 130
    _summary(service, sink)
    ok = error is None and sink.failed == 0 and sink.delivered == service.counters.emitted
    return 0 if ok else 1


def _summary(service: Service, sink: Sink) -> None:
    c = service.counters
    log.info(
        "Summary: planned=%d emitted=%d delivered=%d failed=%d",
        c.planned,
        c.emitted,
        sink.delivered,
        sink.failed,
    )


def _install_signal_handlers(stop: threading.Event) -> None:
    """First SIGINT/SIGTERM: stop and flush. A second one aborts."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("Received %s: stopping, flushing outstanding events", signal.Signals(signum).name)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _abort)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def _abort(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
