"""Clocks: where "now" comes from, and how the service waits for the next deadline.

Instants are epoch microseconds. ``wait`` never blocks longer than
``max_wait_s`` real seconds, so the caller re-checks the clock (and its stop
flag) at least that often, and returns early when ``stop`` is set.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """The seam between the service loop and time."""

    def now_us(self) -> int:
        """Return the current instant in epoch microseconds."""
        ...

    def wait(self, until_us: int, max_wait_s: float, stop: threading.Event) -> None:
        """Block until ``until_us``, ``max_wait_s`` real seconds, or ``stop``, whichever is first."""
        ...

    def reach(self, until_us: int) -> int:
        """Move as far towards ``until_us`` as the clock can without sleeping; return the new now."""
        ...


class RealClock:
    """The wall clock: the specification's real-time behaviour."""

    def now_us(self) -> int:
        """Return the wall-clock time."""
        return time.time_ns() // 1000

    def wait(self, until_us: int, max_wait_s: float, stop: threading.Event) -> None:
        """Sleep on the stop flag, so a signal wakes the loop at once."""
        remaining_s = (until_us - self.now_us()) / 1e6
        if remaining_s > 0:
            stop.wait(min(remaining_s, max_wait_s, threading.TIMEOUT_MAX))  # beyond it wait() raises

    def reach(self, until_us: int) -> int:
        """Real time cannot be hurried: return now."""
        return self.now_us()


class ManualClock:
    """A clock that only moves when told to, or jumps to each deadline (``autojump``)."""

    def __init__(self, now_us: int, *, autojump: bool = True) -> None:
        self._now = now_us
        self.autojump = autojump
        self.waits = 0

    def now_us(self) -> int:
        """Return the clock's current instant."""
        return self._now

    def advance(self, delta_us: int) -> None:
        """Move the clock forward."""
        self._now += delta_us

    def wait(self, until_us: int, max_wait_s: float, stop: threading.Event) -> None:
        """Jump to the deadline when autojumping; otherwise only count the call."""
        self.waits += 1
        if self.autojump and until_us > self._now:
            self._now = until_us

    def reach(self, until_us: int) -> int:
        """Jump straight to ``until_us`` when autojumping."""
        if self.autojump and until_us > self._now:
            self._now = until_us
        return self._now


class AcceleratedClock:
    """Simulated time running ``speed`` simulated seconds per real second from ``start_us``.

    The clock starts running at its first reading, so that reading is exactly
    ``start_us`` however long the set-up between construction and the run took.
    """

    def __init__(self, start_us: int, speed: float) -> None:
        self._start = start_us
        self._speed = speed
        self._origin: int | None = None

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def now_us(self) -> int:
        """Return the simulated instant."""
        real_ns = time.monotonic_ns()
        if self._origin is None:
            self._origin = real_ns
        return self._start + int((real_ns - self._origin) // 1000 * self._speed)

    def wait(self, until_us: int, max_wait_s: float, stop: threading.Event) -> None:
        """Sleep the real time that separates now from the simulated deadline."""
        remaining_s = (until_us - self.now_us()) / 1e6 / self._speed
        if remaining_s > 0:
            stop.wait(min(remaining_s, max_wait_s, threading.TIMEOUT_MAX))  # beyond it wait() raises

    def reach(self, until_us: int) -> int:
        """Simulated time runs at its own pace: return now."""
        return self.now_us()


class CatchUpClock:
    """As fast as possible from ``start_us`` until the simulated time reaches the wall clock, then real time.

    This is backfill-then-live: the loop never notices the hand-over, so the
    day's plan and its events carry on without a gap or a duplicate.
    """

    def __init__(self, start_us: int, real: Clock | None = None) -> None:
        self._now = start_us
        self._real = real or RealClock()
        self.live = False

    def now_us(self) -> int:
        """Return the simulated instant, which is the wall clock once live."""
        if self.live:
            return self._real.now_us()
        return self._now

    def wait(self, until_us: int, max_wait_s: float, stop: threading.Event) -> None:
        """Jump to a past deadline; switch to real time at the first deadline in the future."""
        if not self.live:
            if until_us <= self._real.now_us():
                self._now = max(self._now, until_us)
                return
            self.live = True
        self._real.wait(until_us, max_wait_s, stop)

    def reach(self, until_us: int) -> int:
        """While catching up, jump as far as ``until_us`` or the wall clock, whichever is first."""
        if not self.live:
            self._now = max(self._now, min(until_us, self._real.now_us()))
        return self.now_us()
