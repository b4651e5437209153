"""Stores files of chain size: an error names its entry's line, and stores share their profiles and time zones."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from foot_traffic.cli.commands import main
from foot_traffic.config.files import load_stores_file
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS
from foot_traffic.model.grid import WEEKDAYS
from foot_traffic.model.stores import StoresFileError

CHAIN = 10_000
PROFILE = "[weights]\n" + "".join(f"{day} = [1, 2, 3, 4, 5, 6]\n" for day in WEEKDAYS)
TOML_LINES_PER_STORE = 5
"""Header, id, scale, time zone and a blank line: store i's header is on line 5 i + 1."""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test with none of the settings' variables set."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)


def chain(**changed: Mapping[str, object]) -> list[Mapping[str, object]]:
    """CHAIN valid stores, entry ``store{i}`` of ``changed`` replaced by its dict."""
    stores: list[Mapping[str, object]] = [
        {"id": f"s{i:05d}", "scale": 1.0, "timezone": "Europe/Rome"} for i in range(CHAIN)
    ]
    for key, entry in changed.items():
        stores[int(key.removeprefix("store"))] = entry
    return stores


def write_toml(folder: Path, stores: Sequence[Mapping[str, object]]) -> Path:
    """The stores as TOML, each entry TOML_LINES_PER_STORE lines long."""
    path = folder / "chain.toml"
    text = "".join(
        "[[store]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in entry.items()) + "\n"
        for entry in stores
    )
    path.write_text(text, encoding="utf-8")
    return path


def write_json(folder: Path, stores: Sequence[Mapping[str, object]]) -> Path:
    """The stores as JSON, store i's object alone on line i + 2."""
    path = folder / "chain.json"
    path.write_text('{"store": [\n' + ",\n".join(json.dumps(e) for e in stores) + "\n]}\n", encoding="utf-8")
    return path


BAD_SCALE = {"id": "s07000", "scale": "x", "timezone": "Europe/Rome"}
SCALE_EXPECTED = "store[7000].scale='x': expected a finite number >= 0"


def test_a_bad_entry_deep_in_a_toml_chain_names_its_line(tmp_path: Path) -> None:
    """store[7000]'s bad scale is reported on the line of its [[store]] header, 5 × 7000 + 1."""
    path = write_toml(tmp_path, chain(store7000=BAD_SCALE))
    with pytest.raises(StoresFileError) as caught:
        load_stores_file(path)
    assert str(caught.value) == f"line 35001: {SCALE_EXPECTED}"


def test_a_bad_entry_deep_in_a_json_chain_names_its_line(tmp_path: Path) -> None:
    """store[7000]'s bad scale is reported on the line its object is on, 7000 + 2."""
    path = write_json(tmp_path, chain(store7000=BAD_SCALE))
    with pytest.raises(StoresFileError) as caught:
        load_stores_file(path)
    assert str(caught.value) == f"line 7002: {SCALE_EXPECTED}"


@pytest.mark.parametrize(("writer", "lines"), [(write_toml, (45001, 61)), (write_json, (9002, 14))])
def test_an_id_given_twice_names_both_lines(
    tmp_path: Path, writer: Callable[[Path, Sequence[Mapping[str, object]]], Path], lines: tuple[int, int]
) -> None:
    """store[9000] repeating store[12]'s id: the error is on store[9000]'s line and names store[12]'s."""
    stores = chain(store9000={"id": "s00012"})
    path = writer(tmp_path, stores)
    with pytest.raises(StoresFileError) as caught:
        load_stores_file(path)
    assert str(caught.value) == (
        f"line {lines[0]}: store[9000].id='s00012': expected a unique id; store[12] on line {lines[1]} has it already"
    )


def test_the_command_line_names_the_file_the_line_and_the_store_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad entry deep in a chain file is one line naming the flag, the file, the line and the store; exit 2."""
    path = write_toml(tmp_path, chain(store7000=BAD_SCALE))
    assert main(["plan", f"--stores-file={path}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    expected = f"foot-traffic: error: --stores-file={str(path)!r}: line 35001: {SCALE_EXPECTED}"
    assert captured.err.splitlines() == [expected]


def test_stores_naming_one_profile_share_one_table(tmp_path: Path) -> None:
    """However the path is written (relative, with ./ or .., absolute, through a link), one file gives one table."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "city.toml").write_text(PROFILE, encoding="utf-8")
    (tmp_path / "link.toml").symlink_to(tmp_path / "profiles" / "city.toml")
    spellings = ["profiles/city.toml", "./profiles/city.toml", "profiles/../profiles/city.toml", "link.toml"]
    spellings.append(str(tmp_path / "profiles" / "city.toml"))
    stores = [{"id": f"s{i}", "weights": spellings[i % len(spellings)]} for i in range(100)]
    loaded = load_stores_file(write_json(tmp_path, stores))
    first = loaded[0].weights
    assert first is not None
    assert all(store.weights is first for store in loaded)


def test_the_stores_of_a_chain_share_their_profile_time_zone_and_calendar(tmp_path: Path) -> None:
    """Each store's model holds the one table of its profile, the one zone of its name and the run's one calendar."""
    (tmp_path / "city.toml").write_text(PROFILE, encoding="utf-8")
    (tmp_path / "calendar.toml").write_text('[hours]\nMonday = ["08:00", "20:00"]\n', encoding="utf-8")
    zones = ["Europe/Rome", "Asia/Kolkata", "America/New_York"]
    stores = [
        {"id": f"s{i}", "timezone": zones[i % 3], **({"weights": "city.toml"} if i % 2 else {})} for i in range(300)
    ]
    env = {"STORES_FILE": str(write_json(tmp_path, stores)), "CALENDAR_FILE": str(tmp_path / "calendar.toml")}
    settings = load_settings(env)
    models = [store.model for store in settings.store_models()]
    assert all(m.calendar is settings.calendar for m in models)
    assert all(m.weights is settings.weights for m in models[0::2])
    assert all(m.weights is models[1].weights for m in models[1::2])
    assert models[1].weights is not settings.weights
    for offset in range(3):
        assert all(m.tz is models[offset].tz for m in models[offset::3])
    assert len({id(m.tz) for m in models}) == 3
