"""The loop's ownership seam: works that start and stop mid-run keep each unit whole, in order, and sent once."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Callable

from foot_traffic.events.encoding import Encoded
from foot_traffic.model.grid import US_PER_DAY, datetime_to_us, local_date
from foot_traffic.model.plan import Model, StoreModel
from foot_traffic.model.units import Unit
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.merge import Merge
from foot_traffic.run.ownership import Fixed, Handover, Work, run_units
from foot_traffic.run.positions import Positions, ResumeAfter
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink
from tests.unit.fakes import SteppedClock

ROOT = 11
START = datetime_to_us(dt.datetime(2025, 8, 12, 9, 0, tzinfo=dt.UTC))
UNTIL = START + 3 * US_PER_DAY
CHAIN = [StoreModel(Model(daily_customers=40 + 15 * i, store_key=i + 1, tz=dt.UTC), f"s{i}") for i in range(3)]
UNITS = list(run_units(CHAIN, START, UNTIL))


def unit_of(value: bytes) -> Unit:
    """The (store, UTC date) unit an event belongs to."""
    event = json.loads(value)
    return Unit(event["store_id"], dt.date.fromisoformat(event["entry_time"][:10]))


def by_unit(values: list[bytes]) -> dict[Unit, list[bytes]]:
    """Events grouped by unit, each group in the order sent."""
    groups: dict[Unit, list[bytes]] = defaultdict(list)
    for value in values:
        groups[unit_of(value)].append(value)
    return dict(groups)


class Scripted:
    """An ownership that plays a script: at poll number n, the handover the script gives (if any)."""

    def __init__(
        self, script: Callable[[int, MemorySink], Handover | None], sink: MemorySink, done: Callable[[int], bool]
    ) -> None:
        self.script = script
        self.sink = sink
        self.done = done
        self.polls = 0
        self.begun: list[Work] = []
        self.urgent_at: int | None = None
        """Once the sink holds this many events, the ownership asks to be polled before the next one."""
        self.polled_at: list[int] = []

    def poll(self) -> Handover:
        """The script's handover for this poll."""
        self.polls += 1
        self.polled_at.append(len(self.sink.records))
        if self.urgent_at is not None and len(self.sink.records) >= self.urgent_at:
            self.urgent_at = None
        return self.script(self.polls, self.sink) or Handover()

    def urgent(self) -> bool:
        """Urgent from the ``urgent_at``-th event on, until the next poll."""
        return self.urgent_at is not None and len(self.sink.records) >= self.urgent_at

    def finished(self) -> bool:
        """Finished once the script says so."""
        return self.done(self.polls)

    def started(self, work: Work) -> None:
        """Keep the works whose first event went."""
        self.begun.append(work)


def run_with(
    ownership: Fixed | Scripted | None, sink: MemorySink, positions: Positions | None = None, poll_s: float = 0.0
) -> Service:
    """Run the chain from START to UNTIL on a manual clock, polling the ownership every ``poll_s`` (every step)."""
    service = Service(
        CHAIN, ROOT, sink, ManualClock(START), poll_s=poll_s, until_us=UNTIL, start_us=START,
        ownership=ownership,
        positions=positions,
    )  # fmt: skip
    service.run()
    return service


def static_values() -> list[bytes]:
    """The whole run's events, as one process sends them."""
    sink = MemorySink()
    run_with(None, sink)
    return [value for _, value in sink.records]


def test_the_fixed_ownership_gives_the_static_run() -> None:
    """Every unit as one work each, given at the start, sends the static run's events, in the same order."""
    sink = MemorySink()
    run_with(Fixed([Work.of(unit) for unit in UNITS]), sink)
    expected = static_values()
    assert [value for _, value in sink.records] == expected
    assert len(expected) > 300


def test_works_started_mid_run_join_the_merge_whole_and_in_order() -> None:
    """Units given one by one while the run goes (late ones behind the clock) still send each unit once, in order."""
    pending = list(UNITS)

    def script(poll: int, _sink: MemorySink) -> Handover | None:
        if poll % 40 == 1 and pending:
            return Handover(start=(Work.of(pending.pop(0)),))
        return None

    sink = MemorySink()
    ownership = Scripted(script, sink, lambda _: not pending)
    run_with(ownership, sink)
    assert Counter(ownership.begun) == Counter(Work.of(u) for u in UNITS), "each unit's first event noted once"
    values = [value for _, value in sink.records]
    expected = static_values()
    assert Counter(values) == Counter(expected)
    assert by_unit(values) == by_unit(expected)
    assert values != expected, "late units were merged in behind the others: the interleaving differs"


def test_a_stopped_work_sends_nothing_more_and_resumes_after_its_last_event() -> None:
    """Stop a unit mid-day, start it again after its last event sent: nothing lost, nothing twice, order kept."""
    victim = next(u for u in UNITS if u.store_id == "s1")
    state: dict[str, int] = {}

    def script(poll: int, sink: MemorySink) -> Handover | None:
        if poll == 1:
            return Handover(start=tuple(Work.of(u) for u in UNITS))
        sent = [v for _, v in sink.records if unit_of(v) == victim]
        if "stopped" not in state and len(sent) >= 5:
            state["stopped"], state["count"] = poll, len(sent)
            return Handover(stop=frozenset({Work.of(victim)}))
        if state.get("stopped") == poll - 100:
            assert len(sent) == state["count"], "a stopped unit sends nothing"
            assert victim.date is not None
            return Handover(start=(Work.of(victim, ResumeAfter(victim.date, len(sent) - 1)),))
        return None

    sink = MemorySink()
    run_with(Scripted(script, sink, lambda poll: poll > state.get("stopped", poll) + 100), sink)
    values = [value for _, value in sink.records]
    expected = static_values()
    assert "stopped" in state
    assert Counter(values) == Counter(expected)
    assert by_unit(values) == by_unit(expected)


