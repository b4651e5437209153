"""Occupancy: how many visitors are inside a store at the simulated now, in constant memory."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from foot_traffic.model.grid import US_PER_SECOND

OCCUPANCY_SPAN_S = 1 << 14
"""Seconds of future exits an occupancy ring holds: 4.5 hours, well beyond the longest visit (75 minutes)."""
_SPAN_MASK = OCCUPANCY_SPAN_S - 1
SMALL = 16
"""Below this many values, plain Python beats a numpy call."""


class Occupancy:
    """Visitors inside one store: handed-over visits whose exit is after the current second.

    A ring of counts per exit second, ``OCCUPANCY_SPAN_S`` long: adding a batch is
    a few numpy operations, and moving to a later second drops the exits it passes.
    Memory stays constant whatever the volume.
    """

    def __init__(self) -> None:
        self._ring = np.zeros(OCCUPANCY_SPAN_S, dtype=np.int64)
        self._inside = 0
        self._second: int | None = None

    def enter(self, exits_us: npt.NDArray[np.int64], now_us: int) -> None:
        """Count visits that have entered by ``now_us`` and leave at ``exits_us`` (within the span)."""
        self._drain(now_us // US_PER_SECOND)
        assert self._second is not None  # noqa: S101 - set by _drain
        second = self._second  # never behind the ring, even if the clock were
        if exits_us.shape[0] < SMALL:
            for exit_second in (exits_us // US_PER_SECOND).tolist():
                if exit_second > second:
                    self._ring[exit_second & _SPAN_MASK] += 1
                    self._inside += 1
            return
        # Exits already past go to the current second's bucket, empty since drained, and are taken out
        # of it: cheaper than selecting the others.
        seconds = exits_us // US_PER_SECOND
        np.maximum(seconds, second, out=seconds)
        seconds &= _SPAN_MASK
        np.add.at(self._ring, seconds, 1)
        past = int(self._ring[second & _SPAN_MASK])
        self._ring[second & _SPAN_MASK] = 0
        self._inside += int(seconds.shape[0]) - past

    def count(self, now_us: int) -> int:
        """Visitors inside at ``now_us``, to the second; changes nothing."""
        if self._second is None:
            return 0
        return self._inside - self._leaving(now_us // US_PER_SECOND)

    def _leaving(self, second: int) -> int:
        """Visitors counted inside whose exit second is after the last drained one and at most ``second``."""
        assert self._second is not None  # noqa: S101 - callers check
        gone = second - self._second
        if gone <= 0:
            return 0
        if gone >= OCCUPANCY_SPAN_S:
            return self._inside
        if gone < SMALL:
            ring = self._ring
            return sum(int(ring[(self._second + k) & _SPAN_MASK]) for k in range(1, gone + 1))
        return int(self._ring[self._window(second)].sum())

    def _window(self, second: int) -> npt.NDArray[np.int64]:
        assert self._second is not None  # noqa: S101 - callers check
        return np.arange(self._second + 1, second + 1) & _SPAN_MASK

    def _drain(self, second: int) -> None:
        """Forget the exits up to ``second``."""
        if self._second is None:
            self._second = second
            return
        gone = second - self._second
        if gone <= 0:
            return
        self._inside -= self._leaving(second)
        if gone >= OCCUPANCY_SPAN_S:
            self._ring[:] = 0
        elif gone < SMALL:
            for k in range(1, gone + 1):
                self._ring[(self._second + k) & _SPAN_MASK] = 0
        else:
            self._ring[self._window(second)] = 0
        self._second = second
