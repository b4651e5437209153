"""Clocks: real, accelerated, manual (max speed) and backfill-then-live."""

from __future__ import annotations

import threading

from foot_traffic.run.clock import AcceleratedClock, CatchUpClock, ManualClock, RealClock


class StubReal:
    """A wall clock that only moves when a test says so; records real waits."""

    def __init__(self, now_us: int) -> None:
        self.now = now_us
        self.waits: list[tuple[int, float]] = []

    def now_us(self) -> int:
        return self.now

    def wait(self, until_us: int, max_wait_s: float, stop: threading.Event) -> None:
        self.waits.append((until_us, max_wait_s))
        self.now = min(until_us, self.now + int(max_wait_s * 1e6))

    def reach(self, until_us: int) -> int:
        return self.now


def test_manual_clock_jumps_to_each_deadline() -> None:
    """The max-speed clock never sleeps: waiting moves it straight to the deadline."""
    clock = ManualClock(1_000)
    clock.wait(5_000, 0.5, threading.Event())
    assert clock.now_us() == 5_000
    clock.wait(4_000, 0.5, threading.Event())
    assert clock.now_us() == 5_000


def test_accelerated_clock_runs_speed_times_faster() -> None:
    """At speed 1000, a real wait of about 10 ms moves simulated time by about 10 s."""
    clock = AcceleratedClock(0, 1000.0)
    stop = threading.Event()
    clock.wait(10_000_000, 5.0, stop)
    assert clock.now_us() >= 10_000_000
    assert clock.now_us() < 10_000_000 + 2_000_000_000  # under two real seconds, even on a busy machine


def test_accelerated_wait_is_capped_by_the_poll_interval() -> None:
    """A far deadline still returns after at most max_wait_s real seconds."""
    clock = AcceleratedClock(0, 1.0)
    real = RealClock()
    before = real.now_us()
    clock.wait(3_600_000_000, 0.05, threading.Event())
    assert real.now_us() - before < 2_000_000


def test_catch_up_clock_jumps_through_the_past_then_goes_live() -> None:
    """Deadlines in the past are reached at once; the first future one switches to the wall clock."""
    real = StubReal(100_000_000)
    clock = CatchUpClock(10_000_000, real)
    stop = threading.Event()
    clock.wait(50_000_000, 0.5, stop)
    assert (clock.now_us(), clock.live, real.waits) == (50_000_000, False, [])
    clock.wait(100_000_000, 0.5, stop)
    assert clock.now_us() == 100_000_000
    assert not clock.live
    clock.wait(100_200_000, 0.5, stop)
    assert clock.live
    assert real.waits == [(100_200_000, 0.5)]
    assert clock.now_us() == real.now


def test_reach_jumps_only_where_no_sleep_is_needed() -> None:
    """Manual and catching-up clocks jump ahead on reach; real and live clocks stay put."""
    assert ManualClock(0).reach(500) == 500
    assert ManualClock(0, autojump=False).reach(500) == 0
    real = StubReal(1_000)
    catch_up = CatchUpClock(0, real)
    assert catch_up.reach(400) == 400
    assert catch_up.reach(5_000) == 1_000
    clock = RealClock()
    assert abs(clock.reach(clock.now_us() + 10**9) - clock.now_us()) < 10**6
