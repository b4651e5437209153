"""``foot-traffic report``: check events against the model the settings describe, and write a summary.

Events come from KAFKA_TOPIC on KAFKA_BROKER (committed records, up to the end
offsets of the moment reading starts) or from a JSON-lines file (``--input``,
``-`` for standard input). The settings mean what they mean to ``run``: SEED,
the weights, calendar and stores files, TIMEZONE, ARRIVAL_MODEL…; START and
UNTIL bound the range compared. The summary (Markdown or HTML) and four PNG
plots go to ``--output``; one line on standard output says PASS or FAIL.

Values in the Schema Registry framing are read as plain events: JSON payloads
as they are, Avro payloads decoded with their writer schema from the registry at
SCHEMA_REGISTRY_URL (see :mod:`foot_traffic.report.inputs.framing`).

Exit status: 0 the events fit the model; 1 a check failed; 2 bad input (an
option, a setting, a line that is not an event, a missing file or topic, Avro
values without SCHEMA_REGISTRY_URL, or the ``report`` extra not installed);
3 Kafka or the schema registry unreachable.

This module stays light (no scipy, no matplotlib) so that the command line
loads fast; the readers, the checks and the plots are imported when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from foot_traffic.config import security
from foot_traffic.config.registry import tls as registry_tls
from foot_traffic.config.settings import Settings
from foot_traffic.errors import ConfigError
from foot_traffic.model import randomness
from foot_traffic.model.grid import us_to_datetime
from foot_traffic.report.document import (
    Block,
    Bullets,
    Heading,
    Image,
    Paragraph,
    Table,
    p_text,
    render_html,
    render_markdown,
)

if TYPE_CHECKING:
    from foot_traffic.report.analysis import Analysis
    from foot_traffic.report.checks.results import Check, Judgement
    from foot_traffic.report.inputs.events import Chunk, Events

DEFAULT_OUTPUT = "foot-traffic-report"
DEFAULT_ALPHA = "0.001"
FORMATS = ("md", "html")
INSTALL_HINT = "pip install 'foot-traffic[report]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's own flags (the settings are added by the command line)."""
    group = parser.add_argument_group("report")
    group.add_argument(
        "--input",
        metavar="FILE",
        help="read JSON lines from FILE ('-' for standard input) instead of KAFKA_TOPIC on KAFKA_BROKER.",
    )
    group.add_argument(
        "--output",
        metavar="DIR",
        default=DEFAULT_OUTPUT,
        help=f"folder of the summary and the plots, created if missing. Default: {DEFAULT_OUTPUT}.",
    )
    group.add_argument("--format", default="md", metavar="md|html", help="summary format. Default: md.")
    group.add_argument(
        "--alpha",
        default=DEFAULT_ALPHA,
        metavar="P",
        help=f"family-wise significance level, shared by the statistical tests (Bonferroni). Default: {DEFAULT_ALPHA}.",
    )


@dataclass(frozen=True, slots=True)
class Options:
    """The report's flags, checked."""

    input: str | None
    output: Path
    format: str
    alpha: float


def parse_options(args: argparse.Namespace) -> Options:
    """Check the report's flags; raise ConfigError naming each bad one, its value and what is expected."""
    problems = []
    fmt = str(args.format).strip().lower()
    if fmt not in FORMATS:
        problems.append(f"--format={args.format!r}: expected md or html")
    alpha = math.nan
    with contextlib.suppress(ValueError):
        alpha = float(args.alpha)
    if not 0 < alpha < 1:
        problems.append(f"--alpha={args.alpha!r}: expected a number between 0 and 1 (exclusive), such as 0.001")
    output = Path(args.output).expanduser()
    if output.exists() and not output.is_dir():
        problems.append(f"--output={args.output!r}: expected a folder (this is a file)")
    if args.input is not None and args.input != "-" and not Path(args.input).expanduser().is_file():
        problems.append(f"--input={args.input!r}: expected a readable file, or - for standard input (no such file)")
    if problems:
        raise ConfigError(problems)
    return Options(args.input, output, fmt, alpha)


def require_extras() -> None:
    """Import scipy and matplotlib, or raise ConfigError telling how to install them."""
    for module in ("scipy.stats", "matplotlib"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                [f"the report needs matplotlib and scipy ({exc}); install them with: {INSTALL_HINT}"]
            ) from None


def reproducible(settings: Settings) -> bool:
    """Whether the plan's counts are known exactly: SEED given, or a plan without random draws."""
    if settings.seed is not None:
        return True
    model = settings.model()
    return model.arrival_model == "uniform" and model.fixed_totals


