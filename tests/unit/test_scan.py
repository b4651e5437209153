"""The scanner of TOML and JSON texts: nesting depth, and the line each entry of a stores file begins on."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foot_traffic.config.scan import entry_lines, nesting


def _string_end(raw: bytes, start: int) -> int:
    """Where the string opening at ``start`` ends (its closing quote), or the text's end; backslashes escape in "…"."""
    quote = raw[start : start + 1]
    fence = quote * 3 if raw[start : start + 3] == quote * 3 else quote
    i = start + len(fence)
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and quote == b'"':
            i += 2
            continue
        if raw[i : i + len(fence)] == fence:
            return i + len(fence) - 1
        i += 1
    return len(raw)


def byte_by_byte_nesting(raw: bytes, *, comments: bool) -> int:
    """The nesting depth found one byte at a time (the scanner's earlier form, kept as the oracle)."""
    deepest = depth = 0
    i, n = 0, len(raw)
    while i < n:
        c = raw[i : i + 1]
        if c in (b'"', b"'"):
            i = _string_end(raw, i)
        elif comments and c == b"#":
            i = raw.find(b"\n", i)
            i = n if i < 0 else i
        elif c in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif c in (b"]", b"}"):
            depth -= 1
        i += 1
    return deepest


@pytest.mark.parametrize(
    ("text", "comments", "depth"),
    [
        (b'{"a": [1, [2, {"b": 3}]]}', False, 4),
        (b'{"a": "[[[[{{{{", "b": [1]}', False, 2),
        (b'{"a": "\\"[[[", "b": []}', False, 2),
        (b'a = """[[[\n]]]"""  # [[[[\nb = [[1]]', True, 2),
        (b"x = '[[\\' \ny = [ { z = 1 } ]", True, 2),
        (b"[table]\n[[array]]\nv = 1", True, 2),
        (b'a = "[[[\\', True, 0),  # an unterminated string ending in a backslash
        (b"a = '''[[[ \n b = [", True, 0),
    ],
)
def test_nesting_counts_arrays_and_tables_outside_strings_and_comments(text: bytes, comments: bool, depth: int) -> None:
    """Brackets inside strings (escapes included) and TOML comments do not count."""
    assert nesting(text, comments=comments) == depth


_PIECES = [b"[", b"]", b"{", b"}", b'"', b"'", b'"""', b"'''", b"\\", b"#", b"\n", b"a", b" "]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES)).map(b"".join), st.booleans())
def test_nesting_agrees_with_the_byte_by_byte_scan(text: bytes, comments: bool) -> None:
    """On any text of brackets, quotes, backslashes, comments and newlines, the depth is the byte-by-byte scan's."""
    assert nesting(text, comments=comments) == byte_by_byte_nesting(text, comments=comments)


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ('[[store]]\nid = "a"\n\n[[store]]\nid = "b"\n', [1, 4]),
        # indented and spaced headers, a quoted key, a comment after a header
        ('# chain\n  [[ store ]]\nid = "a"\n[["store"]] # b\nid = "b"\n', [2, 4]),
        # a header inside a multi-line string or a comment is no header
        ('[[store]]\nid = "a"\nweights = """\n[[store]]\n"""\n# [[store]]\n[[store]]\nid = "b"', [1, 7]),
        ("[[store]]\nid = 'a'\nx = '''\n[[store]]'''\n[[store]]\nid = 'b'", [1, 5]),
        # sub-tables of a store are not stores
        ('[[store]]\nid = "a"\n[[store.x]]\n[[store]]\nid = "b"', [1, 4]),
        # an inline array: each element, whatever its kind, commas inside elements and strings not counted
        ('store = [\n  {id = "a", scale = 1},\n  "b,c",\n  # c, d\n  [1, 2],\n  7,\n]', [2, 3, 5, 6]),
        ('store = [{id = "a"}, {id = "b"}]', [1, 1]),
    ],
)
def test_entry_lines_of_toml(text: str, lines: list[int]) -> None:
    """Each [[store]] header's line, or each inline element's, strings, comments and sub-tables aside."""
    assert entry_lines(text.encode(), toml=True) == lines


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ('{"store": [\n{"id": "a"},\n{"id": "b,]"},\nnull,\n[1,\n2],\n"x"\n]}', [2, 3, 4, 5, 7]),
        ('{\n  "store": [\n    {\n      "id": "a"\n    },\n    {\n      "id": "b"\n    }\n  ]\n}', [3, 6]),
        ('{"store": [{"id": "a"}, {"id": "b"}]}', [1, 1]),
    ],
)
def test_entry_lines_of_json(text: str, lines: list[int]) -> None:
    """Each element of the store array: its first character's line, nested commas and strings aside."""
    assert entry_lines(text.encode(), toml=False) == lines


def test_entry_lines_of_a_pretty_printed_chain() -> None:
    """json.dumps(indent=2) of 1,000 stores of two keys puts store i on line 3 + 4 i."""
    text = json.dumps({"store": [{"id": f"s{i}", "scale": 1} for i in range(1000)]}, indent=2)
    assert entry_lines(text.encode(), toml=False) == [3 + 4 * i for i in range(1000)]
