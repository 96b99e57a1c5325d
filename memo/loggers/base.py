"""The interface every logger implements; calls a logger cannot use do nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch

from memo.errors import MemoError


@contextlib.contextmanager
def opening(setting: str) -> Iterator[None]:
    """Where a logger first reaches its store (a file that is no database, a missing driver,
    an unreachable server, no W&B login): any failure as one MemoError naming `setting`."""
    try:
        yield
    except MemoError:
        raise
    except Exception as error:
        reason = " ".join(str(error).split("\n")[0].split())
        raise MemoError(f"{setting}: cannot log there ({type(error).__name__}: {reason})") from None


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
