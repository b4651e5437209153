"""What the run reports as it goes: the seam between the loop (and its sinks) and the metrics.

The loop and the sinks report through a :class:`Recorder`; :data:`NO_METRICS`,
whose every method does nothing, when no metrics are served. Counting is per
hand-over, not per event: a backfill hands the sink batches of thousands of
events (of one store's slot, or a chain's window), so a batch costs one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from foot_traffic.events.encoding import Encoded, EncodedBatch
    from foot_traffic.model.arrivals import Batch
    from foot_traffic.run.clock import Clock


@dataclass(slots=True)
class Tally:
    """Counts of one (store, slot): visits planned, handed to the sink, confirmed and failed."""

    planned: int = 0
    emitted: int = 0
    delivered: int = 0
    failed: int = 0


class Recorder(Protocol):
    """What the service loop and the sinks report."""

    enabled: bool

    def running(self, clock: Clock, queue_length: Callable[[], int] | None = None) -> None:
        """The run is connected and its loop starts, on ``clock``; ``queue_length`` reads the producer's queue."""
        ...

    def stopping(self) -> None:
        """The loop has ended: the run is flushing and closing."""
        ...

    def planned(self, store_id: str | None, labels: Sequence[str], counts: Sequence[int]) -> None:
        """A day's plan is made: ``counts[i]`` visits in slot ``labels[i]``."""
        ...

    def emitted(self, batch: Encoded, start: int, stop: int) -> None:
        """Events [start, stop) of an encoded batch have been handed to the sink."""
        ...

    def emitted_sampled(self, store_id: str | None, slot: str, batch: Batch, start: int, stop: int) -> None:
        """Visits [start, stop) of a sampled batch have been handed to the sink, one by one."""
        ...

    def sensor_emitted(self, store_id: str | None, kind: str) -> None:
        """An ``entry`` or ``exit`` sensor event has been handed to the sink."""
        ...

    def imperfect(self, batch: EncodedBatch, index: int, *, late: bool, held: bool, duplicate: bool) -> None:
        """Event ``index`` of a batch has been handed to the sink late, after an outage held it, or a second time."""
        ...

    def clock_read(self) -> None:
        """The loop has read the clock: from now on a scrape may read it too (it will not start it early)."""
        ...

    def tally(self, store_id: str | None, slot: str) -> Tally:
        """The counts of a (store, slot), for a sink to count its confirmations and failures in."""
        ...

    def broker_down(self) -> None:
        """The Kafka client reports every broker down."""
        ...

    def broker_up(self) -> None:
        """A delivery has been confirmed since the brokers were reported down."""
        ...

    def fleet_rebalanced(self, owned: int) -> None:
        """The fleet's group completed a rebalance; this member now owns ``owned`` virtual partitions."""
        ...

    def fleet_owned(self, owned: int) -> None:
        """The fleet member gave up virtual partitions; it now owns ``owned``."""
        ...

    def fleet_handed_over(self, seconds: float) -> None:
        """A virtual partition's new owner sent its first event ``seconds`` after the partition's last commit."""
        ...


class NoMetrics:
    """The recorder of a run without METRICS_PORT: every report costs one call that does nothing."""

    enabled = False

    def running(self, clock: Clock, queue_length: Callable[[], int] | None = None) -> None:
        """Nothing to record."""

    def stopping(self) -> None:
        """Nothing to record."""

    def planned(self, store_id: str | None, labels: Sequence[str], counts: Sequence[int]) -> None:
        """Nothing to record."""

    def emitted(self, batch: Encoded, start: int, stop: int) -> None:
        """Nothing to record."""

    def emitted_sampled(self, store_id: str | None, slot: str, batch: Batch, start: int, stop: int) -> None:
        """Nothing to record."""

    def sensor_emitted(self, store_id: str | None, kind: str) -> None:
        """Nothing to record."""

    def imperfect(self, batch: EncodedBatch, index: int, *, late: bool, held: bool, duplicate: bool) -> None:
        """Nothing to record."""

    def clock_read(self) -> None:
        """Nothing to record."""

    def tally(self, store_id: str | None, slot: str) -> Tally:
        """A tally nobody reads."""
        return Tally()

    def broker_down(self) -> None:
        """Nothing to record."""

    def broker_up(self) -> None:
        """Nothing to record."""

    def fleet_rebalanced(self, owned: int) -> None:
        """Nothing to record."""

    def fleet_owned(self, owned: int) -> None:
        """Nothing to record."""

    def fleet_handed_over(self, seconds: float) -> None:
        """Nothing to record."""


NO_METRICS = NoMetrics()
"""The shared do-nothing recorder."""
