"""Recurrent baselines: early fusion (EF-LSTM) and late fusion (LF-LSTM); docs/method.md,
Baselines."""

from __future__ import annotations

import torch
from torch import nn

from memo.errors import MemoError
from memo.models.base import RNNKind
from memo.models.encoders import RNNEncoder
from memo.models.output import OutputLayerModel
from memo.schema import DropoutRate, PositiveInt

MODALITY_NAMES = {"t": "text", "a": "audio", "v": "vision"}


class EarlyFusionRNN(OutputLayerModel):
    """EF-LSTM: the used modalities' features are concatenated at every time step and read by
    one recurrent encoder; its last step goes through a linear layer to K logits.

    Needs the used modalities to share one sequence length (aligned data). `emotion_dim` is
    accepted for the trainer's common signature and unused.
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
        hidden: PositiveInt,
    ) -> None:
        super().__init__(modalities)
        input_dim = sum(self.select(text_dim, audio_dim, vision_dim).values())
        self.encoder = RNNEncoder(
            input_dim, hidden, num_layers, bidirectional, dropout, rnn, merge="concat"
        )
        self.output = nn.Linear(self.encoder.output_dim, num_emotions)

    def forward(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        vision: torch.Tensor,
        emotion_vectors: torch.Tensor,
    ) -> torch.Tensor:
        inputs = self.select(text, audio, vision)
        lengths = {MODALITY_NAMES[m]: x.shape[1] for m, x in inputs.items()}
        if len(set(lengths.values())) > 1:
            found = ", ".join(f"{name} {length}" for name, length in lengths.items())
            raise MemoError(
                f"rnn_ef fuses per time step and needs equal sequence lengths; got {found}. "
                "Use dataset.aligned=true, or a model that reads modalities separately "
                "(model=rnn_lf, eea or mult)"
            )
        fused = torch.cat(list(inputs.values()), dim=-1)
        return self.score(self.encoder(fused), emotion_vectors)


class LateFusionRNN(OutputLayerModel):
    """LF-LSTM: one recurrent encoder per used modality; their last-step outputs (directions
    concatenated) are concatenated and go through a linear layer to K logits.

    Sequence lengths may differ between modalities. `emotion_dim` is unused.
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
        super().__init__(modalities)
        dims = self.select(text_dim, audio_dim, vision_dim)
        hiddens = self.select(hidden_text, hidden_audio, hidden_vision)
        self.encoders = nn.ModuleDict(
            {
                m: RNNEncoder(
                    dims[m], hiddens[m], num_layers, bidirectional, dropout, rnn, merge="concat"
                )
                for m in self.modalities
            }
        )
        fused_dim = sum(encoder.output_dim for encoder in self.encoders.values())
        self.output = nn.Linear(fused_dim, num_emotions)

    def forward(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        vision: torch.Tensor,
        emotion_vectors: torch.Tensor,
    ) -> torch.Tensor:
        inputs = self.select(text, audio, vision)
        fused = torch.cat([self.encoders[m](x) for m, x in inputs.items()], dim=-1)
        return self.score(fused, emotion_vectors)
