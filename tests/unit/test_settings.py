"""Settings: defaults, precedence, and a clear message for every bad value."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import GROUPS, SPECS, SPECS_BY_NAME, Settings
from foot_traffic.config.spec import Spec
from foot_traffic.errors import ConfigError
from foot_traffic.model.weights import DEFAULT_WEIGHTS

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_specification_defaults() -> None:
    """With an empty environment every setting has the specification's default."""
    s = load_settings({})
    assert (s.broker, s.topic, s.sleep, s.time_scale) == ("kafka:9092", "foot_traffic", 0.5, 1.0)
    assert (s.default_daily_customers, s.base_daily_customers, s.daily_customers) == (100, 100, None)
    assert (s.daily_variation_pct, s.disable_daily_variation, s.seed) == (0.10, False, None)
    assert (s.max_retries, s.retry_backoff_seconds) == (6, 5.0)
    assert s.weights == DEFAULT_WEIGHTS
    assert s == Settings()


def test_base_falls_back_to_the_legacy_default() -> None:
    """BASE_DAILY_CUSTOMERS takes DEFAULT_DAILY_CUSTOMERS when unset, and wins when set."""
    assert load_settings({"DEFAULT_DAILY_CUSTOMERS": "250"}).base_daily_customers == 250
    both = load_settings({"DEFAULT_DAILY_CUSTOMERS": "250", "BASE_DAILY_CUSTOMERS": "40"})
    assert both.base_daily_customers == 40


def test_flags_override_the_environment_and_empty_means_unset() -> None:
    """A flag beats its variable; an empty variable falls back to the default."""
    s = load_settings({"KAFKA_TOPIC": "from_env", "SLEEP": ""}, {"topic": "from_flag"})
    assert s.topic == "from_flag"
    assert s.sleep == 0.5


