"""Tables of numbers for people and papers: markdown, LaTeX (booktabs) and CSV.

Markdown as the reference model card writes it: every cell left-justified to its column's width,
a centred separator row; a `|` inside a cell is escaped, so it cannot split the row. LaTeX with
booktabs rules (`\\usepackage{booktabs}`), text cells escaped; CSV as the csv module writes it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

FORMATS = ("markdown", "latex", "csv")


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


_LATEX_SPECIAL = re.compile(r"([\\&%$#_{}~^])")


def _latex(cell: str) -> str:
    def escape(m: re.Match) -> str:
        c = m.group(1)
        return {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\^{}"}.get(c, "\\" + c)

    return _LATEX_SPECIAL.sub(escape, str(cell)).replace("±", r"$\pm$")


def latex_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A booktabs tabular: numbers right-aligned, text left-aligned."""
    numeric = [all(_is_number(r[i]) for r in rows if r[i]) for i in range(len(header))]
    spec = "".join("r" if n else "l" for n in numeric)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    lines.append(" & ".join(_latex(h) for h in header) + " \\\\")
    lines.append("\\midrule")
    lines += [" & ".join(_latex(c) for c in r) + " \\\\" for r in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)


def _is_number(cell: str) -> bool:
    number = r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?"
    return re.fullmatch(rf"{number}( ± {number})?( \(\d+\))?", cell) is not None


def csv_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().rstrip("\n")


def table(fmt: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table in `fmt` (one of FORMATS)."""
    return {"markdown": markdown_table, "latex": latex_table, "csv": csv_table}[fmt](header, rows)
