"""Jobs grouped into rows (one configuration and data source, its seeds) with mean ± std of every
test metric: the content of every report format."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from memo.report.jobs import Job, format_overrides
from memo.report.records import Result
from memo.run_config import config_differences, shown
from memo.training.results import LABELS, WHOLE_SAMPLE

AGGREGATES = ("avg", "avg_seen", "target")  # averages, seen-emotion averages, the target emotion
HEADLINE = tuple(f"/{a}" for a in AGGREGATES)
COLUMN_NAMES = {"avg": "average", "avg_seen": "seen average", "target": "target"}


def metric_label(metric: str) -> str:
    """`wa` -> `WA`: a metric's name in titles."""
    return LABELS.get(metric, metric.upper())


def column_label(column: str) -> str:
    """An emotion, or `avg` -> `average`: a per-emotion table's column in headers and axes."""
    return COLUMN_NAMES.get(column, column)


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (None for one value) of one metric over seeds."""

    mean: float
    std: float | None

    def __str__(self) -> str:
        return f"{self.mean:.3f}" if self.std is None else f"{self.mean:.3f} ± {self.std:.3f}"


@dataclass(frozen=True)
class Row:
    """One configuration (everything but the seed) on one data source, and its jobs."""

    config: dict[str, str]
    source: str | None  # the data source of its results; None when it has none
    jobs: tuple[Job, ...]

    @property
    def results(self) -> list[Result]:
        return [job.result for job in self.jobs if job.result is not None]

    @property
    def seeds(self) -> list[int]:
        return sorted(result.seed for result in self.results)

    @property
    def target(self) -> str | None:
        """The zero-/few-shot emotion of this configuration, if any."""
        return next((result.target for result in self.results), None)

    def stat(self, metric: str) -> Stat | None:
        """`metric` (a key of metrics.json's `test`) over the finished seeds; None if no value."""
        values = [r.test[metric] for r in self.results if r.test.get(metric) is not None]
        if not values:
            return None
        return Stat(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None)

    def count(self, *statuses: str) -> int:
        return sum(job.status in statuses for job in self.jobs)


def describe_data(results: Iterable[Result]) -> str:
    """`mosei, synthetic data`; several sources are named as mixed, so no title hides them."""
    results = list(results)
    datasets = " and ".join(dict.fromkeys(r.dataset for r in results)) or "no results"
    sources = list(dict.fromkeys(r.data_source for r in results))
    if len(sources) > 1:
        return f"{datasets}, mixed data: {' + '.join(sources)}"
    return f"{datasets}, {sources[0]} data" if sources else datasets


@dataclass(frozen=True)
class Summary:
    """The jobs grouped into rows, and the keys that tell rows apart."""

    jobs: tuple[Job, ...]
    rows: tuple[Row, ...]
    keys: tuple[str, ...]  # config keys whose value differs between rows
    common: dict[str, str]  # config overrides shared by every row

    @classmethod
    def of(cls, jobs: Sequence[Job]) -> Summary:
        """Rows of `jobs` by configuration and data source; jobs with unknown overrides in none."""
        jobs = _each_seed_once(_same_settings(jobs))
        known = [job for job in jobs if job.overrides is not None]
        sources: dict[tuple, set[str]] = {}  # configuration -> data sources of its results
        for job in known:
            if job.result is not None:
                sources.setdefault(_config_key(job), set()).add(job.result.data_source)
        groups: dict[tuple, list[Job]] = {}
        for job in known:
            key = _config_key(job)
            groups.setdefault((key, _source(job, sources.get(key, set()))), []).append(job)
        rows = tuple(Row(group[0].config, key[1], tuple(group)) for key, group in groups.items())
        keys = list(dict.fromkeys(k for row in rows for k in row.config))
        common = {
            k: rows[0].config[k]
            for k in keys
            if all(k in row.config and row.config[k] == rows[0].config[k] for row in rows)
        }
        return cls(tuple(jobs), rows, tuple(k for k in keys if k not in common), common)

    @property
    def results(self) -> list[Result]:
        return [result for row in self.rows for result in row.results]

    @property
    def metrics(self) -> list[str]:
        """Every test metric with a value in some job, in the order the jobs list them."""
        measured = (m for result in self.results for m, v in result.test.items() if v is not None)
        return list(dict.fromkeys(measured))

    @property
    def headline(self) -> list[str]:
        """The averages: `<metric>/avg`, `/avg_seen`, `/target`."""
        return [m for m in self.metrics if m.endswith(HEADLINE)]

    @property
    def whole_sample(self) -> list[str]:
        """The whole-sample accuracies measured (exact, subset, intersect)."""
        return [m for m in WHOLE_SAMPLE if m in self.metrics]

    @property
    def per_emotion(self) -> dict[str, list[str]]:
        """Each metric measured per emotion -> its columns: the emotions, then the averages."""
        columns: dict[str, dict[str, None]] = {}
        for result in self.results:
            for name, value in result.test.items():
                metric, _, column = name.partition("/")
                if value is not None and column in result.emotions:
                    columns.setdefault(metric, {})[column] = None
        return {
            metric: [*emotions, *(a for a in AGGREGATES if f"{metric}/{a}" in self.metrics)]
            for metric, emotions in columns.items()
        }

    @property
    def problems(self) -> list[Job]:
        """Jobs without results: failed, interrupted, damaged, still running, not started."""
        return [job for job in self.jobs if job.result is None]

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if job.status in ("failed", "interrupted")]

    @property
    def several_sweeps(self) -> bool:
        return len({job.sweep for job in self.jobs}) > 1

    @property
    def swept(self) -> tuple[str, ...]:
        """Override keys whose value differs between jobs, the seed included."""
        known = [job for job in self.jobs if job.overrides is not None]
        keys = dict.fromkeys(k for job in known for k in job.settings)
        return tuple(k for k in keys if len({job.settings.get(k) for job in known}) > 1)

    def describe(self, job: Job) -> str:
        """What sets `job` apart from the other jobs: its swept overrides."""
        if job.overrides is None:
            return "overrides unknown"
        swept = self.swept or tuple(job.settings)
        return format_overrides({k: v for k, v in job.settings.items() if k in swept})

    @property
    def mixed(self) -> bool:
        """Whether the results come from several data sources."""
        return len({result.data_source for result in self.results}) > 1

    def label(self, row: Row) -> str:
        """What sets `row` apart from the other rows, as `key=value` overrides."""
        return format_overrides({k: row.config.get(k, "") for k in self.keys} or row.config)

    def label_cells(self, row: Row) -> list[str]:
        """The row's label, one cell per key of `label_header`."""
        return [row.config.get(k, "") for k in self.keys] or [format_overrides(row.config)]

    def label_header(self) -> list[str]:
        return list(self.keys) if self.keys else ["configuration"]


