"""The configuration file behind CONFIG_FILE: a TOML table of settings keyed by their variables' names.

Each value becomes the text its variable would hold (``500`` → ``"500"``,
``true`` → ``"true"``, a TOML date → its ISO form), so it goes through the same
parser, with the same checks and messages, as the environment. A relative path
is read relative to the file's directory.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from foot_traffic.config.files import read_document
from foot_traffic.secret import MASK

_SCALARS = "a string, a number or a boolean"


class ConfigFileError(ValueError):
    """The configuration file cannot be read or parsed."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One setting of the file: the text its parser receives, and the value as a message shows it."""

    raw: str
    shown: str


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What the file may hold: the settings' variables, which of them are secrets, which name files."""

    known: Collection[str]
    secret: Collection[str]
    paths: Collection[str]
    reserved: str
    """The variable that names the file itself, which the file cannot set."""
    passthrough: str
    """The prefix of the variables passed through to the Kafka client (any name after it is accepted)."""


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The settings a configuration file gives, by variable (empty values left out: they count as unset)."""

    path: Path
    entries: Mapping[str, Entry]

    @property
    def where(self) -> str:
        """What a message adds after a value read from this file."""
        return f" (in {self.path})"


def read_config_file(path: Path, label: str, words: Vocabulary) -> tuple[ConfigFile, list[str]]:
    """Read the file at ``path`` (made absolute); return its settings and one problem line per thing wrong.

    ``label`` is how a message names the setting that gave the file, e.g. ``CONFIG_FILE='x.toml'``.
    """
    config = ConfigFile(path.absolute(), {})
    try:
        document = read_document(config.path, ConfigFileError, toml=True)
    except ConfigFileError as exc:
        return config, [f"{label}: expected a readable TOML file of settings; {exc}"]
    entries: dict[str, Entry] = {}
    problems: list[str] = []
    for key, value in document.items():
        problem = _key_problem(key, label, words)
        if problem is None:
            problem = _value_problem(key, value, config, words)
        if problem is not None:
            problems.append(problem)
            continue
        text = _text(value)
        if text == "":
            continue
        if key in words.paths and not text.startswith("~"):
            text = str(config.path.parent / text)
        entries[key] = Entry(text, MASK if key in words.secret else _literal(value, text))
    return ConfigFile(config.path, entries), problems


def _key_problem(key: str, label: str, words: Vocabulary) -> str | None:
    """What is wrong with a key: the file's own setting, or a name that is no setting's variable."""
    if key == words.reserved:
        return f"{label}: key {key!r} expected in the environment or as a flag, not in the configuration file"
    if key in words.known or key.startswith(words.passthrough):
        return None
    guess = difflib.get_close_matches(key.upper().replace("-", "_").replace(".", "_"), list(words.known), n=1)
    hint = f"did you mean {guess[0]}?" if guess else "foot-traffic run --help lists them"
    return f"{label}: unknown key {key!r}; expected the variable name of a setting ({hint})"


def _value_problem(key: str, value: object, config: ConfigFile, words: Vocabulary) -> str | None:
    """A value that no variable could hold: an array or a table."""
    kind = "an array" if isinstance(value, list) else "a table" if isinstance(value, Mapping) else None
    if kind is None:
        return None
    shown = MASK if key in words.secret else "[…]" if isinstance(value, list) else "{…}"
    return f"{key}={shown}{config.where}: expected {_SCALARS}, not {kind}"


def _text(value: object) -> str:
    """The text a variable would hold for this TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _literal(value: object, text: str) -> str:
    """The value as a message quotes it: strings (and paths made absolute) quoted, others as TOML writes them."""
    return repr(text) if isinstance(value, str) else text
