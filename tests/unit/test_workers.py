"""The pure parts of local workers: statuses, summary sums, the summary pipe, whole-line copies, labels, parts."""

from __future__ import annotations

import io
import json
import os
import random
import re
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foot_traffic.cli.commands import main
from foot_traffic.cli.summary import Counts, describe, is_crash, receive_summary, send_summary, total, worst
from foot_traffic.cli.worker_output import Copy, Target, split_complete, worker_label
from foot_traffic.cli.workers import part
from foot_traffic.config.resolve import load_settings
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
