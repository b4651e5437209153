"""Clocks: where "now" comes from, and how far away a deadline is in real time.

Instants are epoch microseconds. A clock never sleeps: the service loop asks it
how many real seconds separate now from a deadline (:meth:`Clock.sleep_time`,
trio's ``deadline_to_sleep_time``) and does the waiting itself, on its stop flag.
A clock that need not wait for a deadline (a backfill's) jumps to it and answers
0, as trio's autojumping MockClock does.

``rate`` is simulated seconds per real second: 1 for real time, the speed of an
accelerated clock, ``math.inf`` (:data:`AS_FAST_AS_POSSIBLE`) for a clock that
jumps to every deadline (a backfill).
"""

from __future__ import annotations

import math
import time
from typing import Protocol

AS_FAST_AS_POSSIBLE = math.inf
"""The ``rate`` of a clock that jumps to every deadline instead of waiting for it."""


class Clock(Protocol):
    """The seam between the service loop and time."""

    @property
    def rate(self) -> float:
        """Simulated seconds per real second now: 1 real time, ``math.inf`` as fast as possible."""
        ...

    def now_us(self) -> int:
        """Return the current instant in epoch microseconds."""
        ...

    def sleep_time(self, deadline_us: int) -> float:
        """Real seconds until ``deadline_us`` (0 once reached); a clock that need not wait jumps there and says 0."""
        ...

    def reach(self, until_us: int) -> int:
        """Move as far towards ``until_us`` as the clock can without sleeping; return the new now."""
        ...


class RealClock:
    """The wall clock: the specification's real-time behaviour."""

    rate = 1.0

    def now_us(self) -> int:
        """Return the wall-clock time."""
        return time.time_ns() // 1000

    def sleep_time(self, deadline_us: int) -> float:
        """The real seconds left until the deadline."""
        return max(0.0, (deadline_us - self.now_us()) / 1e6)

    def reach(self, until_us: int) -> int:
        """Real time cannot be hurried: return now."""
        return self.now_us()


class ManualClock:
    """A clock that runs as fast as possible: it jumps to each deadline the loop asks about (trio's autojump)."""

    rate = AS_FAST_AS_POSSIBLE

    def __init__(self, now_us: int) -> None:
        self._now = now_us

    def now_us(self) -> int:
        """Return the clock's current instant."""
        return self._now

    def sleep_time(self, deadline_us: int) -> float:
        """Jump to the deadline if it is ahead: no real time needs to pass."""
        self.reach(deadline_us)
        return 0.0

    def reach(self, until_us: int) -> int:
        """Jump straight to ``until_us`` if it is ahead."""
        self._now = max(self._now, until_us)
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
    def rate(self) -> float:
        """Simulated seconds per real second: the speed."""
        return self._speed

    def now_us(self) -> int:
        """Return the simulated instant."""
        real_ns = time.monotonic_ns()
        if self._origin is None:
            self._origin = real_ns
        return self._start + int((real_ns - self._origin) // 1000 * self._speed)

    def sleep_time(self, deadline_us: int) -> float:
        """The real time that separates now from the simulated deadline."""
        return max(0.0, (deadline_us - self.now_us()) / 1e6 / self._speed)

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

    @property
    def rate(self) -> float:
        """As fast as possible while catching up, then real time."""
        return 1.0 if self.live else AS_FAST_AS_POSSIBLE

    def now_us(self) -> int:
        """Return the simulated instant, which is the wall clock once live."""
        if self.live:
            return self._real.now_us()
        return self._now

    def sleep_time(self, deadline_us: int) -> float:
        """Jump to a past deadline; switch to real time at the first deadline in the future."""
        if not self.live:
            if deadline_us <= self._real.now_us():
                self._now = max(self._now, deadline_us)
                return 0.0
            self.live = True
        return self._real.sleep_time(deadline_us)

    def reach(self, until_us: int) -> int:
        """While catching up, jump as far as ``until_us`` or the wall clock, whichever is first."""
        if not self.live:
            self._now = max(self._now, min(until_us, self._real.now_us()))
        return self.now_us()
