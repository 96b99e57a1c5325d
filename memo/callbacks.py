"""Hydra callbacks that check, before any job starts, what Hydra itself would crash on, and
what a single run would refuse before Hydra rewrites the run directory's `.hydra/` record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from memo.errors import exit_on_error
from memo.training.resume import refuse_early


def _require_writable(directory: str, key: str) -> None:
    """Create `directory` (as Hydra is about to); on failure, exit with one clear line."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".memo-write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        print(
            f"error: output directory {path} (from {key}) cannot be written: {reason}. "
            "Choose another folder, e.g. paths.output_dir=/tmp/memo-outputs",
            file=sys.stderr,
        )
        sys.exit(2)


def _refuse_early(config: DictConfig, run_dir: Path) -> None:
    """`refuse_early` for the run Hydra is about to start in `run_dir`, as one line and exit 2:
    Hydra writes `.hydra/` (config and overrides, which reports label results with) before the
    run starts, so a run refused only then would leave a finished run's results under this
    command's settings."""
    task = OmegaConf.create(OmegaConf.to_container(config))  # unresolved, as Hydra saves it
    with open_dict(task):
        del task["hydra"]
    exit_on_error(lambda: refuse_early(task, run_dir))


class OutputDirCheck(Callback):
    """Fail fast with a readable message when the run or sweep folder is not writable, or the
    run folder holds what the run would refuse."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _require_writable(config.hydra.run.dir, "paths.output_dir / hydra.run.dir")
        _refuse_early(config, Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _require_writable(config.hydra.sweep.dir, "paths.multirun_dir / hydra.sweep.dir")