def analyse(settings: Settings, events: Events) -> Analysis:
    """Check events against the model the settings describe, over START–UNTIL (what is not given: the events' span).

    Needs the report extra (scipy); raises EventsInputError when there is nothing to check.
    """
    from foot_traffic.report import analysis as report_analysis  # noqa: PLC0415 - needs the report extra

    scope = report_analysis.Scope(
        start_us=settings.start_us,
        until_us=settings.until_us,
        root=randomness.root_entropy(settings.seed) if reproducible(settings) else None,
        seeded=settings.seed is not None,
        imperfections=settings.imperfections(),
        kafka_timestamp=settings.kafka_timestamp,
    )
    return report_analysis.analyse(events, settings.store_models(), scope)


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run the report; return the exit status (KafkaUnavailableError, RegistryUnavailableError: the command line's)."""
    from foot_traffic.report.inputs.events import EventsInputError  # noqa: PLC0415 - only the report reads
    from foot_traffic.report.inputs.lines import read_events  # noqa: PLC0415

    try:
        options = parse_options(args)
        require_extras()
        from foot_traffic.report import plots as report_plots  # noqa: PLC0415 - need the report extra, checked above
        from foot_traffic.report.checks.results import judge  # noqa: PLC0415 - need the report extra, checked above

        events = read_events(_chunks(settings, options))
        analysis = analyse(settings, events)
    except (ConfigError, EventsInputError) as exc:
        for problem in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
            print(f"foot-traffic: error: {problem}", file=sys.stderr)
        return 2
    judgement = judge(analysis.checks, options.alpha)
    try:
        options.output.mkdir(parents=True, exist_ok=True)
        plots = report_plots.draw(analysis.curves, options.output)
        summary = options.output / f"report.{options.format}"
        blocks = document(settings, options, events, analysis=analysis, judgement=judgement, plots=plots)
        summary.write_text(render_html(blocks) if options.format == "html" else render_markdown(blocks), "utf-8")
    except OSError as exc:
        print(f"foot-traffic: error: --output={str(options.output)!r}: cannot write it ({exc})", file=sys.stderr)
        return 2
    print(summary_line(analysis, judgement, summary))
    return 0 if judgement.passed else 1


def _chunks(settings: Settings, options: Options) -> Iterator[Chunk]:
    if options.input is not None:
        from foot_traffic.report.inputs.files import input_chunks  # noqa: PLC0415 - only the report reads

        yield from input_chunks(options.input)
        return
    from foot_traffic.report.inputs.framing import RegistrySource  # noqa: PLC0415 - only a Kafka input needs them
    from foot_traffic.report.inputs.kafka import KafkaSource, kafka_chunks  # noqa: PLC0415

    registry = None
    if settings.schema_registry_url is not None:
        registry = RegistrySource(
            url=settings.schema_registry_url,
            user_info=settings.schema_registry_basic_auth_user_info,
            tls=registry_tls(settings),
            attempts=settings.max_retries,
            backoff_s=settings.retry_backoff_seconds,
            timeout_s=settings.connect_timeout_seconds,
        )
    source = KafkaSource(
        bootstrap=settings.broker,
        topic=settings.topic,
        client=security.client_config(settings),
        attempts=settings.max_retries,
        backoff_s=settings.retry_backoff_seconds,
        timeout_s=settings.connect_timeout_seconds,
        registry=registry,
    )
    yield from kafka_chunks(source)


def summary_line(analysis: Analysis, judgement: Judgement, summary: Path) -> str:
    """The one line that says whether the events fit, and where the details are."""
    checks = len(analysis.checks)
    scope = f"{checks} checks over {analysis.in_range:,} events, alpha {judgement.alpha:g}"
    if judgement.passed:
        return f"foot-traffic report: PASS ({scope}); details in {summary}"
    failed = ", ".join(judgement.failed)
    return f"foot-traffic report: FAIL: {failed} ({len(judgement.failed)} of {scope}); details in {summary}"


# --- the summary document (blocks of foot_traffic.report.document) ---


PLOT_OF_CHECK = {"counts": "arrivals", "weekdays": "weekdays", "durations": "durations"}
"""Which plot illustrates which check; the occupancy plot has a section of its own."""


def document(
    settings: Settings,
    options: Options,
    events: Events,
    *,
    analysis: Analysis,
    judgement: Judgement,
    plots: Sequence[tuple[str, str, str]],
) -> list[Block]:
    """The summary: what was read and compared, a table of verdicts, then each check with its tests and plots."""
    verdict = "PASS" if judgement.passed else "FAIL"
    images = {key: Image(file, title) for key, file, title in plots}
    blocks: list[Block] = [
        Heading(1, f"foot-traffic report: {verdict}"),
        Bullets(tuple(_context(settings, options, events, analysis, judgement))),
        Heading(2, "Summary"),
        Table(
            ("Check", "Tests", "Verdict"),
            tuple(
                (check.title, str(len(check.tests)), "FAIL" if check.title in judgement.failed else "pass")
                for check in analysis.checks
            ),
        ),
    ]
    for check in analysis.checks:
        blocks.extend(_check_blocks(check, judgement))
        if check.key in PLOT_OF_CHECK and PLOT_OF_CHECK[check.key] in images:
            blocks.append(images[PLOT_OF_CHECK[check.key]])
    if "occupancy" in images:
        blocks.append(Heading(2, "Occupancy over the day"))
        blocks.append(
            Paragraph(
                "Customers inside the store (entered, not yet left), averaged over the days at each time of day, "
                "against the expected arrivals carried forward by the duration mixture. Not judged."
            )
        )
        blocks.append(images["occupancy"])
    return blocks


def _instant(us: int, settings: Settings) -> str:
    return us_to_datetime(us, settings.timezone).isoformat()


def _context(
    settings: Settings, options: Options, events: Events, analysis: Analysis, judgement: Judgement
) -> Iterator[str]:
    if options.input is None:
        yield (
            f"Source: Kafka topic `{settings.topic}` on `{settings.broker}`, committed records "
            "(isolation.level=read_committed) up to the end offsets when reading began."
        )
    else:
        yield f"Source: `{'standard input' if options.input == '-' else options.input}`."
    stats = events.stats
    skipped = [f"{analysis.events - analysis.in_range:,} outside the range"]
    if stats.sensor:
        skipped.append(f"{stats.sensor:,} entry/exit sensor events")
    if stats.blank:
        skipped.append(f"{stats.blank:,} blank lines or empty records")
    yield f"Events: {analysis.events:,} read, {analysis.in_range:,} in the range; skipped: {', '.join(skipped)}."
    span = f"from {_instant(analysis.start_us, settings)} to {_instant(analysis.end_us, settings)} (exclusive)"
    if analysis.range_given:
        how = "given by START and UNTIL (--start, --until)"
    else:
        how = (
            "from the first event to the last (START/UNTIL fill in what is not given): the slots holding them are "
            "only partly covered, so those days are compared only where the range covers them"
        )
    yield (
        f"Range: {span}, {how}. {analysis.whole_days} whole day(s) and {analysis.partial_days} partial day(s); "
        "partial days enter only the comparisons that allow for them."
    )
    model = (
        f"ARRIVAL_MODEL={settings.arrival_model}, DAILY_TOTALS={settings.daily_totals}, "
        f"TIMEZONE={settings.timezone}, {len(settings.stores) or 1} store(s)"
    )
    if analysis.exact:
        how = "the plan is reproducible (SEED given, or no random draw), so whole days are compared exactly"
    else:
        how = "SEED is not given, so counts are compared with what the model implies given each day's total"
    yield f"Model: {model}; {how}."
    yield (
        f"Significance: alpha = {judgement.alpha:g} for the whole report. The {judgement.statistical} statistical "
        f"test(s) are each held to alpha / {max(judgement.statistical, 1)} = {judgement.level:.3g} (Bonferroni), "
        "so a data set that fits fails with probability at most alpha; exact conditions must simply hold."
    )


def _check_blocks(check: Check, judgement: Judgement) -> Iterator[Block]:
    yield Heading(2, check.title)
    yield Paragraph(check.description)
    rows = []
    for test in check.tests:
        verdict = judgement.verdicts[(check.key, test.name)]
        if test.skipped:
            p_value, threshold = "—", test.skipped
        elif test.p_value is not None:
            p_value, threshold = p_text(test.p_value), f"p ≥ {judgement.level:.3g}"
        else:
            p_value, threshold = "—", test.condition
        rows.append((test.name, test.statistic, p_value, threshold, verdict))
    yield Table(("Test", "Statistic", "p-value", "Threshold", "Verdict"), tuple(rows))
    for note in check.notes:
        yield Paragraph(note)
    yield from check.tables
