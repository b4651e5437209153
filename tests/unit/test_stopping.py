"""Stop signals: a first one stops the run whatever the main thread holds, a second one aborts."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from foot_traffic.run.stopping import is_abort, stop_on_signals

HOLDING_THE_EVENTS_LOCK = textwrap.dedent(
    """
    import os, signal, sys, threading
    from foot_traffic.run.stopping import is_abort, stop_on_signals

    stop = threading.Event()
    with stop_on_signals(stop):
        # Event.wait holds this lock around its checks: a signal landing there must not need it.
        with stop._cond:
            os.kill(os.getpid(), signal.{name})
            for _ in range(100_000):  # bytecodes, so the Python-level handler runs while the lock is held
                pass
        print("stopped" if stop.wait(10) else "not stopped", flush=True)
    """
)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_while_the_main_thread_holds_the_stop_events_lock_still_stops(name: str) -> None:
    """A handler that set the event itself would deadlock here; the run must stop instead."""
    done = subprocess.run(
        [sys.executable, "-c", HOLDING_THE_EVENTS_LOCK.format(name=name)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "stopped\n"), done.stderr


TWO_SIGNALS_WHILE_THE_MAIN_THREAD_IS_IN_C = textwrap.dedent(
    """
    import os, signal, threading, time
    from foot_traffic.run.stopping import is_abort, stop_on_signals

    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            # The main thread blocks the signals, so another thread takes them and the main thread, stuck in
            # a C call, runs its Python handler only afterwards: once for both signals, as in a long flush.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            def send():
                time.sleep(0.3)  # the main thread is blocked by then
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.3)  # two signals, not one: a pending signal sent again is merged
                os.kill(os.getpid(), signal.SIGTERM)
            threading.Thread(target=send).start()
            held = threading.Lock()
            held.acquire()
            held.acquire(timeout=2)
            stop.wait(5)
            print("not aborted", flush=True)
    except KeyboardInterrupt:
        print("aborted" if stop.is_set() else "aborted without stopping", flush=True)
    """
)


def test_two_signals_before_the_main_thread_runs_python_still_abort() -> None:
    """The second signal counts even when the main thread's handler runs once for both."""
    done = subprocess.run(
        [sys.executable, "-c", TWO_SIGNALS_WHILE_THE_MAIN_THREAD_IS_IN_C],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "aborted\n"), done.stderr


def test_first_signal_sets_the_stop_and_logs_it_once(caplog: pytest.LogCaptureFixture) -> None:
    """The stop is set from another thread, with one "Received" line however many signals arrive at once."""
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="foot_traffic")
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10)
    received = [r for r in caplog.records if r.getMessage().startswith("Received")]
    assert [r.getMessage() for r in received] == ["Received SIGTERM: stopping, flushing outstanding events"]
    assert received[0].threadName == "foot-traffic-signals"


def _two_signals(stop: threading.Event) -> None:
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(10)
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(10)  # interrupted long before this ends


def test_second_signal_raises_keyboard_interrupt_on_the_main_thread() -> None:
    """After the first signal, the next one interrupts whatever the main thread is doing."""
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _two_signals(threading.Event())
    assert time.monotonic() - started < 5


def test_handlers_and_wakeup_descriptor_are_restored_and_the_watcher_ends() -> None:
    """Outside the block the process handles signals as before, and no thread is left behind."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_on_signals(threading.Event()):
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        assert any(t.name == "foot-traffic-signals" for t in threading.enumerate())
    assert {s: signal.getsignal(s) for s in before} == before
    assert not any(t.name == "foot-traffic-signals" for t in threading.enumerate())
    assert signal.set_wakeup_fd(-1) == -1, "no wakeup descriptor left installed"


def _wrap_an_interrupt() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as interrupt:
        raise SystemError("returned a result with an exception set") from interrupt


def test_an_interrupt_wrapped_by_a_c_library_is_still_the_abort() -> None:
    """A SystemError caused by the KeyboardInterrupt (as the Kafka client raises it) counts; other errors do not."""
    with pytest.raises(SystemError) as info:
        _wrap_an_interrupt()
    assert is_abort(info.value)
    assert is_abort(KeyboardInterrupt())
    assert not is_abort(SystemError("other"))
    assert not is_abort(ValueError("bad"))
