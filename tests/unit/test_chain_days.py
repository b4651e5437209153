"""A chain's days: resumed mid-day, planned when their plan lines fall due, started a lead ahead, of every kind."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from foot_traffic.model.arrivals import CHUNK_TARGET
from foot_traffic.model.calendar import CLOSED, Calendar, DateOverride
from foot_traffic.model.grid import US_PER_DAY, US_PER_MINUTE, datetime_to_us, local_date
from foot_traffic.model.plan import DayPlan, Model, StoreModel, plan_day
from foot_traffic.run import timeline
from foot_traffic.run.chain import LEAD_PER_STORE_US, Chain, Plans, live_start
from foot_traffic.run.ownership import Work
from foot_traffic.run.positions import ResumeAfter
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink
from tests.unit.fakes import SteppedClock
from tests.unit.test_chain import ROOT, START, chain, run

HOUR_US = 3600 * 10**6
NOON = START + 12 * HOUR_US
"""Saturday 25 October 2025, 12:00 UTC: inside the 10:00–13:59 slot, open in UTC."""


def day_positions(records: list[tuple[str, bytes]]) -> Iterator[tuple[str, str, int]]:
    """Each event's (store, local date, index among its store's events of that date), read from its JSON."""
    seen: Counter[tuple[str, str]] = Counter()
    for _, value in records:
        event = json.loads(value)
        unit = (event["store_id"], event["entry_time"][:10])
        yield *unit, seen[unit]
        seen[unit] += 1


def entry_us(value: bytes) -> int:
    """An event's entry instant, read from its JSON."""
    return datetime_to_us(dt.datetime.fromisoformat(json.loads(value)["entry_time"]))


def test_a_resumed_chain_sends_what_the_merge_sends_after_each_stores_position() -> None:
    """Stores resumed mid-day, on a later date, after a day's last event, or not at all: the events after each."""
    stores = chain(5)  # UTC, Rome (its offset changes on the 26th), Kolkata, Kathmandu, St John's (its first day: 24th)
    ids = [store.store_id for store in stores]
    saturday, st_johns_friday = dt.date(2025, 10, 25), dt.date(2025, 10, 24)
    firsts = [
        plan_day(store.model, ROOT, day, now_us=START).total
        for store, day in zip(stores, [saturday] * 4 + [st_johns_friday], strict=True)
    ]
    resume = {
        ids[0]: ResumeAfter(saturday, 5),
        ids[1]: ResumeAfter(dt.date(2025, 10, 26), 17),  # a later date: its first day is skipped whole
        ids[3]: ResumeAfter(saturday, 0),
        ids[4]: ResumeAfter(st_johns_friday, firsts[4] - 1),  # its first day's last event: that day is done
    }
    until = START + 3 * US_PER_DAY
    everything = run(stores, merge=True, until_us=until).records
    after = [
        record
        for record, (store, date, index) in zip(everything, day_positions(everything), strict=True)
        if store not in resume or (date, index) > (resume[store].date.isoformat(), resume[store].index)
    ]
    assert len(everything) - len(after) == 6 + (firsts[1] + 18) + 1 + firsts[4]
    resumed = run(stores, until_us=until, resume=resume).records
    assert resumed == after
    assert resumed == run(stores, merge=True, until_us=until, resume=resume).records


def plan_instant(store: StoreModel, date: dt.date) -> int:
    """When a store's plan line of ``date`` is due in a run from START: its local midnight, or START if later."""
    midnight = dt.datetime.combine(date, dt.time(0), tzinfo=store.model.tz)
    return max(datetime_to_us(midnight), START)


