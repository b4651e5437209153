"""The imperfections' laws: late and duplicate fractions, delays, outages, and how they compose."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.calendar import calendar_from_mapping
from foot_traffic.model.imperfections import (
    DUPLICATE,
    HELD,
    LATE,
    NONE,
    US_PER_S,
    Imperfections,
    Sending,
    decide,
    drawn_outages,
    outages,
)
from foot_traffic.model.plan import DayPlan, Model, plan_day

DATE = dt.date(2025, 8, 12)
ROOT = 1234
ALPHA = 1e-6
"""Bounds wide enough that a correct law fails one in a million runs."""


def _day(total: int, date: dt.date = DATE, model: Model | None = None) -> tuple[Model, DayPlan, npt.NDArray[np.int64]]:
    model = model or Model(daily_customers=total)
    plan = plan_day(model, ROOT, date)
    entries = [b.entries_us for b in day_batches(ROOT, plan)]
    return model, plan, np.concatenate(entries) if entries else np.zeros(0, dtype=np.int64)


def _sending(imp: Imperfections, total: int = 50_000) -> Sending:
    model, plan, entries = _day(total)
    return decide(imp, ROOT, model, plan, entries)


def _first(sending: Sending) -> npt.NDArray[np.int64]:
    """Each visit's first send instant, in visit order."""
    first = np.empty(sending.entries_us.shape[0], dtype=np.int64)
    firsts = ~sending.twin
    first[sending.visit[firsts]] = sending.send_us[firsts]
    return first


def test_nothing_configured_sends_each_visit_once_at_its_entry_in_entry_order() -> None:
    """With every law off, the copies are the visits, at their entry instants, in entry order."""
    sending = _sending(NONE, 5000)
    assert len(sending) == 5000
    assert sending.visit.tolist() == list(range(5000))
    assert np.array_equal(sending.send_us, sending.entries_us)
    assert not NONE.drawn
    assert sending.outages == ()


@pytest.mark.parametrize("pct", [0.01, 0.2, 0.7])
def test_late_fraction_lies_within_binomial_bounds(pct: float) -> None:
    """The number of late visits is Binomial(n, LATE_EVENTS_PCT)."""
    sending = _sending(Imperfections(late_pct=pct))
    low, high = stats.binom.interval(1 - ALPHA, 50_000, pct)
    assert low <= int(sending.late.sum()) <= high


@pytest.mark.parametrize("pct", [0.05, 0.5])
def test_duplicate_fraction_lies_within_binomial_bounds_and_adds_one_copy_each(pct: float) -> None:
    """Duplicated visits are Binomial(n, DUPLICATE_EVENTS_PCT), and each adds exactly one second copy."""
    sending = _sending(Imperfections(duplicate_pct=pct))
    low, high = stats.binom.interval(1 - ALPHA, 50_000, pct)
    duplicated = int(sending.duplicated.sum())
    assert low <= duplicated <= high
    assert len(sending) == 50_000 + duplicated
    assert sorted(sending.visit[sending.twin].tolist()) == np.flatnonzero(sending.duplicated).tolist()


def test_late_delays_follow_the_exponential_capped_by_min() -> None:
    """Below the cap the delays are exponential (KS against the truncated law); the cap holds P(X >= max) of them."""
    mean, cap = 300.0, 600.0
    sending = _sending(Imperfections(late_pct=0.5, late_mean_s=mean, late_max_s=cap))
    delays = (_first(sending) - sending.entries_us)[sending.late] / US_PER_S
    assert (delays >= 0).all()
    assert delays.max() == cap
    at_cap = int(np.count_nonzero(delays == cap))
    low, high = stats.binom.interval(1 - ALPHA, delays.shape[0], math.exp(-cap / mean))
    assert low <= at_cap <= high
    below = delays[delays < cap]
    truncated = stats.truncexpon(b=cap / mean, scale=mean)
    assert stats.kstest(below, truncated.cdf).pvalue > ALPHA
    on_time = ~sending.late
    assert np.array_equal(_first(sending)[on_time], sending.entries_us[on_time])


def test_second_copies_follow_their_first_by_a_uniform_gap() -> None:
    """The gap from first to second copy is uniform on [0, DUPLICATE_DELAY_MAX_SECONDS] (KS)."""
    sending = _sending(Imperfections(duplicate_pct=0.5, duplicate_max_s=60))
    first = _first(sending)
    twins = sending.twin
    gaps = (sending.send_us[twins] - first[sending.visit[twins]]) / US_PER_S
    assert gaps.min() >= 0
    assert gaps.max() <= 60
    assert stats.kstest(gaps, stats.uniform(0, 60).cdf).pvalue > ALPHA


def test_outage_counts_per_day_are_poisson() -> None:
    """Over many days the drawn outage counts have the Poisson mean and variance (z and dispersion tests)."""
    rate = 2.5
    imp = Imperfections(outages_per_day=rate, outage_mean_min=1)
    model = Model(daily_customers=0)
    counts = np.array(
        [len(drawn_outages(imp, ROOT, model, plan_day(model, ROOT, DATE + dt.timedelta(days=k)))) for k in range(3000)]
    )
    n = counts.shape[0]
    z = (counts.mean() - rate) / math.sqrt(rate / n)
    assert abs(z) < stats.norm.ppf(1 - ALPHA / 2)
    dispersion = float(((counts - counts.mean()) ** 2).sum() / counts.mean())
    assert stats.chi2.ppf(ALPHA / 2, n - 1) < dispersion < stats.chi2.ppf(1 - ALPHA / 2, n - 1)


