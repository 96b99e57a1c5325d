"""Where a run's numbers go besides metrics.json: TensorBoard, history.csv, MLflow, W&B.

Every logger is derived state: it is started fresh when a run (re)starts and the epochs a
resumed run already trained are replayed from its checkpoint's history, so each logger ends
with exactly one value per step whatever kills and re-runs happened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from memo.errors import config_error
from memo.loggers.base import RunLogger
from memo.loggers.history_csv import HistoryCSV

LOGGERS = ("tensorboard", "csv", "mlflow", "wandb")


class Loggers(RunLogger):
    """Several loggers behind one: each call goes to every one of them."""

    def __init__(self, loggers: Sequence[RunLogger]) -> None:
        self.loggers = list(loggers)

    def log(self, tagged: Mapping[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log(tagged, step)

    def describe(self, config: str, swept: Sequence[str], roles: Mapping[str, str]) -> None:
        for logger in self.loggers:
            logger.describe(config, swept, roles)

    def hparams(self, hparams: Mapping[str, object], metrics: Mapping[str, float]) -> None:
        for logger in self.loggers:
            logger.hparams(hparams, metrics)

    def pr_curves(
        self, split: str, labels: np.ndarray, scores: np.ndarray, names: Sequence[str], step: int
    ) -> None:
        for logger in self.loggers:
            logger.pr_curves(split, labels, scores, names, step)

    def emotion_vectors(
        self, names: Sequence[str], by_modality: Mapping[str, torch.Tensor]
    ) -> None:
        for logger in self.loggers:
            logger.emotion_vectors(names, by_modality)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def build_loggers(
    cfg: DictConfig,
    run_dir: Path,
    history: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
    tags: Mapping[str, str],
) -> Loggers:
    """The loggers `cfg.logger` selects (history.csv always), started fresh and given the
    epochs already trained; `config` (the composed config) and `tags` name the run."""
    chosen = dict(cfg.get("logger") or {})
    unknown = [name for name in chosen if name not in LOGGERS]
    if unknown:
        raise config_error("logger", unknown, f"a list from {list(LOGGERS)}")
    loggers: list[RunLogger] = [HistoryCSV(run_dir / "history.csv")]
    if "tensorboard" in chosen:
        from memo.training.tensorboard import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir / "tb"))
    if "mlflow" in chosen:
        from memo.loggers.mlflow import MLflowLogger

        loggers.append(MLflowLogger(chosen["mlflow"], run_dir, cfg.paths.output_dir, config, tags))
    if "wandb" in chosen:
        from memo.loggers.wandb import WandbLogger

        loggers.append(WandbLogger(chosen["wandb"], run_dir, config, tags))
    combined = Loggers(loggers)
    for epoch in history:
        combined.log(epoch["scalars"], int(epoch["epoch"]))
    return combined
