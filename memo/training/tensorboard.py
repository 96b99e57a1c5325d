"""TensorBoard output of a run: scalars, hyperparameters, emotion-vector projector, PR curves."""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from memo.loggers.base import RunLogger


class TensorBoardLogger(RunLogger):
    """Writes every event of one run into `<run dir>/tb`, hyperparameters included.

    The folder is derived state: it is emptied when the logger starts (memo.loggers replays
    a resumed run's epochs), so after any kill and re-run every tag has one value per step.
    """

    def __init__(self, log_dir: Path | str) -> None:
        shutil.rmtree(log_dir, ignore_errors=True)
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, tagged: Mapping[str, float], step: int) -> None:
        """Log each value under its tag (e.g. `valid/wa/anger`); NaN values are skipped."""
        for tag, value in tagged.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

    def hparams(self, hparams: Mapping[str, object], metrics: Mapping[str, float]) -> None:
        """Record hyperparameters and final metrics in this run (HParams view), not a sub-run."""
        values = {
            k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()
        }
        finite = {
            f"hparam/{k}": v for k, v in metrics.items() if v is not None and math.isfinite(v)
        }
        for summary in hparams_summary(values, finite):
            self.writer.file_writer.add_summary(summary)
        for name, value in finite.items():
            self.writer.add_scalar(name, value)

    def emotion_vectors(
        self, names: Sequence[str], by_modality: Mapping[str, torch.Tensor]
    ) -> None:
        """Emotion vectors per modality space in the embedding projector, labelled by name."""
        for modality, vectors in by_modality.items():
            self.writer.add_embedding(
                vectors.detach().float().cpu(), metadata=list(names), tag=f"emotions_{modality}"
            )

    def pr_curves(
        self, split: str, labels: np.ndarray, scores: np.ndarray, names: Sequence[str], step: int
    ) -> None:
        """One precision-recall curve per emotion (`<split>/pr/<emotion>`)."""
        for k, name in enumerate(names):
            self.writer.add_pr_curve(f"{split}/pr/{name}", labels[:, k], scores[:, k], step)

    def close(self) -> None:
        self.writer.close()