def test_outages_start_inside_the_opening_hours_and_last_exponentially() -> None:
    """Starts fall within the calendar's opening hours; durations are exponential of the mean (KS)."""
    calendar = calendar_from_mapping({"hours": {"Tuesday": ["09:00", "17:00"]}})
    model = Model(daily_customers=0, calendar=calendar)
    imp = Imperfections(outages_per_day=4, outage_mean_min=5)
    lengths = []
    for week in range(600):
        plan = plan_day(model, ROOT, DATE + dt.timedelta(weeks=week))
        day_start = plan.start_us
        for start, end in drawn_outages(imp, ROOT, model, plan):
            assert day_start + 9 * 3600 * US_PER_S <= start < day_start + 17 * 3600 * US_PER_S
            lengths.append((end - start) / US_PER_S / 60)
    assert stats.kstest(lengths, stats.expon(scale=5).cdf).pvalue > ALPHA


def test_overlapping_outages_merge_and_an_outage_ends_at_midnight_at_the_latest() -> None:
    """Explicit windows that overlap become one; a window past 24:00 stops at the day's end."""
    model, plan, _ = _day(0)
    minute = 60 * US_PER_S
    windows = outages(NONE, ROOT, model, plan, ((600, 660), (650, 700), (1400, 1500)))
    assert windows == (
        (plan.start_us + 600 * minute, plan.start_us + 700 * minute),
        (plan.start_us + 1400 * minute, plan.end_us),
    )


@pytest.mark.parametrize("shuffled", [False, True])
def test_held_visits_go_in_one_burst_at_the_end_of_their_outage(shuffled: bool) -> None:
    """Visits inside an outage go at its end, in entry order or in a seeded shuffle; the others at entry."""
    model, plan, entries = _day(20_000)
    imp = Imperfections(shuffled=shuffled)
    sending = decide(imp, ROOT, model, plan, entries, explicit=((720, 780),))
    ((start, end),) = sending.outages
    inside = (entries >= start) & (entries < end)
    assert np.array_equal(sending.held, inside)
    assert sending.held_in((start, end)) == int(inside.sum())
    assert np.array_equal(_first(sending), np.where(inside, end, entries))
    burst = sending.visit[sending.send_us == end].tolist()
    assert sorted(burst) == np.flatnonzero(inside).tolist()
    assert (burst != sorted(burst)) == shuffled
    assert all(sending.flags(r) == HELD for r in np.flatnonzero(sending.send_us == end).tolist())


def test_a_late_visit_inside_an_outage_goes_at_the_later_of_the_two() -> None:
    """First send = max(outage end, entry + delay) for a held late visit."""
    model, plan, entries = _day(20_000)
    imp = Imperfections(late_pct=0.3, late_mean_s=3600, late_max_s=7200)
    sending = decide(imp, ROOT, model, plan, entries, explicit=((720, 750),))
    plain = decide(Imperfections(late_pct=0.3, late_mean_s=3600, late_max_s=7200), ROOT, model, plan, entries)
    ((_, end),) = sending.outages
    both = sending.held & sending.late
    assert both.any()
    assert np.array_equal(_first(sending)[both], np.maximum(end, _first(plain)[both]))


def test_copies_are_in_send_order_with_their_flags() -> None:
    """Copies come sorted by send instant; a second copy carries DUPLICATE, a late visit's copies LATE."""
    sending = _sending(Imperfections(late_pct=0.2, duplicate_pct=0.2), 5000)
    assert (np.diff(sending.send_us) >= 0).all()
    for rank in range(len(sending)):
        visit = int(sending.visit[rank])
        flags = sending.flags(rank)
        assert bool(flags & LATE) == bool(sending.late[visit])
        assert bool(flags & DUPLICATE) == bool(sending.twin[rank])


def test_due_counts_the_copies_of_the_visits_entered_by_an_instant() -> None:
    """``due(now)`` is the number of copies whose visit entered at or before ``now``."""
    sending = _sending(Imperfections(duplicate_pct=0.3), 3000)
    now = int(sending.entries_us[1500])
    expected = sum(1 for v in sending.visit.tolist() if sending.entries_us[v] <= now)
    assert sending.due(now) == expected


def test_decisions_depend_on_their_own_streams_only() -> None:
    """Turning duplicates on changes no late decision or delay, and the reverse."""
    late = _sending(Imperfections(late_pct=0.3), 5000)
    both = _sending(Imperfections(late_pct=0.3, duplicate_pct=0.4), 5000)
    dup = _sending(Imperfections(duplicate_pct=0.4), 5000)
    assert np.array_equal(late.late, both.late)
    assert np.array_equal(_first(late), _first(both))
    assert np.array_equal(dup.duplicated, both.duplicated)
