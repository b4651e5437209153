"""Bad input, exhaustively: any value of any setting, and any weights, calendar or stores file.

Every setting of ``settings.SPECS`` is covered, through its variable and its flag, so a
setting added later is fuzzed without touching this file. The property: ``load_settings``
returns a Settings or raises ConfigError whose every problem is one line naming a setting
and saying what is expected; never any other exception. End to end, ``foot-traffic run``
and ``plan`` turn the same input into exit status 2, nothing on standard output, no
traceback and one ``foot-traffic: error:`` line per problem.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from foot_traffic.cli.commands import main
from foot_traffic.config.resolve import load_settings
from foot_traffic.config.settings import SPECS, SPECS_BY_NAME, Settings
from foot_traffic.config.spec import Spec
from foot_traffic.errors import ConfigError
from foot_traffic.model.grid import US_PER_DAY, WEEKDAYS
from foot_traffic.model.plan import Model
from foot_traffic.run.clock import AcceleratedClock
from foot_traffic.run.service import Service
from foot_traffic.run.sinks import MemorySink

SCALE = int(os.environ.get("FOOT_TRAFFIC_BAD_INPUT_SCALE", "1"))
"""Multiplies every example count below: FOOT_TRAFFIC_BAD_INPUT_SCALE=20 makes a deep search."""

settings.register_profile(
    "bad-input",
    max_examples=20 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
BAD_INPUT = settings.get_profile("bad-input")
"""Enough examples per setting to meet each kind of odd value, few enough for the file to run in under a minute."""

FILE_SETTINGS = {"WEIGHTS_FILE": "weights", "CALENDAR_FILE": "calendar", "STORES_FILE": "stores"}
"""The settings that name a file this package parses, and the kind of document each holds."""

NAMES = {name for spec in SPECS for name in (spec.env, spec.flag, *spec.aliases)}
ENV_NAMES = {spec.env for spec in SPECS}
LEADING_NAME = re.compile(r"(?P<name>[A-Z][A-Z0-9_]*|--[a-z0-9-]+)=")
SAYS_WHAT_IS_EXPECTED = re.compile(r"\bexpected\b|\bmust\b|\bcannot (?:read|parse) it\b")

Outcome = Settings | list[str]
"""What ``load_settings`` gives: the settings, or the problems of its ConfigError."""


# --- values ------------------------------------------------------------------------------------------------------

NUMBERS: SearchStrategy[str] = st.one_of(
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(
        [
            str(10**30),
            str(-(10**30)),
            str(2**63),
            "9" * 5000,
            "1e400",
            "-1e400",
            "NaN",
            "-nan",
            "Infinity",
            "-inf",
            "-0",
            "-0.0",
            "+0",
            "0x10",
            "1_000",
            "1e-320",
            "5e-324",
            ".5",
            "5.",
            "1,5",
            "\u0663",  # ARABIC-INDIC DIGIT THREE
            "\uff15",  # FULLWIDTH DIGIT FIVE
            "\u00b2",  # SUPERSCRIPT TWO
        ]
    ),
)
WORDS = st.sampled_from(
    [
        "max",
        "MAX",
        "true",
        "yes",
        "off",
        "maybe",
        "kafka",
        "stdout",
        "null",
        "none",
        "DEBUG",
        "loud",
        "uniform",
        "poisson",
        "gamma-poisson",
        "PLAINTEXT",
        "SASL_SSL",
        "SCRAM-SHA-512",
        "UTC",
        "Europe/Rome",
        "America",
        "Europe",
        "Mars/Olympus",
        "../../etc/passwd",
        "/etc/localtime",
    ]
)
BROKERS = st.sampled_from(
    [
        "a:1,,",
        ",",
        "::::",
        "host:0",
        "host:99999",
        "host:",
        ":9092",
        "host",
        "h\u00f4st:9092",
        "\u30db\u30b9\u30c8:9092",
        "host:\uff19\uff10\uff19\uff12",
        "host:\u00b2",
        "host\n:9092",
        "[::1]:9092",
        "[::1]",
        "PLAINTEXT://host:9092",
        " a:1 , b:2 ",
        "a:1,b",
    ]
)
TOPICS = st.one_of(
    st.sampled_from(
        ["a b", "..", ".", "x" * 249, "x" * 250, "x" * 300, "t\u00f3pico", "foo\n", "foo/bar", "-", "\u00e9"]
    ),
    st.text(alphabet="ab._-", min_size=1, max_size=260),
)
INSTANTS = st.one_of(
    st.sampled_from(
        [
            "2025-08-12",
            "2025-08-12T15:30:00+02:00",
            "2025-02-30",
            "2025-08-12T25:00",
            "0001-01-01",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31",
            "9999-12-31T23:59:59-14:00",
            "yesterday",
            "2025-08-12T00:00:00Z",
        ]
    ),
    st.datetimes(timezones=st.none() | st.timezones()).map(dt.datetime.isoformat),
)
PATHS = st.sampled_from(
    [
        "/",
        ".",
        "..",
        "~",
        "~/",
        "~no-such-user-foot-traffic/file.toml",
        "/nonexistent/weights.toml",
        "relative.json",
        "/dev/null",
        "/proc/self/status",
        "x" * 300,
        "/" + "a/" * 3000,
    ]
)
PADDING = st.sampled_from([" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\ufeff"])
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
OS_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
"""Text that can be passed through argv and the environment: no NUL, no lone surrogate."""
ANY_TEXT = st.text(st.one_of(st.characters(), SURROGATES), max_size=30)


def raw_values(*, os_safe: bool) -> SearchStrategy[str]:
    """Odd strings for any setting: numbers, words, addresses, instants, paths, any text, all maybe padded."""
    base = st.one_of(NUMBERS, WORDS, BROKERS, TOPICS, INSTANTS, PATHS, OS_TEXT if os_safe else ANY_TEXT)
    padded = st.tuples(PADDING, base, PADDING).map("".join)
    return st.one_of(base, padded, st.just(""))


# --- files ---------------------------------------------------------------------------------------------------------

JsonValue = Any
"""A value decoded from JSON or TOML: None, bool, int, float, str, list or dict."""

JSON_LEAVES: SearchStrategy[JsonValue] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**30, 10**400, -(10**400)]),
    st.floats(),
    st.text(max_size=12),
)
ANY_JSON: SearchStrategy[JsonValue] = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
HHMM = st.one_of(
    st.builds("{:02d}:{:02d}".format, st.integers(0, 24), st.integers(0, 60)),
    st.sampled_from(["24:00", "7:00", "07:00:00", "", "\uff12\uff13:\uff10\uff10", "12:3"]),
)
NUMBER = st.one_of(
    st.integers(0, 100),
    st.floats(0, 1e300),
    st.sampled_from([0, -1, 1e308, 5e-324, 1e9, 10**30, 10**400, math.nan, math.inf, -0.0, True, "3"]),
)


def often(valid: SearchStrategy[JsonValue]) -> SearchStrategy[JsonValue]:
    """Mostly a well-formed value, sometimes anything at all."""
    return st.one_of(valid, valid, valid, ANY_JSON)


def maybe_drop(table: dict[str, JsonValue]) -> SearchStrategy[dict[str, JsonValue]]:
    """The table, or the table without one of its keys."""
    if not table:
        return st.just(table)
    return st.one_of(
        st.just(table), st.sampled_from(sorted(table)).map(lambda k: {x: v for x, v in table.items() if x != k})
    )


def _weights_doc(n: int) -> SearchStrategy[dict[str, JsonValue]]:
    row = st.lists(NUMBER, min_size=n, max_size=n) | st.lists(NUMBER, max_size=n + 1)
    slots = st.lists(HHMM, min_size=n - 1, max_size=n - 1).map(lambda rest: ["00:00", *sorted(rest)])
    table = st.fixed_dictionaries({day: often(row) for day in WEEKDAYS}, optional={"Funday": row}).flatmap(maybe_drop)
    return st.fixed_dictionaries({"weights": often(table)}, optional={"slots": often(slots), "extra": ANY_JSON})


WEIGHTS_DOCS = st.integers(1, 8).flatmap(_weights_doc)
HOURS = st.one_of(st.lists(HHMM, min_size=2, max_size=2), st.just("closed"), st.lists(HHMM, max_size=3))
MULTIPLIER = st.one_of(NUMBER, st.sampled_from([1e300, 1e9, 2.5, 0]))
DATE_KEYS = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.sampled_from(["2025-08-12", "2025-02-30", "2025-8-1", "\uff12\uff10\uff12\uff15-08-12", "", "0000-01-01"]),
    st.text(max_size=10),
)
DATE_VALUES = st.one_of(
    MULTIPLIER,
    st.just("closed"),
    st.fixed_dictionaries(
        {},
        optional={
            "multiplier": often(MULTIPLIER),
            "hours": often(HOURS),
            "closed": often(st.booleans()),
            "extra": ANY_JSON,
        },
    ),
)
CALENDAR_DOCS = st.fixed_dictionaries(
    {},
    optional={
        "hours": often(st.dictionaries(st.sampled_from(WEEKDAYS) | st.text(max_size=8), often(HOURS), max_size=8)),
        "dates": often(st.dictionaries(DATE_KEYS, often(DATE_VALUES), max_size=6)),
        "extra": ANY_JSON,
    },
)
STORE_IDS = st.one_of(st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True), st.text(max_size=70))
PROFILES = st.sampled_from(["w.json", "w.toml", "missing.toml", "", "/", ".", "../w.json", "w\x00.json", "~/w.json"])
ZONES = st.one_of(
    st.sampled_from(["Europe/Rome", "UTC", "America", "Mars/Base", "", "../../etc/passwd", "UTC\x00"]),
    st.text(max_size=10),
)
STORE = st.fixed_dictionaries(
    {"id": often(STORE_IDS)},
    optional={
        "scale": often(st.one_of(NUMBER, st.sampled_from([1e300, 1e9]))),
        "weights": often(PROFILES),
        "timezone": often(ZONES),
        "extra": ANY_JSON,
    },
)
STORES_DOCS = st.fixed_dictionaries({"store": often(st.lists(often(STORE), max_size=4))}, optional={"extra": ANY_JSON})


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _valid_weights(n: int) -> SearchStrategy[dict[str, JsonValue]]:
    row = st.lists(st.integers(0, 100) | st.floats(0, 1e6), min_size=n, max_size=n).map(lambda r: [1, *r[1:]])
    starts = st.lists(st.integers(1, 1439), min_size=n - 1, max_size=n - 1, unique=True)
    slots = starts.map(lambda rest: [_hhmm(m) for m in [0, *sorted(rest)]])
    table = st.fixed_dictionaries(dict.fromkeys(WEEKDAYS, row))
    if n == 6:
        return st.fixed_dictionaries({"weights": table}, optional={"slots": slots})
    return st.fixed_dictionaries({"weights": table, "slots": slots})


VALID_HOURS = st.lists(st.integers(0, 1440), min_size=2, max_size=2, unique=True).map(
    lambda pair: [_hhmm(min(pair)), _hhmm(max(pair))]
)
VALID_DOCS: dict[str, SearchStrategy[dict[str, JsonValue]]] = {
    "weights": st.integers(1, 8).flatmap(_valid_weights),
    "calendar": st.fixed_dictionaries(
        {},
        optional={
            "hours": st.dictionaries(st.sampled_from(WEEKDAYS), VALID_HOURS | st.just("closed"), max_size=7),
            "dates": st.dictionaries(
                st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)).map(dt.date.isoformat),
                st.one_of(
                    st.floats(0, 10),
                    st.just("closed"),
                    st.fixed_dictionaries({"multiplier": st.floats(0, 10)}, optional={"hours": VALID_HOURS}),
                ),
                max_size=5,
            ),
        },
    ),
    "stores": st.fixed_dictionaries(
        {
            "store": st.lists(
                st.fixed_dictionaries(
                    {"id": st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)},
                    optional={
                        "scale": st.floats(0, 10),
                        "weights": st.sampled_from(["w.json", "w.toml"]),
                        "timezone": st.sampled_from(["UTC", "Europe/Rome", "America/New_York", "Asia/Kolkata"]),
                    },
                ),
                min_size=1,
                max_size=4,
                unique_by=lambda store: str(store["id"]),
            )
        }
    ),
}
"""Documents the loader accepts (a stores file's profiles permitting)."""


def _paths(node: JsonValue, at: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The path of every value inside a document."""
    children: list[tuple[str | int, JsonValue]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    found = []
    for key, child in children:
        found.append((*at, key))
        found += _paths(child, (*at, key))
    return found


@st.composite
def mutated(draw: st.DrawFn, valid: SearchStrategy[dict[str, JsonValue]]) -> dict[str, JsonValue]:
    """A valid document with one defect: a value replaced by anything, a key removed, or an unknown key added."""
    doc: dict[str, JsonValue] = json.loads(json.dumps(draw(valid)))  # a private deep copy
    at = draw(st.sampled_from([(), *_paths(doc)]))
    parent: JsonValue = doc
    for key in at[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["replace", "remove", "add"]))
    if not at or how == "add":
        target = doc if not at else parent[at[-1]]
        if isinstance(target, dict):
            target[draw(st.text(max_size=10), label="unknown key")] = draw(ANY_JSON)
        elif isinstance(target, list):
            target.append(draw(ANY_JSON))
    elif how == "remove":
        del parent[at[-1]]
    else:
        parent[at[-1]] = draw(ANY_JSON, label="replacement")
    return doc


DOCS = {
    kind: st.one_of(VALID_DOCS[kind], VALID_DOCS[kind], mutated(VALID_DOCS[kind]), mutated(VALID_DOCS[kind]), fuzzy)
    for kind, fuzzy in [("weights", WEIGHTS_DOCS), ("calendar", CALENDAR_DOCS), ("stores", STORES_DOCS)]
}
"""Per kind: valid documents, documents with one defect, and documents with many."""


def toml_value(value: JsonValue) -> str:
    """``value`` as a TOML value: inline arrays and tables, and strings quoted as JSON quotes them."""
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items())
            + "}"
        )
    return _toml_scalar(value)


def _toml_scalar(value: JsonValue) -> str:
    if value is None or isinstance(value, str):
        return json.dumps("null" if value is None else value, ensure_ascii=False)  # TOML has no null
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("-inf" if value < 0 else "inf")
    return repr(value)


def serialise(doc: dict[str, JsonValue], form: str) -> bytes:
    """A document as TOML, or as JSON with or without non-ASCII characters escaped."""
    if form == "toml":
        text = "".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}\n" for k, v in doc.items())
    else:
        text = json.dumps(doc, ensure_ascii=form == "json-ascii")
    return text.encode("utf-8", "surrogatepass")


def _nested(depth: int) -> list[bytes]:
    return [
        b"[" * depth,
        b"[" * depth + b"]" * depth,
        b'{"a":' * depth + b"1" + b"}" * depth,
        b"a = " + b"[" * depth + b"]" * depth,
        b"a." * min(depth, 1000) + b"b = 1",  # tomllib is quadratic in a dotted key's length
        b"x = " + b"{a = " * depth + b"1" + b"}" * depth,
    ]


GARBAGE = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"\xef\xbb\xbf{}",
            b"\x00" * 10,
            b"null",
            b"[]",
            b"1",
            b'"x"',
            b"{}",
            b'{"store": [], "store": []}',
            b"\xff\xfe{\x00}\x00",
        ]
    ),
    st.sampled_from([10, 900, 990, 1000, 5000, 100_000]).flatmap(lambda depth: st.sampled_from(_nested(depth))),
)


@dataclass(frozen=True)
class Doc:
    """A file to write before loading the settings, with the files beside it (a stores file's weights profiles)."""

    name: str
    content: bytes
    beside: tuple[tuple[str, bytes], ...] = ()

    def write(self, folder: Path) -> str:
        """Write the file and its neighbours in a fresh folder; return its path."""
        here = folder / uuid.uuid4().hex
        here.mkdir()
        for name, content in self.beside:
            (here / name).write_bytes(content)
        path = here / self.name
        path.write_bytes(self.content)
        return str(path)


def documents(kind: str) -> SearchStrategy[Doc]:
    """Files of one kind: documents in TOML or JSON (named to match, mostly), garbage, deep nesting."""
    form_and_suffix = st.one_of(
        st.tuples(st.just("toml"), st.sampled_from([".toml", ".TOML"])),
        st.tuples(st.sampled_from(["json", "json-ascii"]), st.sampled_from([".json", ".txt", ""])),
        st.tuples(st.sampled_from(["toml", "json"]), st.sampled_from([".toml", ".json"])),  # maybe mismatched
    )
    structured = st.builds(lambda doc, fs: ("file" + fs[1], serialise(doc, fs[0])), DOCS[kind], form_and_suffix)
    garbage = st.tuples(st.sampled_from(["file.toml", "file.json"]), GARBAGE)
    profiles: SearchStrategy[tuple[tuple[str, bytes], ...]] = st.just(())
    if kind == "stores":
        profiles = st.tuples(
            st.tuples(DOCS["weights"], st.sampled_from(["json", "json-ascii"])).map(
                lambda p: ("w.json", serialise(*p))
            ),
            DOCS["weights"].map(lambda d: ("w.toml", serialise(d, "toml"))),
        )
    return st.builds(
        lambda named, beside: Doc(named[0], named[1], beside), st.one_of(structured, structured, garbage), profiles
    )


def values_for(spec: Spec, *, os_safe: bool) -> SearchStrategy[str | Doc]:
    """Values to try for one setting: odd strings, its default, and generated files for a file setting."""
    choices: list[SearchStrategy[str | Doc]] = [raw_values(os_safe=os_safe)]
    if spec.default is not None:
        choices.append(st.tuples(PADDING | st.just(""), st.just(spec.default), PADDING | st.just("")).map("".join))
    kind = FILE_SETTINGS.get(spec.env)
    if kind is not None:
        choices += [documents(kind), documents(kind)]
    return st.one_of(*choices)


def resolve(value: str | Doc, folder: Path) -> str:
    """The string a setting receives: a generated file is written and named by its path."""
    return value.write(folder) if isinstance(value, Doc) else value


# --- the property --------------------------------------------------------------------------------------------------


def assert_well_formed(problem: str) -> None:
    """One printable line that starts with a setting's variable or flag and says what is expected."""
    assert problem.isprintable(), f"not one printable line: {problem!r}"
    match = LEADING_NAME.match(problem)
    assert match is not None, f"does not start with NAME=: {problem!r}"
    assert match["name"] in NAMES, f"names no setting: {problem!r}"
    assert SAYS_WHAT_IS_EXPECTED.search(problem), f"does not say what is expected: {problem!r}"


def outcome(env: Mapping[str, str], flags: Mapping[str, str | None]) -> Outcome:
    """Load the settings; any exception but ConfigError fails the test, and every problem must be well formed."""
    try:
        return load_settings(env, flags)
    except ConfigError as exc:
        problems = exc.problems
    assert problems, "a ConfigError lists at least one problem"
    for problem in problems:
        assert_well_formed(problem)
    return problems


def same(a: Outcome, b: Outcome) -> bool:
    """Equal settings (by repr: secrets stay masked), or the same problems whatever name leads them."""
    if isinstance(a, list) and isinstance(b, list):
        return [LEADING_NAME.sub("", p, count=1) for p in a] == [LEADING_NAME.sub("", p, count=1) for p in b]
    return isinstance(a, Settings) and isinstance(b, Settings) and repr(a) == repr(b)


def names_of(spec: Spec) -> set[str]:
    """Every name a problem may use for this setting."""
    return {spec.env, spec.flag, *spec.aliases}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where generated files are written (module-wide: hypothesis runs many examples per test)."""
    return tmp_path_factory.mktemp("bad-input")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the developer's environment leaks into an in-process ``main()``."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)


@pytest.mark.parametrize("via", ["env", "flag"])
@pytest.mark.parametrize("spec", SPECS, ids=[spec.env for spec in SPECS])
@BAD_INPUT
@given(data=st.data())
def test_any_value_of_any_setting_is_accepted_or_reported(
    spec: Spec, via: str, data: st.DataObject, folder: Path
) -> None:
    """Any value, by variable or by flag, gives Settings or problems naming this setting; a flag beats its variable."""
    value = resolve(data.draw(values_for(spec, os_safe=False), label="value"), folder)
    if via == "env":
        result = outcome({spec.env: value}, {})
        if value == "":
            assert same(result, outcome({}, {})), "an empty variable counts as unset"
        elif spec.env not in FILE_SETTINGS:
            assert same(result, outcome({}, {spec.name: value})), "the variable and the flag read a value alike"
    else:
        result = outcome({}, {spec.name: value})
        beneath = resolve(data.draw(values_for(spec, os_safe=False), label="variable beneath the flag"), folder)
        assert same(outcome({spec.env: beneath}, {spec.name: value}), result), "the flag overrides the variable"
    event("rejected" if isinstance(result, list) else "accepted")
    if isinstance(result, list):
        for problem in result:
            match = LEADING_NAME.match(problem)
            assert match is not None
            assert match["name"] in names_of(spec), f"{problem!r} does not name {spec.env}"


@settings(BAD_INPUT, max_examples=80 * SCALE)
@given(data=st.data())
def test_several_settings_at_once_are_accepted_or_reported(data: st.DataObject, folder: Path) -> None:
    """Any mix of settings, each by variable or flag, gives Settings or well-formed problems; never a crash."""
    chosen = data.draw(st.lists(st.sampled_from(SPECS), unique_by=lambda s: s.name, min_size=2, max_size=10))
    env: dict[str, str] = {}
    flags: dict[str, str | None] = {}
    for spec in chosen:
        value = resolve(data.draw(values_for(spec, os_safe=False), label=spec.env), folder)
        if data.draw(st.booleans(), label=f"{spec.env} by flag"):
            flags[spec.name] = value
        else:
            env[spec.env] = value
    outcome(env, flags)


@pytest.mark.parametrize("variable", sorted(FILE_SETTINGS))
@settings(BAD_INPUT, max_examples=60 * SCALE)
@given(data=st.data())
def test_any_file_is_accepted_or_reported(variable: str, data: st.DataObject, folder: Path) -> None:
    """Any weights, calendar or stores file gives Settings or exactly one well-formed problem naming its setting."""
    spec = next(s for s in SPECS if s.env == variable)
    path = data.draw(documents(FILE_SETTINGS[variable])).write(folder)
    by_flag = data.draw(st.booleans())
    result = outcome({}, {spec.name: path}) if by_flag else outcome({variable: path}, {})
    event("rejected" if isinstance(result, list) else "accepted")
    if isinstance(result, list):
        (problem,) = result
        match = LEADING_NAME.match(problem)
        assert match is not None
        assert match["name"] in names_of(spec)


# --- the values the issue names, and the crashes they used to cause -------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DAILY_CUSTOMERS", str(10**30)),
        ("BASE_DAILY_CUSTOMERS", "9" * 5000),
        ("KAFKA_TOPIC", "foo bar"),
        ("KAFKA_TOPIC", "x" * 300),
        ("KAFKA_TOPIC", ".."),
        ("KAFKA_TOPIC", "t\u00f3pico"),
        ("KAFKA_TOPIC", "foo\n"),
        ("EXIT_EVENTS_TOPIC", "foo\n"),
        ("KAFKA_BROKER", "a:1,,"),
        ("KAFKA_BROKER", "::::"),
        ("KAFKA_BROKER", "host:0"),
        ("KAFKA_BROKER", "host:99999"),
        ("KAFKA_BROKER", "h\u00f4st:9092"),
        ("KAFKA_BROKER", "host\n:9092"),
        ("KAFKA_BROKER", "host:\u00b2"),
        ("KAFKA_BROKER", "host:\u0661\u0662"),
        ("SLEEP", "nan"),
        ("SLEEP", "-0"),
        ("TIME_SCALE", "inf"),
        ("DAILY_VARIATION_PCT", "NaN"),
        ("DAILY_DISPERSION", "-inf"),
        ("RETRY_BACKOFF_SECONDS", "1e400"),
        ("SPEED", "nan"),
        ("SPEED", "-0"),
        ("TIMEZONE", "America"),
        ("TIMEZONE", "Europe"),
        ("WEIGHTS_FILE", "~no-such-user-foot-traffic/w.toml"),
        ("START", "9999-12-31"),
        ("UNTIL", "0001-01-01T00:00:00+14:00"),
        ("SEED", "\udcff"),
    ],
)
def test_outsized_and_odd_values_are_rejected(variable: str, value: str) -> None:
    """The issue's outsized and odd values each give one problem naming the variable and the expectation."""
    with pytest.raises(ConfigError) as info:
        load_settings({variable: value})
    (problem,) = info.value.problems
    assert problem.startswith(f"{variable}={value!r}: expected ")


@pytest.mark.parametrize(
    ("variable", "value", "name", "expected"),
    [
        ("DAILY_CUSTOMERS", " 5 ", "daily_customers", 5),
        ("DAILY_CUSTOMERS", "1000000000", "daily_customers", 1_000_000_000),
        ("DAILY_VARIATION_PCT", "-0", "daily_variation_pct", 0.0),
        ("KAFKA_BROKER", " a:1 , b:2 ", "broker", "a:1,b:2"),
        ("LOG_LEVEL", " debug ", "log_level", "DEBUG"),
        ("SPEED", " MAX ", "speed", None),
        ("DISABLE_DAILY_VARIATION", " On ", "disable_daily_variation", True),
        ("START", "0002-01-01T00:00:00+14:00", "start", dt.datetime.fromisoformat("0002-01-01T00:00:00+14:00")),
    ],
)
def test_padded_and_extreme_values_that_are_fine(variable: str, value: str, name: str, expected: object) -> None:
    """Whitespace around a number or word is ignored, and the extremes of each range are accepted."""
    assert getattr(load_settings({variable: value}), name) == expected


@pytest.mark.parametrize("spec", SPECS, ids=[spec.env for spec in SPECS])
def test_an_empty_variable_is_unset(spec: Spec) -> None:
    """Every variable set to the empty string gives exactly the defaults."""
    assert same(outcome({spec.env: ""}, {}), outcome({}, {}))


def write_json(folder: Path, name: str, doc: JsonValue) -> str:
    """Write a JSON file; return its path."""
    path = folder / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_file_crashes_are_configuration_errors(tmp_path: Path) -> None:
    """Huge integers, overflowing sums, deep nesting and a NUL in a profile path are problems, not tracebacks."""
    huge = write_json(tmp_path, "huge.json", {"weights": {d: [10**400, 1, 1, 1, 1, 1] for d in WEEKDAYS}})
    summed = write_json(tmp_path, "sum.json", {"weights": {d: [1e308] * 6 for d in WEEKDAYS}})
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    nul = write_json(tmp_path, "nul.json", {"store": [{"id": "a", "weights": "w\x00.json"}]})
    cases = [("WEIGHTS_FILE", huge), ("WEIGHTS_FILE", summed), ("CALENDAR_FILE", str(deep)), ("STORES_FILE", nul)]
    for variable, path in cases:
        with pytest.raises(ConfigError) as info:
            load_settings({variable: path})
        (problem,) = info.value.problems
        assert problem.startswith(f"{variable}={path!r}: ")
        assert_well_formed(problem)


def test_multipliers_cannot_lift_a_day_beyond_the_cap(tmp_path: Path) -> None:
    """A calendar multiplier or store scale that would plan more than 10^9 customers a day is a problem."""
    calendar = write_json(tmp_path, "c.json", {"dates": {"2025-08-12": 1e300}})
    stores = write_json(tmp_path, "s.json", {"store": [{"id": "a", "scale": 1e300}]})
    for variable, path in [("CALENDAR_FILE", calendar), ("STORES_FILE", stores)]:
        with pytest.raises(ConfigError) as info:
            load_settings({variable: path, "DAILY_CUSTOMERS": "10"})
        (problem,) = info.value.problems
        assert problem.startswith(f"{variable}={path!r}: expected multipliers and scales")
    sale = write_json(tmp_path, "sale.json", {"dates": {"2025-08-12": 2.5}})
    assert load_settings({"CALENDAR_FILE": sale, "DAILY_CUSTOMERS": "400000000"}).daily_customers == 400_000_000
    assert load_settings({"CALENDAR_FILE": calendar, "DAILY_CUSTOMERS": "0"}).daily_customers == 0


def test_plan_dates_beyond_the_calendar_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``plan`` over the last representable dates exits 2 with one line, not an OverflowError."""
    assert main(["plan", "--date", "9999-12-31", "--days", "2"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "foot-traffic: error: --date='9999-12-31' with --days=2: expected dates in the years 2 to 9998\n"
    )


def test_a_crawling_clock_waits_without_overflow() -> None:
    """A tiny SPEED with a huge SLEEP asks for a wait longer than the platform allows; it is capped, not raised."""
    stop = threading.Event()
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    started = time.monotonic()
    clock = AcceleratedClock(0, 1e-300)
    counters = Service(Model(daily_customers=10), 1, MemorySink(), clock, poll_s=1e308, stop=stop).run()
    assert time.monotonic() - started < 10
    assert counters.emitted == 0
    timer.join()


# --- end to end ----------------------------------------------------------------------------------------------------

BOUNDS = {
    "sink": "stdout",
    "speed": "max",
    "start": "2025-08-12",
    "until": "2025-08-12T00:10:00",
    "daily_customers": "10",
    "seed": "bad-input",
}
"""Flags that make a valid run a ten-minute backfill of a ten-customer day: it exits 0 at once."""


def child_env(settings_env: Mapping[str, str | bytes]) -> dict[str, str | bytes]:
    """The current environment without any setting, plus ``settings_env``."""
    env: dict[str, str | bytes] = {
        k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith("KAFKA_PRODUCER_")
    }
    env["PYTHONUTF8"] = "1"
    env.update(settings_env)
    return env


def foot_traffic(argv: list[str], env: Mapping[str, str | bytes], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m foot_traffic`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "foot_traffic", *argv],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
    )


def assert_exit_2(proc: subprocess.CompletedProcess[bytes], problems: list[str] | None = None) -> None:
    """Status 2, nothing on standard output, no traceback, only ``foot-traffic: error:`` lines (these, if given)."""
    err = proc.stderr.decode("utf-8", "backslashreplace")
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode == 2, err[-3000:]
    assert proc.stdout == b""
    lines = err.splitlines()
    assert lines
    assert all(line.startswith("foot-traffic: error: ") for line in lines), err
    if problems is not None:
        assert lines == [f"foot-traffic: error: {p}" for p in problems]


def quick(s: Settings) -> bool:
    """Whether a valid run with these settings ends by itself within a second or two, without Kafka or a port."""
    if s.sink == "kafka" or not s.speed_is_max or s.start_us is None or s.until_us is None:
        return False
    if s.metrics_port is not None:  # a valid port may be taken or privileged: a test run must not listen on it
        return False
    days = (s.until_us - s.start_us) / US_PER_DAY
    per_day = s.daily_customers if s.daily_customers is not None else 2 * s.base_daily_customers
    multiplier = max([1.0, *(o.multiplier for o in s.calendar.dates.values())])
    stores = max(1.0, sum(store.scale for store in s.stores))
    return days <= 2 and per_day * days * multiplier * stores <= 200_000


@pytest.mark.parametrize("command", ["run", "plan"])
@settings(BAD_INPUT, max_examples=13 * SCALE)
@given(data=st.data())
def test_the_command_line_exits_2_on_any_bad_setting(command: str, data: st.DataObject, folder: Path) -> None:
    """``run --sink stdout`` and ``plan`` with a random value of a random setting: exit 2 with its lines, or run."""
    spec = data.draw(st.sampled_from(SPECS), label="setting")
    value = resolve(data.draw(values_for(spec, os_safe=True), label="value"), folder)
    flags: dict[str, str | None] = {name: v for name, v in BOUNDS.items() if name != spec.name}
    env: dict[str, str] = {}
    flag = data.draw(st.sampled_from([spec.flag, *spec.aliases]), label="flag")
    if data.draw(st.booleans(), label="by flag"):
        flags[spec.name] = value
    else:
        env[spec.env] = value
    with contextlib.chdir(folder):
        expected = outcome(env, flags)
    argv = [command, *(["--date=2025-08-12"] if command == "plan" else [])]
    argv += [f"{flag if name == spec.name else SPECS_BY_NAME[name].flag}={v}" for name, v in flags.items()]
    if isinstance(expected, Settings) and command == "run" and not quick(expected):
        event("valid, but not a quick run: not started")
        return
    proc = foot_traffic(argv, child_env(env), folder)
    event(f"exit {proc.returncode}")
    if isinstance(expected, list):
        assert_exit_2(proc, expected)
    else:
        assert "Traceback" not in proc.stderr.decode("utf-8", "backslashreplace")
        assert proc.returncode == 0, proc.stderr.decode("utf-8", "backslashreplace")[-3000:]


def free_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@settings(BAD_INPUT, max_examples=8 * SCALE)
@given(data=st.data())
def test_validation_comes_before_kafka(data: st.DataObject, folder: Path) -> None:
    """With the Kafka sink and an unreachable broker, a bad setting still exits 2 at once, never 3 after retries."""
    spec = data.draw(st.sampled_from([s for s in SPECS if s.name not in {"sink", "broker"}]), label="setting")
    value = resolve(data.draw(values_for(spec, os_safe=True), label="value"), folder)
    env = {"SINK": "kafka", "KAFKA_BROKER": f"127.0.0.1:{free_port()}", spec.env: value}
    with contextlib.chdir(folder):
        expected = outcome(env, {})
    assume(isinstance(expected, list))
    assert isinstance(expected, list)
    started = time.monotonic()
    assert_exit_2(foot_traffic(["run"], child_env(env), folder), expected)
    assert time.monotonic() - started < 20, "no connection attempt before validation"


@pytest.mark.parametrize("variable", ["SEED", "KAFKA_TOPIC", "TIMEZONE", "START", "KAFKA_BROKER", "WEIGHTS_FILE"])
def test_undecodable_bytes_in_the_environment(variable: str, tmp_path: Path) -> None:
    """A variable holding bytes that are not UTF-8 exits 2 with one clean line, whatever the setting."""
    bounds = {name: v for name, v in BOUNDS.items() if SPECS_BY_NAME[name].env != variable}
    proc = foot_traffic(
        ["run", *(f"{SPECS_BY_NAME[n].flag}={v}" for n, v in bounds.items())],
        child_env({variable: b"\xff\xfe"}),
        tmp_path,
    )
    assert_exit_2(proc)
    (line,) = proc.stderr.decode().splitlines()
    assert line.startswith(f"foot-traffic: error: {variable}=")
