"""A run's end: its summary line, the numbers a worker hands its parent, and how exit statuses rank.

A worker's numbers travel as one JSON object written to a pipe the parent
hands it, whose descriptor the internal variable ``FOOT_TRAFFIC_SUMMARY_FD``
names: the parent reads numbers, not log lines it would have to parse.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterable, Mapping
from dataclasses import asdict, astuple, dataclass, fields

log = logging.getLogger("foot_traffic")

SUMMARY_FD = "FOOT_TRAFFIC_SUMMARY_FD"
"""Internal: the descriptor a worker writes its summary to; set by the parent only."""

EXIT_OK, EXIT_UNDELIVERED, EXIT_BAD_INPUT, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a command interrupted by Ctrl-C."""
SEVERITY = (EXIT_OK, EXIT_UNDELIVERED, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_INTERRUPTED)
"""The statuses a run ends with, from best to worst: a parent exits with the worst of its workers'."""


@dataclass(frozen=True, slots=True)
class Counts:
    """The numbers of a run's summary line."""

    planned: int = 0
    emitted: int = 0
    delivered: int = 0
    failed: int = 0
    sensor_events: int = 0
    held: int = 0
    """Copies of entered visits a stopped run had not sent yet (late, held by an outage, second ones)."""

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def to_json(self) -> str:
        """The counts as one JSON object."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Counts:
        """Counts from ``to_json``'s object; ValueError if it is not one."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected JSON: {exc}") from None
        names = {f.name for f in fields(cls)}
        if not isinstance(document, dict) or not set(document) <= names:
            raise ValueError(f"expected an object with keys among {sorted(names)}: {text!r}")
        if not all(type(value) is int and value >= 0 for value in document.values()):
            raise ValueError(f"expected counts as integers >= 0: {text!r}")
        return cls(**document)


def total(counts: Iterable[Counts]) -> Counts:
    """The sum of several runs' counts."""
    result = Counts()
    for item in counts:
        result += item
    return result


def log_summary(counts: Counts, *, sensors: bool, restarts: int = 0) -> None:
    """Log the one summary line (sensor events when EXIT_EVENTS_TOPIC is set, restarts when there were some)."""
    fields = asdict(counts)
    text = "Summary: planned=%d emitted=%d delivered=%d failed=%d"
    args = [counts.planned, counts.emitted, counts.delivered, counts.failed]
    if sensors:
        text += " sensor_events=%d"
        args.append(counts.sensor_events)
    else:
        del fields["sensor_events"]
    if counts.held:  # planned = emitted + held, duplicates aside: nothing is lost silently
        text += " held=%d"
        args.append(counts.held)
    else:
        del fields["held"]
    if restarts:
        text += " restarts=%d"
        args.append(restarts)
        fields["restarts"] = restarts
    log.info(text, *args, extra=fields)


def send_summary(counts: Counts, env: Mapping[str, str] = os.environ) -> None:
    """Write a run's summary numbers to its parent's pipe when the run is a worker (else do nothing)."""
    fd = env.get(SUMMARY_FD)
    if not fd:
        return
    with contextlib.suppress(OSError, ValueError):  # a parent gone: nobody is left to read the numbers
        os.write(int(fd), counts.to_json().encode())  # < PIPE_BUF bytes into an empty pipe: one whole write


def receive_summary(fd: int) -> Counts | None:
    """Read a worker's numbers from the read end ``fd`` (closed after), None if it wrote none; ValueError if garbled."""
    chunks = []
    try:
        while data := os.read(fd, 4096):
            chunks.append(data)
    finally:
        os.close(fd)
    if not chunks:
        return None
    try:
        return Counts.from_json(b"".join(chunks).decode())
    except UnicodeDecodeError as exc:
        raise ValueError(f"expected UTF-8 JSON: {exc}") from None


def worst(statuses: Iterable[int]) -> int:
    """The worst of several exit statuses, in SEVERITY's order (0 when there are none)."""
    return max(statuses, key=SEVERITY.index, default=EXIT_OK)


def is_crash(returncode: int, counts: Counts | None) -> bool:
    """Whether a worker's end was a crash: killed by a signal, an unknown status, or 1 without a summary.

    A run that ends by itself always reports its summary, so 1 without one is
    an uncaught exception. 2 (bad input), 3 (Kafka unreachable) and 130
    (interrupted) are ends that a restart would only repeat.
    """
    return returncode not in SEVERITY or (returncode == EXIT_UNDELIVERED and counts is None)


def describe(returncode: int) -> str:
    """How a process ended, in words: its exit status, or the signal that killed it."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"
