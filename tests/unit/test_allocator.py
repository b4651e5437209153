"""Kept freed memory: a process that makes the same large arrays over and over stops page-faulting on each."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import resource, sys
import numpy as np
from foot_traffic.cli import allocator
kept = allocator.keep_freed_memory() if sys.argv[1] == "keep" else None
np.ones(4 << 20, dtype=np.uint8)  # the first array of the size: its pages are new either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    np.ones(4 << 20, dtype=np.uint8)  # 4 MiB, written whole, then freed
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[str, int]:
    """What keep_freed_memory returned in a fresh process, and its page faults over 20 arrays of 4 MiB."""
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True).stdout
    kept, count = out.split()
    return kept, int(count)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_arrays_of_a_freed_size_reuse_its_pages_once_freed_memory_is_kept() -> None:
    """By default each 4 MiB array is mapped afresh and faults its pages in again; with freed memory kept, few do."""
    _, default = faults("default")
    kept, faulted = faults("keep")
    assert kept == "True"
    assert default >= 20, "each array mapped afresh faults at least once (huge pages fault fewer times than 4 KiB ones)"
    assert faulted <= default // 10
