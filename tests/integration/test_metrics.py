"""The live /metrics and /healthz endpoints of ``foot-traffic run``, scraped while it runs."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from foot_traffic.model.grid import US_PER_SECOND, datetime_to_us
from tests.integration.conftest import ProducerProcess, base_env, consume_all, free_port, run_foot_traffic
from tests.integration.test_run_kafka import summary

Start = Callable[..., ProducerProcess]
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
T = TypeVar("T")

START = "2025-01-06"  # a Monday
UNTIL = "2025-01-07"
CALENDAR = """\
[hours]  # open on Monday morning only: then the run idles until it is stopped
Monday = ["00:00", "09:00"]
Tuesday = "closed"
Wednesday = "closed"
Thursday = "closed"
Friday = "closed"
Saturday = "closed"
Sunday = "closed"
"""


def get(port: int, path: str) -> tuple[int, str] | None:
    """The status and body of a GET on the local endpoint, or None while nothing listens there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), error.read().decode()
    except (TimeoutError, ConnectionError, urllib.error.URLError):
        return None


def healthz(port: int) -> tuple[int, str] | None:
    """/healthz's status and its one line, or None while nothing listens."""
    answer = get(port, "/healthz")
    return None if answer is None else (answer[0], answer[1].rstrip("\n"))


def scrape(port: int) -> Samples | None:
    """Every sample of /metrics, by name and then by sorted labels, or None while nothing listens."""
    answer = get(port, "/metrics")
    if answer is None:
        return None
    assert answer[0] == 200, answer
    samples: Samples = {}
    for family in text_string_to_metric_families(answer[1]):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def by_slot(samples: Samples, name: str) -> dict[str, float]:
    """A counter's samples of the single store (store=""), by slot."""
    return {dict(labels)["slot"]: v for labels, v in samples.get(name, {}).items() if dict(labels)["store"] == ""}


def total(samples: Samples, name: str) -> float:
    """The sum of a metric's samples."""
    return sum(samples.get(name, {}).values())


