"""Hydra callbacks that check, before any job starts, what Hydra itself would crash on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


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


class OutputDirCheck(Callback):
    """Fail fast with a readable message when the run or sweep folder is not writable."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _require_writable(config.hydra.run.dir, "paths.output_dir / hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _require_writable(config.hydra.sweep.dir, "paths.multirun_dir / hydra.sweep.dir")
