"""Documents nested too deeply are refused by a count of their own, the same from any caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from foot_traffic.config.files import MAX_NESTING, read_document
from foot_traffic.model.calendar import CalendarFileError


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
