"""Documents nested too deeply are refused by a count of their own, the same from any caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from foot_traffic.config.files import MAX_NESTING, nesting, read_document
from foot_traffic.model.calendar import CalendarFileError


@pytest.mark.parametrize(
    ("text", "comments", "depth"),
    [
        (b'{"a": [1, [2, {"b": 3}]]}', False, 4),
        (b'{"a": "[[[[{{{{", "b": [1]}', False, 2),
        (b'{"a": "\\"[[[", "b": []}', False, 2),
        (b'a = """[[[\n]]]"""  # [[[[\nb = [[1]]', True, 2),
        (b"x = '[[\\' \ny = [ { z = 1 } ]", True, 2),
        (b"[table]\n[[array]]\nv = 1", True, 2),
    ],
)
def test_nesting_counts_arrays_and_tables_outside_strings_and_comments(text: bytes, comments: bool, depth: int) -> None:
    """Brackets inside strings (escapes included) and TOML comments do not count."""
    assert nesting(text, comments=comments) == depth


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 990, 1000, 5000])
def test_a_document_nested_too_deeply_is_refused_in_one_line(tmp_path: Path, depth: int) -> None:
    """Beyond MAX_NESTING levels: one error naming the limit, never the parser's own (depth-dependent) message."""
    path = tmp_path / "deep.json"
    path.write_bytes(b'{"a": ' + b"[" * depth + b"x")
    with pytest.raises(CalendarFileError) as info:
        read_document(path, CalendarFileError)
    assert (
        str(info.value) == f"cannot parse it: nested too deeply (more than {MAX_NESTING} levels of arrays and tables)"
    )


def test_a_document_at_the_limit_is_parsed(tmp_path: Path) -> None:
    """MAX_NESTING levels in all (the top object counts) still parse."""
    path = tmp_path / "deep.json"
    inner = MAX_NESTING - 1
    path.write_bytes(b'{"a": ' + b"[" * inner + b"]" * inner + b"}")
    assert list(read_document(path, CalendarFileError)) == ["a"]
