"""The report's summary as a few kinds of blocks, rendered as GitHub-flavoured Markdown or one HTML page.

Light on purpose (the standard library only): the checks build their tables
with it, and the command line renders them without loading the statistics.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Heading:
    """A section title."""

    level: int
    text: str


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of text."""

    text: str


@dataclass(frozen=True, slots=True)
class Bullets:
    """A list of short items."""

    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A table: a header and rows of text, with an optional caption."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    """A plot, by its file name next to the summary."""

    file: str
    alt: str


Block = Heading | Paragraph | Bullets | Table | Image


def p_text(p: float) -> str:
    """A p-value as the report writes it: three significant digits, below 1e-300 (beyond a float's trust) as a bound."""
    return "< 1e-300" if p < 1e-300 else f"{p:.3g}"


def render_markdown(blocks: Sequence[Block]) -> str:
    """The summary as GitHub-flavoured Markdown."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            lines = [f"**{block.caption}**", ""] if block.caption else []
            lines.append(_md_row(block.header))
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            lines.extend(_md_row(row) for row in block.rows)
            out.append("\n".join(lines))
        else:
            out.append(f"![{block.alt}]({block.file})")
    return "\n\n".join(out) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:0.5rem 0 1rem}th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;"
    "text-align:left}th{background:#f3f3f3}td.FAIL{color:#b00;font-weight:bold}td.pass{color:#070}"
    "img{max-width:100%}code{background:#f3f3f3;padding:0 0.2rem}"
)


def render_html(blocks: Sequence[Block]) -> str:
    """The summary as one self-contained HTML page (the plots are PNG files beside it)."""
    title = next((b.text for b in blocks if isinstance(b, Heading)), "foot-traffic report")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            caption = f"<caption>{_inline(block.caption)}</caption>" if block.caption else ""
            head = "".join(f"<th>{html.escape(cell)}</th>" for cell in block.header)
            body = "".join("<tr>" + "".join(_td(cell) for cell in row) + "</tr>" for row in block.rows)
            out.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            out.append(f'<p><img src="{html.escape(block.file)}" alt="{html.escape(block.alt)}"></p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _td(cell: str) -> str:
    verdict = f' class="{cell}"' if cell in ("pass", "FAIL") else ""
    return f"<td{verdict}>{html.escape(cell)}</td>"


def _inline(text: str) -> str:
    """Escape text for HTML, turning Markdown's `code` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))
