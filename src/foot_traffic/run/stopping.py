"""Stop signals: the first SIGINT/SIGTERM asks the run to stop and flush, a second one aborts.

A Python signal handler runs on the main thread between two bytecodes, which
may be while that very thread holds the lock inside ``threading.Event.wait``
or is half-way through writing a log line. Setting the stop event from the
handler then deadlocks (the lock is not re-entrant), and logging from it can
fail. So the stop is requested by a watcher thread that learns of each
signal through the interpreter's wakeup file descriptor (written by the
C-level handler at once, whatever the main thread is doing), logs it and sets
the event like any other thread would. At a second signal the watcher has the
main thread's handler raise KeyboardInterrupt; that handler does nothing else.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger("foot_traffic")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
ABORT_TRIES, ABORT_EVERY_S = 100, 0.05
"""A second signal interrupts the main thread every 50 ms until it aborts, for 5 s at most."""
_CLOSE = b"\0"  # no signal has number 0: the watcher's cue to finish


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[Signals]:
    """Within the block, a first SIGINT/SIGTERM sets ``stop``; a second raises KeyboardInterrupt on the main thread.

    The KeyboardInterrupt is raised again every 50 ms (for 5 s at most) until the
    block calls ``taken()`` on the Signals it receives: an exception raised inside
    a callback of a C library may be swallowed there, so the code that handles
    the abort says it has, and may also ask ``aborting`` after such a call. Must
    be entered on the main thread (as ``signal.signal``
    requires). The previous handlers and wakeup descriptor are restored on the
    way out.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    watcher = Signals(read_fd, stop)
    thread = threading.Thread(target=watcher.run, name="foot-traffic-signals", daemon=True)
    thread.start()
    previous_handlers = {signum: signal.getsignal(signum) for signum in SIGNALS}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    try:
        for signum in SIGNALS:
            signal.signal(signum, watcher.on_main_thread)
        yield watcher
    finally:
        watcher.taken()
        os.write(write_fd, _CLOSE)
        thread.join()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(read_fd)
        os.close(write_fd)


class Signals:
    """Counts the signals written to the wakeup descriptor: the first stops the run, the second aborts it.

    The count is the watcher's, not the main thread handler's: two signals that
    arrive before the main thread runs Python again call that handler once.
    """

    def __init__(self, read_fd: int, stop: threading.Event) -> None:
        self._read_fd = read_fd
        self._stop = stop
        self._seen = 0
        self._main = threading.main_thread().ident or 0
        self.aborting = False
        self._taken = False

    def run(self) -> None:
        """Read signal numbers until the block ends."""
        while True:
            data = os.read(self._read_fd, 512)
            for signum in data:
                if signum == _CLOSE[0]:
                    return
                if signum in SIGNALS:
                    self._received(signum)
            if not data:
                return

    def _received(self, signum: int) -> None:
        self._seen += 1
        if self._seen == 1:
            log.info("Received %s: stopping, flushing outstanding events", signal.Signals(signum).name)
            self._stop.set()
        elif not self.aborting:
            self.aborting = True
            self._interrupt_main()

    def _interrupt_main(self) -> None:
        """Signal the main thread until the abort is taken (at most 5 s).

        A signal of its own wakes it from a blocking call and runs its handler,
        which raises; a signal landing just before a call blocks, or an exception
        swallowed by a C library's callback, would be missed, hence the repeats.
        """
        for _ in range(ABORT_TRIES):
            if self._taken:
                return
            signal.pthread_kill(self._main, signal.SIGINT)
            time.sleep(ABORT_EVERY_S)

    def taken(self) -> None:
        """The abort has been handled (or the block is left): no more KeyboardInterrupt."""
        self._taken = True

    def on_main_thread(self, signum: int, frame: FrameType | None) -> None:
        """The Python-level handler: KeyboardInterrupt after a second signal until the abort is taken; else nothing."""
        if self.aborting and not self._taken:
            raise KeyboardInterrupt


def is_abort(exc: BaseException) -> bool:
    """Whether ``exc`` is the abort's KeyboardInterrupt, or wraps it.

    The Kafka client may run the signal handler inside one of its callbacks and
    then report a SystemError ("returned a result with an exception set") whose
    cause is the KeyboardInterrupt.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
