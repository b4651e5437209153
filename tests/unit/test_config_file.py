"""The configuration file CONFIG_FILE: precedence, TOML values, relative paths, and every way it can be wrong."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from foot_traffic.cli.commands import main
from foot_traffic.config.resolve import Origin, load_settings, resolve
from foot_traffic.config.settings import SPECS
from foot_traffic.config.spec import Spec
from foot_traffic.errors import ConfigError
from foot_traffic.secret import Secret

ROOT = Path(__file__).resolve().parents[2]
SASL = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the developer's environment leaks into an in-process ``main()``."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)


def write(folder: Path, text: str | bytes, name: str = "foot-traffic.toml") -> Path:
    """Write a configuration file; return its path."""
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- precedence ----------------------------------------------------------------------------------------------------

FILE = """
KAFKA_BROKER = "file:9092"
DAILY_CUSTOMERS = 500
SLEEP = 2
DAILY_VARIATION_PCT = 0.25
DISABLE_DAILY_VARIATION = true
SPEED = "max"
SEED = "from-file"
"""


def test_the_file_gives_values_of_every_type(tmp_path: Path) -> None:
    """Strings, integers, floats and booleans of the file reach their settings, each with the file as origin."""
    path = write(tmp_path, FILE)
    s, origins = resolve({"CONFIG_FILE": str(path)})
    assert (s.broker, s.daily_customers, s.sleep, s.daily_variation_pct) == ("file:9092", 500, 2.0, 0.25)
    assert (s.disable_daily_variation, s.speed_is_max, s.seed) == (True, True, "from-file")
    assert s.config_file == path
    for variable in ("KAFKA_BROKER", "DAILY_CUSTOMERS", "SLEEP", "DISABLE_DAILY_VARIATION", "SPEED", "SEED"):
        assert origins[variable] == Origin("config file", str(path))
    assert origins["CONFIG_FILE"] == Origin("environment")
    assert origins["KAFKA_TOPIC"] == Origin("default")
    assert origins["UNTIL"] == Origin("unset")


def test_the_environment_beats_the_file_and_a_flag_beats_both(tmp_path: Path) -> None:
    """Flag > environment variable > configuration file > default, for each type of value."""
    path = write(tmp_path, FILE)
    env = {"KAFKA_BROKER": "env:9092", "DAILY_CUSTOMERS": "7", "DISABLE_DAILY_VARIATION": "0", "SLEEP": ""}
    flags: dict[str, str | None] = {"config_file": str(path), "daily_customers": "9", "speed": "60"}
    s, origins = resolve(env, flags)
    assert (s.broker, s.daily_customers, s.disable_daily_variation) == ("env:9092", 9, False)
    assert (s.speed, s.speed_is_max) == (60.0, False)
    assert s.sleep == 2.0, "an empty variable falls through to the file"
    assert s.daily_variation_pct == 0.25
    assert str(origins["KAFKA_BROKER"]) == "environment"
    assert str(origins["DAILY_CUSTOMERS"]) == "flag --daily-customers"
    assert str(origins["SPEED"]) == "flag --speed"
    assert str(origins["SLEEP"]) == f"config file {path}"
    assert str(origins["CONFIG_FILE"]) == "flag --config-file"


def test_secrets_follow_the_same_precedence(tmp_path: Path) -> None:
    """A password in the file is used unless the environment or a flag gives another."""
    numeric = write(tmp_path, "KAFKA_SASL_PASSWORD = 1234\n", "numeric.toml")
    assert load_settings({**SASL, "CONFIG_FILE": str(numeric)}).sasl_password == Secret("1234")
    path = write(tmp_path, 'KAFKA_SASL_PASSWORD = "file-secret"\n')
    base = {**SASL, "CONFIG_FILE": str(path)}
    assert load_settings(base).sasl_password == Secret("file-secret")
    assert load_settings({**base, "KAFKA_SASL_PASSWORD": "env-secret"}).sasl_password == Secret("env-secret")
    flagged = load_settings({**base, "KAFKA_SASL_PASSWORD": "env-secret"}, {"sasl_password": "flag-secret"})
    assert flagged.sasl_password == Secret("flag-secret")


def test_an_empty_string_in_the_file_is_unset(tmp_path: Path) -> None:
    """As with an empty variable, an empty value in the file leaves the default."""
    path = write(tmp_path, 'SEED = ""\nKAFKA_TOPIC = ""\n')
    s, origins = resolve({"CONFIG_FILE": str(path)})
    assert (s.seed, s.topic) == (None, "foot_traffic")
    assert (origins["SEED"], origins["KAFKA_TOPIC"]) == (Origin("unset"), Origin("default"))


def test_toml_dates_and_times_read_as_their_iso_text(tmp_path: Path) -> None:
    """START and UNTIL may be TOML dates or date-times, with or without an offset."""
    path = write(tmp_path, "START = 2025-08-11\nUNTIL = 2025-08-12T09:30:00+02:00\nTIMEZONE = 'Europe/Rome'\n")
    s = load_settings({"CONFIG_FILE": str(path)})
    assert s.start == dt.datetime(2025, 8, 11)
    assert s.until == dt.datetime(2025, 8, 12, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def test_producer_properties_may_live_in_the_file(tmp_path: Path) -> None:
    """KAFKA_PRODUCER_* keys are accepted; the environment's value of the same variable wins."""
    path = write(tmp_path, "KAFKA_PRODUCER_LINGER_MS = 20\nKAFKA_PRODUCER_BATCH_SIZE = 1000\n")
    s, origins = resolve({"CONFIG_FILE": str(path), "KAFKA_PRODUCER_LINGER_MS": "50"})
    assert dict(s.producer_properties) == {"linger.ms": "50", "batch.size": "1000"}
    assert origins["KAFKA_PRODUCER_LINGER_MS"] == Origin("environment")
    assert origins["KAFKA_PRODUCER_BATCH_SIZE"] == Origin("config file", str(path))
    bad = write(tmp_path, "KAFKA_PRODUCER_NO_SUCH_PROPERTY = 1\n", "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_settings({"CONFIG_FILE": str(bad)})
    (problem,) = info.value.problems
    assert problem.startswith(
        f"KAFKA_PRODUCER_NO_SUCH_PROPERTY='1' (in {bad}): expected a librdkafka producer property"
    )


def test_relative_paths_in_the_file_are_relative_to_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WEIGHTS_FILE and DEAD_LETTER_FILE in the file name files beside it, whatever the working directory."""
    folder = tmp_path / "conf"
    (folder / "profiles").mkdir(parents=True)
    (folder / "profiles" / "w.toml").write_text((ROOT / "examples" / "weights.toml").read_text())
    path = write(folder, 'WEIGHTS_FILE = "profiles/w.toml"\nDEAD_LETTER_FILE = "dead.jsonl"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings({"CONFIG_FILE": os.path.relpath(path, elsewhere)})
    assert s.weights_file is not None
    assert s.weights_file.resolve() == (folder / "profiles" / "w.toml").resolve()
    assert s.dead_letter_file.resolve() == (folder / "dead.jsonl").resolve()
    with pytest.raises(ConfigError, match="cannot read it"):
        load_settings({"WEIGHTS_FILE": "profiles/w.toml"})  # the variable stays relative to the working directory


# --- errors --------------------------------------------------------------------------------------------------------

ERRORS = [
    ("DAILY_CUSTOMERS = -3", "DAILY_CUSTOMERS=-3 (in {path}): expected an integer between 0 and 1000000000"),
    ("SLEEP = 'fast'", "SLEEP='fast' (in {path}): expected a number > 0"),
    ("SLEEP = nan", "SLEEP=nan (in {path}): expected a number > 0"),
    ("MAX_RETRIES = 2.5", "MAX_RETRIES=2.5 (in {path}): expected an integer between 1 and 1000"),
    (
        "DISABLE_DAILY_VARIATION = 2",
        "DISABLE_DAILY_VARIATION=2 (in {path}): expected one of 1/0, true/false, yes/no, on/off",
    ),
    ("DAILY_CUSTOMERS = true", "DAILY_CUSTOMERS=true (in {path}): expected an integer between 0 and 1000000000"),
    ("LOG_FORMAT = 'xml'", "LOG_FORMAT='xml' (in {path}): expected one of text, json"),
    (
        "START = 10:30:00",
        "START=10:30:00 (in {path}): expected an ISO-8601 date or instant "
        "such as 2025-08-12 or 2025-08-12T15:30:00+02:00",
    ),
    (
        "DAILY_CUSTOMER = 5",
        "{label}: unknown key 'DAILY_CUSTOMER'; expected the variable name of a setting "
        "(did you mean DAILY_CUSTOMERS?)",
    ),
    (
        "daily_customers = 5",
        "{label}: unknown key 'daily_customers'; expected the variable name of a setting "
        "(did you mean DAILY_CUSTOMERS?)",
    ),
    (
        "XYZZY = 1",
        "{label}: unknown key 'XYZZY'; expected the variable name of a setting (foot-traffic run --help lists them)",
    ),
    (
        "CONFIG_FILE = 'other.toml'",
        "{label}: key 'CONFIG_FILE' expected in the environment or as a flag, not in the configuration file",
    ),
    ("SLEEP = [1, 2]", "SLEEP=[…] (in {path}): expected a string, a number or a boolean, not an array"),
    (
        "[KAFKA_BROKER]\nhost = 'x'",
        "KAFKA_BROKER={{…}} (in {path}): expected a string, a number or a boolean, not a table",
    ),
    (
        "KAFKA_SASL_PASSWORD = {value = 'hunter2'}",
        "KAFKA_SASL_PASSWORD='***' (in {path}): expected a string, a number or a boolean, not a table",
    ),
    (
        "KAFKA_SASL_PASSWORD = 'hunter2'",
        "KAFKA_SASL_PASSWORD='***' (in {path}): expected KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT to use it "
        "(KAFKA_SECURITY_PROTOCOL is PLAINTEXT), or no value",
    ),
    (
        "KAFKA_SSL_CA_LOCATION = 'missing-ca.pem'",
        "KAFKA_SSL_CA_LOCATION='{folder}/missing-ca.pem' (in {path}): "
        "expected a readable file, but there is no such file",
    ),
    (
        "WEIGHTS_FILE = 'w.toml'",
        "WEIGHTS_FILE='{folder}/w.toml' (in {path}): cannot read it: No such file or directory",
    ),
    (
        "x = = 1",
        "{label}: expected a readable TOML file of settings; cannot parse it: Invalid value (at line 1, column 5)",
    ),
    (
        b"SEED = '\xff'",
        "{label}: expected a readable TOML file of settings; cannot parse it: 'utf-8' codec can't decode byte 0xff "
        "in position 8: invalid start byte",
    ),
]


@pytest.mark.parametrize("by_flag", [False, True], ids=["CONFIG_FILE", "--config"])
@pytest.mark.parametrize(("content", "expected"), ERRORS)
def test_each_problem_of_the_file_exits_2_with_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str | bytes,
    expected: str,
    *,
    by_flag: bool,
) -> None:
    """Each problem gives exit 2 and one line naming the file, the key, the value and what is expected."""
    path = write(tmp_path, content)
    label = f"--config={str(path)!r}" if by_flag else f"CONFIG_FILE={str(path)!r}"
    argv = ["run", "--config", str(path)] if by_flag else ["run"]
    if not by_flag:
        monkeypatch.setenv("CONFIG_FILE", str(path))
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "foot-traffic: error: " + expected.format(path=path, label=label, folder=tmp_path)
    ]
    assert "hunter2" not in captured.err


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    """A missing file, a directory and (for a user the permissions bind) an unreadable file each give one line."""
    cases = [(tmp_path / "missing.toml", "No such file or directory"), (tmp_path, "Is a directory")]
    if os.geteuid() != 0:
        locked = write(tmp_path, "SEED = 'x'", "locked.toml")
        locked.chmod(0)
        cases.append((locked, "Permission denied"))
    for path, reason in cases:
        with pytest.raises(ConfigError) as info:
            load_settings({}, {"config_file": str(path)})
        assert info.value.problems == [
            f"--config={str(path)!r}: expected a readable TOML file of settings; cannot read it: {reason}"
        ]


def test_every_problem_of_the_file_is_reported_together(tmp_path: Path) -> None:
    """Several bad keys and values, plus a bad variable, give one line each."""
    path = write(tmp_path, "DAILY_CUSTOMERS = -1\nNOPE = 1\nSLEEP = 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"CONFIG_FILE": str(path), "MAX_RETRIES": "0"})
    assert [p.split("=")[0] for p in info.value.problems] == ["CONFIG_FILE", "SLEEP", "DAILY_CUSTOMERS", "MAX_RETRIES"]


# --- the same checks as the environment, for every setting --------------------------------------------------------

FILE_SPECS = [spec for spec in SPECS if spec.env != "CONFIG_FILE"]
WORDS = ["", " ", "-3", "0", "1", "2.5", "1e400", "nan", "inf", "max", "true", "yes", "maybe", "x" * 300]
WORDS += ["Europe/Rome", "Mars/Olympus", "2025-08-12", "2025-13-01", "a:1", "host:99999", "SASL_SSL", "json", "."]
TEXT = st.one_of(st.sampled_from(WORDS), st.text(st.characters(codec="utf-8"), max_size=12))
NATIVE: SearchStrategy[object] = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.booleans(),
    st.dates(min_value=dt.date(1, 1, 1)),
)


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` exactly (every character outside printable ASCII escaped)."""
    body = "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\U{ord(c):08X}" for c in text)
    return f'"{body}"'


