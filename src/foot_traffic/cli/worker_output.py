"""Copy each worker's output to the parent's in whole lines, so that two workers' lines never cut into each other.

Each worker writes to a pipe of its own; a thread per pipe reads large chunks
and writes everything up to the chunk's last newline in one call, under the
target's lock. The copy costs a few C-level byte operations per megabyte, not
Python work per line.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import BinaryIO

from foot_traffic.run.sinks import detach

log = logging.getLogger(__name__)

CHUNK = 1 << 20
"""Bytes read from a worker's pipe at a time."""

Label = Callable[[bytes], bytes]
"""What a copy does to a block of whole lines before writing it (e.g. names the worker on each)."""


def split_complete(carry: bytes, chunk: bytes) -> tuple[bytes, bytes]:
    """``carry + chunk`` cut after its last newline: (the whole lines, the incomplete rest)."""
    data = carry + chunk if carry else chunk
    end = data.rfind(b"\n") + 1
    return data[:end], data[end:]


def unchanged(lines: bytes) -> bytes:
    """The lines as they are."""
    return lines


def worker_label(index: int, *, json_lines: bool) -> Label:
    """Name worker ``index`` on each line: a ``worker`` field first in a JSON object, else a ``[worker i]`` prefix.

    A line of a JSON log that is not an object (a crash's traceback) is left as it is.
    """
    if json_lines:
        mark, named = b'\n{"', b'\n{"worker":%d,"' % index
        return lambda lines: (b"\n" + lines).replace(mark, named)[1:]
    prefix = b"[worker %d] " % index
    return lambda lines: prefix + lines[:-1].replace(b"\n", b"\n" + prefix) + lines[-1:]


class Target:
    """An output stream shared by several copies: one writes at a time, whole blocks of lines."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Write and flush ``data`` before any other copy writes; OSError if the stream is closed."""
        with self.lock:
            try:
                self.stream.write(data)
                self.stream.flush()
            except OSError:
                detach(self.stream)
                raise


class Copy:
    """Copies a worker's pipe (read end ``fd``, closed at the end) to ``target`` in whole lines, on a thread."""

    def __init__(self, fd: int, target: Target, name: str, label: Label = unchanged) -> None:
        self._fd = fd
        self._target = target
        self._name = name
        self._label = label
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name=f"foot-traffic-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        carry = b""
        try:
            while chunk := os.read(self._fd, CHUNK):
                lines, carry = split_complete(carry, chunk)
                if lines:
                    self._target.write(self._label(lines))
        except OSError as exc:  # the parent's own output is closed: the worker's next write fails, and it says so
            self.error = exc
        finally:
            os.close(self._fd)
        if carry:
            log.warning("The %s ended with an incomplete line of %d byte(s), left out", self._name, len(carry))

    def join(self) -> None:
        """Wait until the worker's end of the pipe is closed and everything is copied."""
        self._thread.join()
