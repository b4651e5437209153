"""``foot-traffic config``: every setting, its value and its origin, never a secret."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from foot_traffic.cli.commands import main
from foot_traffic.cli.parser import EXAMPLES, build_parser
from foot_traffic.config.settings import GROUPS, SPECS
from tests.unit.conftest import KEY_PASSWORD, Pem

PASSWORDS = {"KAFKA_SASL_PASSWORD": "pw-sasl-31415", "KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD}
PROPERTY_SECRET = "pw-oauth-16180"  # noqa: S105  # a test secret, to look for in every output


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the developer's environment leaks into an in-process ``main()``."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    for variable in os.environ:
        if variable.startswith("KAFKA_PRODUCER_"):
            monkeypatch.delenv(variable)


def config(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``foot-traffic config`` in-process; return its status, standard output and standard error."""
    status = main(["config", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_origins_are_named_for_each_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flag, a variable, a file key, a default and an unset setting each show where they came from."""
    path = tmp_path / "ft.toml"
    path.write_text('DAILY_CUSTOMERS = 500\nKAFKA_BROKER = "file:9092"\nSEED = "file-seed"\nSLEEP = 2\n')
    monkeypatch.setenv("CONFIG_FILE", str(path))
    monkeypatch.setenv("SEED", "env-seed")
    status, out, err = config(capsys, "--json", "--sleep", "3")
    assert (status, err) == (0, "")
    shown = json.loads(out)
    assert list(shown)[: len(SPECS)] == [spec.env for spec in SPECS]
    assert shown["SLEEP"] == {"value": 3.0, "origin": "flag --sleep"}
    assert shown["SEED"] == {"value": "env-seed", "origin": "environment"}
    assert shown["DAILY_CUSTOMERS"] == {"value": 500, "origin": f"config file {path}"}
    assert shown["KAFKA_BROKER"] == {"value": "file:9092", "origin": f"config file {path}"}
    assert shown["KAFKA_TOPIC"] == {"value": "foot_traffic", "origin": "default"}
    assert shown["DISABLE_DAILY_VARIATION"] == {"value": False, "origin": "default"}
    assert shown["UNTIL"] == {"value": None, "origin": "unset"}
    assert shown["CONFIG_FILE"] == {"value": str(path), "origin": "environment"}
    assert shown["LOG_FORMAT"] == {"value": "text", "origin": "default"}


def test_text_is_aligned_and_says_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text form has a header and one aligned line per setting, with the JSON form's values and origins."""
    path = tmp_path / "ft.toml"
    path.write_text("DAILY_CUSTOMERS = 500\nDISABLE_DAILY_VARIATION = true\n")
    monkeypatch.setenv("SPEED", "max")
    status, out, _ = config(capsys, "--config", str(path), "--seed", "demo")
    assert status == 0
    lines = out.splitlines()
    assert re.fullmatch(r"SETTING +VALUE +ORIGIN", lines[0])
    assert len(lines) == 1 + len(SPECS)
    value_column = lines[0].index("VALUE")
    origin_column = lines[0].index("ORIGIN")
    rows = {line[:value_column].strip(): line for line in lines[1:]}
    assert set(rows) == {spec.env for spec in SPECS}
    for line in lines[1:]:
        assert line[value_column - 2 : value_column] == "  "
        assert line[origin_column - 2 : origin_column] == "  "
    expected = {
        "DAILY_CUSTOMERS": ("500", f"config file {path}"),
        "DISABLE_DAILY_VARIATION": ("true", f"config file {path}"),
        "SPEED": ("max", "environment"),
        "SEED": ("demo", "flag --seed"),
        "CONFIG_FILE": (str(path), "flag --config-file"),
        "UNTIL": ("", "unset"),
        "SLEEP": ("0.5", "default"),
    }
    for variable, (value, origin) in expected.items():
        line = rows[variable]
        assert (line[value_column:origin_column].strip(), line[origin_column:]) == (value, origin)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("layer", ["environment", "config file", "flag"])
def test_secrets_never_show(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    pem: Pem,
    layer: str,
    *,
    as_json: bool,
) -> None:
    """Passwords and sensitive producer properties, given by any layer, print as *** in either form."""
    plain = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "alice",
        "KAFKA_SSL_KEY_LOCATION": str(pem.key),
        "KAFKA_SSL_CERTIFICATE_LOCATION": str(pem.cert),
    }
    for variable, value in plain.items():
        monkeypatch.setenv(variable, value)
    secrets = {**PASSWORDS, "KAFKA_PRODUCER_SASL_OAUTHBEARER_CLIENT_SECRET": PROPERTY_SECRET}
    argv = ["--json"] if as_json else []
    if layer == "environment":
        for variable, value in secrets.items():
            monkeypatch.setenv(variable, value)
    elif layer == "config file":
        path = tmp_path / "ft.toml"
        path.write_text("".join(f'{variable} = "{value}"\n' for variable, value in secrets.items()))
        argv += ["--config", str(path)]
    else:
        monkeypatch.setenv("KAFKA_PRODUCER_SASL_OAUTHBEARER_CLIENT_SECRET", PROPERTY_SECRET)
        argv += ["--kafka-sasl-password", PASSWORDS["KAFKA_SASL_PASSWORD"]]
        argv += ["--kafka-ssl-key-password", PASSWORDS["KAFKA_SSL_KEY_PASSWORD"]]
    status, out, err = config(capsys, *argv)
    assert status == 0, err
    for secret in (*PASSWORDS.values(), PROPERTY_SECRET):
        assert secret not in out + err
    if as_json:
        shown = json.loads(out)
        for variable in secrets:
            assert shown[variable]["value"] == "***"
        assert shown["KAFKA_SASL_USERNAME"]["value"] == "alice"
        origin = shown["KAFKA_SASL_PASSWORD"]["origin"]
        assert origin.split()[0] == {"environment": "environment", "config file": "config", "flag": "flag"}[layer]
    else:
        for variable in secrets:
            assert re.search(rf"^{variable} +\*\*\* ", out, re.MULTILINE), out


def test_invalid_settings_exit_2_without_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad settings give the usual lines and exit 2; a secret in a bad setting stays masked."""
    path = tmp_path / "ft.toml"
    path.write_text('DAILY_CUSTOMERS = -3\nKAFKA_SASL_PASSWORD = "pw-sasl-31415"\n')
    monkeypatch.setenv("SLEEP", "0")
    status, out, err = config(capsys, "--config", str(path))
    assert (status, out) == (2, "")
    assert err.splitlines() == [
        "foot-traffic: error: SLEEP='0': expected a number > 0",
        f"foot-traffic: error: DAILY_CUSTOMERS=-3 (in {path}): expected an integer between 0 and 1000000000",
        f"foot-traffic: error: KAFKA_SASL_PASSWORD='***' (in {path}): expected KAFKA_SECURITY_PROTOCOL SASL_SSL or "
        "SASL_PLAINTEXT to use it (KAFKA_SECURITY_PROTOCOL is PLAINTEXT), or no value",
    ]


def test_config_is_a_documented_command() -> None:
    """``config`` has its examples and every setting's flag, like ``run``."""
    args = build_parser().parse_args(["config", "--json", "--daily-customers", "5", "--config", "ft.toml"])
    assert (args.command, args.json, args.daily_customers, args.config_file) == ("config", True, "5", "ft.toml")
    assert "foot-traffic config" in EXAMPLES["config"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "foot-traffic config" in readme
    assert "### Configuration file" in readme


@pytest.mark.parametrize("command", ["run", "plan", "config", "report"])
def test_each_command_s_usage_line_fits_on_a_screen(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The usage line names the command and [options]; the settings' flags are in --help, not in the usage."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"usage: foot-traffic {command} [options]"


def test_help_shows_each_setting_in_its_group(capsys: pytest.CaptureFixture[str]) -> None:
    """``run --help`` has one section per group of settings, each listing exactly its settings' flags."""
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    sections = re.split(r"^(\S[^\n]*):\n", text, flags=re.MULTILINE)
    by_title = dict(zip(sections[1::2], sections[2::2], strict=True))
    for group in GROUPS:
        body = by_title[f"{group.title} settings"]
        listed = set(re.findall(r"^  (--[a-z0-9-]+) ", body, flags=re.MULTILINE))
        assert listed == {spec.flag for spec in SPECS if spec.group == group}, group.title
