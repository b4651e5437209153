"""The bench's child watcher reads a child's standard error all the time, so a child never blocks on a full pipe."""

from __future__ import annotations

import sys

from bench.scaleout import started

PIPE_BYTES = 1 << 16
"""A Linux pipe's default capacity: a child that writes more while nobody reads blocks in its write."""


def test_a_child_unwatched_is_still_read_so_its_writes_never_block() -> None:
    """A child writes four pipes' worth to stderr while the bench watches nothing; it ends and every line arrives."""
    lines = 4 * PIPE_BYTES // 100
    script = f"import sys\nfor i in range({lines}): sys.stderr.write(f'{{i:099d}}\\n')\nsys.stderr.flush()"
    with started([sys.executable, "-c", script], {}) as child:
        assert child.proc.wait(60) == 0, "the child blocked on its standard error"
        assert child.wait_for(1, f"^{lines - 1:099d}$", 60) is not None
        assert [int(line) for _, line in child.lines] == list(range(lines))
