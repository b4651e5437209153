"""``foot-traffic run`` with WORKERS > 1: a parent starts the workers, supervises them and sums up their runs.

Each worker is ``foot-traffic run`` with the parent's own settings plus its part
(``part``). The parent restarts a worker that crashes, a few times in a row at
most, with growing waits; forwards the first SIGINT/SIGTERM to every worker
(each stops and flushes) and a second one too (each aborts); copies the
workers' output and logs in whole lines; logs one summary line with the sums
of theirs; and exits with the worst of their statuses. Workers run in process
groups of their own, so that a Ctrl-C on the terminal reaches them once,
through the parent, and not twice.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from foot_traffic.cli.summary import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_UNDELIVERED,
    EXIT_UNREACHABLE,
    SUMMARY_FD,
    Counts,
    describe,
    is_crash,
    log_summary,
    receive_summary,
    total,
    worst,
)
from foot_traffic.cli.worker_output import Copy, Target, worker_label
from foot_traffic.config.settings import Settings
from foot_traffic.metrics import aggregate
from foot_traffic.run import stopping

log = logging.getLogger(__name__)

RESTART_DELAYS = (1.0, 2.0, 4.0)
"""Waits before the 1st, 2nd and 3rd restart in a row of a worker that keeps crashing; a 4th crash stops the run."""
HEALTHY_AFTER_S = 60.0
"""A worker that ran this long before it crashed has its restarts in a row counted afresh."""
KILL_AFTER_S = 10.0
"""After an abort, how long the workers have to exit before they are killed."""
_STOP = None  # the queue's item for "a stop signal arrived"


@dataclass(frozen=True, slots=True)
class Part:
    """What a worker is told on top of the parent's settings: flags after the parent's, and variables."""

    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


PARENT_PID = "FOOT_TRAFFIC_PARENT_PID"
"""Internal variable: the supervising parent's process id, given to each worker."""
_PR_SET_PDEATHSIG = 1


def follow_parent(env: Mapping[str, str] = os.environ) -> None:
    """In a worker, end with SIGTERM (a graceful stop) when the parent dies, even by SIGKILL.

    The workers run in process groups of their own, so a signal to the parent's group
    does not reach them; without this, a parent killed outright would leave them running.
    Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and outside a worker, nothing happens.
    """
    parent = env.get(PARENT_PID)
    if not parent or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if str(os.getppid()) != parent:  # the parent died before the watch was set: it will never fire
        os.kill(os.getpid(), signal.SIGTERM)


def part(index: int, count: int, fleet_id: str | None = None) -> Part:
    """How worker ``index`` of ``count`` learns its part of the run (WORKERS=1 in it: no parent of its own).

    With ``fleet_id`` every worker joins that fleet and Kafka gives each its partitions (a restarted
    worker rejoins it); without, worker ``index`` is shard ``index/count``.
    """
    if fleet_id is not None:
        return Part(args=("--workers", "1"), env={"FLEET_ID": fleet_id})
    return Part(args=("--workers", "1"), env={"SHARD": f"{index}/{count}"})


def fleet_of(settings: Settings) -> str | None:
    """The fleet the workers join: FLEET_ID, else a new one for an exactly-once run on Kafka, else None (shards).

    A fleet needs Kafka's group protocol and its transactions: other runs split into static shards.
    """
    if settings.fleet_id is not None:
        return settings.fleet_id
    if not settings.exactly_once or settings.sink != "kafka":
        return None
    fleet_id = f"workers-{secrets.token_hex(4)}"
    log.info("FLEET_ID is not set; the workers join fleet %s", fleet_id)
    return fleet_id


@dataclass(frozen=True, slots=True)
class Fleet:
    """The workers to run: the command they share, each one's part, and how to label their logs."""

    count: int
    command: tuple[str, ...]
    part: Callable[[int], Part]
    json_logs: bool = False
    sensors: bool = False
    restart_delays: tuple[float, ...] = RESTART_DELAYS
    healthy_after_s: float = HEALTHY_AFTER_S


