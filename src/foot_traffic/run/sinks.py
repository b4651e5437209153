"""Sinks: where encoded events go. The service only knows this protocol.

A sink counts what it confirmed (``delivered``) and what it could not deliver
(``failed``); every event handed to ``send`` ends up in one of the two once
``flush`` has returned 0 or ``close`` has run.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, BinaryIO, Protocol

from foot_traffic.errors import DeliveryError

if TYPE_CHECKING:
    from foot_traffic.events.encoding import EncodedBatch

log = logging.getLogger(__name__)


class Sink(Protocol):
    """The seam between the service loop and the outside world."""

    delivered: int
    failed: int

    def send(self, key: str, value: bytes, topic: str | None = None) -> None:
        """Hand over one event (key = customer_id) for the main or another topic; may confirm it later."""
        ...

    def send_batch(self, batch: EncodedBatch, start: int, stop: int) -> None:
        """Hand over events [start, stop) of an encoded batch, for the main topic."""
        ...

    def poll(self) -> None:
        """Serve pending confirmations without blocking; called when the loop goes idle."""
        ...

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for confirmations; return how many are still pending."""
        ...

    def close(self) -> None:
        """Release resources; anything still unconfirmed is counted as failed."""
        ...


class MemorySink:
    """Keeps every event in a list: for tests and for the null-sink benchmark."""

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.records: list[tuple[str, bytes]] = []
        self.other: dict[str, list[tuple[str, bytes]]] = {}
        self.delivered = 0
        self.failed = 0

    def send(self, key: str, value: bytes, topic: str | None = None) -> None:
        """Store the event and confirm it at once."""
        if self.keep:
            (self.records if topic is None else self.other.setdefault(topic, [])).append((key, value))
        self.delivered += 1

    def send_batch(self, batch: EncodedBatch, start: int, stop: int) -> None:
        """Store (or only count) the events and confirm them at once."""
        if self.keep:
            keys = [k.decode() for k in batch.keys(start, stop)]
            self.records.extend(zip(keys, batch.values(start, stop), strict=True))
        self.delivered += stop - start

    def poll(self) -> None:
        """Nothing is ever pending."""

    def flush(self, timeout_s: float) -> int:
        """Nothing is ever pending."""
        return 0

    def close(self) -> None:
        """Nothing to release."""


class StdoutSink:
    """Writes each event as one JSON line; output is flushed whenever the loop goes idle."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending = 0
        self.delivered = 0
        self.failed = 0

    def send(self, key: str, value: bytes, topic: str | None = None) -> None:
        """Write one line, whatever the topic; a closed pipe fails the event and stops the run."""
        try:
            self._stream.write(value + b"\n")
        except OSError as exc:
            self.failed += 1 + self._pending
            self._pending = 0
            self._detach()
            raise DeliveryError(f"cannot write event {key} to standard output: {exc}") from None
        self._pending += 1

    def send_batch(self, batch: EncodedBatch, start: int, stop: int) -> None:
        """Write the batch's lines [start, stop) in one call."""
        step = batch.width + 1
        try:
            self._stream.write(memoryview(batch.lines)[start * step : stop * step])
        except OSError as exc:
            self.failed += stop - start + self._pending
            self._pending = 0
            self._detach()
            raise DeliveryError(f"cannot write events to standard output: {exc}") from None
        self._pending += stop - start

    def poll(self) -> None:
        """Flush written lines so a reader sees them while the loop waits."""
        self.flush(0)

    def flush(self, timeout_s: float) -> int:
        """Flush the stream; lines written before a failed flush are counted as failed."""
        if not self._pending:
            return 0
        try:
            self._stream.flush()
        except OSError as exc:
            self.failed += self._pending
            self._pending = 0
            self._detach()
            raise DeliveryError(f"cannot flush standard output: {exc}") from None
        self.delivered += self._pending
        self._pending = 0
        return 0

    def close(self) -> None:
        """Flush what is left."""
        self.flush(0)

    def _detach(self) -> None:
        """Point the broken stream at /dev/null so the interpreter's exit flush cannot fail again."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
