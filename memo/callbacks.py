"""Hydra callbacks that check, before any job starts, what Hydra itself would crash on, and
what a single run would refuse before Hydra rewrites the run directory's `.hydra/` record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from memo.errors import MemoError
from memo.run_config import effective_config
from memo.run_lock import RunLock
from memo.training.resume import finished_run


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
    """Check, under the run lock, what the run itself would refuse in `run_dir`: another memo
    process there, or a finished run of other settings. Hydra writes `.hydra/` (config and
    overrides, which reports label the results with) before the run starts: refused only then,
    the directory's finished results would be left under this command's settings."""
    task = OmegaConf.create(OmegaConf.to_container(config))  # unresolved, as Hydra saves it
    with open_dict(task):
        del task["hydra"]
    try:
        effective = effective_config(task)
    except OmegaConfBaseException:  # an incomplete config: the run reports it
        return
    try:
        with RunLock(run_dir):
            finished_run(task.get("resume"), run_dir, effective)
    except MemoError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


class OutputDirCheck(Callback):
    """Fail fast with a readable message when the run or sweep folder is not writable, or the
    run folder holds what the run would refuse."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _require_writable(config.hydra.run.dir, "paths.output_dir / hydra.run.dir")
        _refuse_early(config, Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _require_writable(config.hydra.sweep.dir, "paths.multirun_dir / hydra.sweep.dir")
