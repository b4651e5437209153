"""Release build: the sdist and the wheel build, hold what they must, and install in a fresh venv.

The wheel is built from the sdist (``python -m build``'s default), so a file the sdist forgets
breaks the wheel too. The fresh venv has nothing of the development tree: the installed
command must work on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
PACKAGE = ROOT / "src" / "foot_traffic"
MODULES = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Release:
    """The two files of a release build."""

    sdist: Path
    wheel: Path


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """``python -m build`` of the project tree, in an isolated build environment."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Release(sdist, wheel)


@pytest.fixture(scope="module")
def fresh_venv(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment (no system site packages) with only the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", release.wheel)
    return venv


def test_the_sdist_holds_the_sources_readme_and_licence(release: Release) -> None:
    """Everything needed to rebuild: pyproject, README, LICENSE and every module."""
    assert release.sdist.name == f"foot_traffic-{VERSION}.tar.gz"
    with tarfile.open(release.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "LICENSE", "src/foot_traffic/py.typed"} <= names
    assert {f"src/foot_traffic/{module}" for module in MODULES} <= names


def test_the_wheel_holds_the_package_entry_point_and_metadata(release: Release) -> None:
    """The wheel: every module, py.typed, the console script, the dependencies and extras, the licence."""
    assert release.wheel.name == f"foot_traffic-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(release.wheel) as archive:
        names = set(archive.namelist())
        info = f"foot_traffic-{VERSION}.dist-info"
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert {f"foot_traffic/{module}" for module in MODULES} <= names
    assert "foot_traffic/py.typed" in names
    assert f"{info}/licenses/LICENSE" in names
    assert "foot-traffic = foot_traffic.cli.commands:main" in entry_points
    assert metadata["Name"] == "foot-traffic"
    assert metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "Apache-2.0"
    requires = metadata.get_all("Requires-Dist") or []
    for dependency in PROJECT["dependencies"]:
        assert any(r.startswith(dependency.split(">")[0].split("<")[0]) for r in requires), dependency
    assert {"report", "registry"} <= set(metadata.get_all("Provides-Extra") or [])
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_the_installed_command_works_from_a_fresh_venv(fresh_venv: Path, tmp_path: Path) -> None:
    """Version, schema, plan and a short stdout run, from the installed wheel, outside the source tree."""
    bin_dir = fresh_venv / "bin"
    located = _run(bin_dir / "python", "-c", "import foot_traffic; print(foot_traffic.__file__)", cwd=tmp_path)
    assert str(fresh_venv) in located.stdout
    assert _run(bin_dir / "foot-traffic", "--version", cwd=tmp_path).stdout.strip() == f"foot-traffic {VERSION}"
    schema = json.loads(_run(bin_dir / "foot-traffic", "schema", cwd=tmp_path).stdout)
    assert schema["title"]
    plan_args = ("plan", "--date", "2025-08-12", "--days", "2", "--json", "--seed", "release")
    installed = _run(bin_dir / "foot-traffic", *plan_args, cwd=tmp_path).stdout
    development = _run(sys.executable, "-m", "foot_traffic", *plan_args, cwd=tmp_path).stdout
    assert installed == development
    run = _run(
        bin_dir / "foot-traffic",
        "run",
        "--sink",
        "stdout",
        "--seed",
        "release",
        "--speed",
        "max",
        "--start",
        "2025-08-12T00:00:00+00:00",
        "--until",
        "2025-08-13T00:00:00+00:00",
        "--daily-customers",
        "50",
        cwd=tmp_path,
    )
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(events) == 50
    assert all(e["entry_time"].startswith("2025-08-12") for e in events)
