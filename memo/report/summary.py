"""Mean ± std over seeds of each configuration's headline test metrics, as Markdown and CSV."""

from __future__ import annotations

import csv
import io
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from memo.report.jobs import STATUS_FILE, Job, format_overrides

HEADLINE = ("/avg", "/avg_seen", "/target")  # averages, seen-emotion averages, the target emotion


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (None for one value) of one metric over seeds."""

    mean: float
    std: float | None

    def __str__(self) -> str:
        return f"{self.mean:.3f}" if self.std is None else f"{self.mean:.3f} ± {self.std:.3f}"


@dataclass(frozen=True)
class Row:
    """One configuration (everything but the seed) and its jobs, one per seed."""

    config: dict[str, str]
    jobs: tuple[Job, ...]

    @property
    def done(self) -> list[Job]:
        return [job for job in self.jobs if job.metrics is not None]

    @property
    def seeds(self) -> list[int]:
        return sorted(int(job.metrics["seed"]) for job in self.done)

    @property
    def target(self) -> str | None:
        """The zero-/few-shot emotion of this configuration, if any."""
        return next((job.metrics.get("target_emotion") for job in self.done), None)

    def stat(self, metric: str) -> Stat | None:
        """`metric` (a key of metrics.json's `test`) over the finished seeds; None if no value."""
        values = [job.metrics["test"].get(metric) for job in self.done]
        values = [float(v) for v in values if v is not None]
        if not values:
            return None
        return Stat(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None)

    def count(self, *statuses: str) -> int:
        return sum(job.status in statuses for job in self.jobs)


@dataclass(frozen=True)
class Summary:
    """The jobs grouped into rows, the headline metrics and the keys that tell rows apart."""

    jobs: tuple[Job, ...]
    rows: tuple[Row, ...]
    metrics: tuple[str, ...]
    keys: tuple[str, ...]  # config keys whose value differs between rows
    common: dict[str, str]  # config overrides shared by every row

    @classmethod
    def of(cls, jobs: Sequence[Job]) -> Summary:
        groups: dict[tuple[tuple[str, str], ...], list[Job]] = {}
        for job in jobs:
            groups.setdefault(tuple(sorted(job.config.items())), []).append(job)
        rows = tuple(Row(group[0].config, tuple(group)) for group in groups.values())
        keys = list(dict.fromkeys(k for row in rows for k in row.config))
        common = {
            k: rows[0].config[k]
            for k in keys
            if all(k in row.config and row.config[k] == rows[0].config[k] for row in rows)
        }
        varying = tuple(k for k in keys if k not in common)
        metrics = dict.fromkeys(
            name
            for job in jobs
            if job.metrics is not None
            for name in job.metrics["test"]
            if name.endswith(HEADLINE)
        )
        return cls(tuple(jobs), rows, tuple(metrics), varying, common)

    @property
    def problems(self) -> list[Job]:
        """Jobs without results: failed, interrupted, still running, not started."""
        return [job for job in self.jobs if job.metrics is None]

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if job.status in ("failed", "interrupted")]

    @property
    def swept(self) -> tuple[str, ...]:
        """Override keys whose value differs between jobs, the seed included."""
        keys = dict.fromkeys(k for job in self.jobs for k in job.settings)
        return tuple(k for k in keys if len({job.settings.get(k) for job in self.jobs}) > 1)

    def describe(self, job: Job) -> str:
        """What sets `job` apart from the other jobs: its swept overrides."""
        swept = self.swept or tuple(job.settings)
        return format_overrides({k: v for k, v in job.settings.items() if k in swept})

    @property
    def several_sweeps(self) -> bool:
        return len({job.sweep for job in self.jobs}) > 1

    def label(self, row: Row) -> str:
        """What sets `row` apart from the other rows, as `key=value` overrides."""
        return format_overrides({k: row.config.get(k, "") for k in self.keys} or row.config)

    def _label(self, row: Row) -> list[str]:
        return [row.config.get(k, "") for k in self.keys] or [format_overrides(row.config)]

    def _key_header(self) -> list[str]:
        return list(self.keys) if self.keys else ["configuration"]

    def markdown(self, base: Path) -> str:
        """The summary table, what is common to all rows and the jobs without results."""
        counts = Counter(job.status for job in self.jobs)
        lines = [
            "# Sweep summary",
            "",
            f"{len(self.jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".",
            "Test metrics, mean ± sample standard deviation over seeds; n: seeds with results.",
        ]
        if self.common:
            common = " ".join(f"`{o}`" for o in format_overrides(self.common).split())
            lines.append(f"Common to all rows: {common}")
        keys = self._key_header()
        lines += ["", _md_row([*keys, "n", "seeds", *self.metrics])]
        lines.append(_md_row(["---"] * len(keys) + ["--:"] * (2 + len(self.metrics))))
        for row in self.rows:
            stats = [str(row.stat(m) or "n/a") for m in self.metrics]
            seeds = ", ".join(map(str, row.seeds)) or "none"
            lines.append(_md_row([*self._label(row), str(len(row.done)), seeds, *stats]))
        if self.problems:
            lines += ["", "## Jobs without results", ""]
            lines += [self._problem(job, base) for job in self.problems]
        return "\n".join(lines) + "\n"

    def _problem(self, job: Job, base: Path) -> str:
        where = f" (`{_relative(job.path / STATUS_FILE, base)}`)" if job.path else ""
        error = f": {job.error.splitlines()[0]}" if job.error else ""
        name = job.name(self.several_sweeps)
        return f"- {name} (`{self.describe(job)}`): {job.status}{error}{where}"

    def csv(self) -> str:
        """One line per row: config keys, n, seeds, failed jobs, then mean and std per metric."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        stats = [f"{m} {part}" for m in self.metrics for part in ("mean", "std")]
        writer.writerow([*self._key_header(), "n", "seeds", "failed", "missing", *stats])
        for row in self.rows:
            values = []
            for metric in self.metrics:
                stat = row.stat(metric)
                values += [stat.mean, stat.std] if stat else [None, None]
            writer.writerow(
                [
                    *self._label(row),
                    len(row.done),
                    " ".join(map(str, row.seeds)),
                    row.count("failed", "interrupted"),
                    len(row.jobs) - len(row.done) - row.count("failed", "interrupted"),
                    *("" if v is None else repr(v) for v in values),
                ]
            )
        return buffer.getvalue()


def manifest_csv(jobs: Sequence[Job], base: Path) -> str:
    """CSV of `jobs`: job number, status, overrides (run-only ones left out), directory, error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    several = len({job.sweep for job in jobs}) > 1
    writer.writerow(["job", "status", "overrides", "dir", "error"])
    for job in jobs:
        name = job.num if job.num is not None and not several else job.name(several)
        path = _relative(job.path, base) if job.path else ""
        error = job.error.splitlines()[0] if job.error else ""
        writer.writerow([name, job.status, format_overrides(job.settings), path, error])
    return buffer.getvalue()


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _relative(path: Path, base: Path) -> str:
    """`path` relative to `base` where possible (also upwards), else absolute."""
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive (Windows)
        return str(path)
