"""Log lines in batches, carried by one log record: one handler write per due batch, or per instant's plans.

The specification logs every emitted event at INFO. A backfill emits hundreds of
thousands a second, and a ``logging`` call per event would cost more than the
event. The loop hands the handler one record per due batch instead; its message is
an :class:`EmittedLines`, whose text is the batch's lines, each exactly the
specification's ``Emitted customer_id=… entry_time=… time_slot=…``. A chain's stores
plan their days at the same instants, and their plan lines go the same way, as one
:class:`PlanLines` record per instant. The command line's formatters
(:mod:`foot_traffic.cli.logs`) render either as one complete log line per event or
plan, with the same prefix or JSON fields a record of its own would get; any other
formatter shows the lines as one multi-line message, so nothing is lost.
"""

from __future__ import annotations

import logging

from foot_traffic.events.encoding import Encoded, PerGroup, assemble
from foot_traffic.events.fields import CUSTOMER_ID, ENTRY_TIME
from foot_traffic.model.plan import DayPlan

BATCH_FROM = 8
"""Fewer due events than this are logged one record each (the real-time path): a record is cheaper than a batch."""


class EmittedLines:
    """The ``Emitted`` lines of events [start, stop) of an encoded batch: the message of one log record."""

    __slots__ = ("batch", "start", "stop")

    def __init__(self, batch: Encoded, start: int, stop: int) -> None:
        self.batch = batch
        self.start = start
        self.stop = stop

    def __len__(self) -> int:
        return self.stop - self.start

    def render(self, parts: list[bytes | slice | PerGroup]) -> str:
        """One line per event made of ``parts`` (see :func:`message_parts`), joined by newlines."""
        return assemble(self.batch, self.start, self.stop, parts).decode().removesuffix("\n")

    @staticmethod
    def message_parts(before: bytes = b"", slot: PerGroup | None = None) -> list[bytes | slice | PerGroup]:
        """The pieces of one event's message after ``before``: its slot as ``slot`` writes it (default: as is)."""
        label = slot or _label
        return [before + b"Emitted customer_id=", CUSTOMER_ID, b" entry_time=", ENTRY_TIME, b" time_slot=", label]

    def __str__(self) -> str:
        """The plain messages, one a line (what a formatter that does not know this class shows)."""
        return self.render(self.message_parts())


def _label(store_id: str | None, slot: str) -> bytes:
    """A slot's label as it is."""
    return slot.encode()


class PlanLines:
    """The plan lines of the stores that plan a day at one instant, each with its JSON fields: one record's message."""

    __slots__ = ("lines",)

    def __init__(self, lines: list[tuple[str, dict[str, object]]]) -> None:
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def __str__(self) -> str:
        """The plain lines, one a line (what a formatter that does not know this class shows)."""
        return "\n".join(text for text, _ in self.lines)


def plan_fields(plan: DayPlan, store_id: str | None) -> dict[str, object]:
    """A plan line's values, as fields of a JSON log line."""
    fields: dict[str, object] = {
        "date": plan.date.isoformat(),
        "weekday": plan.weekday,
        "planned": int(plan.total),
        "per_slot": [int(count) for count in plan.counts],
    }
    if store_id is not None:
        fields["store_id"] = store_id
    return fields


def log_emitted(
    log: logging.Logger, customer_id: str, entry_time: str, time_slot: str, store_id: str | None, *, with_fields: bool
) -> None:
    """The specification's per-event line, to ``log``; JSON logs also get its values as fields of their own.

    The fields are built only for a handler that writes them: a text line is 10 % faster without.
    """
    if not with_fields:
        log.info("Emitted customer_id=%s entry_time=%s time_slot=%s", customer_id, entry_time, time_slot)
        return
    fields = {"customer_id": customer_id, "entry_time": entry_time, "time_slot": time_slot}
    if store_id is not None:
        fields["store_id"] = store_id
    log.info("Emitted customer_id=%s entry_time=%s time_slot=%s", customer_id, entry_time, time_slot, extra=fields)
