"""What the baselines share: modality selection and an output layer with one row per emotion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import nn

from memo.errors import MemoError
from memo.models.base import MODALITY_LETTERS, EmotionModel, parse_modalities

T = TypeVar("T")


class OutputLayerModel(EmotionModel):
    """Base of EF-LSTM, LF-LSTM and MulT: a fused feature vector goes through `self.output`.

    Unlike EEA these models cannot score an unseen emotion from its word vector; for zero-shot
    evaluation `adapt_emotions` gives them an untrained row for it (docs/method.md,
    Baselines).
    """

    output: nn.Linear
    scores_from_vectors = False

    def __init__(self, modalities: str) -> None:
        super().__init__()
        self.modalities = parse_modalities(modalities)

    def select(self, text: T, audio: T, vision: T) -> dict[str, T]:
        """The used modalities' values (feature sizes or tensors), keyed by letter, t-a-v order."""
        values = dict(zip(MODALITY_LETTERS, (text, audio, vision), strict=True))
        return {m: values[m] for m in self.modalities}

    def score(self, features: torch.Tensor, emotion_vectors: torch.Tensor) -> torch.Tensor:
        """(B, F) fused features -> (B, K) logits; K must match the output layer's rows."""
        wanted, rows = emotion_vectors.shape[0], self.output.out_features
        if wanted != rows:
            raise MemoError(
                f"{type(self).__name__} has an output layer for {rows} emotions but was asked "
                f"to score {wanted}; call adapt_emotions(trained, target) first (the trainer "
                "does this when evaluating on a different emotion set)"
            )
        return self.output(features)

    def adapt_emotions(self, trained: Sequence[str], target: Sequence[str]) -> None:
        """Rebuild the output layer for `target`: rows of trained emotions are copied, others
        keep nn.Linear's random initialisation."""
        old = self.output
        if len(trained) != old.out_features:
            raise MemoError(
                f"adapt_emotions: the output layer has {old.out_features} rows but "
                f"{len(trained)} trained emotions were given: {list(trained)}"
            )
        new = nn.Linear(
            old.in_features, len(target), device=old.weight.device, dtype=old.weight.dtype
        )
        row_of = {name: i for i, name in enumerate(trained)}
        with torch.no_grad():
            for row, name in enumerate(target):
                if name in row_of:
                    new.weight[row] = old.weight[row_of[name]]
                    new.bias[row] = old.bias[row_of[name]]
        self.output = new
