"""The workers parent: stand-in workers for supervision and signals, real producers where sharding is not needed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import ProducerProcess, base_env, free_port, run_foot_traffic
from tests.integration.workers_stand_in import HEAVY_LINES, numbers

Start = Callable[..., ProducerProcess]
STAND_IN = (sys.executable, str(Path(__file__).with_name("workers_stand_in.py")))
SUMMARY = re.compile(r"^\S+ \S+ INFO foot_traffic: Summary: (.*)$")


def parent(start: Start, count: int, mode: str, folder: Path) -> ProducerProcess:
    """Start the parent of ``count`` stand-in workers in MODE, in a session of its own."""
    return start([str(count), mode, str(folder)], base_env(), capture_stdout=True, command="parent",
                 program=STAND_IN, new_session=True)  # fmt: skip


def the_summary(process: ProducerProcess) -> str:
    """The numbers of the parent's one summary line (the workers' lines are labelled, not matched)."""
    (line,) = [m[1] for line in process.stderr if (m := SUMMARY.match(line))]
    return line


def expected(indices: range, restarts: int = 0) -> str:
    """The summary's numbers for the workers ``indices``, summed by hand from the stand-in's formula."""
    sums = [sum(numbers(i)[k] for i in indices) for k in ("planned", "emitted", "delivered", "failed")]
    text = "planned={} emitted={} delivered={} failed={}".format(*sums)
    return text + (f" restarts={restarts}" if restarts else "")


def test_each_worker_is_told_its_part_and_the_summary_is_the_sum(producer_process: Start, tmp_path: Path) -> None:
    """Worker i of 3 gets SHARD=i/3 and --workers 1; the parent's summary adds up the three reports."""
    process = parent(producer_process, 3, "exit:0,0,0", tmp_path)
    assert process.finish() == 0
    given = sorted((json.loads(line) for line in process.stdout), key=lambda g: str(g["shard"]))
    assert given == [{"shard": f"{i}/3", "workers": None, "args": ["--workers", "1"]} for i in range(3)]
    assert the_summary(process) == expected(range(3))


@pytest.mark.parametrize(("statuses", "status"), [("0,0,0", 0), ("0,1,0", 1), ("1,130,0", 130), ("1,1,1", 1)])
def test_the_parent_exits_with_the_worst_status(
    producer_process: Start, tmp_path: Path, statuses: str, status: int
) -> None:
    """The exit status is the worst of the workers' (130 > 3 > 2 > 1 > 0); none of these ends is restarted."""
    process = parent(producer_process, 3, f"exit:{statuses}", tmp_path)
    assert process.finish() == status
    assert not process.lines_with("restarting")
    assert the_summary(process) == expected(range(3))


def test_a_crashed_worker_is_restarted_once(producer_process: Start, tmp_path: Path) -> None:
    """A worker killed by SIGKILL is restarted, once, with a log line; its second run's numbers are summed."""
    process = parent(producer_process, 2, "crash-once", tmp_path)
    assert process.finish() == 0
    (line,) = process.lines_with("restarting")
    assert "Worker 0 was killed by SIGKILL; restarting it in 0 s (restart 1 in a row of at most 3)" in line
    assert sorted(json.loads(line)["shard"] for line in process.stdout) == ["0/2", "1/2"]
    assert the_summary(process) == expected(range(2), restarts=1)


def first(start: Start, end: str, folder: Path) -> ProducerProcess:
    """Start 2 stand-in workers: worker 0 ends as ``end`` says once worker 1 waits for a signal."""
    os.mkfifo(folder / "sync")
    return parent(start, 2, f"first:{end}", folder)


def test_a_worker_that_keeps_crashing_stops_the_run(producer_process: Start, tmp_path: Path) -> None:
    """Three restarts in a row, then the parent gives up, stops the other worker (one SIGINT) and exits 1."""
    process = first(producer_process, "crash", tmp_path)
    assert process.finish() == 1
    assert len(process.lines_with("Worker 0 exited with status 1; restarting it")) == 3
    assert process.lines_with("Worker 0 exited with status 1, its 3 restart(s) in a row used up")
    assert process.lines_with("Stopping the other workers: worker 0 keeps crashing")
    assert [line for line in process.stdout if "got" in line] == [f"worker 1 got SIGINT from {process.proc.pid}"]
    assert len(process.lines_with("[worker 0] RuntimeError: a stand-in crash")) == 4
    assert the_summary(process) == expected(range(1, 2), restarts=3)


