"""The backfill progress line."""

from __future__ import annotations

import io
import sys

import pytest

from foot_traffic.cli.run_command import _progress
from foot_traffic.config.resolve import load_settings
from foot_traffic.model.grid import UTC
from foot_traffic.run.clock import AcceleratedClock, CatchUpClock, Clock, ManualClock, RealClock
from foot_traffic.run.progress import Progress

HOUR = 3_600_000_000


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_waits_two_seconds_then_reports_time_rate_and_eta() -> None:
    """Nothing is drawn in the first seconds; then the line shows simulated time, events/s and ETA."""
    out, tick = io.StringIO(), Ticker()
    progress = Progress(out, 0, 10 * HOUR, UTC, monotonic=tick)
    tick.t = 1.0
    progress(HOUR, 1000)
    assert out.getvalue() == ""
    tick.t = 4.0
    progress(2 * HOUR, 40_000)
    line = out.getvalue()
    assert line.startswith("\rbackfill 1970-01-01 02:00 ( 20.0%) | 40,000 events | 10,000 events/s | ETA 0:00:16")
    progress.close()
    assert out.getvalue().endswith("\n")


def test_progress_redraws_at_most_every_interval() -> None:
    """Reports closer together than the interval are skipped."""
    out, tick = io.StringIO(), Ticker()
    progress = Progress(out, 0, HOUR, UTC, after_s=0, interval_s=1.0, monotonic=tick)
    tick.t = 1.0
    progress(1, 1)
    tick.t = 1.5
    progress(2, 2)
    assert out.getvalue().count("\r") == 1


def test_no_line_no_newline() -> None:
    """A short run that never drew a line leaves standard error untouched."""
    out = io.StringIO()
    Progress(out, 0, HOUR, UTC).close()
    assert out.getvalue() == ""


class Terminal(io.StringIO):
    """Standard error as a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("clock", "fmt", "shown"),
    [
        (ManualClock(HOUR), "text", True),
        (CatchUpClock(HOUR), "text", True),
        (AcceleratedClock(HOUR, 3600.0), "text", False),
        (RealClock(), "text", False),
        (ManualClock(HOUR), "json", False),
    ],
    ids=["backfill", "backfill-then-live", "accelerated", "real", "json-logs"],
)
def test_the_line_is_drawn_for_clocks_that_run_as_fast_as_possible(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, fmt: str, shown: bool
) -> None:
    """Only a backfill's clock (rate ∞) on a terminal, with text logs, gets a progress line."""
    monkeypatch.setattr(sys, "stderr", Terminal())
    settings = load_settings({"SPEED": "max", "LOG_FORMAT": fmt, "UNTIL": "2025-08-18"})
    assert (_progress(settings, clock) is not None) == shown