def poll(process: ProducerProcess, probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Ask ``probe`` every 50 ms until it answers something, or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if process.proc.poll() is not None:
            pytest.fail(
                f"the producer exited ({process.proc.returncode}) before {what}:\n" + "\n".join(process.stderr[-20:])
            )
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; stderr tail:\n" + "\n".join(process.stderr[-20:]))
        time.sleep(0.05)


def plan_counts(env: dict[str, str], date: str) -> dict[str, int]:
    """``foot-traffic plan --json``'s count per slot label for ``date``, with the same settings."""
    done = run_foot_traffic("plan", "--date", date, "--json", env=env)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    return {slot["label"]: slot["count"] for slot in json.loads(line)["slots"]}


def exit_us(event: bytes) -> int:
    """An event's exit_time in epoch microseconds."""
    return datetime_to_us(dt.datetime.fromisoformat(json.loads(event)["exit_time"]))


@pytest.mark.kafka
def test_live_metrics_follow_the_plan_and_match_the_topic(
    broker: str, topic: str, producer_process: Start, tmp_path: Path
) -> None:
    """Scraped during an accelerated run: planned is the plan, emitted and delivered grow to it, the topic agrees."""
    calendar = tmp_path / "calendar.toml"
    calendar.write_text(CALENDAR, encoding="utf-8")
    port = free_port()
    settings = {"SEED": "metrics", "DAILY_CUSTOMERS": "20000", "CALENDAR_FILE": str(calendar)}
    env = base_env(KAFKA_BROKER=broker, KAFKA_TOPIC=topic, METRICS_PORT=str(port), **settings)
    plan = plan_counts(base_env(**settings), START)
    planned = sum(plan.values())
    process = producer_process(["--start", START, "--speed", "7200"], env)

    poll(process, lambda: healthz(port) == (200, "ok: running") or None, 60, "/healthz to answer 200")
    first = poll(
        process,
        lambda: s if (s := scrape(port)) and total(s, "foot_traffic_events_emitted_total") else None,
        60,
        "a first emitted event",
    )
    emitted_first = total(first, "foot_traffic_events_emitted_total")
    delivered_first = total(first, "foot_traffic_events_delivered_total")
    assert emitted_first < planned, "scraped while the run emits"

    def grown() -> Samples | None:
        s = scrape(port)
        return (
            s
            if s
            and total(s, "foot_traffic_events_emitted_total") > emitted_first
            and total(s, "foot_traffic_events_delivered_total") > delivered_first
            else None
        )

    during = poll(process, grown, 30, "emitted and delivered to grow")
    assert by_slot(during, "foot_traffic_events_planned_total") == plan
    assert len(during["foot_traffic_producer_queue_length"]) == 1
    assert total(during, "foot_traffic_producer_queue_length") >= 0
    (clock,) = during["foot_traffic_clock_seconds"].values()
    start_s, until_s = (
        datetime_to_us(dt.datetime.fromisoformat(f"{d}T00:00+00:00")) / US_PER_SECOND for d in (START, UNTIL)
    )
    assert start_s < clock < until_s
    assert total(during, "foot_traffic_occupancy") > 0, "customers are inside while they arrive"
    assert healthz(port) == (200, "ok: running")
    assert get(port, "/nothing-here") == (404, "not found: the paths are /metrics and /healthz\n")

    def settled() -> Samples | None:
        s = scrape(port)
        done = s and total(s, "foot_traffic_events_delivered_total") == planned
        return s if done else None

    idle = poll(process, settled, 60, "every planned event to be delivered")
    assert by_slot(idle, "foot_traffic_events_planned_total") == plan
    assert by_slot(idle, "foot_traffic_events_emitted_total") == plan
    assert by_slot(idle, "foot_traffic_events_delivered_total") == plan
    assert total(idle, "foot_traffic_events_failed_total") == 0
    assert total(idle, "foot_traffic_producer_queue_length") == 0
    lateness = idle["foot_traffic_emission_lateness_seconds_count"]
    assert sum(lateness.values()) == planned, "an accelerated run times every event"

    records = consume_all(broker, topic)
    assert len(records) == planned
    assert Counter(json.loads(r.value)["time_slot"] for r in records) == +Counter(plan)
    (clock,) = idle["foot_traffic_clock_seconds"].values()
    (inside,) = idle["foot_traffic_occupancy"].values()
    exits = [exit_us(r.value) // US_PER_SECOND for r in records]
    # the gauge is rounded to a float: take the second it shows, or the one before if it sits on the edge
    seconds = {math.floor(clock), math.floor(clock - 1e-6)}
    assert inside in {sum(1 for e in exits if e > second) for second in seconds}

    assert healthz(port) == (200, "ok: running")
    assert process.stop() == 0
    assert summary(process)[1:] == (planned, planned, 0)


def test_healthz_answers_503_while_kafka_is_not_reached_yet(producer_process: Start, topic: str) -> None:
    """With a broker address nothing listens on, /healthz says 'starting' with 503 through the start-up attempts."""
    port = free_port()
    nowhere = free_port()
    env = base_env(
        KAFKA_BROKER=f"127.0.0.1:{nowhere}",
        KAFKA_TOPIC=topic,
        METRICS_PORT=str(port),
        MAX_RETRIES="1000",
        RETRY_BACKOFF_SECONDS="0.2",
        KAFKA_CONNECT_TIMEOUT_SECONDS="0.5",
    )
    process = producer_process([], env)
    assert poll(process, lambda: healthz(port), 30, "/healthz to answer") == (503, "starting: not connected yet")
    process.wait_for(lambda: len(process.lines_with("not reachable (attempt")) >= 2, 30, "two start-up attempts")
    assert healthz(port) == (503, "starting: not connected yet")
    samples = scrape(port)
    assert samples is not None
    assert total(samples, "foot_traffic_producer_queue_length") == 0
    assert "foot_traffic_clock_seconds" not in samples, "no clock before the run starts"
    assert "foot_traffic_events_planned_total" not in samples
    process.stop()


def test_a_metrics_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """A port something else listens on: exit 2 naming METRICS_HOST and METRICS_PORT, no traceback, nothing sent."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = base_env(SINK="stdout", METRICS_PORT=str(port), DAILY_CUSTOMERS="1000", SPEED="max")
        env.update(START=START, UNTIL=UNTIL, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
        done = run_foot_traffic("run", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "METRICS_PORT" in line]
    assert f"METRICS_HOST='127.0.0.1' and METRICS_PORT='{port}': expected a free port" in line