def _config_key(job: Job) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(job.config.items()))


def _same_settings(jobs: Sequence[Job]) -> list[Job]:
    """`jobs`, where a result whose settings differ from those of the first result with the same
    overrides and data source (made while a default was another: another memo version) is
    `mismatched`, without results: averaging them would put two experiments under one label."""
    first: dict[tuple, Job] = {}
    kept = []
    for job in jobs:
        if job.result is not None and job.overrides is not None:
            reference = first.setdefault((_config_key(job), job.result.data_source), job)
            differences = config_differences(
                reference.result.settings, job.result.settings, shared_only=True
            )
            if differences:
                error = (
                    f"the same overrides as {reference.path} but other settings "
                    f"({shown(differences)}, as there -> here): made with other defaults, so "
                    "not averaged with it"
                )
                job = replace(job, status="mismatched", result=None, error=error)
        kept.append(job)
    return kept


def _each_seed_once(jobs: Sequence[Job]) -> list[Job]:
    """`jobs`, where a result repeating the settings, data source and seed of an earlier one (a
    job folder copied from another sweep, one sweep summarised twice) is a `duplicate` without
    results: a seed counted twice would shrink the standard deviation and inflate n."""
    first: dict[tuple, Job] = {}
    kept = []
    for job in jobs:
        if job.result is not None and job.overrides is not None:
            key = (_config_key(job), job.result.data_source, job.result.seed)
            if key not in first:
                first[key] = job
            else:
                counted = f"seed {job.result.seed} of these settings is counted from "
                job = replace(
                    job, status="duplicate", result=None, error=f"{counted}{first[key].path}"
                )
        kept.append(job)
    return kept


def _source(job: Job, sources: set[str]) -> str | None:
    """The data source of `job`'s results or, without results, the one of its configuration's
    `sources` if there is exactly one (a failed job joins the row of its configuration)."""
    if job.result is not None:
        return job.result.data_source
    return next(iter(sources)) if len(sources) == 1 else None


def relative(path: Path, base: Path) -> str:
    """`path` relative to `base` where possible (also upwards), else absolute."""
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive (Windows)
        return str(path)
