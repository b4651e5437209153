"""SHARD and FLEET_PARTITIONS: parsed, checked together and with SEED, and auto/N found in the environment."""

from __future__ import annotations

import pytest

from foot_traffic.cli.commands import main
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS
from foot_traffic.config.shards import ShardSpec, parse
from foot_traffic.errors import ConfigError
from foot_traffic.model.units import Shard

EXPECTED = "expected I/N with 0 <= I < N <= FLEET_PARTITIONS, or auto/N"


def problems(env: dict[str, str], flags: dict[str, str | None] | None = None) -> list[str]:
    """The problems loading these settings reports."""
    with pytest.raises(ConfigError) as info:
        load_settings(env, flags)
    return info.value.problems


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("0/1", ShardSpec(0, 1)),
        (" 2/3 ", ShardSpec(2, 3)),
        ("auto/4", ShardSpec(None, 4)),
        ("AUTO/2", ShardSpec(None, 2)),
    ],
)
def test_shard_texts(text: str, spec: ShardSpec) -> None:
    """I/N and auto/N are read, padding and case aside."""
    assert parse(text) == spec
    assert str(spec) == text.strip().lower()


def test_a_valid_shard_needs_seed() -> None:
    """SHARD with SEED gives the shard; without SEED, one line naming both and why."""
    assert load_settings({"SHARD": "1/3", "SEED": "s"}).shard == Shard(1, 3)
    assert load_settings({"SEED": "s"}).shard is None
    (problem,) = problems({"SHARD": "1/3"})
    assert problem.startswith("SHARD='1/3' without SEED: expected SEED set too, the same for every shard")
    assert "without SEED each would draw from its own fresh entropy" in problem


def test_n_may_not_exceed_fleet_partitions() -> None:
    """N above FLEET_PARTITIONS is refused, naming both; N equal to it is fine."""
    (problem,) = problems({"SHARD": "0/65", "SEED": "s"})
    assert problem == f"SHARD='0/65': {EXPECTED}; N=65 is above FLEET_PARTITIONS=64"
    (problem,) = problems({"SEED": "s"}, {"shard_spec": "1/9", "fleet_partitions": "8"})
    assert problem == f"--shard='1/9': {EXPECTED}; N=9 is above FLEET_PARTITIONS=8"
    assert load_settings({"SHARD": "7/8", "FLEET_PARTITIONS": "8", "SEED": "s"}).shard == Shard(7, 8)


@pytest.mark.parametrize(
    ("env", "shard"),
    [
        ({"JOB_COMPLETION_INDEX": "2", "HOSTNAME": "backfill-7"}, Shard(2, 3)),
        ({"HOSTNAME": "foot-traffic-1"}, Shard(1, 3)),
        ({"HOSTNAME": "foot-traffic-0.foot-traffic.default.svc.cluster.local"}, Shard(0, 3)),
    ],
)
def test_auto_takes_the_index_of_the_pod(env: dict[str, str], shard: Shard) -> None:
    """auto/N: JOB_COMPLETION_INDEX (an Indexed Job) first, else the host name's -<ordinal> (a StatefulSet)."""
    assert load_settings({"SHARD": "auto/3", "SEED": "s", **env}).shard == shard


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HOSTNAME": "laptop"},
            "SHARD='auto/3': expected JOB_COMPLETION_INDEX (an Indexed Job's pod) or a host name ending in "
            "-<ordinal> (a StatefulSet's pod) to give I; found the host name 'laptop'",
        ),
        (
            {"JOB_COMPLETION_INDEX": "x", "HOSTNAME": "web-1"},
            "SHARD='auto/3': expected JOB_COMPLETION_INDEX (an Indexed Job's pod) or a host name ending in "
            "-<ordinal> (a StatefulSet's pod) to give I; found JOB_COMPLETION_INDEX='x'",
        ),
        (
            {"HOSTNAME": "web-3"},
            "SHARD='auto/3': the host name 'web-3' gives shard 3/3; expected an index below N=3",
        ),
    ],
)
def test_auto_without_an_index_is_refused(env: dict[str, str], message: str) -> None:
    """auto/N with no index to find, or one not below N, is one line naming SHARD and where it looked."""
    assert problems({"SHARD": "auto/3", "SEED": "s", **env}) == [message]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--shard", "3/3", "--seed", "s"], f"--shard='3/3': {EXPECTED}"),
        (["--shard", "0/2"], "--shard='0/2' without SEED: expected SEED set too"),
        (["--fleet-partitions", "0"], "--fleet-partitions='0': expected an integer between 1 and 4096"),
    ],
)
def test_the_command_exits_2_on_a_bad_shard(
    args: list[str], line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` with a bad shard setting: exit 2, one error line naming it, nothing on standard output."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    assert main(["run", "--sink", "stdout", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (error,) = err.splitlines()
    assert error.startswith(f"foot-traffic: error: {line}")
