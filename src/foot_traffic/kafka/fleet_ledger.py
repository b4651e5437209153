"""The fleet's bookkeeping, without a client: what a member owns, what changed, and a partition's committed mark.

Kafka's group protocol calls a member back when it gains or gives up virtual
partitions; the :class:`Ledger` collects those calls so the loop can take them
as one :class:`Changes` when it is ready. A :class:`Mark` is what the fleet
commits per virtual partition: a count that only grows (the committed offset)
and, in the offset's metadata, whether every unit of the partition is done and
when it was last committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DONE = "done"
"""The metadata word of a virtual partition whose units are all complete."""
OPEN = "open"
"""The metadata word of a virtual partition with work left."""


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in a member's assignment since the loop last asked: stop revoked and lost first, then start.

    A partition given up and given back in between is in both sets: stop it, then resume it.
    """

    assigned: frozenset[int] = frozenset()
    revoked: frozenset[int] = frozenset()
    lost: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        """True when anything changed."""
        return bool(self.assigned or self.revoked or self.lost)


@dataclass(slots=True)
class Ledger:
    """The partitions a member owns, and the assignments, revocations and losses the loop has not taken yet."""

    owned: set[int] = field(default_factory=set)
    _assigned: set[int] = field(default_factory=set)
    _revoked: set[int] = field(default_factory=set)
    _lost: set[int] = field(default_factory=set)

    def assign(self, partitions: Iterable[int]) -> None:
        """The group gave this member ``partitions``."""
        given = set(partitions)
        self.owned |= given
        self._assigned |= given

    def revoke(self, partitions: Iterable[int]) -> None:
        """The member gave ``partitions`` up in a rebalance, after committing or aborting its work on them."""
        taken = set(partitions)
        self.owned -= taken
        self._revoked |= taken

    def lose(self, partitions: Iterable[int]) -> None:
        """The member lost ``partitions``: it is no longer in the group, others may already run them."""
        taken = set(partitions)
        self.owned -= taken
        self._lost |= taken

    def take(self) -> Changes:
        """The changes since the last take (an assignment given up since is not reported as assigned)."""
        changes = Changes(frozenset(self._assigned & self.owned), frozenset(self._revoked), frozenset(self._lost))
        self._assigned.clear()
        self._revoked.clear()
        self._lost.clear()
        return changes


@dataclass(frozen=True, slots=True)
class Mark:
    """A virtual partition's committed mark: how many transactions committed it, whether it is done, and when.

    ``commits`` is the committed offset (0: never committed), ``at_ms`` the wall-clock time of the last
    commit in milliseconds since the epoch (None when unknown).
    """

    commits: int = 0
    done: bool = False
    at_ms: int | None = None

    def metadata(self) -> str:
        """The offset metadata that carries ``done`` and ``at_ms``: ``"done 1733220000000"``."""
        return f"{DONE if self.done else OPEN} {self.at_ms if self.at_ms is not None else ''}".rstrip()

    def next(self, *, done: bool, at_ms: int) -> Mark:
        """The mark the next commit writes: one more commit, done if it was or now is, at ``at_ms``."""
        return Mark(self.commits + 1, self.done or done, at_ms)

    @staticmethod
    def parse(offset: int, metadata: str | None) -> Mark:
        """Read a committed offset and its metadata; a negative offset (nothing committed) is a fresh mark."""
        if offset < 0:
            return Mark()
        word, _, at = (metadata or "").partition(" ")
        return Mark(offset, word == DONE, int(at) if at.isascii() and at.isdigit() else None)