def run(settings: Settings, argv: Sequence[str]) -> int:
    """Run WORKERS copies of the command ``argv`` (``run`` and its flags) and supervise them."""
    extra = plan_args(settings)
    base = settings.metrics_port
    fleet_id = fleet_of(settings)

    def child(index: int) -> Part:
        given = part(index, settings.workers, fleet_id)
        metrics = () if base is None else ("--metrics-port", str(base + 1 + index))
        return Part((*given.args, *extra, *metrics), given.env)

    fleet = Fleet(
        settings.workers,
        (sys.executable, "-m", "foot_traffic", *argv),
        child,
        json_logs=settings.log_format == "json",
        sensors=settings.exit_events_topic is not None,
    )
    ports = [] if base is None else [base + 1 + index for index in range(fleet.count)]
    with aggregate.served(base, settings.metrics_host, ports):
        log.info("Starting %d workers", fleet.count)
        return supervise(fleet)


def plan_args(settings: Settings, now: dt.datetime | None = None) -> tuple[str, ...]:
    """One SEED and one START for every worker when unset, so that their parts come from one plan.

    The first day's plan is cut at the start: without START each worker would cut it at its
    own. START is the parent's own start instant (``now``); a live run (neither SPEED nor
    UNTIL) also gets SPEED=max, so that each worker catches up from it to the wall clock,
    the moments since, and then runs in real time. A fleet has both set (the settings say so).
    """
    args: tuple[str, ...] = ()
    if settings.seed is None:
        seed = secrets.token_hex(8)
        log.info("SEED is not set; this run uses SEED=%s (set it to replay the run)", seed)
        args += ("--seed", seed)
    if settings.start is None:
        start = (now or dt.datetime.now(dt.UTC)).isoformat()
        log.info("START is not set; this run uses START=%s, the same for every worker", start)
        args += ("--start", start)
        if settings.speed is None and not settings.speed_is_max and settings.until is None:
            args += ("--speed", "max")
    return args


def supervise(fleet: Fleet, out: BinaryIO | None = None, err: BinaryIO | None = None) -> int:
    """Run the fleet to its end (must be called on the main thread); return the worst exit status."""
    return _Supervisor(fleet, out or sys.stdout.buffer, err or sys.stderr.buffer).run()


