"""Events from a JSON-lines file or standard input (``--input``), read in blocks of whole lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from foot_traffic.report.inputs.events import Chunk, EventsInputError

BLOCK_BYTES = 4 << 20
"""Bytes of a file read at once; a block's temporaries stay within a few tens of MB."""


def input_chunks(path: str) -> Iterator[Chunk]:
    """Blocks of the file at ``path`` (``-``: standard input), named in messages as ``--input``."""
    if path == "-":
        yield from file_chunks(sys.stdin.buffer, "--input='-'")
        return
    name = f"--input={path!r}"
    try:
        stream = Path(path).expanduser().open("rb")
    except OSError as exc:
        raise EventsInputError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    with stream:
        yield from file_chunks(stream, name)


def file_chunks(stream: BinaryIO, name: str, block_bytes: int = BLOCK_BYTES) -> Iterator[Chunk]:
    """Blocks of whole lines of a binary stream; ``name`` is how messages name it (e.g. ``--input='x.jsonl'``)."""
    carry = b""
    while True:
        try:
            data = stream.read(block_bytes)
        except OSError as exc:
            raise EventsInputError(f"{name}: cannot read it ({exc.strerror or exc})") from None
        if not data:
            break
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        body, carry = data[: cut + 1], data[cut + 1 :]
        yield Chunk(body, lambda i, before: f"{name} line {before + i + 1}")
    if carry:
        yield Chunk(carry, lambda i, before: f"{name} line {before + i + 1}")
