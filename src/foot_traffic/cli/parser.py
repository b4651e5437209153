"""The ``foot-traffic`` command-line parser: the commands, their own flags, and one flag per setting.

The settings' flags come from their declarations (foot_traffic.config.settings),
shown in ``--help`` one group per family of settings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from foot_traffic import __version__
from foot_traffic.cli.completion import SHELLS
from foot_traffic.config.settings import GROUPS, SPECS
from foot_traffic.report.command import add_arguments as add_report_arguments

USAGE = "%(prog)s [options]"
"""The usage line of a command that takes the settings: their flags fill ``--help``, not the usage line."""

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
    "schema": "examples:\n  foot-traffic schema > foot-traffic-event.schema.json\n",
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
    """One flag per setting, in one argument group per family of settings."""
    groups = {
        group: parser.add_argument_group(
            f"{group.title} settings", f"{group.description}; each flag overrides its environment variable."
        )
        for group in GROUPS
    }
    for spec in SPECS:
        default = f" Default: {spec.default}." if spec.default is not None else ""
        groups[spec.group].add_argument(
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
    _add_command(commands, "run", "stream events in real time")
    _add_command(commands, "plan", "print the plan that run would follow, without Kafka", own=_plan_arguments)
    _add_command(
        commands,
        "config",
        "print every setting, its value and where it came from (secrets as ***)",
        own=lambda config: config.add_argument(
            "--json", action="store_true", help="one JSON object: each setting's value and origin."
        ),
    )
    _add_command(commands, "schema", "print the JSON Schema of the events", settings=False)
    _add_command(
        commands,
        "completion",
        "print the shell completion script for bash, zsh or fish",
        own=lambda completion: completion.add_argument("shell", choices=SHELLS, help="the shell: bash, zsh or fish."),
        settings=False,
    )
    _add_command(
        commands,
        "report",
        "check events (Kafka or a JSON-lines file) against the model; write a summary and plots",
        own=add_report_arguments,
        description="Check events against the model the settings describe; write a summary and plots. "
        "Exit status: 0 the events fit, 1 a check failed, 2 bad input, 3 Kafka unreachable.",
    )
    return parser


def _add_command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    summary: str,
    *,
    own: Callable[[argparse.ArgumentParser], object] | None = None,
    settings: bool = True,
    description: str | None = None,
) -> None:
    """A command with its examples, its own arguments (``own``) and, if it reads them, the settings' flags."""
    command = commands.add_parser(
        name,
        usage=USAGE if settings else None,
        help=summary,
        description=description,
        epilog=EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if own is not None:
        own(command)
    if settings:
        _add_settings(command)


def _plan_arguments(plan: argparse.ArgumentParser) -> None:
    """The plan command's own flags: which days, when "now" is, and JSON output."""
    plan.add_argument("--date", help="first date, YYYY-MM-DD. Default: today (UTC).")
    plan.add_argument("--days", default="1", help="number of days. Default: 1.")
    plan.add_argument("--now", help="apply the mid-day start rule at this ISO-8601 instant.")
    plan.add_argument("--json", action="store_true", help="one JSON object per day per line.")