@pytest.mark.parametrize("word", ["1", "true", "TRUE", "yes", "on"])
def test_disable_variation_true_words(word: str) -> None:
    """Every true word disables the variation."""
    s = load_settings({"DISABLE_DAILY_VARIATION": word, "DAILY_VARIATION_PCT": "0.3"})
    assert s.disable_daily_variation
    assert s.variation_pct == 0.0
    assert s.model().variation_pct == 0.0


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KAFKA_BROKER", "nocolon", "host:port"),
        ("KAFKA_BROKER", "h:99999", "host:port"),
        ("KAFKA_BROKER", "a:1,,b:2", "host:port"),
        ("KAFKA_BROKER", "bad host:9092", "host:port"),
        ("KAFKA_TOPIC", "bad topic", "letters, digits"),
        ("KAFKA_TOPIC", "x" * 250, "1 to 249"),
        ("KAFKA_TOPIC", "..", "1 to 249"),
        ("SLEEP", "0", "number > 0"),
        ("SLEEP", "-1", "number > 0"),
        ("SLEEP", "nan", "number > 0"),
        ("SLEEP", "fast", "number > 0"),
        ("TIME_SCALE", "0", "number > 0"),
        ("TIME_SCALE", "inf", "number > 0"),
        ("DEFAULT_DAILY_CUSTOMERS", "-5", "integer between 0"),
        ("BASE_DAILY_CUSTOMERS", "1.5", "integer between 0"),
        ("DAILY_CUSTOMERS", "abc", "integer between 0"),
        ("DAILY_CUSTOMERS", "-1", "integer between 0"),
        ("DAILY_CUSTOMERS", "1000000000000", "integer between 0 and 1000000000"),
        ("DAILY_VARIATION_PCT", "1.5", "[0, 1]"),
        ("DAILY_VARIATION_PCT", "-0.1", "[0, 1]"),
        ("DISABLE_DAILY_VARIATION", "maybe", "true/false"),
        ("MAX_RETRIES", "0", "integer between 1"),
        ("MAX_RETRIES", "two", "integer between 1"),
        ("RETRY_BACKOFF_SECONDS", "-1", "[0, 3600]"),
        ("LOG_LEVEL", "LOUD", "DEBUG, INFO"),
        ("SINK", "file", "kafka, stdout, null"),
        ("KAFKA_TOPIC_PARTITIONS", "0", "integer between 1"),
        ("KAFKA_TOPIC_REPLICATION_FACTOR", "x", "integer between 1"),
        ("KAFKA_CONNECT_TIMEOUT_SECONDS", "0", "number in (0"),
        ("KAFKA_FLUSH_TIMEOUT_SECONDS", "-2", "[0, 3600]"),
        ("KAFKA_DELIVERY_TIMEOUT_MS", "999", "integer between 1000"),
        ("KAFKA_DELIVERY_TIMEOUT_MS", "2m", "integer between 1000"),
        ("DEAD_LETTER_FILE", "/nonexistent-dir/dl.jsonl", "in an existing directory"),
        ("DEAD_LETTER_FILE", "/", "not a directory"),
        ("SPEED", "0", "or max"),
        ("SPEED", "fastest", "or max"),
        ("START", "yesterday", "ISO-8601"),
        ("UNTIL", "2025-13-01", "ISO-8601"),
        ("TIMEZONE", "Mars/Olympus", "IANA time zone"),
        ("ARRIVAL_MODEL", "gaussian", "uniform, poisson, smooth"),
        ("DAILY_TOTALS", "normal", "uniform, gamma-poisson"),
        ("DAILY_DISPERSION", "-1", "[0, 10]"),
        ("EXIT_EVENTS_TOPIC", "bad topic!", "letters, digits"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS", "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "GSSAPI", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", "alice", "KAFKA_SECURITY_PROTOCOL SASL_SSL or SASL_PLAINTEXT"),
        ("KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem", "a readable file, but there is no such file"),
        ("KAFKA_SSL_CERTIFICATE_LOCATION", "/", "a readable file, but it is a directory"),
        ("KAFKA_SSL_KEY_LOCATION", "/nonexistent/client.key", "a readable file"),
        ("KAFKA_SSL_ENDPOINT_IDENTIFICATION", "http", "https, none"),
        ("CONFIG_FILE", "/nonexistent/foot-traffic.toml", "a readable TOML file of settings; cannot read it"),
        ("CONFIG_FILE", "/", "cannot read it"),
        ("LOG_FORMAT", "xml", "one of text, json"),
        ("SCHEMA_REGISTRY_URL", "localhost:8081", "an http:// or https:// URL"),
        ("SCHEMA_REGISTRY_URL", "http://host:99999", "an http:// or https:// URL"),
        ("SCHEMA_REGISTRY_FORMAT", "protobuf", "one of json, avro"),
        ("METRICS_PORT", "0", "an integer between 1 and 65535"),
        ("METRICS_PORT", "http", "an integer between 1 and 65535"),
        ("METRICS_HOST", "256.0.0.1", "an IP address to listen on"),
        ("METRICS_HOST", "my host", "an IP address to listen on"),
        ("HEALTH_UNREACHABLE_SECONDS", "0", "a number in (0, 86400]"),
        ("HEALTH_UNREACHABLE_SECONDS", "soon", "a number in (0, 86400]"),
        ("FLEET_PARTITIONS", "0", "an integer between 1 and 4096"),
        ("FLEET_PARTITIONS", "4097", "an integer between 1 and 4096"),
        ("FLEET_ID", "my fleet", "1 to 200 characters among letters, digits, '.', '_' and '-'"),
        ("WORKERS", "0", "an integer between 1 and 256"),
        ("WORKERS", "1.5", "an integer between 1 and 256"),
        ("WORKERS", "257", "an integer between 1 and 256"),
        ("WORKERS", "two", "an integer between 1 and 256"),
        ("SHARD", "3/3", "I/N with 0 <= I < N <= FLEET_PARTITIONS, or auto/N"),
        ("SHARD", "1", "I/N with 0 <= I < N <= FLEET_PARTITIONS, or auto/N"),
        ("SHARD", "-1/2", "I/N with 0 <= I < N <= FLEET_PARTITIONS, or auto/N"),
        ("SHARD", "0/0", "I/N with 0 <= I < N <= FLEET_PARTITIONS, or auto/N"),
        ("LATE_EVENTS_PCT", "1.5", "a number in [0, 1]"),
        ("LATE_EVENTS_PCT", "-0.1", "a number in [0, 1]"),
        ("LATE_DELAY_MEAN_SECONDS", "0", "a number > 0"),
        ("LATE_DELAY_MAX_SECONDS", "-5", "a number > 0"),
        ("DUPLICATE_EVENTS_PCT", "ten", "a number in [0, 1]"),
        ("DUPLICATE_DELAY_MAX_SECONDS", "-1", "a number >= 0"),
        ("SENSOR_OUTAGES_PER_DAY", "nan", "a number in [0, 1440]"),
        ("SENSOR_OUTAGES_PER_DAY", "1440.5", "a number in [0, 1440]"),
        ("SENSOR_OUTAGE_MEAN_MINUTES", "0", "a number > 0"),
        ("SENSOR_OUTAGE_ORDER", "random", "one of in-order, shuffled"),
        ("KAFKA_TIMESTAMP", "log", "one of emit, entry"),
    ],
)
def test_bad_values_name_the_variable_value_and_expectation(variable: str, value: str, expected: str) -> None:
    """Each invalid value is reported with its variable, the value and what is expected."""
    with pytest.raises(ConfigError) as info:
        load_settings({variable: value})
    (problem,) = info.value.problems
    assert problem.startswith(f"{variable}={value!r}: expected ")
    assert expected in problem