def test_a_chain_plans_a_stores_next_day_only_in_the_step_that_hands_out_its_plan_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """plan_day runs for a day in the step whose plan lines hold it, never earlier: the first step plans first days."""
    calls: list[tuple[int, dt.date]] = []

    def counted(model: Model, root: int, date: dt.date, now_us: int | None = None) -> DayPlan:
        calls.append((model.store_key, date))
        return plan_day(model, root, date, now_us)

    monkeypatch.setattr(timeline, "plan_day", counted)
    stores = chain(5)
    until = START + 3 * US_PER_DAY
    steps = Chain(ROOT, [(Work(s.store_id), timeline.days(s, ROOT, START, until_us=until)) for s in stores], until)
    assert calls == [], "making the chain plans nothing"
    planned: list[tuple[int, dt.date]] = []
    first = True
    while steps.next_instant() is not None:
        step = steps.step()
        made = list(calls)
        calls.clear()
        if first:
            assert made == [(s.model.store_key, local_date(START, s.model.tz)) for s in stores]
            first = False
        if isinstance(step, Plans):
            assert made == [(plan.store_key, plan.date) for plan, _ in step.plans]
            by_key = {s.model.store_key: s for s in stores}
            assert {plan_instant(by_key[key], date) for key, date in made} == {step.instant}
        else:
            assert made == [], "a window plans no day"
        planned += made
    expected = {
        (s.model.store_key, date)
        for s in stores
        for date in (dt.date(2025, 10, 24) + dt.timedelta(days=d) for d in range(5))
        if plan_instant(s, date) < until and date >= local_date(START, s.model.tz)
    }
    assert sorted(planned) == sorted(expected)
    assert len(planned) == 3 + 4 + 4 + 4 + 4  # UTC: 25-27; Rome, Kolkata, Kathmandu: 25-28; St John's: 24-27


@pytest.mark.parametrize(
    ("stores", "rate", "lead_us"),
    [
        (1, 1.0, 60),
        (10, 1.0, 600),
        (10_000, 1.0, 600_000),
        (10**6, 1.0, 30_000_000),  # 60 s, held to 30
        (1, 10.0, 600),
        (10, 10.0, 6_000),
        (10_000, 10.0, 6_000_000),
        (10**6, 10.0, 300_000_000),
        (1, math.inf, 0),
        (10**6, math.inf, 0),
    ],
)
def test_a_live_chain_starts_60_us_a_store_ahead_at_most_30_s_in_the_clocks_time(
    stores: int, rate: float, lead_us: int
) -> None:
    """The lead is 60 µs a store, at most 30 s, times the clock's rate; a clock as fast as possible takes none."""
    assert live_start(NOON, [Work("s")] * stores, rate) == NOON + lead_us


def live(stores: list[StoreModel], rate: float, until_us: int) -> list[tuple[str, bytes]]:
    """Run ``stores`` live from NOON on a clock of ``rate`` that moves only while the loop waits."""
    clock = SteppedClock(NOON, rate)
    sink = MemorySink()
    Service(stores, ROOT, sink, clock, poll_s=1.0, stop=clock.stop, until_us=until_us).run()
    return sink.records


def test_a_live_chain_starts_its_lead_ahead_and_a_single_store_starts_now() -> None:
    """Five stores live: a backfill from now plus their lead, no event before it; one store: a backfill from now."""
    rate = 200_000.0
    stores = [StoreModel(Model(daily_customers=200_000, store_key=k + 1), f"s{k}") for k in range(5)]
    lead = round(5 * LEAD_PER_STORE_US * rate)  # 60 s of the clock
    until = NOON + lead + 2 * US_PER_MINUTE
    chained = live(stores, rate, until)
    assert chained == run(stores, merge=True, start_us=NOON + lead, until_us=until).records
    assert min(entry_us(value) for _, value in chained) >= NOON + lead
    assert any(entry_us(value) < NOON + lead for _, value in run(stores, start_us=NOON, until_us=until).records)
    alone = live(stores[:1], rate, until)
    assert alone == run(stores[:1], merge=True, start_us=NOON, until_us=until).records
    assert min(entry_us(value) for _, value in alone) < NOON + round(LEAD_PER_STORE_US * rate)


