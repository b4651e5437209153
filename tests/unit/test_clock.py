"""Clocks: real, accelerated, manual (max speed) and backfill-then-live, behind one protocol."""

from __future__ import annotations

import math

from foot_traffic.run.clock import AS_FAST_AS_POSSIBLE, AcceleratedClock, CatchUpClock, Clock, ManualClock, RealClock
from tests.unit.fakes import SteppedClock

HOUR_US = 3600 * 10**6


def test_manual_clock_jumps_to_each_deadline() -> None:
    """The max-speed clock never needs a wait: asked about a deadline ahead, it jumps there and answers 0."""
    clock = ManualClock(1_000)
    assert clock.sleep_time(5_000) == 0.0
    assert clock.now_us() == 5_000
    assert clock.sleep_time(4_000) == 0.0
    assert clock.now_us() == 5_000
    assert clock.rate == AS_FAST_AS_POSSIBLE == math.inf


def test_accelerated_clock_answers_real_seconds_at_its_speed() -> None:
    """At speed 1000, an hour of simulated time is 3.6 real seconds away; a passed deadline is 0 away."""
    clock = AcceleratedClock(0, 1000.0)
    assert clock.rate == 1000.0
    assert clock.now_us() == 0, "the first reading is the start"
    sleep_s = clock.sleep_time(HOUR_US)
    assert sleep_s <= 3.6
    assert sleep_s > 3.6 - 1.0  # less a real second at most between the two readings, even on a busy machine
    assert clock.sleep_time(0) == 0.0


def test_real_clock_answers_the_seconds_left() -> None:
    """The wall clock's deadline a minute ahead is at most a minute away; a past one is reached."""
    clock = RealClock()
    assert clock.rate == 1.0
    now = clock.now_us()
    assert 0 < clock.sleep_time(now + 60 * 10**6) <= 60.0
    assert clock.sleep_time(now - 1) == 0.0


def test_catch_up_clock_jumps_through_the_past_then_goes_live() -> None:
    """Deadlines in the past are reached at once; the first future one switches to the wall clock and its rate."""
    real = SteppedClock(100_000_000)
    clock = CatchUpClock(10_000_000, real)
    assert clock.sleep_time(50_000_000) == 0.0
    assert (clock.now_us(), clock.live, clock.rate) == (50_000_000, False, math.inf)
    assert clock.sleep_time(100_000_000) == 0.0
    assert clock.now_us() == 100_000_000
    assert not clock.live
    assert clock.sleep_time(100_200_000) == 0.2
    assert (clock.live, clock.rate) == (True, 1.0)
    real.now += 150_000
    assert clock.now_us() == real.now, "live: the wall clock's reading"


def test_reach_jumps_only_where_no_sleep_is_needed() -> None:
    """Manual and catching-up clocks jump ahead on reach; real and live clocks stay put."""
    assert ManualClock(0).reach(500) == 500
    real = SteppedClock(1_000)
    catch_up = CatchUpClock(0, real)
    assert catch_up.reach(400) == 400
    assert catch_up.reach(5_000) == 1_000
    clock = RealClock()
    assert abs(clock.reach(clock.now_us() + 10**9) - clock.now_us()) < 10**6


def test_every_clock_is_a_clock() -> None:
    """The four clocks (and the tests' stepped one) satisfy the one protocol the loop and the metrics use."""
    clocks: list[Clock] = [RealClock(), ManualClock(0), AcceleratedClock(0, 2.0), CatchUpClock(0), SteppedClock(0)]
    assert [clock.rate for clock in clocks] == [1.0, math.inf, 2.0, math.inf, 1.0]
