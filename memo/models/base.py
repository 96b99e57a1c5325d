"""What every memo model shares: the forward signature, modality parsing, emotion-set changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from memo.errors import config_error

MODALITY_LETTERS = "tav"
RNNKind = Literal["lstm", "gru"]  # model.rnn


def parse_modalities(modalities: str) -> str:
    """Validate a modality string (a non-empty subset of 'tav') and return it in t, a, v order."""
    text = str(modalities)
    if not text or any(c not in MODALITY_LETTERS for c in text) or len(set(text)) != len(text):
        raise config_error(
            "model.modalities", modalities, "a non-empty subset of 'tav' such as t, a, v, ta, tav"
        )
    return "".join(c for c in MODALITY_LETTERS if c in text)


class EmotionModel(nn.Module):
    """Base class: `forward(text, audio, vision, emotion_vectors)` returns (B, K) logits.

    `emotion_vectors` is (K, E), one frozen word vector per emotion to score. Models that
    read it (EEA) can score any emotion set; models with an output layer (baselines) use
    only K and must be widened with `adapt_emotions` before scoring new emotions.
    """

    modalities: str
    scores_from_vectors = True  # scores any emotion through its vector (False: output rows)

    def forward(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        vision: torch.Tensor,
        emotion_vectors: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """Refuse settings that are each valid but do not fit together, before data loads
        (`settings`: the model's config values, already checked against its signature)."""
        parse_modalities(settings["modalities"])

    def adapt_emotions(self, trained: Sequence[str], target: Sequence[str]) -> None:
        """Prepare to score `target` emotions after training on `trained` (default: nothing)."""
