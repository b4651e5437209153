"""Where each unit of work stands: what exactly-once commits with its events, so a restart resumes right after.

The loop notes a unit's position *before* it hands the unit's events to the sink,
so whichever transaction carries those events also carries (at its commit) a
position at least as far: a committed position never points before a committed
event, and never past one, since an aborted transaction drops both.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from foot_traffic.model.units import Unit


@dataclass(frozen=True, slots=True)
class ResumeAfter:
    """A position in a store's sequence: the event at ``index`` among the events of ``date``."""

    date: dt.date
    index: int


@dataclass(frozen=True, slots=True)
class Position:
    """A unit's last event sent: its ``index`` among the events of ``date`` (-1: none yet), and the run's start.

    ``done``: nothing of the unit is left to send in this run (its date's last event went,
    or the run reached UNTIL). ``start_us`` is the start the plan was drawn with: the first
    day's mid-day plan depends on it.
    """

    date: dt.date
    index: int
    done: bool
    start_us: int

    def encode(self) -> bytes:
        """Serialise as JSON."""
        return json.dumps(
            {"date": self.date.isoformat(), "index": self.index, "done": self.done, "start_us": self.start_us}
        ).encode()

    @staticmethod
    def decode(raw: bytes) -> Position:
        """Parse the JSON form; ValueError (or KeyError) when it is not one."""
        data = json.loads(raw)
        date = dt.date.fromisoformat(data["date"])
        return Position(date, int(data["index"]), bool(data["done"]), int(data["start_us"]))

    def after(self, other: Position) -> bool:
        """Whether this position lies further along a store's sequence than ``other``."""
        return (self.date, self.index) > (other.date, other.index)


class Positions:
    """The latest position of every unit a run touched; ``take`` hands over those that changed since.

    With ``dated`` (a run with UNTIL) a unit is a store and a date, else a store.
    """

    def __init__(self, *, dated: bool, start_us: int) -> None:
        self.dated = dated
        self.start_us = start_us
        self._latest: dict[tuple[str | None, dt.date | None], Position] = {}
        self._changed: dict[tuple[str | None, dt.date | None], Position] = {}

    def note(self, store_id: str | None, date: dt.date, index: int, *, done: bool) -> None:
        """Record that the store's events of ``date`` up to ``index`` are about to be sent."""
        self._changed[store_id, date if self.dated else None] = Position(date, index, done, self.start_us)

    def reached_end(self) -> None:
        """The run reached UNTIL: every unit it touched is complete (its later events fall after UNTIL)."""
        for key, position in (self._latest | self._changed).items():
            if not position.done:
                self._changed[key] = Position(position.date, position.index, True, position.start_us)

    def finish(self, store_id: str | None, date: dt.date, resume: ResumeAfter | None) -> None:
        """A stream stopped at UNTIL: the unit of ``date`` is complete where it stands (``resume`` at least)."""
        key = (store_id, date if self.dated else None)
        known = self._changed.get(key) or self._latest.get(key)
        if known is not None:
            self._changed[key] = Position(known.date, known.index, True, known.start_us)
        elif resume is not None and resume.date == date:
            self._changed[key] = Position(date, resume.index, True, self.start_us)
        else:
            self._changed[key] = Position(date, -1, True, self.start_us)

    def forget(self, units: Iterable[Unit]) -> None:
        """Drop what is known of ``units``: they went to another process, or their transaction was aborted."""
        for unit in units:
            self._changed.pop((unit.store_id, unit.date), None)
            self._latest.pop((unit.store_id, unit.date), None)

    def pending(self) -> bool:
        """Whether some position changed since the last ``take``."""
        return bool(self._changed)

    def take(self) -> dict[Unit, Position]:
        """The units whose position changed since the last call, each with its latest position."""
        changed = {Unit(store_id, date): position for (store_id, date), position in self._changed.items()}
        self._merge()
        return changed

    def _merge(self) -> None:
        self._latest.update(self._changed)
        self._changed = {}


def resume_points(
    progress: Mapping[Unit, Position],
    owns: Callable[[Unit], bool],
    later: Callable[[str | None, Position, Position], bool] | None = None,
) -> dict[str | None, Position]:
    """Where each store resumes: its furthest position among store-wide units and the dated units ``owns`` accepts.

    ``later(store, a, b)`` orders a store's positions (default: by date, then index), as its
    events were sent.

    A process runs each store's units in time order and transactions commit in order,
    so everything before a store's furthest committed position among its own units is
    committed too. A store-wide unit (a run without UNTIL) covers the store's every
    date, whoever ran it; a dated unit speaks only for the dates of the process that
    ran it, which is the one that owns it.
    """
    points: dict[str | None, Position] = {}
    for unit, position in progress.items():
        if unit.date is not None and not owns(unit):
            continue
        best = points.get(unit.store_id)
        if best is None or (position.after(best) if later is None else later(unit.store_id, position, best)):
            points[unit.store_id] = position
    return points
