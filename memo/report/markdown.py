"""summary.md: what ran, the report's tables and every job without results, with the reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from memo.report.jobs import Job, format_overrides
from memo.report.records import STATUS_FILE
from memo.report.summary import Summary, describe_data, relative
from memo.report.tables import NOTE, Table, tables


def markdown(summary: Summary, base: Path) -> str:
    """The Markdown summary; paths of jobs without results are relative to `base`."""
    counts = Counter(job.status for job in summary.jobs)
    lines = [
        f"# Sweep summary: {describe_data(summary.results)}",
        "",
        f"{len(summary.jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".",
        f"{NOTE} Data: the data source of the row's runs (synthetic: the built-in corpus).",
    ]
    if summary.common:
        common = " ".join(f"`{o}`" for o in format_overrides(summary.common).split())
        lines.append(f"Common to all rows: {common}")
    for table in tables(summary):
        lines += ["", f"## {table.title}", "", *_table(table)]
    if summary.problems:
        lines += ["", "## Jobs without results", ""]
        lines += [_problem(summary, job, base) for job in summary.problems]
    return "\n".join(lines) + "\n"


def _table(table: Table) -> list[str]:
    align = ["---"] * table.labels + ["--:"] * (len(table.header) - table.labels)
    rows = [["n/a" if cell is None else str(cell) for cell in row] for row in table.rows]
    return [_row(table.header), _row(align), *map(_row, rows)]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _problem(summary: Summary, job: Job, base: Path) -> str:
    """`- job 3 (overrides): status: reason (where to look)`."""
    details = job.path / STATUS_FILE if job.status in ("failed", "interrupted") else job.path
    where = f" (`{relative(details, base)}`)" if details else ""
    error = f": {job.error.splitlines()[0]}" if job.error else ""
    name = job.name(summary.several_sweeps)
    return f"- {name} (`{summary.describe(job)}`): {job.status}{error}{where}"
