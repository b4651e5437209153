"""Stop signals: the first SIGINT/SIGTERM asks the run to stop and flush, a second one aborts.

A Python signal handler runs on the main thread between two bytecodes, which
may be while that very thread holds the lock inside ``threading.Event.wait``
or is half-way through writing a log line. Setting the stop event from the
handler then deadlocks (the lock is not re-entrant), and logging from it can
fail. So the handler itself does nothing but arm the abort for a second
signal; the stop is requested by a watcher thread that learns of the signal
through the interpreter's wakeup file descriptor (written by the C-level
handler at once, whatever the main thread is doing), logs it and sets the
event like any other thread would.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger("foot_traffic")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_CLOSE = b"\0"  # no signal has number 0: the watcher's cue to finish


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Within the block, a first SIGINT/SIGTERM sets ``stop``; a second raises KeyboardInterrupt on the main thread.

    Must be entered on the main thread (as ``signal.signal`` requires). The
    previous handlers and wakeup descriptor are restored on the way out.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    watcher = threading.Thread(target=_watch, args=(read_fd, stop), name="foot-traffic-signals", daemon=True)
    watcher.start()
    previous_handlers = {signum: signal.getsignal(signum) for signum in SIGNALS}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        for signum in SIGNALS:
            signal.signal(signum, _arm_abort)
        yield
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.write(write_fd, _CLOSE)
        watcher.join()
        os.close(read_fd)
        os.close(write_fd)


def _watch(read_fd: int, stop: threading.Event) -> None:
    """Turn the signal numbers written to ``read_fd`` into one logged stop request."""
    while True:
        data = os.read(read_fd, 512)
        for signum in data:
            if signum == _CLOSE[0]:
                return
            if signum in SIGNALS and not stop.is_set():
                log.info("Received %s: stopping, flushing outstanding events", signal.Signals(signum).name)
                stop.set()
        if not data:
            return


def _arm_abort(signum: int, frame: FrameType | None) -> None:
    """The first signal's handler on the main thread: the next one aborts."""
    for each in SIGNALS:
        signal.signal(each, _abort)


def _abort(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
