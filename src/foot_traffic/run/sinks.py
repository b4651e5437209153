"""Sinks: where encoded events go. The service only knows this protocol.

A sink counts what it confirmed (``delivered``) and what it could not deliver
(``failed``); every event handed to ``send`` ends up in one of the two once
``flush`` has returned 0 or ``close`` has run.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, BinaryIO, Protocol

from foot_traffic.errors import DeliveryError

if TYPE_CHECKING:
    from foot_traffic.events.encoding import Encoded


class Sink(Protocol):
    """The seam between the service loop and the outside world."""

    @property
    def delivered(self) -> int:
        """Events confirmed so far."""
        ...

    @property
    def failed(self) -> int:
        """Events that could not be delivered so far."""
        ...

    def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
        """Hand over one visit event (key = customer_id) of a store's slot, for the main topic."""
        ...

    def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
        """Hand over events [start, stop) of an encoded batch (a store's slot, or a chain's window), main topic."""
        ...

    def send_to(self, topic: str, key: str, value: bytes) -> None:
        """Hand over one event for another topic (a sensor's entry or exit event)."""
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

    def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
        """Store the event and confirm it at once."""
        if self.keep:
            self.records.append((key, value))
        self.delivered += 1

    def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
        """Store (or only count) the events and confirm them at once."""
        if self.keep:
            keys = [k.decode() for k in batch.keys(start, stop)]
            self.records.extend(zip(keys, batch.values(start, stop), strict=True))
        self.delivered += stop - start

    def send_to(self, topic: str, key: str, value: bytes) -> None:
        """Store the event under its topic and confirm it at once."""
        if self.keep:
            self.other.setdefault(topic, []).append((key, value))
        self.delivered += 1

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

    def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
        """Write one line; a closed pipe fails the event and stops the run."""
        self.send_to("", key, value)

    def send_to(self, topic: str, key: str, value: bytes) -> None:
        """Write one line, whatever the topic; a closed pipe fails the event and stops the run."""
        try:
            self._stream.write(value + b"\n")
        except OSError as exc:
            self.failed += 1 + self._pending
            self._pending = 0
            self._detach()
            raise DeliveryError(f"cannot write event {key} to standard output: {exc}") from None
        self._pending += 1

    def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
        """Write the batch's lines [start, stop) in one call."""
        try:
            self._stream.write(batch.segment(start, stop))
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
        detach(self._stream)


def detach(stream: BinaryIO) -> None:
    """Point a broken output stream at /dev/null so the interpreter's exit flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
