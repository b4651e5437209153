"""The per-event log lines of a batch, carried by one log record: one handler write per due batch.

The specification logs every emitted event at INFO. A backfill emits hundreds of
thousands a second, and a ``logging`` call per event would cost more than the
event. The loop hands the handler one record per due batch instead; its message is
an :class:`EmittedLines`, whose text is the batch's lines, each exactly the
specification's ``Emitted customer_id=… entry_time=… time_slot=…``. The command
line's formatters (:mod:`foot_traffic.cli.logs`) render it as one complete log line
per event, with the same prefix or JSON fields a record of its own would get; any
other formatter shows the lines as one multi-line message, so nothing is lost.
"""

from __future__ import annotations

from foot_traffic.events.encoding import CUSTOMER_ID, ENTRY_TIME, EncodedBatch, assemble

BATCH_FROM = 8
"""Fewer due events than this are logged one record each (the real-time path): a record is cheaper than a batch."""


class EmittedLines:
    """The ``Emitted`` lines of events [start, stop) of an encoded batch: the message of one log record."""

    __slots__ = ("batch", "start", "stop")

    def __init__(self, batch: EncodedBatch, start: int, stop: int) -> None:
        self.batch = batch
        self.start = start
        self.stop = stop

    def __len__(self) -> int:
        return self.stop - self.start

    def render(self, parts: list[bytes | slice]) -> str:
        """One line per event made of ``parts`` (see :func:`message_parts`), joined by newlines."""
        return assemble(self.batch, self.start, self.stop, parts).decode().removesuffix("\n")

    def message_parts(self, before: bytes = b"", slot: str | None = None) -> list[bytes | slice]:
        """The pieces of one event's message after ``before``: the slot as ``slot`` writes it (default: as is)."""
        label = (self.batch.time_slot if slot is None else slot).encode()
        return [before + b"Emitted customer_id=", CUSTOMER_ID, b" entry_time=", ENTRY_TIME, b" time_slot=" + label]

    def __str__(self) -> str:
        """The plain messages, one a line (what a formatter that does not know this class shows)."""
        return self.render(self.message_parts())
