"""Shards of a run: each runs only its units, and together they give the unsharded run's output, once."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import pytest

from foot_traffic.events.encoding import Encoded
from foot_traffic.model.grid import US_PER_DAY, datetime_to_us, local_date
from foot_traffic.model.imperfections import NONE, Imperfections
from foot_traffic.model.plan import Model, StoreModel
from foot_traffic.model.units import WHOLE, Shard, Unit, virtual_partition
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.positions import Position, Positions, ResumeAfter, resume_points
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink, StdoutSink

ROOT = 7
START = datetime_to_us(dt.datetime(2025, 8, 12, 10, 30, tzinfo=dt.UTC))
"""A mid-day start: the first day's plan depends on it, and every shard must cut it the same."""
UNTIL = START + 4 * US_PER_DAY
ROME = ZoneInfo("Europe/Rome")


def stores(n: int) -> list[StoreModel]:
    """``n`` stores of a chain, one in another time zone (its dates are its own)."""
    return [
        StoreModel(Model(daily_customers=60 + 10 * i, store_key=i + 1, tz=ROME if i == 1 else dt.UTC), f"s{i}")
        for i in range(n)
    ]


def run(
    chain: list[StoreModel],
    shard: Shard | None = None,
    *,
    until: int | None = UNTIL,
    sensors: str | None = None,
    positions: Positions | None = None,
    partitions: int = 64,
    imperfections: Imperfections = NONE,
) -> tuple[MemorySink, Service]:
    """Run the chain (or one shard of it) from START to ``until`` on a manual clock, into memory."""
    sink = MemorySink()
    service = Service(
        chain,
        ROOT,
        sink,
        ManualClock(START),
        poll_s=0.5,
        until_us=until,
        sensor_topic=sensors,
        shard=WHOLE if shard is None else shard,
        partitions=partitions,
        positions=positions,
        imperfections=imperfections,
    )
    service.run()
    return sink, service


def unit_of(value: bytes, chain: list[StoreModel], *, dated: bool = True) -> Unit:
    """The unit an event belongs to: its store, and its entry's local date in the store's zone."""
    event = json.loads(value)
    store = next(s for s in chain if s.store_id == event.get("store_id"))
    entry = datetime_to_us(dt.datetime.fromisoformat(event["entry_time"]))
    return Unit(store.store_id, local_date(entry, store.model.tz) if dated else None)


def by_unit(values: list[bytes], chain: list[StoreModel], *, dated: bool = True) -> dict[Unit, list[bytes]]:
    """Values grouped by unit, each group in the order given."""
    groups: dict[Unit, list[bytes]] = defaultdict(list)
    for value in values:
        groups[unit_of(value, chain, dated=dated)].append(value)
    return dict(groups)


def test_three_shards_together_equal_the_unsharded_run() -> None:
    """Shards 0/3, 1/3, 2/3 of 6 stores × 4 days: the union is the whole output, each unit whole and in order."""
    chain = stores(6)
    whole = [v for _, v in run(chain)[0].records]
    parts = [[v for _, v in run(chain, Shard(i, 3))[0].records] for i in range(3)]
    assert all(parts), "each shard has units of its own"
    assert Counter(v for part in parts for v in part) == Counter(whole)
    expected = by_unit(whole, chain)
    for i, part in enumerate(parts):
        for unit, values in by_unit(part, chain).items():
            assert values == expected[unit], f"unit {unit} of shard {i} is whole and in order"
            assert virtual_partition(unit, 64) % 3 == i, "a shard sends only the units it owns"


def test_sensor_events_split_by_unit_too() -> None:
    """With entry/exit sensor events, the shards' sensor events together are the unsharded run's, once."""
    chain = stores(3)
    whole = run(chain, sensors="sensors")[0]
    parts = [run(chain, Shard(i, 2), sensors="sensors")[0] for i in range(2)]
    assert Counter(v for p in parts for _, v in p.records) == Counter(v for _, v in whole.records)
    assert Counter(v for p in parts for _, v in p.other["sensors"]) == Counter(v for _, v in whole.other["sensors"])


def test_one_stores_fortnight_spreads_over_two_shards_on_the_batch_path() -> None:
    """A single store's 14 days go to both of 2 shards; each shard still sends whole batches at once."""
    model = [StoreModel(Model(daily_customers=500))]
    whole = [v for _, v in run(model, until=START + 14 * US_PER_DAY)[0].records]
    sizes: list[list[int]] = [[], []]
    parts: list[list[bytes]] = [[], []]
    for i in range(2):

        class Sizes(MemorySink):
            def send_batch(self, batch: Encoded, start: int, stop: int, i: int = i) -> None:
                sizes[i].append(stop - start)
                super().send_batch(batch, start, stop)

        sink = Sizes()
        Service(
            model, ROOT, sink, ManualClock(START), poll_s=0.5, until_us=START + 14 * US_PER_DAY, shard=Shard(i, 2)
        ).run()
        parts[i] = [v for _, v in sink.records]
    assert all(parts)
    assert Counter(parts[0] + parts[1]) == Counter(whole)
    assert all(max(s) > 1 for s in sizes), "whole batches, not one event at a time"
    days = [{unit_of(v, model).date for v in part} for part in parts]
    assert not days[0] & days[1], "each day goes to one shard"
    assert len(days[0] | days[1]) == 15, "14 days from 10:30 touch 15 dates"


