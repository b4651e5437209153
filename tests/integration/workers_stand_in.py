"""Stand-ins for the workers parent's tests: ``parent N MODE FOLDER`` supervises N ``worker MODE FOLDER``.

The workers do what the test needs, not a run: say what they were given, report
numbers through the summary pipe, exit with a chosen status, crash, wait for
signals (and tell who sent them), or write many lines cut at random places.
Worker i's numbers are planned=10(i+1), emitted=7(i+1), delivered=5(i+1), failed=i.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path

SIGNALS = {signal.SIGINT, signal.SIGTERM}
if __name__ == "__main__" and sys.argv[1] == "worker":
    # before numpy's import starts threads: a signal must reach sigwaitinfo, not a thread that lets it through
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)

from foot_traffic.cli import logs  # noqa: E402
from foot_traffic.cli.workers import Fleet, part, supervise  # noqa: E402

HEAVY_LINES = 20_000


def numbers(index: int) -> dict[str, int]:
    """Worker ``index``'s summary numbers."""
    return {"planned": 10 * (index + 1), "emitted": 7 * (index + 1), "delivered": 5 * (index + 1), "failed": index}


def say(line: str) -> None:
    """One line on standard output, at once."""
    os.write(1, (line + "\n").encode())


def report(index: int) -> None:
    """Write the summary numbers to the parent's pipe."""
    os.write(int(os.environ["FOOT_TRAFFIC_SUMMARY_FD"]), json.dumps(numbers(index)).encode())


def wait_for(index: int, count: int, folder: Path | None = None) -> int:
    """Say ready, then take ``count`` signals (blocked since the start), saying which and who sent each; report.

    The status is 0 after one signal, else 130. With ``folder``, worker 0 is
    told of the readiness too, through the FIFO ``folder/sync``.
    """
    say(f"ready {index}")
    if folder is not None:
        (folder / "sync").write_text("ready\n")
    for _ in range(count):
        info = signal.sigwaitinfo(SIGNALS)
        say(f"worker {index} got {signal.Signals(info.si_signo).name} from {info.si_pid}")
    report(index)
    return 0 if count == 1 else 130


def first(index: int, end: str, folder: Path) -> int:
    """Worker 0 ends as ``end`` says (``crash``, or an exit status, without a summary) once worker 1 waits."""
    if index != 0:
        return wait_for(index, 1, folder)
    synced = folder / "synced"
    if not synced.exists():  # a restarted worker 0 finds worker 1 waiting already
        (folder / "sync").read_text()
        synced.touch()
    if end == "crash":
        raise RuntimeError("a stand-in crash")  # a traceback, status 1, no summary
    return int(end)


def heavy(index: int) -> int:
    """Write HEAVY_LINES numbered lines to standard output in pieces of random sizes that cut lines."""
    stream = b"".join(b"w%d %05d %s\n" % (index, n, b"x" * (n % 211)) for n in range(HEAVY_LINES))
    rng, at = random.Random(index), 0
    while at < len(stream):
        at += os.write(1, stream[at : at + rng.randint(1, 5000)])
    os.write(2, b"log line one of worker %d\nlog line two\n" % index)
    report(index)
    return 0


def worker(mode: str, folder: Path) -> int:
    """Behave as MODE says: ``exit:S0,S1,…``, ``crash-once``, ``first:END``, ``wait:K`` or ``heavy``."""
    index = int(os.environ["SHARD"].split("/")[0])
    name, _, argument = mode.partition(":")
    if name == "wait":
        return wait_for(index, int(argument))
    if name == "heavy":
        return heavy(index)
    if name == "first":
        return first(index, argument, folder)
    marker = folder / f"crashed-{index}"
    if name == "crash-once" and index == 0 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    given = {"shard": os.environ["SHARD"], "workers": os.environ.get("WORKERS"), "args": sys.argv[4:]}
    say(json.dumps(given))
    report(index)
    statuses = [int(s) for s in argument.split(",")] if name == "exit" else [0] * (index + 1)
    return statuses[index]


def parent(count: int, mode: str, folder: str) -> int:
    """Supervise ``count`` stand-in workers, restarting at once (no wait between restarts)."""
    logs.configure()
    command = (sys.executable, __file__, "worker", mode, folder)
    return supervise(Fleet(count, command, lambda i: part(i, count), restart_delays=(0.0, 0.0, 0.0)))


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "parent":
        sys.exit(parent(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    sys.exit(worker(sys.argv[2], Path(sys.argv[3])))
