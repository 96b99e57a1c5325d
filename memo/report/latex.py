"""summary.tex: the report's tables as LaTeX `table` environments (booktabs), ready for a paper."""

from __future__ import annotations

from memo.report.summary import Summary, describe_data
from memo.report.tables import NOTE, Cell, Table, tables

SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
}


def escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped."""
    return "".join(SPECIAL.get(char, char) for char in text)


def latex(summary: Summary) -> str:
    """Every table of the report; a comment says which data and how many jobs lack results."""
    lines = [
        f"% memo sweep summary: {describe_data(summary.results)}",
        "% tables use \\usepackage{booktabs}",
    ]
    if summary.problems:
        missing = f"{len(summary.problems)} of {len(summary.jobs)} jobs have no results"
        lines.append(f"% {missing}: see summary.md")
    for table in tables(summary):
        lines += ["", *_table(table)]
    return "\n".join(lines) + "\n"


def _table(table: Table) -> list[str]:
    columns = "l" * table.labels + "r" * (len(table.header) - table.labels)
    return [
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{escape(table.title)}. {escape(NOTE)}}}",
        rf"\begin{{tabular}}{{{columns}}}",
        r"\toprule",
        _row(escape(name) for name in table.header),
        r"\midrule",
        *(_row(_cell(cell) for cell in row) for row in table.rows),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]


def _row(cells) -> str:
    return " & ".join(cells) + r" \\"


def _cell(cell: Cell) -> str:
    if cell is None:
        return "--"
    if isinstance(cell, str):
        return escape(cell)
    spread = "" if cell.std is None else rf" \pm {cell.std:.3f}"
    return f"${cell.mean:.3f}{spread}$"
