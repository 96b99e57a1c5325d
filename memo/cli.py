"""memo's command line: `memo [group=option ...] [key=value ...]`, or `python run.py ...` from
a clone; Hydra over the configs shipped in this package (memo/conf)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from memo.errors import MemoError

RESUME_HINT = "run the same command with resume=true to continue from the last finished epoch"


def experiment(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """One experiment with the configured number of torch threads; returns its metrics."""
    from memo.experiment import run_experiment  # here, so that --help and errors start fast
    from memo.sweep import set_torch_threads

    set_torch_threads(cfg)
    return run_experiment(cfg, run_dir)


def selection_value(metrics: dict[str, Any]) -> float | None:
    """The best validation value of the selection metric (metrics.json's `valid_best`, e.g.
    `wa/avg` on MOSEI); None for an evaluation, which has none."""
    best = metrics.get("valid_best")
    return next(iter(best.values())) if best else None


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one configured experiment and return its validation selection metric, the value a
    sweeper optimises (hparams_search=...); a MemoError ends it with its message, no stack trace.

    In a sweep (-m) a failing job is recorded in its directory instead and returns None, and the
    others go on.
    """
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from memo.sweep import run_sweep_job

        metrics: list[dict[str, Any]] = []  # the job's metrics, if it succeeds

        def job(job_cfg: DictConfig, job_dir: Path) -> None:
            metrics.append(experiment(job_cfg, job_dir))

        run_sweep_job(job, cfg, run_dir)
        return selection_value(metrics[0]) if metrics else None
    try:
        return selection_value(experiment(cfg, run_dir))
    except MemoError as error:
        logging.getLogger("memo").error("error: %s", error)
        sys.exit(2)


def run() -> None:
    """The `memo` console script and `python run.py`: Hydra's command line, with Ctrl-C
    outside training ending in one line."""
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C outside training (there it stops after the batch)
        print(f"error: interrupted; {RESUME_HINT}", file=sys.stderr)
        sys.exit(130)
