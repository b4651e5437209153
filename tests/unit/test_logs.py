"""Logs: LOG_FORMAT=json writes one JSON object a line with the text format's messages; text is unchanged."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from foot_traffic.cli import logs
from foot_traffic.config.settings import SPECS

RUN = [
    "run",
    "--sink",
    "null",
    "--speed",
    "max",
    "--start",
    "2025-08-12",
    "--until",
    "2025-08-12T12:00:00",
    "--daily-customers",
    "12",
    "--seed",
    "logs",
]
"""A short backfill without Kafka: a plan line, a dozen Emitted lines and the summary."""

TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.]+): (.*)$")


def stderr_of(log_format: str | None, tmp_path: Path, **settings: str) -> list[str]:
    """Standard error of the short run in a fresh process, as lines."""
    env = {k: v for k, v in os.environ.items() if k not in {s.env for s in SPECS} and not k.startswith("KAFKA_")}
    if log_format is not None:
        env["LOG_FORMAT"] = log_format
    env.update(settings)
    proc = subprocess.run(
        [sys.executable, "-m", "foot_traffic", *RUN],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    return proc.stderr.splitlines()


def test_json_lines_carry_the_text_messages(tmp_path: Path) -> None:
    """Each stderr line of a JSON run is an object with time, level, logger, message: the text run's, in order."""
    text = [TEXT_LINE.fullmatch(line) for line in stderr_of(None, tmp_path)]
    assert all(text), "the text format is time LEVEL logger: message"
    entries = [json.loads(line) for line in stderr_of("json", tmp_path)]
    assert [(e["level"], e["logger"], e["message"]) for e in entries] == [
        (m[2], m[3], m[4]) for m in text if m is not None
    ]
    messages = [e["message"] for e in entries]
    assert messages[0] == "Producing to nowhere (null sink)"
    assert re.fullmatch(r"\[Tuesday 2025-08-12\] Planned total \(from now\): 12; per slot: \[[\d, ]+\]", messages[1])
    summary = re.fullmatch(r"Summary: planned=12 emitted=(\d+) delivered=\1 failed=0", messages[-1])
    assert summary is not None
    assert sum(m.startswith("Emitted customer_id=") for m in messages) == int(summary[1]) > 0
    for entry in entries:
        assert list(entry)[:4] == ["time", "level", "logger", "message"]
        moment = dt.datetime.fromisoformat(entry["time"])
        assert moment.utcoffset() is not None, "time carries its offset"
        assert abs(dt.datetime.now(dt.UTC) - moment) < dt.timedelta(minutes=5)


EMITTED = re.compile(r"Emitted customer_id=(\S+) entry_time=(\S+) time_slot=(\S+)")
PLANNED = re.compile(r"(?:\[store (\S+)\] )?\[(\w+) (\S+)\] Planned total \(from now\): (\d+); per slot: \[([\d, ]*)\]")


def test_json_lines_carry_the_values_of_events_plans_and_the_summary_as_fields(tmp_path: Path) -> None:
    """A JSON log consumer needs no regular expression: each value of the message is also a field of its own."""
    (tmp_path / "stores.toml").write_text('[[store]]\nid = "north"\n[[store]]\nid = "south"\nscale = 2\n')
    entries = [json.loads(line) for line in stderr_of("json", tmp_path, STORES_FILE="stores.toml")]
    emitted = [(e, EMITTED.fullmatch(e["message"])) for e in entries if e["message"].startswith("Emitted")]
    plans = [(e, PLANNED.fullmatch(e["message"])) for e in entries if "Planned total" in e["message"]]
    assert emitted
    assert len(plans) == 2
    for entry, match in emitted:
        assert match is not None
        assert (entry["customer_id"], entry["entry_time"], entry["time_slot"]) == match.groups()
        assert entry["store_id"] in {"north", "south"}
    for entry, match in plans:
        assert match is not None
        store, weekday, date, total, per_slot = match.groups()
        assert (entry["store_id"], entry["weekday"], entry["date"]) == (store, weekday, date)
        assert entry["planned"] == int(total) == sum(entry["per_slot"])
        assert entry["per_slot"] == [int(n) for n in per_slot.split(", ")]
    summary = entries[-1]
    assert summary["message"].startswith("Summary:")
    assert (summary["planned"], summary["emitted"], summary["delivered"], summary["failed"]) == (
        sum(entry["planned"] for entry, _ in plans),
        len(emitted),
        len(emitted),
        0,
    )
    assert "sensor_events" not in summary
    assert sorted(e["customer_id"] for e, _ in emitted) == sorted({e["customer_id"] for e, _ in emitted})


def test_text_format_is_the_default_and_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    """configure() with no format writes the specification's text line."""
    logs.configure("INFO")
    logging.getLogger("foot_traffic.unit").info("Summary: planned=%d", 3)
    (line,) = capsys.readouterr().err.splitlines()
    match = TEXT_LINE.fullmatch(line)
    assert match is not None
    assert match.group(3, 4) == ("foot_traffic.unit", "Summary: planned=3")


def test_tracebacks_and_extras_stay_on_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A DEBUG record with a traceback, a stack and extra fields is one line of valid JSON holding all of them."""
    logs.configure("DEBUG", "json")
    log = logging.getLogger("foot_traffic.unit")
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        log.debug("failed for %s", "c1", exc_info=True, stack_info=True, extra={"customer_id": "c1", "n": 2})
    log.info("odd extra", extra={"ratio": float("nan"), "table": {(1, 2): "x"}})
    first, second = capsys.readouterr().err.splitlines()
    entry = json.loads(first)
    assert (entry["level"], entry["logger"], entry["message"]) == ("DEBUG", "foot_traffic.unit", "failed for c1")
    assert (entry["customer_id"], entry["n"]) == ("c1", 2)
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ZeroDivisionError: division by zero")
    assert entry["stack"].startswith("Stack (most recent call last):")
    odd = json.loads(second)
    assert (odd["message"], odd["ratio"], odd["table"]) == ("odd extra", "nan", "{(1, 2): 'x'}")


def test_librdkafka_chatter_is_quiet_unless_debug() -> None:
    """Either format keeps the Kafka client's own logger at CRITICAL below DEBUG."""
    client = logging.getLogger("foot_traffic.librdkafka")
    logs.configure("INFO", "json")
    assert client.level == logging.CRITICAL
    logs.configure("DEBUG", "json")
    assert client.level == logging.DEBUG


@pytest.mark.parametrize("name", ["httpx", "matplotlib"])
def test_configure_quiets_the_libraries_chatter(name: str) -> None:
    """After configure, a library's INFO lines (HTTP requests, font cache) are dropped and its warnings kept."""
    library = logging.getLogger(name)
    library.setLevel(logging.NOTSET)
    logs.configure("DEBUG")
    assert (library.isEnabledFor(logging.INFO), library.isEnabledFor(logging.WARNING)) == (False, True)
