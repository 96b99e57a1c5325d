"""Runs inside a Hydra sweep (`python run.py -m ...`): torch threads per job, a status record per
job so one failure does not stop the others, and the report written when the sweep ends."""

from __future__ import annotations

import logging
import os
import socket
import sys
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from memo.composition import compose_config
from memo.errors import MemoError, config_error
from memo.io import write_json
from memo.report import SUMMARY_MD, render, summarize, write_manifest, write_report
from memo.report.jobs import Job, collect, format_overrides, planned_jobs
from memo.report.records import STATUS_FILE
from memo.report.summary import Summary
from memo.training.resume import refuse_early
from memo.training.runtime import Interrupted

log = logging.getLogger(__name__)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def torch_threads(setting: Any, launcher: DictConfig | None) -> int | None:
    """Threads for torch: `trainer.threads` if set; else the share of the cores a launcher gives
    each of its simultaneous jobs (cpus_per_task, or cores // n_jobs); else None: torch's own."""
    if setting is not None:
        if not isinstance(setting, int) or isinstance(setting, bool) or setting <= 0:
            raise config_error("trainer.threads", setting, "null or a positive integer")
        return setting
    launcher = launcher or {}
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    n_jobs = launcher.get("n_jobs")
    if not n_jobs:
        return None
    cores = _cores()
    at_once = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
    return max(1, cores // at_once)


def set_torch_threads(cfg: DictConfig) -> None:
    """Apply `trainer.threads` (see `torch_threads`) to this process."""
    launcher = HydraConfig.get().launcher if HydraConfig.initialized() else None
    threads = torch_threads(cfg.trainer.get("threads"), launcher)
    if threads is not None:
        torch.set_num_threads(threads)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


Task = Callable[[DictConfig, Path], object]


def run_sweep_job(task: Task, cfg: DictConfig, run_dir: Path) -> bool:
    """Run `task(cfg, run_dir)` as one sweep job, recording it in `<run dir>/status.json`.

    A failure is recorded (message and traceback) and logged, not raised, so the sweep's other
    jobs still run; the sweep callback ends the sweep non-zero. Ctrl-C or SIGTERM (which
    training turns into `Interrupted` after the current batch) is recorded as `interrupted`
    and stops the sweep. Returns whether the job succeeded.
    """
    hydra = HydraConfig.get()
    record: dict[str, Any] = {
        "status": "running",
        "job": hydra.job.num,
        "overrides": list(hydra.overrides.task),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": _now(),
    }
    write_json(run_dir / STATUS_FILE, record)
    try:
        task(cfg, run_dir)
    except (KeyboardInterrupt, Interrupted) as error:  # Ctrl-C or SIGTERM: for the whole sweep
        stop = {"status": "interrupted", **({"error": str(error)} if str(error) else {})}
        write_json(run_dir / STATUS_FILE, {**record, **stop, "ended": _now()})
        # Not one job's failure: stop the sweep, saying how to finish it (the same command
        # alone would start a new sweep folder).
        sweep = Path(hydra.sweep.dir).resolve()
        raise KeyboardInterrupt(
            f"run the same command with hydra.sweep.dir={sweep} to finish the sweep (finished "
            "jobs are skipped, interrupted ones resume)"
        ) from error
    except Exception as error:
        expected = isinstance(error, MemoError)  # its message says it all: no stack on screen
        message = str(error) if expected else f"{type(error).__name__}: {error}"
        log.error("job %s failed: %s", hydra.job.num, message, exc_info=not expected)
        failure = {"status": "failed", "error": message, "traceback": traceback.format_exc()}
        write_json(run_dir / STATUS_FILE, {**record, **failure, "ended": _now()})
        return False
    record.update(status="completed", torch_threads=torch.get_num_threads(), ended=_now())
    write_json(run_dir / STATUS_FILE, record)
    return True


class SweepReport(Callback):
    """Keeps `<sweep dir>/manifest.csv` (which job is which, and its status) current, writes the
    summary and plots when the sweep ends, and then exits 1 naming the failed jobs, if any.
    A SLURM sweep is first checked against the cluster (`memo.slurm.prepare_sweep`)."""

    def __init__(self, plots: bool = True) -> None:
        self.plots = plots

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if str(config.hydra.launcher.get("_target_")).endswith(".SlurmLauncher"):
            from memo.slurm import prepare_sweep  # imports submitit: only for SLURM sweeps

            prepare_sweep(config)
        sweep = Path(config.hydra.sweep.dir)
        planned = planned_jobs(config, sweep)
        _refuse_relabelling(config, planned)
        write_manifest(planned, sweep)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            sweep = Path(config.hydra.sweep.dir)
            write_manifest(collect([sweep]), sweep)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        summary = summarize([sweep])
        try:
            write_report(summary, sweep, self.plots)
            print(render(summary, "md", sweep), end="")
            print(f"sweep summary: {sweep / SUMMARY_MD}", file=sys.stderr)
        except MemoError as error:  # e.g. the sweep folder cannot be written
            print(f"could not write the sweep report: {error}", file=sys.stderr)
        except Exception:  # a broken report must not hide failed jobs from the exit status
            print(f"could not write the sweep report:\n{traceback.format_exc()}", file=sys.stderr)
        if summary.failed:
            raise SystemExit(_failure_message(summary))  # Hydra turns exceptions into warnings


def _refuse_relabelling(config: DictConfig, jobs: list[Job]) -> None:
    """Exit before any job starts when a job folder of this sweep is in use by another memo
    process or holds a finished run of other settings (a re-run into the same hydra.sweep.dir
    with other values or order): Hydra would rewrite the folder's `.hydra/` record before the
    job could refuse, leaving its results under this sweep's overrides. Needs the jobs known in
    advance and folders named by job number (the defaults)."""
    if OmegaConf.to_container(config.hydra.sweep).get("subdir") != "${hydra.job.num}":
        return
    conflicts = []
    for job in jobs:
        folder = Path(config.hydra.sweep.dir) / str(job.num)
        if not folder.is_dir():
            continue
        try:
            refuse_early(compose_config(list(job.overrides or ())), folder)
        except (HydraException, OmegaConfBaseException):  # a bad job: it fails when it runs
            continue
        except MemoError as error:
            conflicts.append(f"  job {job.num} ({format_overrides(job.settings)}): {error}")
    if conflicts:
        print(
            f"error: {len(conflicts)} job folders of {config.hydra.sweep.dir} cannot take this "
            "sweep's jobs; no job was started:\n" + "\n".join(conflicts),
            file=sys.stderr,
        )
        sys.exit(2)


def _failure_message(summary: Summary) -> str:
    """Which jobs failed, why, and where their status record is."""
    lines = [f"{len(summary.failed)} of {len(summary.jobs)} sweep jobs failed:"]
    for job in summary.failed:
        lines.append(
            f"  {job.name()} ({summary.describe(job)}): {job.error}; "
            f"details in {job.path / STATUS_FILE}"
        )
    return "\n".join(lines)