def test_a_unit_past_until_is_noted_complete() -> None:
    """A work whose next events lie past UNTIL is dropped and its unit's position noted done."""
    positions = Positions(dated=True, start_us=START)
    sink = MemorySink()
    run_with(Fixed([Work.of(unit) for unit in UNITS]), sink, positions)
    final = positions.take()
    last = local_date(UNTIL - 1, dt.UTC)
    assert {unit for unit in UNITS if unit.date == last} <= set(final)
    assert all(position.done for position in final.values())


def test_the_merge_breaks_ties_by_start_order_and_skips_stopped_streams() -> None:
    """Equal instants come out in the order their streams started; a stopped stream's items never come out."""
    merge: Merge[tuple[int, int, object, int, object]] = Merge()
    a, b, c = Work("a"), Work("b"), Work("c")
    merge.start(b, iter([(1, 1, "b1", 0, None), (3, 1, "b3", 0, None)]))
    merge.start(a, iter([(1, 1, "a1", 0, None), (2, 1, "a2", 0, None)]))
    merge.start(c, iter([(0, 1, "c0", 0, None), (5, 1, "c5", 0, None)]))
    out = []
    while merge.peek() is not None:
        _, _, item = merge.pop()
        out.append(item[2])
        if item[2] == "a1":
            merge.stop(c)
    assert out == ["c0", "b1", "a1", "a2", "b3"]
    assert len(merge) == 0


def test_an_urgent_ownership_is_polled_before_the_next_event() -> None:
    """Once the ownership is urgent (an aborted transaction), the loop polls it before sending anything more."""
    sink = MemorySink()
    works = tuple(Work.of(unit) for unit in UNITS)
    ownership = Scripted(lambda n, _: Handover(start=works) if n == 1 else None, sink, lambda _: True)
    ownership.urgent_at = 137
    run_with(ownership, sink, poll_s=3600.0)  # no poll falls due on its own during the run
    assert len(sink.records) > 137
    assert ownership.polled_at[:2] == [0, 137]


class TakeOver:
    """Owns every unit but ``victim`` from the start, and takes ``victim`` over at the first poll from ``at`` on."""

    def __init__(self, clock: SteppedClock, at: int, victim: Unit) -> None:
        self.clock, self.at, self.victim = clock, at, victim
        self.given = False
        self.taken_at: int | None = None

    def poll(self) -> Handover:
        """Every other unit at the first poll; the victim at the first poll once the clock has reached ``at``."""
        if not self.given:
            self.given = True
            return Handover(start=tuple(Work.of(unit) for unit in UNITS if unit != self.victim))
        if self.urgent():
            self.taken_at = self.clock.now
            return Handover(start=(Work.of(self.victim),))
        return Handover()

    def urgent(self) -> bool:
        """Due for the take-over: polled before the next event."""
        return self.taken_at is None and self.clock.now >= self.at

    def finished(self) -> bool:
        """Finished once the victim is taken over (the loop then runs out its works)."""
        return self.taken_at is not None

    def started(self, work: Work) -> None:
        """Nothing to note."""


class ClockedSink(MemorySink):
    """A memory sink that notes the clock's instant at each event it is given."""

    def __init__(self, clock: SteppedClock) -> None:
        super().__init__()
        self.clock = clock
        self.sent_at: list[int] = []

    def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
        """Keep the event and the instant."""
        super().send(key, value, store_id, slot)
        self.sent_at.append(self.clock.now)

    def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
        """Keep the events and the instant, once per event."""
        super().send_batch(batch, start, stop)
        self.sent_at += [self.clock.now] * (stop - start)


def test_on_the_real_clock_a_taken_over_unit_sends_at_once_what_fell_due_then_each_event_at_its_entry() -> None:
    """A unit taken over at 14:00 on the real clock: its events due before go at once, the rest each when due."""
    victim = Unit("s1", local_date(START, dt.UTC))
    clock = SteppedClock(START)
    sink = ClockedSink(clock)
    ownership = TakeOver(clock, START + 5 * 3600 * 10**6, victim)
    Service(
        CHAIN, ROOT, sink, clock, poll_s=60.0, stop=clock.stop, until_us=UNTIL, start_us=START, ownership=ownership
    ).run()
    assert ownership.taken_at is not None
    sent = [(at, value) for at, (_, value) in zip(sink.sent_at, sink.records, strict=True) if unit_of(value) == victim]
    assert [value for _, value in sent] == by_unit(static_values())[victim], "the unit whole, in order, once"
    entries = [datetime_to_us(dt.datetime.fromisoformat(json.loads(value)["entry_time"])) for _, value in sent]
    due = [at for (at, _), entry in zip(sent, entries, strict=True) if entry < ownership.taken_at]
    later = [(at, entry) for (at, _), entry in zip(sent, entries, strict=True) if entry >= ownership.taken_at]
    assert due, "events fell due before the take-over"
    assert later, "events come after the take-over"
    assert due == [ownership.taken_at] * len(due), "what fell due before the take-over goes at once"
    assert all(entry <= at <= entry + 1 for at, entry in later), "the rest each at its own entry"
