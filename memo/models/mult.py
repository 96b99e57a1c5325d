"""Multimodal Transformer baseline (MulT, Tsai et al. ACL 2019), method.md Baselines.

Each used modality is projected to a common size by a temporal convolution; every target
modality attends to each other modality through a crossmodal transformer; per target those
outputs are concatenated and read by a self-attention ("memory") transformer; the targets'
last steps are concatenated and go through a residual projection to K logits. Sequence
lengths may differ between modalities.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from memo.errors import MemoError, config_error
from memo.models.output import OutputLayerModel


def sinusoidal_positions(
    length: int, dim: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(length, dim) sinusoidal encoding of positions 1..length in MulT's (fairseq) layout:
    sines in the first half of the features, cosines in the second."""
    half = dim // 2
    rate = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * -rate)
    angles = torch.arange(1, length + 1, device=device, dtype=torch.float32)[:, None] * freqs
    encoding = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(encoding, (0, dim % 2)).to(dtype)


class TransformerLayer(nn.Module):
    """Pre-LayerNorm transformer block. Given a `source`, attention is crossmodal: queries come
    from `x`, keys and values from `source` (normalised by the same LayerNorm, as in MulT)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_dropout: float,
        relu_dropout: float,
        res_dropout: float,
    ) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(
            dim, num_heads, dropout=attn_dropout, batch_first=True
        )
        self.feedforward_norm = nn.LayerNorm(dim)
        self.feedforward = nn.Sequential(
            nn.Linear(dim, 4 * dim),
            nn.ReLU(),
            nn.Dropout(relu_dropout),
            nn.Linear(4 * dim, dim),
        )
        self.res_dropout = nn.Dropout(res_dropout)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        query = self.attention_norm(x)
        context = query if source is None else self.attention_norm(source)
        attended, _ = self.attention(query, context, context, need_weights=False)
        x = x + self.res_dropout(attended)
        return x + self.res_dropout(self.feedforward(self.feedforward_norm(x)))


class TransformerStack(nn.Module):
    """MulT's transformer encoder: inputs scaled by sqrt(dim) plus sinusoidal positions,
    embedding dropout, `layers` blocks, final LayerNorm. Self-attention unless given a source."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        layers: int,
        attn_dropout: float,
        relu_dropout: float,
        res_dropout: float,
        embed_dropout: float,
    ) -> None:
        super().__init__()
        self.scale = math.sqrt(dim)
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, attn_dropout, relu_dropout, res_dropout)
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        positions = sinusoidal_positions(x.shape[1], x.shape[2], x.device, x.dtype)
        return self.embed_dropout(self.scale * x + positions)

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(x)
        source = None if source is None else self.embed(source)
        for layer in self.layers:
            x = layer(x, source)
        return self.norm(x)


class ResidualProjection(nn.Module):
    """MulT's output block: x + Linear(dropout(ReLU(Linear(x))))."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class MulT(OutputLayerModel):
    """Multimodal Transformer over two or three modalities.

    Attention dropout of a crossmodal transformer is that of its source (key/value) modality:
    `attn_dropout` for text, `attn_dropout_audio`, `attn_dropout_vision`; the memory
    transformers use `attn_dropout`, as in the MulT reference code. `embed_dropout` applies
    to the text features before projection and to every transformer's input. `kernel_size`
    must be odd so that 'same' padding keeps each sequence's length. `emotion_dim` is unused.
    """

    def __init__(
        self,
        text_dim: int,
        audio_dim: int,
        vision_dim: int,
        num_emotions: int,
        emotion_dim: int,
        modalities: str = "tav",
        hidden: int = 40,
        num_heads: int = 10,
        layers: int = 4,
        memory_layers: int = 3,
        kernel_size: int = 1,
        attn_dropout: float = 0.25,
        attn_dropout_audio: float = 0.0,
        attn_dropout_vision: float = 0.0,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.3,
        out_dropout: float = 0.1,
    ) -> None:
        super().__init__(modalities)
        if len(self.modalities) < 2:
            raise MemoError(
                f"model mult needs at least two modalities, got modalities={self.modalities}: "
                "each modality attends to the others (crossmodal attention). For one modality "
                "use model=rnn_ef, rnn_lf or eea"
            )
        if hidden % num_heads:
            raise config_error("model.hidden", hidden, f"a multiple of num_heads ({num_heads})")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise config_error("model.kernel_size", kernel_size, "a positive odd number")
        dims = self.select(text_dim, audio_dim, vision_dim)
        source_dropout = self.select(attn_dropout, attn_dropout_audio, attn_dropout_vision)
        stack = partial(
            TransformerStack,
            num_heads=num_heads,
            relu_dropout=relu_dropout,
            res_dropout=res_dropout,
            embed_dropout=embed_dropout,
        )
        memory_dim = (len(self.modalities) - 1) * hidden

        self.text_dropout = nn.Dropout(embed_dropout)
        self.projections = nn.ModuleDict(
            {
                m: nn.Conv1d(dims[m], hidden, kernel_size, padding="same", bias=False)
                for m in self.modalities
            }
        )
        self.crossmodal = nn.ModuleDict(
            {
                target + source: stack(hidden, layers=layers, attn_dropout=source_dropout[source])
                for target in self.modalities
                for source in self.modalities
                if source != target
            }
        )
        self.memory = nn.ModuleDict(
            {
                target: stack(memory_dim, layers=memory_layers, attn_dropout=attn_dropout)
                for target in self.modalities
            }
        )
        fused_dim = len(self.modalities) * memory_dim
        self.projection = ResidualProjection(fused_dim, out_dropout)
        self.output = nn.Linear(fused_dim, num_emotions)

    def forward(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        vision: torch.Tensor,
        emotion_vectors: torch.Tensor,
    ) -> torch.Tensor:
        inputs = self.select(text, audio, vision)
        if "t" in inputs:
            inputs["t"] = self.text_dropout(inputs["t"])
        streams = {
            m: self.projections[m](x.transpose(1, 2)).transpose(1, 2) for m, x in inputs.items()
        }
        last_steps = []
        for target in self.modalities:
            crossed = [
                self.crossmodal[target + source](streams[target], streams[source])
                for source in self.modalities
                if source != target
            ]
            last_steps.append(self.memory[target](torch.cat(crossed, dim=-1))[:, -1])
        fused = torch.cat(last_steps, dim=-1)
        return self.score(self.projection(fused), emotion_vectors)
