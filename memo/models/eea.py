"""EEA: emotion-embedding attention (Dai et al., AACL 2020), as the authors' code computes it."""

from __future__ import annotations

import torch
from torch import nn

from memo.errors import config_error
from memo.models.base import EmotionModel, RNNKind, parse_modalities
from memo.models.encoders import RNNEncoder
from memo.schema import DropoutRate, PositiveInt


class EEA(EmotionModel):
    """Per-modality RNNs scored against emotion word vectors.

    Text utterance vectors are compared with the word vectors directly; learned linear maps
    carry the vectors into audio and visual space. Per-modality dot-product scores are fused
    by one learnable weight per used modality (initialised to 1/M, no bias). Any emotion set
    can be scored, including emotions never seen in training.
    """

    def __init__(
        self,
        text_dim: int,
        audio_dim: int,
        vision_dim: int,
        num_emotions: int,
        emotion_dim: int,
        *,
        modalities: str,
        rnn: RNNKind,
        num_layers: PositiveInt,
        bidirectional: bool,
        dropout: DropoutRate,
        hidden_text: PositiveInt,
        hidden_audio: PositiveInt,
        hidden_vision: PositiveInt,
    ) -> None:
        super().__init__()
        self.modalities = parse_modalities(modalities)
        if "t" in self.modalities and hidden_text != emotion_dim:
            raise config_error(
                "model.hidden_text",
                hidden_text,
                f"the emotion vector size {emotion_dim} (embeddings.dim), because text "
                "utterance vectors are compared with emotion vectors directly",
            )
        inputs = {"t": text_dim, "a": audio_dim, "v": vision_dim}
        hidden = {"t": hidden_text, "a": hidden_audio, "v": hidden_vision}
        self.encoders = nn.ModuleDict(
            {
                m: RNNEncoder(inputs[m], hidden[m], num_layers, bidirectional, dropout, rnn, "sum")
                for m in self.modalities
            }
        )
        # Maps from word-vector space into audio / visual utterance space (weight and bias).
        self.projections = nn.ModuleDict(
            {m: nn.Linear(emotion_dim, hidden[m]) for m in self.modalities if m != "t"}
        )
        # One fusion weight per modality; a single modality's score is the logit itself.
        count = len(self.modalities)
        self.fusion = nn.Parameter(torch.full((count,), 1.0 / count)) if count > 1 else None

    def modality_scores(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        vision: torch.Tensor,
        emotion_vectors: torch.Tensor,
    ) -> torch.Tensor:
        """(M, B, K) dot-product scores of each used modality against each emotion."""
        inputs = {"t": text, "a": audio, "v": vision}
        scores = []
        for m in self.modalities:
            utterance = self.encoders[m](inputs[m])
            emotions = emotion_vectors if m == "t" else self.projections[m](emotion_vectors)
            scores.append(utterance @ emotions.T)
        return torch.stack(scores)

    def forward(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        vision: torch.Tensor,
        emotion_vectors: torch.Tensor,
    ) -> torch.Tensor:
        scores = self.modality_scores(text, audio, vision, emotion_vectors)
        if self.fusion is None:
            return scores[0]
        return torch.einsum("m,mbk->bk", self.fusion, scores)

    def projected_emotions(self, emotion_vectors: torch.Tensor) -> dict[str, torch.Tensor]:
        """The emotion vectors as seen by each modality (text: unchanged), for inspection."""
        with torch.no_grad():
            return {
                m: emotion_vectors if m == "t" else self.projections[m](emotion_vectors)
                for m in self.modalities
            }
