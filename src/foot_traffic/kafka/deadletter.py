"""The dead-letter file: every event Kafka could not confirm, one JSON line each.

A failed delivery report (a broker outage longer than the delivery timeout, a
purge at shutdown, a rejected record) must not lose the event: its topic, key,
value and the error are appended to this file, which is flushed after every
line so a crash right after loses nothing either. Replaying the file is a
matter of producing each line's ``value`` with its ``key`` to its ``topic``.

The file is opened on the first dead letter only, in append mode: a run that
delivers everything leaves no file behind, and an earlier run's lines are kept.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

DEFAULT_DEAD_LETTER_FILE = "foot-traffic-dead-letters.jsonl"
"""Default DEAD_LETTER_FILE, relative to the working directory."""


def dead_letter_line(topic: str, key: str, value: bytes, error: str) -> str:
    """One dead letter as a compact JSON line (with its newline); the value is the event's JSON text."""
    record = {"topic": topic, "key": key, "value": value.decode("utf-8", "replace"), "error": error}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


class DeadLetterFile:
    """Appends undelivered events to a JSON-lines file, flushed line by line, and counts them."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self.written = 0
        self.unwritten = 0
        self._file: IO[str] | None = None

    def write(self, topic: str, key: str, value: bytes, error: str) -> bool:
        """Append one undelivered event; False (and an error logged) if the file cannot take it."""
        try:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(dead_letter_line(topic, key, value, error))
            self._file.flush()
        except OSError as exc:
            self.unwritten += 1
            log.error("Cannot write customer_id=%s to the dead-letter file %s: %s", key, self.path, exc)
            return False
        self.written += 1
        return True

    def close(self) -> None:
        """Close the file and say how many events it received in this run (silent if it was never opened)."""
        if self._file is None:
            return
        try:
            self._file.close()
        except OSError as exc:
            log.error("Cannot close the dead-letter file %s: %s", self.path, exc)
        self._file = None
        log.warning("Dead letters: %d undelivered event(s) appended to %s", self.written, self.path)
