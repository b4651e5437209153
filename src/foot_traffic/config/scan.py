"""Where things are in a TOML or JSON text, strings and comments skipped: how deep it nests, where its stores begin.

Both questions are answered from one regular expression over the raw bytes, so a
10,000-store file costs a few milliseconds, not a Python step per byte. The text is
never parsed here: a document too deep is refused before its parser recurses, and
a stores file's entry lines are looked up only once an entry is found wrong.
"""

from __future__ import annotations

import re

_STRINGS = (
    # basic strings, multi-line or not: a backslash escapes the next byte; unrolled, so no byte is tried twice
    rb'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:"""|\\?\Z)'
    rb'|"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)'
    rb"|'''[^']*(?:'(?!'')[^']*)*(?:'''|\Z)"  # literal strings have no escapes
    rb"|'[^']*(?:'|\Z)"
)
"""Strings in either quote, single or tripled, to their closing quote or the text's end (an unterminated one)."""

_BRACKETS = rb"([\[\]{}])"
_TOKENS = {
    comments: re.compile(_STRINGS + (rb"|#[^\n]*" if comments else b"") + b"|" + _BRACKETS, re.DOTALL)
    for comments in (False, True)
}
"""Strings, TOML's comments (``comments``) and brackets; only the brackets are captured."""

_OPENING = frozenset(b"[{")

_ENTRIES = {
    toml: re.compile(
        (rb"(?P<skip>#[^\n]*)|(?P<header>^[ \t]*\[\[[ \t]*(?:store|\"store\"|'store')[ \t]*\]\])|" if toml else b"")
        + rb"(?P<value>"
        + _STRINGS
        + rb"|[^\s,\[\]{}#\"']+)|(?P<open>[\[{])|(?P<close>[\]}])|(?P<comma>,)",
        re.DOTALL | re.MULTILINE,
    )
    for toml in (False, True)
}
"""What locates a stores file's entries: TOML's comments and ``[[store]]`` headers, values, brackets and commas."""


def nesting(raw: bytes, *, comments: bool) -> int:
    """How deep arrays and tables nest in a JSON or TOML text (``comments``: TOML's # … comments), strings skipped."""
    deepest = depth = 0
    for bracket in b"".join(_TOKENS[comments].findall(raw)):
        depth += 1 if bracket in _OPENING else -1
        deepest = max(deepest, depth)
    return deepest


def entry_lines(raw: bytes, *, toml: bool) -> list[int]:
    """The line (from 1) where each entry of a stores file's ``store`` list begins.

    TOML: each ``[[store]]`` header, or each element of an inline ``store = [...]``; JSON: each
    element of the top object's ``store`` array. Assumes a document its parser accepted whose only
    key is ``store``; elements are found by the commas of the list's own level.
    """
    tokens = [(m.lastgroup, m.start()) for m in _ENTRIES[toml].finditer(raw) if m.lastgroup != "skip"]
    headers = [at for kind, at in tokens if kind == "header"]
    starts = headers or _elements(tokens, 0 if toml else 1)
    lines, line, counted = [], 1, 0
    for at in starts:
        line += raw.count(b"\n", counted, at)
        counted = at
        lines.append(line)
    return lines


def _elements(tokens: list[tuple[str | None, int]], level: int) -> list[int]:
    """Where the elements of the first list opened at ``level`` begin (the level its ``[`` stands at)."""
    starts: list[int] = []
    depth, inside, expecting = 0, False, False
    for kind, at in tokens:
        if inside and depth == level + 1 and expecting and kind != "close":
            starts.append(at)
        expecting = inside and depth == level + 1 and kind == "comma"
        if kind == "open":
            if not inside and depth == level:
                inside, expecting = True, True
            depth += 1
        elif kind == "close":
            depth -= 1
            if inside and depth == level:
                break
    return starts
