"""The pure parts of local workers: statuses, summary sums, the summary pipe, whole-line copies, labels, parts."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import math
import os
import random
import re
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.cli.commands import main
from foot_traffic.cli.parser import build_parser
from foot_traffic.cli.run_command import make_clock
from foot_traffic.cli.summary import Counts, describe, is_crash, receive_summary, send_summary, total, worst
from foot_traffic.cli.worker_output import Copy, Target, split_complete, worker_label
from foot_traffic.cli.workers import part, plan_args
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS, Settings
from foot_traffic.errors import ConfigError

counts = st.builds(Counts, *[st.integers(0, 10**12)] * 5)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], 0),
        ([0, 0], 0),
        ([0, 1, 0], 1),
        ([1, 2], 2),
        ([2, 3, 1], 3),
        ([3, 130, 0], 130),
        ([130, 1], 130),
    ],
)
def test_the_worst_status_follows_130_3_2_1_0(statuses: list[int], expected: int) -> None:
    """The parent's status is the worst of its workers': 130 > 3 > 2 > 1 > 0."""
    assert worst(statuses) == expected


@pytest.mark.parametrize(
    ("returncode", "summary", "crash"),
    [
        (0, Counts(), False),
        (0, None, False),
        (1, Counts(failed=3), False),
        (1, None, True),
        (2, None, False),
        (3, None, False),
        (130, None, False),
        (-9, None, True),
        (-11, Counts(), True),
        (4, Counts(), True),
        (137, None, True),
    ],
)
def test_what_counts_as_a_crash(returncode: int, summary: Counts | None, crash: bool) -> None:
    """A signal, an unknown status, or 1 without a summary is a crash; 0, 2, 3, 130 and a summarised 1 are not."""
    assert is_crash(returncode, summary) is crash


def test_how_an_end_is_described() -> None:
    """A status is named as such, a signal by its name."""
    assert describe(3) == "exited with status 3"
    assert describe(-9) == "was killed by SIGKILL"
    assert describe(-200) == "was killed by signal 200"


@given(st.lists(counts, max_size=8))
def test_the_summary_is_the_sum_of_each_field(items: list[Counts]) -> None:
    """Each number of the summed counts is the sum of that number over the workers."""
    result = total(items)
    assert result.planned == sum(c.planned for c in items)
    assert result.emitted == sum(c.emitted for c in items)
    assert result.delivered == sum(c.delivered for c in items)
    assert result.failed == sum(c.failed for c in items)
    assert result.sensor_events == sum(c.sensor_events for c in items)


@given(counts)
def test_counts_travel_through_the_summary_pipe(sent: Counts) -> None:
    """What a worker writes to the descriptor FOOT_TRAFFIC_SUMMARY_FD names, its parent reads back."""
    read, write = os.pipe()
    send_summary(sent, {"FOOT_TRAFFIC_SUMMARY_FD": str(write)})
    os.close(write)
    assert receive_summary(read) == sent


def test_a_run_that_is_not_a_worker_writes_no_summary() -> None:
    """Without the variable nothing is written, and a pipe with nothing in it reads as no summary."""
    read, write = os.pipe()
    send_summary(Counts(planned=1), {})
    os.close(write)
    assert receive_summary(read) is None


@pytest.mark.parametrize(
    "text", ["[]", '{"planned": -1}', '{"planned": 1.5}', '{"planned": true}', '{"other": 1}', "{", "\xff"]
)
def test_a_garbled_summary_is_refused(text: str) -> None:
    """Anything but an object of non-negative integer counts is a ValueError, not numbers made up."""
    read, write = os.pipe()
    os.write(write, text.encode("latin-1"))
    os.close(write)
    with pytest.raises(ValueError, match=r"^expected "):
        receive_summary(read)


lines = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30)


@given(lines, st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), st.data())
def test_whole_lines_survive_any_chunk_boundaries(body: list[bytes], tail: bytes, data: st.DataObject) -> None:
    """Cut anywhere, the stream comes out as its whole lines in order, each block ending at a newline."""
    stream = b"".join(line + b"\n" for line in body) + tail
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    out, carry = [], b""
    for chunk in chunks:
        block, carry = split_complete(carry, chunk)
        assert block == b"" or block.endswith(b"\n")
        out.append(block)
    assert b"".join(out) == stream[: len(stream) - len(tail)]
    assert carry == tail


def test_text_logs_are_prefixed_with_the_worker() -> None:
    """Each line of a block gets ``[worker i]`` in front, and only once."""
    label = worker_label(2, json_lines=False)
    assert label(b"a\nb\n") == b"[worker 2] a\n[worker 2] b\n"


def test_json_logs_get_a_worker_field() -> None:
    """Each JSON object gets ``worker`` as its first field and stays valid JSON; other lines are left alone."""
    label = worker_label(1, json_lines=True)
    block = b'{"time":"t","message":"a"}\nTraceback (most recent call last):\n{"message":"b"}\n'
    first, second, third = label(block).splitlines()
    assert json.loads(first) == {"worker": 1, "time": "t", "message": "a"}
    assert second == b"Traceback (most recent call last):"
    assert json.loads(third) == {"worker": 1, "message": "b"}


def test_concurrent_copies_never_cut_lines_into_each_other() -> None:
    """Three writers cutting their lines at random places: every copied line is whole, none lost."""
    target = Target(io.BytesIO())
    copies, writers = [], []
    for index in range(3):
        read, write = os.pipe()
        copies.append(Copy(read, target, f"output of writer {index}"))
        stream = b"".join(b"w%d %05d %s\n" % (index, n, b"x" * (n % 97)) for n in range(5000))
        writers.append(threading.Thread(target=_write_in_pieces, args=(write, stream, random.Random(index))))
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    for copy in copies:
        copy.join()
    assert isinstance(target.stream, io.BytesIO)
    copied = target.stream.getvalue().decode().splitlines()
    pattern = re.compile(r"w(\d) (\d{5}) (x*)")
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for line in copied:
        match = pattern.fullmatch(line)
        assert match is not None, line
        assert len(match[3]) == int(match[2]) % 97
        seen[int(match[1])].append(int(match[2]))
    assert all(numbers == list(range(5000)) for numbers in seen.values())


def _write_in_pieces(fd: int, stream: bytes, rng: random.Random) -> None:
    """Write ``stream`` in pieces of random sizes that cut lines, then close the pipe."""
    at = 0
    while at < len(stream):
        at += os.write(fd, stream[at : at + rng.randint(1, 3000)])
    os.close(fd)


def test_a_worker_is_told_its_shard_and_to_run_alone() -> None:
    """Worker i of N gets SHARD=i/N and ``--workers 1`` (so that it does not start workers of its own)."""
    assert part(1, 3).env == {"SHARD": "1/3"}
    assert part(1, 3).args == ("--workers", "1")
    assert part(1, 3, "north").env == {"FLEET_ID": "north"}, "a fleet's workers share its id, Kafka splits the run"


def test_worker_ports_must_fit_after_the_metrics_port() -> None:
    """Worker i serves METRICS_PORT + 1 + i: a base port with no room above it is bad input."""
    assert load_settings({"METRICS_PORT": "65533", "WORKERS": "2"}).workers == 2
    with pytest.raises(ConfigError) as info:
        load_settings({"METRICS_PORT": "65534", "WORKERS": "2"})
    (problem,) = info.value.problems
    assert problem.startswith("METRICS_PORT='65534' with WORKERS='2': expected METRICS_PORT + WORKERS <= 65535")


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "257", "many"])
def test_bad_worker_counts_exit_2_naming_the_setting(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--workers 0`` and friends: one line naming the flag or WORKERS, the value and what is expected; exit 2."""
    assert main(["run", "--workers", value, "--sink", "null"]) == 2
    expected = "expected an integer between 1 and 256\n"
    assert capsys.readouterr().err == f"foot-traffic: error: --workers={value!r}: {expected}"
    monkeypatch.setenv("WORKERS", value)
    assert main(["run", "--sink", "null"]) == 2
    assert capsys.readouterr().err == f"foot-traffic: error: WORKERS={value!r}: {expected}"