def test_each_shard_logs_the_plan_lines_of_the_days_it_owns(caplog: pytest.LogCaptureFixture) -> None:
    """The shards' plan lines together are the unsharded run's, each once."""
    chain = stores(4)
    caplog.set_level(logging.INFO, logger="foot_traffic")

    def plan_lines() -> list[str]:
        lines = [line for r in caplog.records for line in r.getMessage().split("\n") if "Planned total" in line]
        caplog.clear()
        return lines

    run(chain)
    whole = plan_lines()
    shards = []
    for i in range(3):
        run(chain, Shard(i, 3))
        shards.append(plan_lines())
    assert whole
    assert all(shards)
    assert Counter(line for lines in shards for line in lines) == Counter(whole)
    assert all(line.startswith("[store s") for line in whole), "the store prefix stays, whatever a shard owns"


def test_without_an_end_a_shard_owns_whole_stores() -> None:
    """In a run without UNTIL the unit is a store: a shard runs the stores whose partition it owns, every date."""
    chain = stores(8)
    service = Service(chain, ROOT, MemorySink(), ManualClock(START), poll_s=0.5, shard=Shard(1, 4), partitions=16)
    owned = service.owned(START)
    assert [work.store_id for work in owned] == [
        s.store_id for s in chain if virtual_partition(Unit(s.store_id), 16) % 4 == 1
    ]
    assert all(work.dates is None for work in owned)


def test_with_an_end_a_shard_owns_dates_in_each_stores_zone() -> None:
    """With UNTIL the unit is a (store, local date): dates from the start's to the end's in the store's own zone."""
    chain = stores(3)
    owned = {work.store_id: list(work.dates or ()) for work in run(chain, Shard(0, 2), until=UNTIL)[1].owned(START)}
    for store in chain:
        tz = store.model.tz
        span = [local_date(START, tz) + dt.timedelta(days=d) for d in range(5)]
        span = [d for d in span if d <= local_date(UNTIL - 1, tz)]
        mine = [d for d in span if virtual_partition(Unit(store.store_id, d), 64) % 2 == 0]
        assert owned.get(store.store_id, []) == mine


def test_a_shard_without_units_in_a_bounded_run_ends_at_once() -> None:
    """A bounded shard that owns no unit sends nothing and ends."""
    model = [StoreModel(Model(daily_customers=10))]
    until = START + US_PER_DAY // 4  # one date only: one unit, owned by one shard of two
    owner = virtual_partition(Unit(None, local_date(START)), 64) % 2
    sink, _ = run(model, Shard(1 - owner, 2), until=until)
    assert sink.records == []
    assert run(model, Shard(owner, 2), until=until)[0].records == run(model, until=until)[0].records


def test_positions_follow_the_events_and_end_done() -> None:
    """Every unit of a bounded run ends done; its position names its last event, noted before it was sent."""
    chain = stores(2)
    positions = Positions(dated=True, start_us=START)
    sink, _ = run(chain, positions=positions)
    final = positions.take()
    expected = by_unit([v for _, v in sink.records], chain)
    for unit, values in expected.items():
        assert unit.date is not None
        assert final[unit] == Position(unit.date, len(values) - 1, True, START)
    assert set(final) >= set(expected)
    assert all(p.done for p in final.values()), "days without events are done too"


class CrashError(Exception):
    """The process dies: the run stops there."""