def as_toml_and_text(value: object) -> tuple[str, str]:
    """The TOML literal of a value, and the text an environment variable holding it would carry."""
    if isinstance(value, str):
        return toml_string(value), value
    if isinstance(value, bool):
        return ("true", "true") if value else ("false", "false")
    if isinstance(value, float):
        return repr(value), repr(value)
    if isinstance(value, dt.date):
        return value.isoformat(), value.isoformat()
    return str(value), str(value)


def problems_of(env: dict[str, str]) -> list[str]:
    """The problems of these settings (none if they are valid)."""
    try:
        load_settings(env)
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the generated files are written, and the working directory of each example."""
    return tmp_path_factory.mktemp("config-file")


@pytest.mark.parametrize("spec", FILE_SPECS, ids=[spec.env for spec in FILE_SPECS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(TEXT, NATIVE))
def test_a_value_in_the_file_is_checked_as_in_the_environment(spec: Spec, value: object, folder: Path) -> None:
    """Any value of any setting: through the file it is refused with the same expectation as through its variable."""
    literal, text = as_toml_and_text(value)
    path = write(folder, f"{spec.env} = {literal}\n", f"{uuid.uuid4().hex}.toml")
    with contextlib.chdir(folder):  # relative paths: the file's directory is the working directory
        by_env = [p for p in problems_of({spec.env: text}) if p.startswith(f"{spec.env}=")]
        by_file = [p for p in problems_of({"CONFIG_FILE": str(path)}) if p.startswith(f"{spec.env}=")]
    assert len(by_file) == len(by_env), (by_env, by_file)
    where = f" (in {path}): "
    for env_line, file_line in zip(by_env, by_file, strict=True):
        assert where in file_line, file_line
        assert env_line.endswith(": " + file_line.split(where, 1)[1]), (env_line, file_line)
        if spec.secret:
            assert f"{spec.env}='***'" in file_line


def test_the_configuration_file_reader_needs_no_kafka_client(tmp_path: Path) -> None:
    """Configuration does not reach into Kafka: config_file reads a file with confluent_kafka unimportable."""
    path = tmp_path / "ft.toml"
    path.write_text('KAFKA_TOPIC = "t"\nKAFKA_PRODUCER_LINGER_MS = 5\n')
    code = (
        "import sys; sys.modules['confluent_kafka'] = None\n"
        "from pathlib import Path\n"
        "from foot_traffic.config.config_file import Vocabulary, read_config_file\n"
        "words = Vocabulary({'KAFKA_TOPIC'}, set(), set(), 'CONFIG_FILE', 'KAFKA_PRODUCER_')\n"
        f"config, problems = read_config_file(Path({str(path)!r}), 'CONFIG_FILE', words)\n"
        "print(sorted((k, e.raw) for k, e in config.entries.items()), problems)\n"
        "print('confluent_kafka' in sys.modules and sys.modules['confluent_kafka'] is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[('KAFKA_PRODUCER_LINGER_MS', '5'), ('KAFKA_TOPIC', 't')] []", "False"]