@dataclass(slots=True)
class _Worker:
    """One worker's current process, and what its ended processes added up to."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    summary_fd: int = -1
    copies: tuple[Copy, ...] = ()
    started_at: float = 0.0
    in_a_row: int = 0
    restarts: int = 0
    restart_at: float | None = None
    counts: Counts = field(default_factory=Counts)
    status: int | None = None


class _Supervisor:
    """The parent's state; only the main thread changes it, in the order the queue tells of events."""

    def __init__(self, fleet: Fleet, out: BinaryIO, err: BinaryIO) -> None:
        self.fleet = fleet
        self._out, self._err = Target(out), Target(err)
        self._events: queue.Queue[tuple[int, int] | None] = queue.Queue()
        self._workers = [_Worker(index) for index in range(fleet.count)]
        self._stopping = False
        self._aborted = False

    def run(self) -> int:
        """Start every worker, supervise them until all have ended, log the summary; the worst status."""
        stop = threading.Event()
        with stopping.stop_on_signals(stop) as signals:
            threading.Thread(target=self._on_stop, args=(stop,), name="foot-traffic-stop", daemon=True).start()
            try:
                for worker in self._workers:
                    self._start(worker)
                self._supervise()
            except BaseException as exc:
                if not stopping.is_abort(exc):
                    raise
                signals.taken()
                self._abort()
            finally:
                stop.set()  # frees the stop thread
        workers = self._workers
        restarts = sum(w.restarts for w in workers)
        log_summary(total(w.counts for w in workers), sensors=self.fleet.sensors, restarts=restarts)
        if self._aborted:
            return EXIT_INTERRUPTED
        return worst(EXIT_UNDELIVERED if w.status is None else w.status for w in workers)

    def _on_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self._events.put(_STOP)

    def _supervise(self) -> None:
        """Handle the workers' ends, restarts and the stop signal until no worker runs or waits for a restart."""
        while any(w.proc is not None or w.restart_at is not None for w in self._workers):
            due = [w.restart_at for w in self._workers if w.restart_at is not None]
            try:
                event = self._events.get(timeout=max(0.0, min(due) - time.monotonic()) if due else None)
            except queue.Empty:
                self._restart_due()
                continue
            if event is _STOP:
                self._stop("")
            else:
                self._ended(*event)

    def _start(self, worker: _Worker) -> None:
        """Start a process for ``worker``, with its part, a summary pipe and its output copied whole-line."""
        given = self.fleet.part(worker.index)
        summary_read, summary_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            worker.proc = subprocess.Popen(  # noqa: S603 - this program's own command line, run again
                [*self.fleet.command, *given.args],
                env={**os.environ, **given.env, SUMMARY_FD: str(summary_write), PARENT_PID: str(os.getpid())},
                stdin=subprocess.DEVNULL,
                stdout=out_write,
                stderr=err_write,
                pass_fds=(summary_write,),
                process_group=0,
            )
        finally:
            for fd in (summary_write, out_write, err_write):
                os.close(fd)
        worker.summary_fd = summary_read
        worker.started_at = time.monotonic()
        worker.restart_at = None
        label = worker_label(worker.index, json_lines=self.fleet.json_logs)
        worker.copies = (
            Copy(out_read, self._out, f"output of worker {worker.index}"),
            Copy(err_read, self._err, f"log of worker {worker.index}", label),
        )
        proc, index = worker.proc, worker.index
        threading.Thread(
            target=lambda: self._events.put((index, proc.wait())), name=f"foot-traffic-wait-{index}", daemon=True
        ).start()
        log.debug("Started worker %d (process %d)", worker.index, proc.pid)

    def _ended(self, index: int, returncode: int) -> None:
        """A worker's process ended: add up its numbers, then restart it, record its status, or stop the rest."""
        worker = self._workers[index]
        worker.proc = None  # first: an abort landing in this method must not wait for this worker again
        for copy in worker.copies:
            copy.join()
        try:
            counts = receive_summary(worker.summary_fd)
        except ValueError as exc:
            log.error("Worker %d's summary is unreadable, its numbers are left out: %s", index, exc)
            counts = None
        if counts is not None:
            worker.counts += counts
        crashed = is_crash(returncode, counts)
        if crashed and not self._stopping:
            self._crashed(worker, returncode)
            return
        worker.status = EXIT_UNDELIVERED if crashed else returncode
        log.info("Worker %d %s", index, describe(returncode))
        if worker.status in (EXIT_BAD_INPUT, EXIT_UNREACHABLE):
            self._stop(f"worker {index} {describe(returncode)}")

    def _crashed(self, worker: _Worker, returncode: int) -> None:
        """Schedule the restart of a crashed worker, or stop the run when it crashed too often in a row."""
        now = time.monotonic()
        if now - worker.started_at >= self.fleet.healthy_after_s:
            worker.in_a_row = 0
        delays = self.fleet.restart_delays
        if worker.in_a_row >= len(delays):
            worker.status = EXIT_UNDELIVERED
            log.error(
                "Worker %d %s, its %d restart(s) in a row used up", worker.index, describe(returncode), len(delays)
            )
            self._stop(f"worker {worker.index} keeps crashing")
            return
        delay = delays[worker.in_a_row]
        worker.in_a_row += 1
        worker.restarts += 1
        worker.restart_at = now + delay
        log.warning(
            "Worker %d %s; restarting it in %g s (restart %d in a row of at most %d); "
            "it runs its part again from the start, or from its last commit with EXACTLY_ONCE",
            worker.index,
            describe(returncode),
            delay,
            worker.in_a_row,
            len(delays),
        )

    def _restart_due(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.restart_at is not None and worker.restart_at <= now:
                self._start(worker)

    def _stop(self, reason: str) -> None:
        """Stop every worker (once): the first SIGINT makes each stop and flush; no restart from now on."""
        if self._stopping:
            return
        self._stopping = True
        for worker in self._workers:
            if worker.restart_at is not None:
                worker.restart_at = None
                worker.status = EXIT_UNDELIVERED  # crashed, and its restart called off: its part is unfinished
        if reason:
            log.error("Stopping the other workers: %s", reason)
        self._signal(signal.SIGINT)

    def _signal(self, signum: int) -> None:
        for worker in self._workers:
            if worker.proc is not None:
                worker.proc.send_signal(signum)

    def _abort(self) -> None:
        """After a second signal: pass it on (each worker aborts), wait for them, kill those that do not exit."""
        self._aborted = True
        self._stopping = True
        log.error("Aborted by a second interrupt; the workers abort too")
        self._signal(signal.SIGINT)
        deadline: float | None = time.monotonic() + KILL_AFTER_S
        while any(w.proc is not None for w in self._workers):
            try:
                event = self._events.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                log.error("Killing the workers still running %g s after the abort", KILL_AFTER_S)
                self._signal(signal.SIGKILL)
                deadline = None
                continue
            if event is not _STOP:
                self._ended(*event)