def varied() -> list[StoreModel]:
    """Stores whose days differ: zones (Rome's offset changes on the 26th), hours, models, a slot of several chunks."""
    weekdays = Calendar(((540, 1260),) * 5 + ((600, 1080), CLOSED))
    dates = Calendar(
        dates={dt.date(2025, 10, 25): DateOverride(2.5, (480, 720)), dt.date(2025, 10, 26): DateOverride(0.0)}
    )
    big = Calendar(((600, 840),) * 6 + (CLOSED,))  # the whole day in the 10:00–13:59 slot; closed Sundays
    rome, kolkata = ZoneInfo("Europe/Rome"), ZoneInfo("Asia/Kolkata")
    return [
        StoreModel(Model(daily_customers=500, store_key=1, tz=rome, arrival_model="smooth"), "rome-smooth"),
        StoreModel(
            Model(daily_customers=400, store_key=2, tz=kolkata, arrival_model="poisson", calendar=weekdays),
            "kolkata-poisson",
        ),
        StoreModel(
            Model(
                base_daily_customers=300,
                store_key=3,
                tz=ZoneInfo("Asia/Kathmandu"),
                daily_totals="gamma-poisson",
                calendar=dates,
            ),
            "kathmandu-dates",
        ),
        StoreModel(
            Model(daily_customers=350, store_key=4, tz=rome, arrival_model="smooth", calendar=weekdays), "rome-hours"
        ),
        StoreModel(
            Model(daily_customers=2 * CHUNK_TARGET + 5_000, store_key=5, tz=ZoneInfo("America/St_Johns"), calendar=big),
            "big",
        ),
    ]


@pytest.mark.parametrize("start", [START, START + 7 * HOUR_US + 13 * US_PER_MINUTE + 3], ids=["midnight", "mid-day"])
def test_a_chain_of_stores_with_days_of_every_kind_sends_the_merges_events(start: int) -> None:
    """Zones with a change of offset, opening hours, closed dates, the smooth and poisson models, a slot of 3 chunks."""
    stores = varied()
    until = START + 2 * US_PER_DAY
    bulk = run(stores, start_us=start, until_us=until).records
    assert bulk == run(stores, merge=True, start_us=start, until_us=until).records
    events = [json.loads(value) for _, value in bulk]
    slots = Counter((e["store_id"], e["entry_time"][:10], e["time_slot"]) for e in events)
    assert slots["big", "2025-10-25", "10:00–13:59"] > 2 * CHUNK_TARGET, "a slot drawn in three chunks"
    assert {e["store_id"] for e in events} == {store.store_id for store in stores}


def _windows(steps: Chain, *, ahead: bool) -> list[tuple[int, list[bytes], int]]:
    """Each window's start, lines and how many chunks it sampled itself; ``ahead``: the work ahead done before each."""
    windows = []
    while (instant := steps.next_instant()) is not None:
        while ahead and steps.ahead():
            pass
        before = steps._pending.chunks.n.shape[0] if steps._pending.chunks is not None else 0
        fresh = len(steps._fresh)
        step = steps.step()
        if not isinstance(step, Plans) and len(step):
            after = steps._pending.chunks.n.shape[0] if steps._pending.chunks is not None else 0
            batch = step.encode(0, len(step))
            windows.append((instant, batch.values(0, len(batch)), before - after if not fresh else -1))
    return windows


def test_work_ahead_leaves_a_window_nothing_to_sample_and_changes_no_byte() -> None:
    """With the work ahead done while waiting, each window samples no chunk itself; the lines are the same, in order."""
    stores = chain(5)
    until = START + 2 * US_PER_DAY

    def steps() -> Chain:
        return Chain(ROOT, [(Work(s.store_id), timeline.days(s, ROOT, NOON, until_us=until)) for s in stores], until)

    plain, early = _windows(steps(), ahead=False), _windows(steps(), ahead=True)
    assert [line for _, lines, _ in early for line in lines] == [line for _, lines, _ in plain for line in lines]
    assert sum(taken for _, _, taken in plain) > 0, "without it, windows sample their chunks"
    assert all(taken == 0 for _, _, taken in early), "with it, the chunks were sampled before each window"
