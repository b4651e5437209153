"""Value parsers: each turns a setting's text into its value, or raises ValueError saying what is expected.

The message of the ValueError completes "<VARIABLE>=<value>: expected …".
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from foot_traffic.secret import Secret

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_FLEET_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def int_in(low: int, high: int) -> Callable[[str], int]:
    """A parser of integers between ``low`` and ``high``, both included."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"an integer between {low} and {high}") from None
        if not low <= value <= high:
            raise ValueError(f"an integer between {low} and {high}")
        return value

    return parse


def number(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """A parser of finite numbers from ``low`` (excluded if ``low_open``) to ``high``."""
    bracket = "(" if low_open else "["
    upper = "" if math.isinf(high) else f", {high:g}]"
    expected = (
        f"a number > {low:g}"
        if low_open and math.isinf(high)
        else f"a number >= {low:g}"
        if math.isinf(high)
        else f"a number in {bracket}{low:g}{upper}"
    )

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            raise ValueError(expected)
        return value

    return parse


def boolean(raw: str) -> bool:
    """An on/off word: 1/0, true/false, yes/no, on/off (any case)."""
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("one of 1/0, true/false, yes/no, on/off")


@dataclass(frozen=True, slots=True)
class Choice:
    """Parser of a setting that takes one word of a fixed list (case-insensitive)."""

    options: tuple[str, ...]
    upper: bool = False

    def __call__(self, raw: str) -> str:
        """The word, in the list's case; ValueError naming the choices otherwise."""
        word = raw.strip().upper() if self.upper else raw.strip().lower()
        if word not in self.options:
            raise ValueError(f"one of {', '.join(self.options)}")
        return word


def broker(raw: str) -> str:
    """A comma-separated list of host:port (an optional scheme:// before each)."""
    expected = "a comma-separated list of host:port, port between 1 and 65535"
    parts = [p.strip() for p in raw.split(",")]
    for part in parts:
        address = part.split("://", 1)[1] if "://" in part else part
        host, sep, port = address.rpartition(":")
        # fullmatch: "$" would accept a trailing newline; isascii: isdigit accepts "²" and "١٢"
        if (
            not sep
            or not _HOST.fullmatch(host)
            or not (port.isascii() and port.isdigit())
            or not 1 <= int(port) <= 65535
        ):
            raise ValueError(expected)
    return ",".join(parts)


def topic(raw: str) -> str:
    """A Kafka topic name."""
    if not _TOPIC.fullmatch(raw) or raw in {".", ".."}:
        raise ValueError("1 to 249 characters among letters, digits, '.', '_' and '-'")
    return raw


def fleet_id(raw: str) -> str:
    """A fleet's name: safe in the group id ``foot-traffic.<FLEET_ID>`` and in topic and transactional ids."""
    if not _FLEET_ID.fullmatch(raw) or not raw.strip("."):
        raise ValueError("1 to 200 characters among letters, digits, '.', '_' and '-', not only dots")
    return raw


def text(raw: str) -> str:
    """Any text that is valid UTF-8."""
    try:
        raw.encode("utf-8")  # bytes that are not UTF-8 reach os.environ and argv as lone surrogates
    except UnicodeEncodeError:
        raise ValueError("text in UTF-8") from None
    return raw


def speed(raw: str) -> float | None:
    """A positive speed-up factor, or None for "max"."""
    if raw.strip().lower() == "max":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or value > 1e9:
        raise ValueError("a number > 0 of simulated seconds per real second, or max")
    return value


def instant(raw: str) -> dt.datetime:
    """An ISO-8601 date or instant whose neighbouring days exist."""
    try:
        moment = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("an ISO-8601 date or instant such as 2025-08-12 or 2025-08-12T15:30:00+02:00") from None
    # a day's plan needs the dates and UTC offsets on either side to exist: datetime ends at years 1 and 9999
    if not 2 <= moment.year <= 9998:
        raise ValueError("an ISO-8601 date or instant in the years 2 to 9998")
    return moment


def zone(raw: str) -> ZoneInfo:
    """An IANA time zone."""
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of the database, such as America
        raise ValueError("an IANA time zone name such as UTC or Europe/Rome") from None


def path(raw: str) -> Path:
    """A file path, ``~`` expanded."""
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # "~someone" with no such user
        raise ValueError("a file path whose ~user is a known user") from None


def output_file(raw: str) -> Path:
    """A file to append to: not a directory, in a directory that exists."""
    target = path(raw)
    try:
        usable = not target.is_dir() and target.parent.is_dir()
    except OSError:  # is_dir() raises on a name too long or a permission denied, not only answers False
        usable = False
    if not usable:
        raise ValueError("a file path (not a directory) in an existing directory")
    return target


def readable_file(raw: str) -> Path:
    """A file that exists and that this process can read."""
    try:
        target = Path(raw).expanduser()
    except RuntimeError:  # "~someone" with no such user
        raise ValueError("a readable file, but its ~user is not a known user") from None
    try:
        with target.open("rb"):
            pass
    except FileNotFoundError:
        raise ValueError("a readable file, but there is no such file") from None
    except IsADirectoryError:
        raise ValueError("a readable file, but it is a directory") from None
    except OSError as exc:
        raise ValueError(f"a readable file, but it cannot be read ({exc.strerror})") from None
    return target


def listen_host(raw: str) -> str:
    """An address to listen on: an IPv4 or IPv6 address (brackets optional), or a host name."""
    host = raw.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if host.isascii() and all(_HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit():
        return host
    raise ValueError("an IP address to listen on, such as 127.0.0.1, 0.0.0.0 or ::, or a host name")


def registry_url(raw: str) -> str:
    """SCHEMA_REGISTRY_URL: one http:// or https:// URL with a host, without credentials, query or fragment."""
    expected = "an http:// or https:// URL such as http://localhost:8081, without user:password@, query or fragment"
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise ValueError(expected) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in text)
        or "," in text
        or (port is not None and port == 0)
    ):
        raise ValueError(expected)
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{expected} (credentials go in SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO)")
    return text.rstrip("/")


def user_info(raw: str) -> Secret:
    """SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO: ``user:password`` with a non-empty user, kept as a Secret."""
    user, sep, _ = raw.partition(":")
    if not sep or not user or any(c in raw for c in "\r\n"):
        raise ValueError("user:password (a user name, a colon, then the password)")
    return Secret(raw)


FILE_PARSERS: frozenset[Callable[[str], Any]] = frozenset({path, output_file, readable_file})
"""Parsers whose settings name a file (shell completion offers file names for them; a configuration file's
relative paths are read relative to it)."""
