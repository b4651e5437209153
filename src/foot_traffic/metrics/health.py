"""The health check's state: what ``/healthz`` answers while a run goes on."""

from __future__ import annotations

import time
from collections.abc import Callable


class Health:
    """What ``/healthz`` answers: starting, running, Kafka unreachable for too long, or stopping.

    Unreachable means the Kafka client reported every broker down and no
    delivery has been confirmed since, while events wait in the producer's
    queue: with nothing to deliver (a closed store at night), an outage harms
    nothing, and the client only notices a recovery by confirming a delivery.
    """

    def __init__(self, threshold_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.threshold_s = threshold_s
        self._monotonic = monotonic
        self._phase = "starting"
        self._down_since: float | None = None
        self._waiting: Callable[[], int] = lambda: 0

    def running(self, waiting: Callable[[], int] | None = None) -> None:
        """The run is connected; ``waiting`` counts the events queued and not yet confirmed."""
        if waiting is not None:
            self._waiting = waiting
        self._phase = "running"

    def stopping(self) -> None:
        """The loop has ended."""
        self._phase = "stopping"

    def broker_down(self) -> None:
        """Remember when the brokers were first reported down."""
        if self._down_since is None:
            self._down_since = self._monotonic()

    def broker_up(self) -> None:
        """Kafka confirmed a delivery: it is reachable."""
        self._down_since = None

    def status(self) -> tuple[int, str]:
        """The HTTP status and the one-line reason."""
        if self._phase == "starting":
            return 503, "starting: not connected yet"
        if self._phase == "stopping":
            return 503, "stopping: the run is over, flushing and closing"
        down_since = self._down_since
        if down_since is None:
            return 200, "ok: running"
        down_s = self._monotonic() - down_since
        waiting = self._waiting()
        if down_s > self.threshold_s and waiting > 0:
            return 503, (
                f"unhealthy: Kafka unreachable for {down_s:.0f} s, more than HEALTH_UNREACHABLE_SECONDS="
                f"{self.threshold_s:g}; {waiting} event(s) waiting"
            )
        return 200, f"ok: running; Kafka unreachable for {down_s:.0f} s, {waiting} event(s) waiting"
