"""The report's plots, drawn with matplotlib's Agg canvas straight to PNG files (no pyplot, no display).

Each plot sets observed values against the model's: arrivals per local hour,
mean totals per weekday, visit durations, and occupancy over the day.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from foot_traffic.model.grid import WEEKDAYS
from foot_traffic.report.checks.expected import DURATIONS
from foot_traffic.report.curves import OCCUPANCY_STEP_MIN, Curves

OBSERVED = "#4c72b0"
EXPECTED = "#dd8452"
SIZE = (9.0, 4.5)
DPI = 100


def _save(path: Path, title: str, draw: Callable[[Axes], None]) -> None:
    """Draw one plot on a fresh figure and write it as PNG."""
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    draw(axes)
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    figure.savefig(path, format="png")


def arrivals(curves: Curves, axes: Axes) -> None:
    """Events per local hour of the day, summed over the days, against the expected count."""
    hours = np.arange(24)
    axes.bar(hours, curves.hours_observed, width=0.85, color=OBSERVED, label="observed")
    edges = np.arange(25) - 0.5
    expected = np.append(curves.hours_expected, curves.hours_expected[-1])
    axes.step(edges, expected, where="post", color=EXPECTED, linewidth=2, label="expected")
    axes.set_xticks(hours)
    axes.set_xlabel("local hour")
    axes.set_ylabel("events")


def weekdays(curves: Curves, axes: Axes) -> None:
    """Mean total of the whole days of each weekday against the model's mean, ± 2 standard deviations of the mean."""
    days = curves.weekday_days > 0
    x = np.arange(7)
    observed = np.where(days, curves.weekday_observed, 0.0)
    expected = np.where(days, curves.weekday_expected, 0.0)
    error = np.where(days, 2 * curves.weekday_error, 0.0)
    axes.bar(x, observed, width=0.6, color=OBSERVED, label="observed mean total")
    label = "model mean ± 2 s.d. of the mean"
    axes.errorbar(x[days], expected[days], yerr=error[days], fmt="o", color=EXPECTED, capsize=6, label=label)
    labels = [f"{name[:3]}\n({int(n)} d)" for name, n in zip(WEEKDAYS, curves.weekday_days, strict=True)]
    axes.set_xticks(x, labels)
    axes.set_ylabel("customers per day")


def durations(curves: Curves, axes: Axes) -> None:
    """Visits per whole-minute duration against the mixture's expected count."""
    axes.bar(DURATIONS, curves.durations_observed, width=0.85, color=OBSERVED, label="observed")
    axes.step(DURATIONS, curves.durations_expected, where="mid", color=EXPECTED, linewidth=2, label="mixture")
    axes.set_xlabel("visit duration (minutes)")
    axes.set_ylabel("visits")


def occupancy(curves: Curves, axes: Axes) -> None:
    """Mean number of customers inside at each time of day against the expected number."""
    hours = np.arange(curves.occupancy_observed.size) * OCCUPANCY_STEP_MIN / 60
    shown = np.isfinite(curves.occupancy_observed)
    axes.plot(hours[shown], curves.occupancy_observed[shown], color=OBSERVED, label="observed")
    axes.plot(hours[shown], curves.occupancy_expected[shown], color=EXPECTED, linestyle="--", label="expected")
    axes.set_xticks(np.arange(0, 25, 2))
    axes.set_xlabel("local time of day (hours)")
    axes.set_ylabel("customers inside")


PLOTS: tuple[tuple[str, str, str, Callable[[Curves, Axes], None]], ...] = (
    ("arrivals", "arrivals-per-hour.png", "Arrivals per hour against the expected curve", arrivals),
    ("weekdays", "weekday-totals.png", "Totals per weekday against popularity", weekdays),
    ("durations", "durations.png", "Visit durations against the mixture", durations),
    ("occupancy", "occupancy.png", "Occupancy over the day", occupancy),
)
"""(key, file name, title, drawing function) of each plot."""


def draw(curves: Curves, folder: Path) -> list[tuple[str, str, str]]:
    """Write every plot into ``folder``; return (key, file name, title) of each."""
    written = []
    for key, name, title, plot in PLOTS:
        _save(folder / name, title, functools.partial(plot, curves))
        written.append((key, name, title))
    return written