def worker_settings(args: list[str], env: dict[str, str] | None = None) -> Settings:
    """The settings a worker gets from ``run`` with these flags (a worker's part comes after the parent's)."""
    parsed = build_parser().parse_args(["run", *args])
    return load_settings(env or {}, {spec.name: getattr(parsed, spec.name) for spec in SPECS})


def test_workers_with_a_shard_are_refused() -> None:
    """WORKERS > 1 and SHARD cannot both cut the run: one line naming both, their values and the choice."""
    with pytest.raises(ConfigError) as info:
        load_settings({"WORKERS": "2", "SHARD": "0/2", "SEED": "s"})
    assert info.value.problems == [
        "WORKERS='2' with SHARD='0/2': expected one or the other (the workers split the run among themselves; "
        "to run one shard, leave WORKERS at 1)"
    ]
    assert load_settings({"WORKERS": "1", "SHARD": "0/2", "SEED": "s"}).shard is not None


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--workers", "2", "--shard", "0/2"], {}),
        (["--workers", "2"], {"SHARD": "0/2"}),
        ([], {"WORKERS": "2", "SHARD": "0/2"}),
        (["--shard", "0/2"], {"WORKERS": "2"}),
    ],
)
def test_the_command_exits_2_on_workers_with_a_shard(
    args: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` with WORKERS and SHARD, as flags or variables: exit 2 and that one error line, nothing run."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    assert main(["run", "--sink", "null", "--seed", "s", *args]) == 2
    assert capsys.readouterr() == (
        "",
        "foot-traffic: error: WORKERS='2' with SHARD='0/2': expected one or the other (the workers split the run "
        "among themselves; to run one shard, leave WORKERS at 1)\n",
    )


def test_a_run_with_seed_and_start_passes_its_workers_nothing_more() -> None:
    """SEED and START set (a fleet must have both): the workers take them from the parent's own settings."""
    assert plan_args(load_settings({"SEED": "s", "START": "2025-01-01"})) == ()
    fleet = {"WORKERS": "2", "EXACTLY_ONCE": "1", "SEED": "s", "START": "2025-01-01"}
    assert plan_args(load_settings(fleet)) == ()


def test_the_parent_fixes_one_seed_for_every_worker(caplog: pytest.LogCaptureFixture) -> None:
    """Without SEED the parent draws one, logs it, and gives every worker the same."""
    with caplog.at_level(logging.INFO, "foot_traffic"):
        args = plan_args(load_settings({"START": "2025-01-01"}))
    flag, seed = args
    assert flag == "--seed"
    assert re.fullmatch(r"[0-9a-f]{16}", seed)
    assert caplog.messages == [f"SEED is not set; this run uses SEED={seed} (set it to replay the run)"]


NOW = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NOW_US = 1_772_600_767_890_123
"""NOW in epoch microseconds, by hand: 20516 days from 1970-01-01 to 2026-03-04, then 05:06:07.890123."""


def test_a_live_parent_gives_its_workers_its_start_to_catch_up_from(caplog: pytest.LogCaptureFixture) -> None:
    """No START, no SPEED, no UNTIL: START is the parent's instant and SPEED=max, so each worker goes live from it."""
    assert NOW_US == (20516 * 86_400 + 5 * 3600 + 6 * 60 + 7) * 10**6 + 890_123
    with caplog.at_level(logging.INFO, "foot_traffic"):
        args = plan_args(load_settings({"SEED": "s"}), NOW)
    assert args == ("--start", "2026-03-04T05:06:07.890123+00:00", "--speed", "max")
    assert caplog.messages == [
        "START is not set; this run uses START=2026-03-04T05:06:07.890123+00:00, the same for every worker"
    ]
    worker = worker_settings(list(args), {"SEED": "s"})
    assert (worker.start_us, worker.speed_is_max, worker.until_us) == (NOW_US, True, None)


def test_a_worker_given_a_past_start_catches_up_then_runs_in_real_time() -> None:
    """A worker's clock starts at START, jumps over the moments since, then keeps real time from a future deadline."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=5)
    clock = make_clock(worker_settings(list(plan_args(load_settings({"SEED": "s"}), start))))
    start_us = (start - EPOCH) // dt.timedelta(microseconds=1)
    assert clock.now_us() == start_us
    assert math.isinf(clock.rate)
    assert clock.sleep_time(start_us + 4000) == 0.0
    assert clock.now_us() == start_us + 4000
    assert clock.sleep_time(start_us + 3_600_000_000) > 0
    assert clock.rate == 1.0


@pytest.mark.parametrize("env", [{"UNTIL": "2030-01-01"}, {"SPEED": "60"}, {"SPEED": "max"}])
def test_a_parent_without_start_keeps_the_clock_asked_for(env: dict[str, str]) -> None:
    """START is fixed, and SPEED left as it is, when the run is bounded (real time until UNTIL) or its speed given."""
    assert plan_args(load_settings({"SEED": "s", **env}), NOW) == ("--start", NOW.isoformat())