@pytest.mark.parametrize(
    ("chain", "cut"),
    [
        (stores(3), 1),  # several stores: a window of the stores' visits at a time
        (stores(3), 57),
        (stores(3), 250),  # about half of the 432 events shard 1/2 sends
        ([StoreModel(Model(daily_customers=40))], 9),  # small batches: sent one event at a time
        ([StoreModel(Model(daily_customers=40))], 20),  # shard 1/2 sends 27 events
        ([StoreModel(Model(daily_customers=4000))], 2000),  # large batches, sent at once: 2654 events in all
    ],
)
def test_a_run_resumed_from_its_committed_positions_sends_exactly_the_rest(chain: list[StoreModel], cut: int) -> None:
    """Commit after some send, die; resume each store after its committed position: nothing lost, nothing twice."""
    shard = Shard(1, 2)
    whole = [v for _, v in run(chain, shard)[0].records]
    positions = Positions(dated=True, start_us=START)
    committed: dict[Unit, Position] = {}

    class CommitThenDie(MemorySink):
        """Commits (events and positions together, as a transaction may after any send) past ``cut``, then dies."""

        def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
            super().send(key, value, store_id, slot)
            self.commit()

        def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
            super().send_batch(batch, start, stop)
            self.commit()

        def commit(self) -> None:
            if len(self.records) >= cut:
                committed.update(positions.take())
                raise CrashError

    sent = CommitThenDie()
    with pytest.raises(CrashError):
        Service(
            chain, ROOT, sent, ManualClock(START), poll_s=0.5, until_us=UNTIL, shard=shard, positions=positions
        ).run()
    resume = {
        store_id: ResumeAfter(p.date, p.index)
        for store_id, p in resume_points(committed, lambda unit: shard.owns(unit, 64)).items()
    }
    rest = MemorySink()
    Service(
        chain, ROOT, rest, ManualClock(START), poll_s=0.5, until_us=UNTIL, start_us=START, resume=resume, shard=shard
    ).run()
    assert rest.records, "the run died before its end"
    both = [v for _, v in sent.records] + [v for _, v in rest.records]
    assert Counter(both) == Counter(whole)
    assert by_unit(both, chain) == by_unit(whole, chain)


D1, D2, D3 = dt.date(2025, 8, 12), dt.date(2025, 8, 13), dt.date(2025, 8, 14)


def test_a_position_survives_encoding() -> None:
    """A position record reads back as written."""
    position = Position(D1, 41, False, START)
    assert Position.decode(position.encode()) == position
    assert json.loads(position.encode()) == {"date": "2025-08-12", "index": 41, "done": False, "start_us": START}


def test_positions_hand_over_what_changed_once() -> None:
    """take() gives each changed unit's latest position once; without an end, a store's dates are one unit."""
    dated = Positions(dated=True, start_us=START)
    dated.note("a", D1, 3, done=False)
    dated.note("a", D1, 9, done=True)
    dated.note("a", D2, -1, done=False)
    assert dated.pending()
    assert dated.take() == {Unit("a", D1): Position(D1, 9, True, START), Unit("a", D2): Position(D2, -1, False, START)}
    assert not dated.pending()
    assert dated.take() == {}
    dated.reached_end()
    assert dated.take() == {Unit("a", D2): Position(D2, -1, True, START)}, "only the unfinished unit changes"
    whole = Positions(dated=False, start_us=START)
    whole.note("a", D1, 9, done=True)
    whole.note("a", D2, 0, done=False)
    assert whole.take() == {Unit("a"): Position(D2, 0, False, START)}


def test_a_store_resumes_after_its_furthest_position_among_its_own_units() -> None:
    """Store-wide records count whoever wrote them; dated ones only when owned; the furthest wins."""
    progress = {
        Unit("a", D1): Position(D1, 50, True, START),
        Unit("a", D3): Position(D3, 2, False, START),  # another process's date: says nothing of ours
        Unit("a", D2): Position(D2, 7, False, START),
        Unit("b"): Position(D2, 4, False, START),
        Unit("b", D1): Position(D1, 80, True, START),
    }
    points = resume_points(progress, lambda unit: unit.date != D3)
    assert points == {"a": Position(D2, 7, False, START), "b": Position(D2, 4, False, START)}


def test_shards_with_imperfections_together_equal_the_unsharded_run_unit_by_unit() -> None:
    """Late, duplicated and held copies: shards 0/2 and 1/2 together send the unsharded copies, each unit in order."""
    chain = stores(4)
    imp = Imperfections(late_pct=0.2, late_mean_s=900, late_max_s=3600, duplicate_pct=0.1, outages_per_day=2)
    whole = [v for _, v in run(chain, imperfections=imp)[0].records]
    assert len(whole) > len(set(whole)), "some copies go twice"
    parts = [[v for _, v in run(chain, Shard(i, 2), imperfections=imp)[0].records] for i in range(2)]
    assert Counter(v for part in parts for v in part) == Counter(whole)
    expected = by_unit(whole, chain)
    for part in parts:
        for unit, values in by_unit(part, chain).items():
            assert values == expected[unit], f"unit {unit}: the same copies in the same send order"


def test_imperfect_copies_are_the_same_bytes_on_the_stdout_sink() -> None:
    """The stdout sink writes the memory sink's copies, line for line."""
    chain = stores(2)
    imp = Imperfections(late_pct=0.3, duplicate_pct=0.1, outages_per_day=2)
    memory = [v for _, v in run(chain, imperfections=imp)[0].records]
    out = io.BytesIO()
    Service(chain, ROOT, StdoutSink(out), ManualClock(START), poll_s=0.5, until_us=UNTIL, imperfections=imp).run()
    assert out.getvalue().splitlines() == memory
