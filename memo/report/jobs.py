"""The jobs of one or more sweeps as found on disk, and what became of each: the report's input."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from memo.errors import MemoError

METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"  # written by memo.sweep for every sweep job
SWEEP_FILE = "multirun.yaml"  # written by Hydra into every sweep directory
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
SEED = "seed"
# Override keys that say where or how a run goes, not what it computes: not part of a configuration.
RUN_ONLY = ("paths.", "trainer.progress", "trainer.threads")


def split_override(override: str) -> tuple[str, str]:
    """`key=value` -> (key, value); an override without `=` (e.g. `~key`) has value ''."""
    key, _, value = override.partition("=")
    return key, value


def is_run_only(key: str) -> bool:
    """Whether an override only places or displays a run (paths, progress, threads)."""
    return key.lstrip("+~").startswith(RUN_ONLY)


@dataclass(frozen=True)
class Job:
    """One job of a sweep (or a single run): its overrides, its status and, if done, metrics."""

    overrides: tuple[str, ...]
    status: str  # completed | failed | interrupted | running | incomplete | not started
    num: int | None = None  # Hydra job number in its sweep; None for a single run
    sweep: Path | None = None  # the sweep directory; None for a single run
    path: Path | None = None  # the job directory; None when the job never started
    metrics: dict[str, Any] | None = None
    error: str | None = None

    @property
    def settings(self) -> dict[str, str]:
        """The overrides that define what is computed (run-only ones left out), seed included."""
        pairs = (split_override(o) for o in self.overrides)
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


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when there is no such file."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as error:
        raise MemoError(f"{path} is not valid JSON: {error}") from None


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
    # The basic sweeper's own expansion, so that job numbers match what it launched. Sweep
    # syntax the bare parser cannot expand (e.g. glob over options) raises: then only the
    # jobs on disk are known.
    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
        return BasicSweeper.split_arguments(overrides, None)[0]
    except Exception:
        return None


def job_status(path: Path) -> tuple[str, dict[str, Any] | None, str | None]:
    """(status, metrics, error) of the run in `path`, from status.json and metrics.json."""
    record = read_json(path / STATUS_FILE) or {}
    status = record.get("status")
    if status in ("failed", "interrupted"):
        return status, None, record.get("error")
    metrics = read_json(path / METRICS_FILE)
    if metrics is not None:
        return str(metrics.get("status", "completed")), metrics, None
    if status == "running":
        return "running", None, "no metrics.json yet: still running, or killed"
    return "incomplete", None, "no metrics.json"


def _read_run(path: Path, sweep: Path | None) -> Job:
    hydra = OmegaConf.load(path / ".hydra" / "hydra.yaml")
    if OmegaConf.select(hydra, "hydra.mode") != "MULTIRUN":
        sweep = None
    num = OmegaConf.select(hydra, "hydra.job.num", throw_on_missing=False) if sweep else None
    overrides = tuple(OmegaConf.select(hydra, "hydra.overrides.task") or ())
    status, metrics, error = job_status(path)
    return Job(overrides, status, num, sweep, path, metrics, error)


def planned_jobs(config: DictConfig, sweep: Path) -> list[Job]:
    """The jobs a sweep with composed config `config` will run, all `not started`."""
    expected = expected_jobs(config) or []
    return [
        Job(tuple(overrides), "not started", num, sweep) for num, overrides in enumerate(expected)
    ]


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
            raise MemoError(f"{root}: no such directory")
        root = root.resolve()
        sweeps.update(p.parent for p in root.rglob(SWEEP_FILE))
        runs.update(p.parent.parent for p in root.rglob("hydra.yaml") if p.parent.name == ".hydra")
    if not runs and not sweeps:
        raise MemoError(f"no runs or sweeps under {', '.join(map(str, roots))}")
    jobs = [_read_run(path, _nearest(path, sweeps)) for path in runs]
    started = {(job.sweep, job.num) for job in jobs}
    for sweep in sweeps:
        planned = planned_jobs(OmegaConf.load(sweep / SWEEP_FILE), sweep)
        jobs += [job for job in planned if (sweep, job.num) not in started]
    return sorted(jobs, key=_order)


def _order(job: Job) -> tuple[str, int, str]:
    return (str(job.sweep or ""), -1 if job.num is None else job.num, str(job.path or ""))
