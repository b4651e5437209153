"""The one retry helper: bounded attempts a fixed backoff apart, a log line per retry.

Every start-up call that may fail for a while (reaching Kafka, the schema
registry, the report's topic) goes through :func:`retrying`. An attempt that may
succeed later raises :class:`Retryable` with the reason; any other exception is
final at once. ``sleep`` is a seam: tests pass a recorder and never wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class Retryable(Exception):  # noqa: N818 - it names what the failure is, not that it is an error
    """An attempt failed in a way another attempt may not: ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetriesExhausted(Exception):  # noqa: N818 - the outcome, caught and reworded by each caller
    """Every attempt failed; ``reason`` is the last one's."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often and how far apart to try: ``attempts`` in all, ``seconds`` between two."""

    attempts: int
    seconds: float
    sleep: Callable[[float], None] = time.sleep


def retrying(attempt: Callable[[], T], backoff: Backoff, what: str) -> T:
    """``attempt``'s result, tried up to ``backoff.attempts`` times while it raises Retryable.

    Before each retry, logs ``<what> not reachable (attempt i of n): <reason>; retrying in s``
    at WARNING. After the last failure, raises RetriesExhausted with the last reason.
    """
    reason = ""
    for number in range(1, backoff.attempts + 1):
        try:
            return attempt()
        except Retryable as exc:
            reason = exc.reason
        if number < backoff.attempts:
            log.warning(
                "%s not reachable (attempt %d of %d): %s; retrying in %.1f s",
                what,
                number,
                backoff.attempts,
                reason,
                backoff.seconds,
            )
            backoff.sleep(backoff.seconds)
    raise RetriesExhausted(reason, backoff.attempts)
