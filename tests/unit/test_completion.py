"""Shell completion: the scripts are generated from the parser and really complete in the shells."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from foot_traffic.cli.completion import SHELLS, describe, script
from foot_traffic.cli.parser import build_parser
from foot_traffic.config.settings import SPECS

CLI = [sys.executable, "-m", "foot_traffic"]


def _script(shell: str) -> str:
    """The script as the command prints it."""
    return subprocess.run([*CLI, "completion", shell], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bash script, written once for the module."""
    path = tmp_path_factory.mktemp("completion") / "foot-traffic.bash"
    path.write_text(_script("bash"))
    return path


def _bash_complete(script_path: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (the command line being typed)."""
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script_path}\n"
        f"COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=()\n"
        '_foot_traffic; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, check=True)
    assert done.stderr == ""
    return [w for w in done.stdout.splitlines() if w]


def test_every_command_and_setting_flag_is_described() -> None:
    """The description walks the real parser: every subcommand, every setting's flag under run."""
    top, commands = describe(build_parser())
    names = [c.name for c in commands]
    assert {"run", "plan", "schema", "completion"} <= set(names)
    assert any("--version" in o.flags for o in top)
    run = next(c for c in commands if c.name == "run")
    flags = {flag for option in run.options for flag in option.flags}
    assert {spec.flag for spec in SPECS} <= flags


def test_bash_offers_commands_then_flags_then_values(bash_script: Path) -> None:
    """Commands at the start, flags by prefix, the values of choice, boolean and zone settings."""
    assert {"run", "plan", "schema", "completion", "--version"} <= set(_bash_complete(bash_script, "foot-traffic", ""))
    assert _bash_complete(bash_script, "foot-traffic", "pl") == ["plan"]
    assert _bash_complete(bash_script, "foot-traffic", "run", "--si") == ["--sink"]
    assert _bash_complete(bash_script, "foot-traffic", "run", "--sink", "") == ["kafka", "stdout", "null"]
    assert _bash_complete(bash_script, "foot-traffic", "run", "--sink", "=", "st") == ["stdout"]
    assert _bash_complete(bash_script, "foot-traffic", "run", "--arrival-model", "s") == ["smooth"]
    assert _bash_complete(bash_script, "foot-traffic", "plan", "--exactly-once", "") == ["true", "false"]
    assert _bash_complete(bash_script, "foot-traffic", "run", "--timezone", "Europe/Ro") == ["Europe/Rome"]
    assert _bash_complete(bash_script, "foot-traffic", "completion", "") == ["bash", "zsh", "fish", "--help"]
    # a free value (a seed) gets no suggestion, not the flag list
    assert _bash_complete(bash_script, "foot-traffic", "run", "--seed", "") == []


def test_bash_completes_file_settings_with_file_names(bash_script: Path, tmp_path: Path) -> None:
    """File settings (weights, calendar, TLS files) complete with paths."""
    (tmp_path / "weights.toml").write_text("")
    offered = _bash_complete(bash_script, "foot-traffic", "run", "--weights-file", f"{tmp_path}/wei")
    assert offered == [f"{tmp_path}/weights.toml"]


def test_zsh_script_loads_and_registers_the_function(tmp_path: Path) -> None:
    """Zsh runs the bash function through bashcompinit; the script must load and register it."""
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (.ci/run installs it)")
    path = tmp_path / "_foot-traffic"
    path.write_text(_script("zsh"))
    program = f"autoload -U +X compinit && compinit -u -D; source {path}; print -r -- ${{_comps[foot-traffic]}}"
    done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, check=True)
    assert done.stderr == ""
    assert "-F _foot_traffic" in done.stdout


def test_fish_completes_commands_flags_and_values(tmp_path: Path) -> None:
    """Fish's own completion engine, fed the script, offers the same words bash does."""
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed (.ci/run installs it)")
    path = tmp_path / "foot-traffic.fish"
    path.write_text(_script("fish"))

    def complete(line: str) -> list[str]:
        done = subprocess.run(
            ["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            check=True,
        )
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert {"run", "plan", "schema", "completion"} <= set(complete("foot-traffic "))
    assert "--sink" in complete("foot-traffic run --si")
    assert set(complete("foot-traffic run --sink ")) == {"kafka", "stdout", "null"}
    assert complete("foot-traffic completion z") == ["zsh"]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_command_prints_the_generated_script(shell: str) -> None:
    """``foot-traffic completion SHELL`` prints exactly what the generator makes."""
    assert _script(shell) == script(shell, build_parser())


def test_an_unknown_shell_is_refused_with_exit_2() -> None:
    """A shell we do not support is a usage error naming the choices."""
    done = subprocess.run([*CLI, "completion", "tcsh"], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "invalid choice: 'tcsh'" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_command_has_examples_in_its_help() -> None:
    """Each subcommand's --help ends with examples."""
    _, commands = describe(build_parser())
    for command in commands:
        done = subprocess.run([*CLI, command.name, "--help"], capture_output=True, text=True, check=True)
        examples = done.stdout.split("\nexamples:\n", 1)[1].splitlines()
        assert examples, command.name
        assert all(f"foot-traffic {command.name}" in line for line in examples), command.name
