"""The interface every logger implements; calls a logger cannot use do nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch


class RunLogger:
    """One destination for a run's scalars, hyperparameters and final metrics."""

    def log(self, tagged: Mapping[str, float], step: int) -> None:
        """Scalars by tag (e.g. `valid/wa/anger`) at `step` (the epoch); NaN values skipped."""
        raise NotImplementedError

    def scalars(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        """Log each value as `<prefix>/<name>` (e.g. `test/wa/anger`)."""
        self.log({f"{prefix}/{name}": value for name, value in values.items()}, step)

    def describe(self, config: str, swept: Sequence[str], roles: Mapping[str, str]) -> None:
        """Sent before the final results: the composed config (YAML), the config keys set on the
        command line, and each test emotion's role (`seen`, `unseen target`, ...)."""

    def hparams(self, hparams: Mapping[str, object], metrics: Mapping[str, float]) -> None:
        """The run's key settings and its final metrics (keys such as `test/wa/avg`, headline
        metrics first)."""

    def pr_curves(
        self, split: str, labels: np.ndarray, scores: np.ndarray, names: Sequence[str], step: int
    ) -> None:
        """Precision-recall curves per emotion, where the logger can show them."""

    def emotion_vectors(
        self, names: Sequence[str], by_modality: Mapping[str, torch.Tensor]
    ) -> None:
        """Emotion vectors per modality space, where the logger can show them."""

    def close(self) -> None:
        """Flush and release the destination."""
