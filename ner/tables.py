"""Tables of numbers for people: the model card's and ner-report's, in one markdown form.

Markdown as the reference model card writes it: every cell left-justified to its column's width,
a centred separator row. A `|` inside a cell is escaped, so it cannot split the row.
"""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table as markdown lines joined by newlines (no trailing newline)."""
    header = [_escape(h) for h in header]
    rows = [[_escape(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join(f":{'-' * w}:" for w in widths) + "|"
    return "\n".join([line(header), separator, *(line(r) for r in rows)])


def _escape(cell: str) -> str:
    return str(cell).replace("|", "\\|")