def test_every_setting_is_validated_and_documented() -> None:
    """Each setting has a variable, a flag and help text; the bad-value table covers every one."""
    covered = {
        "KAFKA_BROKER",
        "KAFKA_TOPIC",
        "SLEEP",
        "TIME_SCALE",
        "DEFAULT_DAILY_CUSTOMERS",
        "BASE_DAILY_CUSTOMERS",
        "DAILY_CUSTOMERS",
        "DAILY_VARIATION_PCT",
        "DISABLE_DAILY_VARIATION",
        "MAX_RETRIES",
        "RETRY_BACKOFF_SECONDS",
        "LOG_LEVEL",
        "SINK",
        "KAFKA_TOPIC_PARTITIONS",
        "KAFKA_TOPIC_REPLICATION_FACTOR",
        "KAFKA_CONNECT_TIMEOUT_SECONDS",
        "KAFKA_FLUSH_TIMEOUT_SECONDS",
        "KAFKA_DELIVERY_TIMEOUT_MS",
        "DEAD_LETTER_FILE",
    }
    covered |= {
        "SPEED",
        "START",
        "UNTIL",
        "TIMEZONE",
        "ARRIVAL_MODEL",
        "DAILY_TOTALS",
        "DAILY_DISPERSION",
        "EXIT_EVENTS_TOPIC",
    }
    free_form = {
        "SEED",
        "WEIGHTS_FILE",
        "CALENDAR_FILE",
        "STORES_FILE",
    }  # any string is a seed; files have their own tests
    covered |= {"EXACTLY_ONCE", "COMMIT_INTERVAL_MS"}
    free_form |= {"KAFKA_TRANSACTIONAL_ID"}  # any string is a valid transactional id
    covered |= {"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SSL_CA_LOCATION"}
    covered |= {"KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION", "KAFKA_SSL_ENDPOINT_IDENTIFICATION"}
    covered |= {"KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD"}  # secrets: masked, see tests/unit/test_security.py
    covered |= {"CONFIG_FILE", "LOG_FORMAT"}
    covered |= {"SCHEMA_REGISTRY_URL", "SCHEMA_REGISTRY_FORMAT"}
    covered |= {"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"}  # a secret: masked, see tests/unit/test_registry.py
    covered |= {"SCHEMA_REGISTRY_SSL_CA_LOCATION", "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION"}
    covered |= {"SCHEMA_REGISTRY_SSL_KEY_LOCATION", "SCHEMA_REGISTRY_SSL_KEY_PASSWORD"}  # tests/unit/test_registry.py
    covered |= {"METRICS_PORT", "METRICS_HOST", "HEALTH_UNREACHABLE_SECONDS"}
    covered |= {"FLEET_PARTITIONS", "SHARD", "FLEET_ID", "WORKERS"}  # SHARD's combinations: test_shard_settings.py
    covered |= {"LATE_EVENTS_PCT", "LATE_DELAY_MEAN_SECONDS", "LATE_DELAY_MAX_SECONDS", "DUPLICATE_EVENTS_PCT"}
    covered |= {"DUPLICATE_DELAY_MAX_SECONDS", "SENSOR_OUTAGES_PER_DAY", "SENSOR_OUTAGE_MEAN_MINUTES"}
    covered |= {"SENSOR_OUTAGE_ORDER", "KAFKA_TIMESTAMP"}
    assert {s.env for s in SPECS} == covered | free_form
    readme = (ROOT / "README.md").read_text()
    for spec in SPECS:
        assert spec.help
        assert spec.flag.startswith("--")
        assert f"`{spec.env}`" in readme, f"{spec.env} missing from the README's table"


def test_all_problems_are_reported_together() -> None:
    """Several bad variables give one error listing each of them."""
    with pytest.raises(ConfigError) as info:
        load_settings({"SLEEP": "0", "MAX_RETRIES": "-3"}, {"daily_customers": "many"})
    assert [p.split("=")[0] for p in info.value.problems] == ["SLEEP", "--daily-customers", "MAX_RETRIES"]


def test_shipped_weights_example_equals_the_defaults() -> None:
    """examples/weights.toml holds exactly the built-in table."""
    s = load_settings({"WEIGHTS_FILE": str(ROOT / "examples" / "weights.toml")})
    assert s.weights == DEFAULT_WEIGHTS


def test_weights_file_in_json_replaces_grid_and_weights(tmp_path: Path) -> None:
    """A JSON file can change the grid (and so the labels) and the weights."""
    path = tmp_path / "w.json"
    rows = {d: [1, 3] for d in ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]}
    path.write_text(json.dumps({"slots": ["00:00", "12:00"], "weights": rows}))
    s = load_settings({}, {"weights_file": str(path)})
    assert s.weights.grid.labels == ("00:00\u201311:59", "12:00\u201323:59")
    assert s.weights.weights[0] == (1.0, 3.0)