@pytest.mark.parametrize("status", [2, 3])
def test_bad_input_or_kafka_unreachable_stops_the_other_workers(
    producer_process: Start, tmp_path: Path, status: int
) -> None:
    """A worker that exits 2 or 3 is not restarted: the others are stopped (one SIGINT) and the parent exits so."""
    process = first(producer_process, str(status), tmp_path)
    assert process.finish() == status
    assert process.lines_with(f"Stopping the other workers: worker 0 exited with status {status}")
    assert not process.lines_with("restarting")
    assert [line for line in process.stdout if "got" in line] == [f"worker 1 got SIGINT from {process.proc.pid}"]
    assert the_summary(process) == expected(range(1, 2))


def ready(process: ProducerProcess, count: int) -> None:
    """Wait until ``count`` stand-in workers wait for signals."""
    process.wait_for(lambda: sum(line.startswith("ready") for line in process.stdout) == count, 60, "ready workers")


def test_a_signal_is_passed_on_once_and_every_worker_stops(producer_process: Start, tmp_path: Path) -> None:
    """SIGTERM to the parent: each worker gets one SIGINT from the parent, stops, and the parent exits 0."""
    process = parent(producer_process, 3, "wait:1", tmp_path)
    ready(process, 3)
    assert process.stop(signal.SIGTERM) == 0
    got = sorted(line for line in process.stdout if "got" in line)
    assert got == [f"worker {i} got SIGINT from {process.proc.pid}" for i in range(3)]
    assert the_summary(process) == expected(range(3))


def test_ctrl_c_on_the_terminal_reaches_each_worker_once(producer_process: Start, tmp_path: Path) -> None:
    """SIGINT to the whole process group (a terminal's Ctrl-C) reaches the workers only through the parent."""
    process = parent(producer_process, 2, "wait:1", tmp_path)
    ready(process, 2)
    os.killpg(process.proc.pid, signal.SIGINT)
    assert process.finish() == 0
    got = sorted(line for line in process.stdout if "got" in line)
    assert got == [f"worker {i} got SIGINT from {process.proc.pid}" for i in range(2)]


def test_a_second_signal_aborts_the_workers_too(producer_process: Start, tmp_path: Path) -> None:
    """A second signal is passed on as well: the workers abort, and the parent exits 130 with the sums."""
    process = parent(producer_process, 2, "wait:2", tmp_path)
    ready(process, 2)
    process.proc.send_signal(signal.SIGTERM)
    process.wait_for(lambda: sum(" got " in line for line in process.stdout) == 2, 60, "the first signal passed on")
    assert process.stop(signal.SIGINT) == 130
    assert process.lines_with("Aborted by a second interrupt; the workers abort too")
    got = Counter(line for line in process.stdout if "got" in line)
    assert got == Counter({f"worker {i} got SIGINT from {process.proc.pid}": 2 for i in range(2)})
    assert the_summary(process) == expected(range(2))


def test_lines_stay_whole_under_heavy_concurrent_writers(producer_process: Start, tmp_path: Path) -> None:
    """Three workers writing 20,000 lines each in pieces that cut lines: every line arrives whole, in order."""
    process = parent(producer_process, 3, "heavy", tmp_path)
    assert process.finish() == 0
    pattern = re.compile(r"w(\d) (\d{5}) (x*)")
    seen: dict[str, list[int]] = {"0": [], "1": [], "2": []}
    for line in process.stdout:
        match = pattern.fullmatch(line)
        assert match is not None, line[:100]
        assert len(match[3]) == int(match[2]) % 211
        seen[match[1]].append(int(match[2]))
    assert all(lines == list(range(HEAVY_LINES)) for lines in seen.values())
    for index in range(3):
        assert process.lines_with(f"[worker {index}] log line one of worker {index}")
        assert len(process.lines_with(f"[worker {index}] log line two")) == 1


STORES = "".join(f'[[store]]\nid = "store-{i}"\n\n' for i in range(8))
"""Eight stores: with two workers, each owns some (each store's partition is a hash of its id)."""


