"""summary.csv (one line per row, mean and std of every test metric) and manifest.csv (one line
per job: which job is which, its status and why it has no results)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from memo.report.jobs import Job, format_overrides
from memo.report.summary import Summary, relative


def _csv(rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def summary_csv(summary: Summary) -> str:
    """Config keys, data source, n, seeds, jobs without results by kind, mean and std per metric."""
    stats = [f"{m} {part}" for m in summary.metrics for part in ("mean", "std")]
    header = [*summary.label_header(), "data", "n", "seeds", "failed", "damaged", "missing"]
    lines = [[*header, *stats]]
    for row in summary.rows:
        failed, damaged = row.count("failed", "interrupted"), row.count("damaged")
        values = []
        for metric in summary.metrics:
            stat = row.stat(metric)
            values += [stat.mean, stat.std] if stat else [None, None]
        lines.append(
            [
                *summary.label_cells(row),
                row.source or "",
                len(row.results),
                " ".join(map(str, row.seeds)),
                failed,
                damaged,
                len(row.jobs) - len(row.results) - failed - damaged,
                *("" if v is None else repr(v) for v in values),
            ]
        )
    return _csv(lines)


def manifest_csv(jobs: Sequence[Job], base: Path) -> str:
    """Job number, status, overrides (run-only ones left out; empty: unknown), directory, error."""
    several = len({job.sweep for job in jobs}) > 1
    lines: list[list[object]] = [["job", "status", "overrides", "dir", "error"]]
    for job in jobs:
        name = job.num if job.num is not None and not several else job.name(several)
        overrides = "" if job.overrides is None else format_overrides(job.settings)
        path = relative(job.path, base) if job.path else ""
        error = job.error.splitlines()[0] if job.error else ""
        lines.append([name, job.status, overrides, path, error])
    return _csv(lines)
