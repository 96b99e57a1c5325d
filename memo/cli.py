"""memo's command line: `memo [group=option ...] [key=value ...]`, or `python run.py ...` from
a clone; Hydra over the configs shipped in this package (memo/conf)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from memo.composition import check_overrides, composition_error
from memo.errors import MemoError

RESUME_HINT = "run the same command with resume=true to continue from the last finished epoch"
# Set by `run` so that Hydra raises a composition error to it (one line, see
# composition_error) instead of printing it over several lines; `main` unsets it again,
# so that errors in the run itself are reported as Hydra reports them.
FULL_ERROR = "HYDRA_FULL_ERROR"


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
    if _owns_full_error():
        del os.environ[FULL_ERROR]
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


_owned: list[bool] = []  # holds True while `run` has set FULL_ERROR (not the user)


def _owns_full_error() -> bool:
    return bool(_owned) and os.environ.get(FULL_ERROR) == "1"


# Hydra's command-line options that take a value, and the topics `--info` may take.
VALUE_OPTIONS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name",
                 "-cn", "--config-dir", "-cd", "--experimental-rerun"}  # fmt: skip
INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def command_line_overrides(argv: list[str]) -> list[str]:
    """The overrides among `argv`, Hydra's options and their values left out (Hydra's own
    parser lives in its private modules)."""
    overrides: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else None
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in VALUE_OPTIONS or (arg in ("--info", "-i") and following in INFO_TOPICS)
        else:
            overrides.append(arg)
    return overrides


def run() -> None:
    """The `memo` console script and `python run.py`: Hydra's command line, with a bad key,
    value or option, and Ctrl-C outside training, each ending in one line."""
    overrides = command_line_overrides(sys.argv[1:])
    try:
        check_overrides(overrides)
    except MemoError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if FULL_ERROR not in os.environ:
        os.environ[FULL_ERROR] = "1"
        _owned.append(True)
    try:
        main()
    except KeyboardInterrupt as error:  # Ctrl-C outside training (there it stops after the
        # batch); a sweep's job says how to finish the sweep instead
        print(f"error: interrupted; {str(error) or RESUME_HINT}", file=sys.stderr)
        sys.exit(130)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        if not _owns_full_error():  # raised by the run, not by Hydra's start-up (ValueError:
            raise  # `-m --cfg job`, "Only one of --run, --multirun, --cfg ... can be specified")
        print(f"error: {composition_error(error, overrides)}", file=sys.stderr)
        sys.exit(2)
