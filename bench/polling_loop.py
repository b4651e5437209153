"""The specification's emission loop, as an anchor for real-time precision.

Check the wall clock, send every event whose entry_time has passed, then sleep SLEEP
seconds: events leave up to SLEEP late. Same model and settings as ``foot-traffic run``.
"""

from __future__ import annotations

import os
import sys
import time

from foot_traffic.config.resolve import load_settings
from foot_traffic.model import randomness
from foot_traffic.model.grid import local_date
from foot_traffic.model.plan import plan_day
from foot_traffic.run.clock import RealClock
from foot_traffic.run.timeline import day_events


def main() -> None:
    """Emit today's events from now on with the polling loop, as JSON lines on standard output."""
    settings = load_settings(os.environ)
    root = randomness.root_entropy(settings.seed)
    now = RealClock().now_us()
    plan = plan_day(settings.model(), root, local_date(now), now_us=now)
    out = sys.stdout.buffer
    events = day_events(root, plan)
    pending = next(events, None)
    while pending is not None:
        now = RealClock().now_us()
        while pending is not None and pending.entry_us <= now:
            out.write(pending.encode() + b"\n")
            pending = next(events, None)
        out.flush()
        time.sleep(settings.sleep)


if __name__ == "__main__":
    main()
