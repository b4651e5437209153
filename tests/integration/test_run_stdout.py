"""``foot-traffic run --sink stdout``: events on standard output, logs on standard error."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from tests.integration.conftest import ROOT, ProducerProcess, base_env
from tests.integration.test_run_kafka import FAST, assert_event_shape, emitted_ids, summary

Start = Callable[..., ProducerProcess]


def test_stdout_sink_writes_json_lines_and_logs_go_to_stderr(producer_process: Start) -> None:
    """Each emitted event is one JSON line on stdout; the log stays on stderr."""
    env = base_env(DAILY_CUSTOMERS=FAST, KAFKA_BROKER="127.0.0.1:1")
    process = producer_process(["--sink", "stdout"], env, capture_stdout=True)
    process.wait_for(lambda: len(process.stdout) >= 100, 90, "100 lines on stdout")
    assert process.stop() == 0
    events = [json.loads(line) for line in process.stdout]
    for event in events:
        assert_event_shape(event)
    assert [e["customer_id"] for e in events] == emitted_ids(process)
    assert summary(process)[1:] == (len(events), len(events), 0)
    assert not any("Emitted" in line for line in process.stdout)


def test_closed_stdout_fails_the_run_and_says_so() -> None:
    """When the reader goes away, the lost event is counted as failed and the exit status is 1."""
    env = base_env(DAILY_CUSTOMERS=FAST, PYTHONUNBUFFERED="0")
    with subprocess.Popen(
        [sys.executable, "-m", "foot_traffic", "run", "--sink", "stdout"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.close()
        _, err = proc.communicate(timeout=90)
    log = err.decode()
    assert proc.returncode == 1
    assert "Traceback" not in log
    assert "failed=" in log
    assert "failed=0" not in log
