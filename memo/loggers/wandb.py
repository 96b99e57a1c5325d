"""Weights & Biases: a run per memo run, offline (run files in the run directory) or online."""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from memo.errors import MemoError, config_error
from memo.loggers.base import RunLogger, opening

MODES = ("offline", "online")


class WandbLogger(RunLogger):
    """Scalars per epoch, the composed config, tags, final test metrics as the run summary.

    Offline run files go to `<run dir>/wandb/`; a restarted run removes its earlier attempt's
    files there and logs the replayed history into a new run. (Online, an earlier attempt's
    run stays on the server.)
    """

    def __init__(
        self,
        settings: DictConfig,
        run_dir: Path,
        config: Mapping[str, Any],
        tags: Mapping[str, str],
    ) -> None:
        mode = str(settings.mode)
        if mode not in MODES:
            raise config_error("logger.wandb.mode", mode, " | ".join(MODES))
        try:
            import wandb
        except ImportError:
            raise MemoError("logger=wandb needs wandb: pip install -e '.[wandb]'") from None
        shutil.rmtree(run_dir / "wandb", ignore_errors=True)
        with opening(f"logger=wandb (logger.wandb.mode={mode})"):  # e.g. online, no login
            self.run = wandb.init(
                project=str(settings.project),
                entity=settings.entity,
                mode=mode,
                dir=str(run_dir),
                name=run_dir.name,
                config=dict(config),
                tags=[f"{key}:{value}" for key, value in tags.items()],
                settings=wandb.Settings(silent=True, console="off"),
            )

    def log(self, tagged: Mapping[str, float], step: int) -> None:
        finite = {t: v for t, v in tagged.items() if v is not None and math.isfinite(v)}
        if finite:
            self.run.log(finite, step=step)

    def hparams(self, hparams: Mapping[str, object], metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            if value is not None and math.isfinite(value):
                self.run.summary[key] = value

    def close(self) -> None:
        self.run.finish()
