"""The report's tables, independent of format: the averages of every row, one paper-style table
per metric (emotions as columns, configurations as rows) and the whole-sample accuracies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memo.report.summary import Row, Stat, Summary, column_label, describe_data, metric_label

NOTE = "Test metrics, mean ± sample standard deviation over seeds; n: seeds with results."

Cell = str | Stat | None  # text, a statistic, or no value


@dataclass(frozen=True)
class Table:
    """A titled table whose first `labels` columns are text and the others numbers."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    labels: int


def tables(summary: Summary) -> list[Table]:
    """Averages (all rows), then per metric and whole-sample tables (rows with results)."""
    found = [
        _table(summary, "Averages", summary.rows, summary.headline, summary.headline, seeds=True)
    ]
    for metric, columns in summary.per_emotion.items():
        names = [f"{metric}/{column}" for column in columns]
        rows = [row for row in summary.rows if any(row.stat(name) for name in names)]
        headers = [column_label(column) for column in columns]
        found.append(_table(summary, f"{metric_label(metric)} per emotion", rows, names, headers))
    if summary.whole_sample:
        rows = [row for row in summary.rows if row.results]
        whole = summary.whole_sample
        found.append(_table(summary, "Whole-sample accuracy", rows, whole, whole))
    return found


def _table(
    summary: Summary,
    title: str,
    rows: Sequence[Row],
    metrics: Sequence[str],
    headers: Sequence[str],
    seeds: bool = False,
) -> Table:
    """`metrics` of `rows` under `headers`, after the row labels, data source, n (and seeds)."""
    label = summary.label_header()
    header = [*label, "data", "n", *(["seeds"] if seeds else []), *headers]
    body = []
    for row in rows:
        cells: list[Cell] = [*summary.label_cells(row), row.source or "n/a", str(len(row.results))]
        if seeds:
            cells.append(", ".join(map(str, row.seeds)) or "none")
        body.append((*cells, *(row.stat(metric) for metric in metrics)))
    context = describe_data(result for row in rows for result in row.results)
    return Table(f"{title} ({context})", tuple(header), tuple(body), len(label) + 1)
