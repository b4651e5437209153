"""A one-line progress report on standard error for backfills: simulated time reached, events/s, ETA."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TextIO

from foot_traffic.model.grid import us_to_datetime


class Progress:
    """Redraws one terminal line at most every ``interval_s``, once the run has lasted ``after_s``.

    ``end_us`` gives the simulated instant the run ends at (UNTIL), or a function
    returning it (the wall clock, for a backfill that hands over to live time).
    """

    def __init__(
        self,
        stream: TextIO,
        start_us: int,
        end_us: int | Callable[[], int],
        tz: dt.tzinfo,
        *,
        after_s: float = 2.0,
        interval_s: float = 0.25,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._start = start_us
        self._end = end_us
        self._tz = tz
        self._after = after_s
        self._interval = interval_s
        self._monotonic = monotonic
        self._began = monotonic()
        self._last = 0.0
        self.drawn = False

    def __call__(self, sim_us: int, emitted: int) -> None:
        """Report the simulated instant reached and the events emitted so far."""
        now = self._monotonic()
        elapsed = now - self._began
        if elapsed < self._after or now - self._last < self._interval:
            return
        self._last = now
        self._stream.write("\r" + self.line(sim_us, emitted, elapsed))
        self._stream.flush()
        self.drawn = True

    def line(self, sim_us: int, emitted: int, elapsed_s: float) -> str:
        """The text of the progress line."""
        end = self._end() if callable(self._end) else self._end
        done = (sim_us - self._start) / max(1, end - self._start)
        rate = emitted / elapsed_s if elapsed_s > 0 else 0.0
        eta = "?"
        if 0 < done < 1:
            eta = str(dt.timedelta(seconds=round(elapsed_s * (1 - done) / done)))
        reached = us_to_datetime(sim_us, self._tz).strftime("%Y-%m-%d %H:%M")
        return f"backfill {reached} ({min(done, 1):6.1%}) | {emitted:,} events | {rate:,.0f} events/s | ETA {eta}   "

    def close(self) -> None:
        """End the progress line so later log lines start on their own."""
        if self.drawn:
            self._stream.write("\n")
            self._stream.flush()
