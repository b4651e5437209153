"""Per-event log lines in batches: one record and one handler write per due batch, each line as if logged alone."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re

import pytest

from foot_traffic.cli.logs import JsonFormatter, TextFormatter
from foot_traffic.events.encoding import EncodedBatch, encode_batch
from foot_traffic.model.arrivals import day_batches
from foot_traffic.model.plan import Model, plan_day
from foot_traffic.run.eventlog import EmittedLines

DATE = dt.date(2025, 8, 12)
PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO foot_traffic\.run\.service: ")


def encoded(store_id: str | None = None) -> EncodedBatch:
    """The first sampled batch of a day, encoded."""
    plan = plan_day(Model(daily_customers=5000), 7, DATE)
    return encode_batch(plan, next(iter(day_batches(7, plan))), store_id)


def expected_messages(batch: EncodedBatch, start: int, stop: int) -> list[str]:
    """The specification's per-event message, built from each event's JSON read back."""
    messages = []
    for line in batch.lines.splitlines()[start:stop]:
        event = json.loads(line)
        fields = (event["customer_id"], event["entry_time"], event["time_slot"])
        messages.append("Emitted customer_id={} entry_time={} time_slot={}".format(*fields))
    return messages


def record(message: object) -> logging.LogRecord:
    """A record as foot_traffic.run.service's logger makes it."""
    return logging.getLogger("foot_traffic.run.service").makeRecord(
        "foot_traffic.run.service", logging.INFO, __file__, 1, message, (), None
    )


def test_text_lines_are_the_per_event_lines_with_the_records_prefix() -> None:
    """Each line of a batch's record is the record prefix plus exactly the specification's message for its event."""
    batch = encoded()
    rendered = TextFormatter().format(record(EmittedLines(batch, 3, 40))).split("\n")
    prefixes = {PREFIX.match(line).group(0) for line in rendered}  # type: ignore[union-attr]
    assert len(prefixes) == 1
    prefix = prefixes.pop()
    assert [line.removeprefix(prefix) for line in rendered] == expected_messages(batch, 3, 40)


@pytest.mark.parametrize("store_id", [None, "milan-01"])
def test_json_lines_are_the_objects_a_record_of_their_own_gives(store_id: str | None) -> None:
    """Each JSON line equals, key order included, what the formatter writes for one record with the event's fields."""
    batch = encoded(store_id)
    lines = JsonFormatter().format(record(EmittedLines(batch, 0, 25))).split("\n")
    assert len(lines) == 25
    for line, message in zip(lines, expected_messages(batch, 0, 25), strict=True):
        got = json.loads(line)
        ids = re.fullmatch(r"Emitted customer_id=(\S+) entry_time=(\S+) time_slot=(\S+)", message)
        assert ids is not None
        fields = {"customer_id": ids[1], "entry_time": ids[2], "time_slot": ids[3]}
        if store_id is not None:
            fields["store_id"] = store_id
        one = record("Emitted customer_id=%s entry_time=%s time_slot=%s")
        one.args = (ids[1], ids[2], ids[3])
        one.__dict__.update(fields)
        alone = json.loads(JsonFormatter().format(one))
        assert list(got) == list(alone)
        assert {k: v for k, v in got.items() if k != "time"} == {k: v for k, v in alone.items() if k != "time"}


def test_other_formatters_see_every_line_in_the_message() -> None:
    """A formatter that does not know batches still gets every event's message, one a line."""
    batch = encoded()
    assert record(EmittedLines(batch, 5, 17)).getMessage().split("\n") == expected_messages(batch, 5, 17)


def test_a_batch_reaches_the_stream_in_one_write() -> None:
    """A handler writes a batch's lines with one write call, not one per event."""

    class Counting(io.StringIO):
        writes = 0

        def write(self, text: str) -> int:
            Counting.writes += 1
            return super().write(text)

    stream = Counting()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    handler.emit(record(EmittedLines(encoded(), 0, 100)))
    assert Counting.writes <= 2  # the record's text, then the terminator
    assert stream.getvalue().count("Emitted customer_id=") == 100
