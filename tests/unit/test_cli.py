"""The command line: plan output, bad input handling and exit statuses."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter

import pytest

from foot_traffic.cli.commands import main
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS
from foot_traffic.model.grid import datetime_to_us
from foot_traffic.model.randomness import root_entropy
from foot_traffic.run.clock import ManualClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test with none of the settings' variables set."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)


def test_plan_json_has_one_object_per_day(capsys: pytest.CaptureFixture[str]) -> None:
    """Plan --json prints date, weekday, total and labelled slot counts, one line per day."""
    assert main(["plan", "--date", "2025-08-12", "--days", "3", "--json", "--seed", "s"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    days = [json.loads(line) for line in lines]
    assert [d["date"] for d in days] == ["2025-08-12", "2025-08-13", "2025-08-14"]
    assert [d["weekday"] for d in days] == ["Tuesday", "Wednesday", "Thursday"]
    for day in days:
        assert day["slots"][0]["label"] == "00:00\u201306:59"
        assert sum(s["count"] for s in day["slots"]) == day["total"]


def test_plan_text_is_the_plan_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json, plan prints the specification's plan line."""
    argv = ["plan", "--date", "2025-08-12", "--now", "2025-08-12T15:30:00+00:00", "--daily-customers", "29"]
    assert main(argv) == 0
    assert (
        capsys.readouterr().out == "[Tuesday 2025-08-12] Planned total (from now): 10; per slot: [0, 0, 0, 2, 5, 3]\n"
    )


@pytest.mark.parametrize("now", ["2025-08-12T00:00:00+00:00", "2025-08-12T09:12:34.5+00:00", "2025-08-12T21:00:00"])
def test_plan_agrees_with_what_run_emits(capsys: pytest.CaptureFixture[str], now: str) -> None:
    """With the same settings and SEED, plan's slot counts are exactly what the service emits."""
    assert (
        main(["plan", "--date", "2025-08-12", "--now", now, "--json", "--seed", "x", "--base-daily-customers", "5000"])
        == 0
    )
    planned = json.loads(capsys.readouterr().out)
    settings = load_settings({"SEED": "x", "BASE_DAILY_CUSTOMERS": "5000"})
    moment = dt.datetime.fromisoformat(now)
    start = datetime_to_us(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    end = datetime_to_us(dt.datetime(2025, 8, 13, tzinfo=dt.UTC))
    sink = MemorySink()
    Service(settings.model(), root_entropy("x"), sink, ManualClock(start), poll_s=0.5, until_us=end).run()
    emitted = Counter(json.loads(v)["time_slot"] for _, v in sink.records)
    assert {s["label"]: s["count"] for s in planned["slots"]} == {
        s["label"]: emitted.get(s["label"], 0) for s in planned["slots"]
    }


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["plan", "--date", "2025-13-01"], "--date='2025-13-01': expected a date as YYYY-MM-DD"),
        (["plan", "--days", "0"], "--days='0': expected an integer between 1 and 36600"),
        (["plan", "--now", "noon"], "--now='noon': expected an ISO-8601 instant"),
        (["run", "--sleep", "0"], "--sleep='0': expected a number > 0"),
        (["run", "--daily-variation-pct", "7"], "--daily-variation-pct='7': expected a number in [0, 1]"),
        (["run", "--weights", "/nonexistent.toml"], "--weights='/nonexistent.toml': cannot read it"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    """A bad flag gives exit status 2 and a message naming it, its value and what is expected."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert needle in captured.err
    assert captured.out == ""


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Argparse's own errors also exit 2, with the program's usage."""
    with pytest.raises(SystemExit) as info:
        main(["run", "--no-such-flag"])
    assert info.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_bad_environment_exits_2_without_traceback() -> None:
    """In a real process, a bad variable gives status 2, one line per problem and no traceback."""
    env = {"PATH": "/usr/bin:/bin", "DAILY_CUSTOMERS": "-4", "KAFKA_BROKER": "127.0.0.1:1", "TIME_SCALE": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "foot_traffic", "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "foot-traffic: error: TIME_SCALE='0': expected a number > 0",
        "foot-traffic: error: DAILY_CUSTOMERS='-4': expected an integer between 0 and 1000000000",
    ]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("foot-traffic ")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--sleep=--"], "--sleep='--': expected a number > 0"),
        (["plan", "--daily-customers=--", "--date=2025-08-12"], "--daily-customers='--': expected an integer"),
        (["plan", "--date=--"], "--date='--': expected a date as YYYY-MM-DD"),
    ],
)
def test_a_double_dash_value_is_a_bad_value_not_a_crash(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """``--opt=--`` reaches the setting's check as "--" (Python 3.11's argparse would hand it an empty list)."""
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_a_reader_that_closes_early_ends_plan_quietly() -> None:
    """``plan | head -1``: the first line arrives, then status 1 and no traceback on standard error."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "foot_traffic", "plan", "--days", "2000", "--seed", "pipe"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"[")
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert b"Traceback" not in err
