"""The jobs of one or more sweeps as found on disk, and what became of each: the report's input."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from memo.errors import MemoError
from memo.report.records import (
    HYDRA_FILE,
    Damaged,
    Result,
    parse,
    read_identity,
    read_outcome,
)
from memo.run_config import RESUMED_FILE, is_run_only, split_override

SWEEP_FILE = "multirun.yaml"  # written by Hydra into every sweep directory
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
SEED = "seed"


@dataclass(frozen=True)
class Job:
    """One job of a sweep (or a single run): its overrides, its status and, if done, results."""

    overrides: tuple[str, ...] | None  # None when unknown (damaged .hydra/hydra.yaml)
    status: str  # completed | failed | interrupted | running | incomplete | not started | damaged
    num: int | None = None  # Hydra job number in its sweep; None for a single run or unknown
    sweep: Path | None = None  # the sweep directory; None for a single run
    path: Path | None = None  # the job directory; None when the job never started
    result: Result | None = None
    error: str | None = None  # why there is no result

    @property
    def settings(self) -> dict[str, str]:
        """The overrides that define what is computed (run-only ones left out), seed included."""
        pairs = (split_override(o) for o in self.overrides or ())
        return {k: v for k, v in pairs if not is_run_only(k)}

    @property
    def config(self) -> dict[str, str]:
        """The settings except the seed: jobs with the same config make one summary row."""
        return {k: v for k, v in self.settings.items() if k != SEED}

    def name(self, several_sweeps: bool = False) -> str:
        """`job 3` (with its sweep directory when a report covers several), or the run directory."""
        if self.num is None:
            return str(self.path)
        return f"job {self.num} of {self.sweep}" if several_sweeps else f"job {self.num}"


def format_overrides(settings: dict[str, str]) -> str:
    """`{key: value}` as on the command line: `key=value ...`, or `defaults` when empty."""
    return " ".join(f"{k}={v}" if v else k for k, v in settings.items()) or "defaults"


def expected_jobs(config: DictConfig) -> list[list[str]] | None:
    """Every job's overrides, in job-number order, of a sweep by Hydra's basic sweeper.

    `config` is the sweep's composed config (as in multirun.yaml). None when the jobs cannot be
    known in advance: another sweeper, or a sweep that needs the config loader (glob choices).
    """
    if OmegaConf.select(config, "hydra.sweeper._target_") != BASIC_SWEEPER:
        return None
    params = OmegaConf.select(config, "hydra.sweeper.params")
    arguments = [f"{k}={v}" for k, v in (params or {}).items()]
    arguments += list(OmegaConf.select(config, "hydra.overrides.task") or [])
    # The basic sweeper's expansion (the product of each override's values, the last varying
    # fastest), so that job numbers match what it launched. Sweep syntax the bare parser cannot
    # expand (glob over options, ranges of floats) raises: then only the jobs on disk are known.
    try:
        choices = []
        for override in OverridesParser.create().parse_overrides(arguments):
            key = override.get_key_element()
            if not override.is_sweep_override():
                choices.append([f"{key}={override.get_value_element_as_str()}"])
            elif override.is_discrete_sweep():
                choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
            else:
                return None
        return [list(job) for job in itertools.product(*choices)]
    except Exception:
        return None


def read_job(path: Path, sweep: Path | None) -> Job:
    """The job in run directory `path` (inside `sweep`, if any), or `damaged` and the reason."""
    # Hydra names a sweep's job folders by job number (hydra.sweep.subdir's default).
    folder_num = int(path.name) if path.parent == sweep and path.name.isdigit() else None
    try:
        identity = read_identity(path)
    except Damaged as reason:
        return Job(None, "damaged", folder_num, sweep, path, error=str(reason))
    sweep = sweep if identity.multirun else None
    num = identity.num if sweep else None
    if sweep is not None and folder_num is not None and folder_num != num:
        moved = (
            f"{HYDRA_FILE} records job {num}: this folder was copied or renamed from elsewhere, "
            f"so its results are not those of job {folder_num} of this sweep"
        )
        return Job(identity.overrides, "damaged", folder_num, sweep, path, error=moved)
    try:
        status, result, error = read_outcome(path)
    except Damaged as reason:
        status, result, error = "damaged", None, str(reason)
    return Job(identity.overrides, status, num, sweep, path, result, error)


def planned_jobs(config: DictConfig, sweep: Path) -> list[Job]:
    """The jobs a sweep with composed config `config` will run, all `not started`."""
    expected = expected_jobs(config) or []
    return [
        Job(tuple(overrides), "not started", num, sweep) for num, overrides in enumerate(expected)
    ]


def planned_on_disk(sweep: Path) -> list[Job]:
    """`planned_jobs` of the sweep in `sweep`; none when its multirun.yaml is damaged."""
    try:
        config = parse(sweep, SWEEP_FILE, yaml.safe_load)
        return planned_jobs(OmegaConf.create(config), sweep) if isinstance(config, dict) else []
    except (Damaged, OmegaConfBaseException):
        return []


def _nearest(path: Path, sweeps: Iterable[Path]) -> Path | None:
    """The innermost of `sweeps` that contains `path`."""
    containing = [s for s in sweeps if s in path.parents]
    return max(containing, key=lambda s: len(s.parts), default=None)


def collect(roots: Sequence[Path | str]) -> list[Job]:
    """Every job under `roots` (sweep directories, run directories or folders of them).

    A sweep's jobs that left no directory are included as `not started`, when the sweep's
    jobs can be known from its multirun.yaml.
    """
    sweeps: set[Path] = set()
    runs: set[Path] = set()
    for root in map(Path, roots):
        if not root.is_dir():
            what = "a file, not a directory" if root.exists() else "no such directory"
            raise MemoError(f"{root}: {what} (expected a sweep or run directory)")
        root = root.resolve()
        sweeps.update(p.parent for p in root.rglob(SWEEP_FILE))
        runs.update(p.parent for p in root.rglob(".hydra") if p.is_dir())
    runs = {run for run in runs if not (run / RESUMED_FILE).is_file()}  # not runs themselves
    if not runs and not sweeps:
        raise MemoError(f"no runs or sweeps under {', '.join(map(str, roots))}")
    jobs = [read_job(path, _nearest(path, sweeps)) for path in runs]
    started = {(job.sweep, job.num) for job in jobs}
    for sweep in sweeps:
        jobs += [job for job in planned_on_disk(sweep) if (sweep, job.num) not in started]
    return sorted(jobs, key=_order)


def _order(job: Job) -> tuple[str, int, str]:
    return (str(job.sweep or ""), -1 if job.num is None else job.num, str(job.path or ""))
