"""An at-least-once fleet member's sink: events outside transactions, positions checkpointed after them.

A fleet without EXACTLY_ONCE sends its events with the plain producer, as a single run
does, and every COMMIT_INTERVAL_MS commits a checkpoint: a small transaction, on a
transactional producer of its own, that holds the units' positions and the fleet's
offsets (so the group still fences a zombie's checkpoint). A checkpoint waits for the
events before it to be confirmed, so a committed position never leads an unconfirmed
event. A new owner resumes after the last checkpoint: what the old owner sent after it
is sent again, at least once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from foot_traffic.events.encoding import Encoded
from foot_traffic.kafka.producer import KafkaSink
from foot_traffic.kafka.transactions import TransactionalKafkaSink
from foot_traffic.run.positions import Positions


class CheckpointedSink:
    """A Sink that sends through ``events`` and commits the moved ``positions`` through ``checkpoints``.

    ``checkpoints`` must settle ``events`` before each commit (its ``settle`` is ``events.flush``).
    Delivered and failed are the events' own delivery reports: an event sent again is delivered again.
    """

    def __init__(
        self,
        events: KafkaSink,
        checkpoints: TransactionalKafkaSink,
        positions: Positions,
        *,
        interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events = events
        self.checkpoints = checkpoints
        self.positions = positions
        self._interval = interval_s
        self._monotonic = monotonic
        self._last = monotonic()

    @property
    def delivered(self) -> int:
        """Events confirmed so far."""
        return self.events.delivered

    @property
    def failed(self) -> int:
        """Events that could not be delivered so far."""
        return self.events.failed

    def send(self, key: str, value: bytes, store_id: str | None, slot: str) -> None:
        """Produce one visit event; checkpoint when the interval has passed."""
        self.events.send(key, value, store_id, slot)
        self._maybe_checkpoint()

    def send_batch(self, batch: Encoded, start: int, stop: int) -> None:
        """Produce a batch; checkpoint when the interval has passed."""
        self.events.send_batch(batch, start, stop)
        self._maybe_checkpoint()

    def send_to(self, topic: str, key: str, value: bytes) -> None:
        """Produce one event for another topic; checkpoint when the interval has passed."""
        self.events.send_to(topic, key, value)
        self._maybe_checkpoint()

    def poll(self) -> None:
        """Serve delivery reports; checkpoint when the interval has passed."""
        self.events.poll()
        self._maybe_checkpoint()

    def pending(self) -> int:
        """Events queued or in flight, not yet confirmed or failed."""
        return self.events.pending()

    def flush(self, timeout_s: float) -> int:
        """Wait for the events, commit the last checkpoint; return how many events are still unconfirmed."""
        if self.checkpoints.flush(timeout_s):
            return max(1, self.events.pending())
        return self.events.flush(timeout_s)

    def close(self) -> None:
        """Close both producers; events still unconfirmed are counted as failed by their reports."""
        self.checkpoints.close()
        self.events.close()

    def _maybe_checkpoint(self) -> None:
        if self.positions.pending() and self._monotonic() - self._last >= self._interval:
            self._last = self._monotonic()
            self.checkpoints.commit_now()
