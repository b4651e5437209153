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
import sys
from collections.abc import Sequence

from foot_traffic.cli import logs, run_command, workers
from foot_traffic.cli.completion import script as completion_script
from foot_traffic.cli.parser import build_parser
from foot_traffic.cli.summary import EXIT_INTERRUPTED
from foot_traffic.config import effective
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS, Settings
from foot_traffic.errors import ConfigError, FootTrafficError
from foot_traffic.events.event import format_instant
from foot_traffic.events.schema import EVENT_SCHEMA
from foot_traffic.model import randomness
from foot_traffic.model.grid import UTC, datetime_to_us
from foot_traffic.model.imperfections import Sending, day_sending
from foot_traffic.model.plan import DayPlan, plan_day
from foot_traffic.report.command import main as report_main

log = logging.getLogger("foot_traffic")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``foot-traffic`` command; returns the exit status.

    A reader that closes standard output early (``foot-traffic plan | head``) ends the
    command quietly with status 1, as other line-writing tools do, not with a traceback.
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit fails no more
        return 1


def _main(argv: Sequence[str] | None) -> int:
    """Parse the command line and run its command."""
    args = build_parser().parse_args(argv)
    if args.command == "schema":
        print(json.dumps(EVENT_SCHEMA, indent=2, ensure_ascii=False))
        return 0
    if args.command == "completion":
        sys.stdout.write(completion_script(args.shell, build_parser()))
        return 0
    return _configured(args, sys.argv[1:] if argv is None else list(argv))


def _configured(args: argparse.Namespace, argv: list[str]) -> int:
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
        return _command(settings, args, argv)
    except FootTrafficError as exc:
        log.error("%s", exc)
        return exc.exit_status
    except KeyboardInterrupt:  # Ctrl-C outside a run's loop (which stops gracefully): connecting, a report, a plan
        log.error("Interrupted by SIGINT before %s finished", args.command)
        return EXIT_INTERRUPTED


def _command(settings: Settings, args: argparse.Namespace, argv: list[str]) -> int:
    """Run a command that needs the settings: plan, report or run (``argv``: the command line, for workers)."""
    if args.command == "plan":
        return _plan(settings, args)
    if args.command == "report":
        return report_main(settings, args)
    if settings.workers > 1:
        return workers.run(settings, argv)
    workers.follow_parent()
    return run_command.run(settings)


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
    imperfections = settings.imperfections()
    for store in settings.store_models():
        for offset in range(days):
            plan = plan_day(store.model, root, start + dt.timedelta(days=offset), now_us=now_us)
            if args.json:
                sending = day_sending(imperfections, root, store.model, plan) if imperfections.on else None
                print(json.dumps(plan_json(plan, store.store_id, sending), ensure_ascii=False))
            else:
                prefix = "" if store.store_id is None else f"[store {store.store_id}] "
                print(prefix + plan.log_line())
    return 0


def plan_json(plan: DayPlan, store_id: str | None = None, sending: Sending | None = None) -> dict[str, object]:
    """A plan as the JSON object printed by ``plan --json``; with ``sending``, its imperfections' ground truth."""
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
    if sending is not None:
        _ground_truth(fields, plan, sending)
    return fields


def _ground_truth(fields: dict[str, object], plan: DayPlan, sending: Sending) -> None:
    """Add to a plan's JSON each slot's late and duplicated visits, and the day's outages with the visits they hold."""
    slots = fields["slots"]
    assert isinstance(slots, list)  # noqa: S101 - built just above
    for slot, late, duplicated in zip(
        slots, sending.per_slot(sending.late), sending.per_slot(sending.duplicated), strict=True
    ):
        slot["late"] = late
        slot["duplicated"] = duplicated
    fields["outages"] = [
        {"start": format_instant(a, plan.tz), "end": format_instant(b, plan.tz), "held": sending.held_in((a, b))}
        for a, b in sending.outages
    ]