DAYS = '"Monday","Tuesday","Wednesday","Thursday","Friday","Saturday","Sunday"'


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("w.toml", "not = [toml", "cannot parse"),
        ("w.json", "{", "cannot parse"),
        ("w.json", "[1, 2]", "top level"),
        ("w.toml", "[weights]\nMonday = [1,2,3,4,5,6]", "missing"),
        ("w.toml", 'slots = ["00:00", "25:00"]\n[weights]', "HH:MM"),
        ("w.toml", 'slots = ["01:00"]\n[weights]', '"00:00"'),
        ("w.toml", 'slots = ["00:00", "10:00", "09:00"]\n[weights]', "after"),
        ("w.toml", "extra = 1", "unknown keys"),
        ("w.json", '{"weights": {' + ",".join(f"{d}: [1,2,3,4,5,-6]" for d in DAYS.split(",")) + "}}", ">= 0"),
        ("w.json", '{"weights": {' + ",".join(f"{d}: [1,2]" for d in DAYS.split(",")) + "}}", "expected 6"),
        ("w.json", '{"weights": {' + ",".join(f"{d}: [0,0,0,0,0,0]" for d in DAYS.split(",")) + "}}", "positive"),
        ("w.json", '{"weights": {' + ",".join(f'{d}: "x"' for d in DAYS.split(",")) + "}}", "list of 6"),
        ("w.json", '{"weights": {' + ",".join(f"{d}: [1,2,3,4,5,true]" for d in DAYS.split(",")) + "}}", ">= 0"),
    ],
)
def test_malformed_weights_files_are_rejected(tmp_path: Path, name: str, content: str, expected: str) -> None:
    """A malformed weights file is a configuration error that says what is wrong."""
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings({"WEIGHTS_FILE": str(path)})
    (problem,) = info.value.problems
    assert problem.startswith(f"WEIGHTS_FILE={str(path)!r}: ")
    assert expected in problem


def test_missing_weights_file_is_reported(tmp_path: Path) -> None:
    """A weights file that does not exist is named in the error."""
    with pytest.raises(ConfigError, match="cannot read it"):
        load_settings({"WEIGHTS_FILE": str(tmp_path / "nope.toml")})


def test_until_must_follow_start() -> None:
    """UNTIL at or before START is rejected, naming both."""
    with pytest.raises(ConfigError) as info:
        load_settings({"START": "2025-08-12", "UNTIL": "2025-08-11T23:00:00"})
    assert info.value.problems == ["UNTIL='2025-08-11T23:00:00': expected an instant after START='2025-08-12T00:00:00'"]


def test_naive_start_is_local_to_the_time_zone() -> None:
    """A START without an offset is read in TIMEZONE."""
    s = load_settings({"START": "2025-08-12T00:00:00", "TIMEZONE": "Europe/Rome"})
    assert s.start_us == load_settings({"START": "2025-08-11T22:00:00+00:00"}).start_us


def test_speed_max_and_number() -> None:
    """SPEED takes max or a positive factor."""
    assert load_settings({"SPEED": "max"}).speed_is_max
    fast = load_settings({"SPEED": "60"})
    assert (fast.speed, fast.speed_is_max) == (60.0, False)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.default is not None], ids=lambda s: s.env)
def test_a_field_s_default_is_its_default_text_parsed(spec: Spec) -> None:
    """Each default is written once, as text: the field's typed default is that text through the setting's parser."""
    assert spec.default is not None
    assert getattr(Settings(), spec.name) == spec.parse(spec.default)


def test_settings_fields_and_specs_are_one_declaration() -> None:
    """SPECS holds exactly the Settings fields that are settings, in field order; the derived fields are not."""
    fields = [f.name for f in dataclasses.fields(Settings)]
    assert [spec.name for spec in SPECS] == [name for name in fields if name in SPECS_BY_NAME]
    derived = {"producer_properties", "weights", "calendar", "stores", "speed_is_max", "shard"}
    assert set(fields) - set(SPECS_BY_NAME) == derived
    assert all(spec.group in GROUPS for spec in SPECS)
    assert {spec.group for spec in SPECS} == set(GROUPS), "every group holds a setting"


def test_a_fallback_setting_takes_the_other_s_value_and_its_typed_default() -> None:
    """BASE_DAILY_CUSTOMERS has no default of its own: unset, it is DEFAULT_DAILY_CUSTOMERS, also in Settings()."""
    base = SPECS_BY_NAME["base_daily_customers"]
    assert (base.default, base.fallback) == (None, "DEFAULT_DAILY_CUSTOMERS")
    assert Settings().base_daily_customers == SPECS_BY_NAME["default_daily_customers"].parse("100") == 100
