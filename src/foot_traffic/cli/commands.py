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

from foot_traffic import __version__
from foot_traffic.cli import logs, run_command
from foot_traffic.cli.completion import SHELLS
from foot_traffic.cli.completion import script as completion_script
from foot_traffic.cli.run_command import EXIT_INTERRUPTED
from foot_traffic.config import effective
from foot_traffic.config.settings import SPECS, Settings, load_settings
from foot_traffic.errors import ConfigError, FootTrafficError
from foot_traffic.events.event import format_instant
from foot_traffic.events.schema import EVENT_SCHEMA
from foot_traffic.model import randomness
from foot_traffic.model.grid import UTC, datetime_to_us
from foot_traffic.model.plan import DayPlan, plan_day
from foot_traffic.report.command import add_arguments as add_report_arguments
from foot_traffic.report.command import main as report_main

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
    "config": (
        "examples:\n"
        "  foot-traffic config --config foot-traffic.toml\n"
        "  KAFKA_BROKER=broker:9092 foot-traffic config --daily-customers 500 --json\n"
    ),
    "completion": (
        "examples:\n"
        '  eval "$(foot-traffic completion bash)"          # in ~/.bashrc\n'
        '  foot-traffic completion zsh > "${fpath[1]}/_foot-traffic"\n'
        "  foot-traffic completion fish > ~/.config/fish/completions/foot-traffic.fish\n"
    ),
    "report": (
        "examples:\n"
        "  foot-traffic report --broker localhost:9092 --topic foot_traffic --seed demo\n"
        "  foot-traffic report --input week.jsonl --seed demo --start 2025-08-11 --until 2025-08-18 --format html\n"
        "  foot-traffic run --sink stdout --speed max --start 2025-08-11 --until 2025-08-12"
        " | foot-traffic report --input -\n"
    ),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors name the flag and what is expected, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as argparse does, but keep ``--opt=--`` as the value "--".

        Python 3.11's argparse drops a "--" even from ``--opt=--`` and hands the option an
        empty list; the settings' parsers expect text, and "--" is then reported as a bad value.
        """
        parsed, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            if action.option_strings and action.nargs is None and getattr(parsed, action.dest, None) == []:
                setattr(parsed, action.dest, "--")
        return parsed, extras


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
    config = commands.add_parser(
        "config",
        help="print every setting, its value and where it came from (secrets as ***)",
        epilog=EXAMPLES["config"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_argument("--json", action="store_true", help="one JSON object: each setting's value and origin.")
    _add_settings(config)
    commands.add_parser(
        "schema",
        help="print the JSON Schema of the events",
        epilog="examples:\n  foot-traffic schema > foot-traffic-event.schema.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion = commands.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        epilog=EXAMPLES["completion"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell: bash, zsh or fish.")
    report = commands.add_parser(
        "report",
        help="check events (Kafka or a JSON-lines file) against the model; write a summary and plots",
        description="Check events against the model the settings describe; write a summary and plots. "
        "Exit status: 0 the events fit, 1 a check failed, 2 bad input, 3 Kafka unreachable.",
        epilog=EXAMPLES["report"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_report_arguments(report)
    _add_settings(report)
    return parser


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