def test_real_workers_together_send_what_one_process_sends(tmp_path: Path) -> None:
    """``--workers 2 --sink stdout``: whole lines, as a multiset exactly one process's output; one summed summary."""
    stores = tmp_path / "stores.toml"
    stores.write_text(STORES)
    args = ["--sink", "stdout", "--speed", "max", "--start", "2025-08-11", "--until", "2025-08-13", "--seed", "w"]
    args += ["--daily-customers", "300", "--stores-file", str(stores), "--log-level", "INFO"]
    single = run_foot_traffic("run", *args, env=base_env())
    workers = run_foot_traffic("run", "--workers", "2", *args, env=base_env())
    assert (single.returncode, workers.returncode) == (0, 0), workers.stderr[-2000:]
    lines = workers.stdout.splitlines()
    assert {json.loads(line)["store_id"] for line in lines} == {f"store-{i}" for i in range(8)}
    assert Counter(lines) == Counter(single.stdout.splitlines())
    assert len(lines) == 2 * 8 * 300
    summary = [line for line in workers.stderr.splitlines() if "Summary:" in line and "[worker" not in line]
    assert len(summary) == 1
    assert f"planned={2 * 8 * 300} emitted={2 * 8 * 300} delivered={2 * 8 * 300} failed=0" in summary[0]
    assert "Traceback" not in workers.stderr


def test_the_parent_serves_the_sum_of_its_workers_metrics(producer_process: Start, tmp_path: Path) -> None:
    """METRICS_PORT: worker i serves the next ports up, and the parent's counters are the sums of theirs."""
    stores = tmp_path / "stores.toml"
    stores.write_text(STORES)
    base = free_port()
    env = base_env(DAILY_CUSTOMERS="24", SPEED="max", START="2025-08-11", SEED="metrics", STORES_FILE=str(stores))
    process = producer_process(["--workers", "2", "--sink", "null", "--metrics-port", str(base)], env)
    process.wait_for(lambda: _caught_up(base, 2), 60, "workers live")
    while True:  # the figures move only once an hour of simulated time: retried if a new event lands between scrapes
        before = [_counters(base + 1 + i) for i in range(2)]
        aggregate = _counters(base)
        if before == [_counters(base + 1 + i) for i in range(2)]:
            break
    sums = {key: before[0].get(key, 0) + before[1].get(key, 0) for key in before[0].keys() | before[1].keys()}
    assert aggregate == sums
    assert sum(v for k, v in sums.items() if k[0] == "foot_traffic_events_emitted_total") > 8 * 24
    assert _get(base, "/healthz") == (200, "ok: 2 workers running\n")
    assert process.stop() == 0


def _get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return int(response.status), response.read().decode()


def _counters(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The counter and histogram samples of a /metrics page, by name and sorted labels."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(_get(port, "/metrics")[1])
        if family.type in {"counter", "histogram"}
        for sample in family.samples
    }


def _caught_up(base: int, count: int) -> bool:
    """Whether every worker answers /healthz with 200 and has emitted events."""
    try:
        return all(_get(base + 1 + i, "/healthz")[0] == 200 for i in range(count)) and all(
            any(k[0] == "foot_traffic_events_emitted_total" and v > 0 for k, v in _counters(base + 1 + i).items())
            for i in range(count)
        )
    except OSError:
        return False


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while the folder was read
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_workers_stop_when_their_parent_is_killed_outright(tmp_path: Path) -> None:
    """SIGKILL the parent of two live workers: the workers stop too (they are in process groups of their own)."""
    stores = tmp_path / "stores.toml"
    stores.write_text(STORES)
    argv = [sys.executable, "-m", "foot_traffic", "run", "--workers", "2", "--sink", "null", "--seed", "orphans"]
    argv += ["--stores-file", str(stores), "--daily-customers", "100000"]
    parent = subprocess.Popen(argv, env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(parent.pid)) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            parent_ended = parent.poll() is not None
            assert not parent_ended, f"the parent exited with {parent.returncode}"
            time.sleep(0.05)  # polling /proc for a condition, not waiting for a duration
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, f"workers still running after their parent died: {workers}"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        for pid in workers:  # a failed test leaves nothing running
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
