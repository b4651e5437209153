"""SHARD as written (``I/N`` or ``auto/N``), the index ``auto`` finds in the environment, and its checks.

``auto/N`` lets one manifest serve every pod: an Indexed Job's pod has its index in
JOB_COMPLETION_INDEX, and a StatefulSet's pod is named ``<name>-<ordinal>``, which is
its host name (HOSTNAME in its environment).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from foot_traffic.model.units import MAX_PARTITIONS, Shard

EXPECTED = "I/N with 0 <= I < N <= FLEET_PARTITIONS, or auto/N"
_TEXT = re.compile(r"(?P<index>auto|[0-9]+)/(?P<count>[0-9]+)")
_NUMBER = re.compile(r"[0-9]+")
_ORDINAL = re.compile(r"-(?P<ordinal>[0-9]+)$")
INDEX_VARIABLE = "JOB_COMPLETION_INDEX"
"""The variable a Kubernetes Indexed Job sets to its pod's index."""


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """SHARD as written: ``index`` of ``count``, the index None for ``auto`` (found at start-up)."""

    index: int | None
    count: int

    def __str__(self) -> str:
        return f"{'auto' if self.index is None else self.index}/{self.count}"


def parse(raw: str) -> ShardSpec:
    """``I/N`` or ``auto/N``, with 0 <= I < N <= 4096 (FLEET_PARTITIONS's bound is checked with it set)."""
    match = _TEXT.fullmatch(raw.strip().lower())
    if match is None:
        raise ValueError(EXPECTED)
    count = int(match["count"])
    index = None if match["index"] == "auto" else int(match["index"])
    if not 1 <= count <= MAX_PARTITIONS or (index is not None and index >= count):
        raise ValueError(EXPECTED)
    return ShardSpec(index, count)


def shard(spec: ShardSpec, quoted: str, env: Mapping[str, str], partitions: int) -> tuple[Shard | None, list[str]]:
    """The shard SHARD names (``auto``'s index taken from ``env``), or the problems; ``quoted`` names SHARD."""
    if spec.count > partitions:
        return None, [f"{quoted}: expected {EXPECTED}; N={spec.count} is above FLEET_PARTITIONS={partitions}"]
    if spec.index is not None:
        return Shard(spec.index, spec.count), []
    source, index = _auto_index(env)
    if index is None:
        return None, [
            f"{quoted}: expected {INDEX_VARIABLE} (an Indexed Job's pod) or a host name ending in -<ordinal> "
            f"(a StatefulSet's pod) to give I; found {source}"
        ]
    if index >= spec.count:
        return None, [f"{quoted}: {source} gives shard {index}/{spec.count}; expected an index below N={spec.count}"]
    return Shard(index, spec.count), []


def _auto_index(env: Mapping[str, str]) -> tuple[str, int | None]:
    """Where ``auto`` found its index, and the index: JOB_COMPLETION_INDEX if set, else the host name's ordinal."""
    raw = env.get(INDEX_VARIABLE, "")
    if raw != "":
        return f"{INDEX_VARIABLE}={raw!r}", int(raw) if _NUMBER.fullmatch(raw.strip()) else None
    host = (env.get("HOSTNAME") or socket.gethostname()).split(".")[0]
    match = _ORDINAL.search(host)
    return f"the host name {host!r}", None if match is None else int(match["ordinal"])
