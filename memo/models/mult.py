"""Multimodal Transformer baseline (MulT, Tsai et al. ACL 2019): docs/method.md, Baselines;
docs/mult.md.

Each used modality is projected to a common size by a temporal convolution; every target
modality attends to each other modality through a crossmodal transformer; per target those
outputs are concatenated and read by a self-attention ("memory") transformer; the targets'
last steps are concatenated and go through a residual projection to K logits. Sequence
lengths may differ between modalities. The defaults compute what the MulT reference code
computes; each switch (docs/mult.md) restores memo's earlier rule or the EEA paper's variant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal

import torch
from torch import nn

from memo.errors import MemoError, config_error
from memo.models.base import parse_modalities
from memo.models.output import OutputLayerModel
from memo.schema import DropoutRate, PositiveInt

PositionRule = Literal["skip_zero", "every_step"]
KVDropout = Literal["separate", "shared"]
Padding = Literal["same", "valid"]
Init = Literal["reference", "torch"]


def sinusoidal_table(rows: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(rows, dim) sinusoidal encodings of positions 0..rows-1 in MulT's (fairseq) layout, sines
    then cosines; row 0 is all zeros, the embedding of a step that gets no position."""
    half = dim // 2
    rate = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * -rate)
    angles = torch.arange(rows, device=device, dtype=torch.float32)[:, None] * freqs
    table = torch.cat([angles.sin(), angles.cos(), angles.new_zeros(rows, dim % 2)], dim=1)
    table[0] = 0.0
    return table.to(dtype)


def position_indices(x: torch.Tensor, rule: PositionRule) -> torch.Tensor:
    """(B, L) row of `sinusoidal_table` for each step of `x` (B, L, D).

    every_step: step j gets j + 1. skip_zero (the references, which treat the input as left
    padded): a step whose first feature is exactly 0 gets 0, and step j otherwise gets
    j + 1 - (number of such steps in its sequence), so real steps after left padding count
    from 1. Where that is negative (zero steps after real ones) the reference fails with an
    index error; here the step gets 0.
    """
    length = x.shape[1]
    steps = torch.arange(1, length + 1, device=x.device)
    if rule == "every_step":
        return steps.expand(x.shape[0], length)
    real = x[..., 0] != 0
    zeros = length - real.sum(dim=1, keepdim=True)
    return torch.where(real, steps - zeros, 0).clamp(min=0)


def future_mask(queries: int, keys: int, device: torch.device) -> torch.Tensor:
    """(queries, keys) boolean mask, True where attention is blocked: the references' causal
    mask, which lets query i see keys j <= i + |keys - queries|."""
    blocked = torch.ones(queries, keys, dtype=torch.bool, device=device)
    return blocked.triu(1 + abs(keys - queries))


class TransformerLayer(nn.Module):
    """Pre-LayerNorm transformer block. Given `key` and `value`, attention is crossmodal: queries
    come from `x`, keys and values from them (normalised by the same LayerNorm, as in MulT)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_dropout: float,
        relu_dropout: float,
        res_dropout: float,
        init: Init,
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
        if init == "reference":
            linears = (self.attention.out_proj, self.feedforward[0], self.feedforward[3])
            for linear in linears:
                nn.init.xavier_uniform_(linear.weight)
                nn.init.zeros_(linear.bias)

    def forward(
        self,
        x: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        query = self.attention_norm(x)
        if key is None or value is None:
            key = value = query
        else:
            normed_key = self.attention_norm(key)
            value = normed_key if value is key else self.attention_norm(value)
            key = normed_key
        attended, _ = self.attention(query, key, value, attn_mask=mask, need_weights=False)
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
        positions: PositionRule,
        kv_dropout: KVDropout,
        causal_mask: bool,
        init: Init,
    ) -> None:
        super().__init__()
        self.scale = math.sqrt(dim)
        self.positions = positions
        self.kv_dropout = kv_dropout
        self.causal_mask = causal_mask
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, attn_dropout, relu_dropout, res_dropout, init)
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """sqrt(dim) * x plus the positional embedding of each step, before dropout."""
        table = sinusoidal_table(x.shape[1] + 1, x.shape[2], x.device, x.dtype)
        return self.scale * x + table[position_indices(x, self.positions)]

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        query = self.embed_dropout(self.embed(x))
        key = value = None
        if source is not None:
            embedded = self.embed(source)
            key = self.embed_dropout(embedded)
            value = self.embed_dropout(embedded) if self.kv_dropout == "separate" else key
        keys = x.shape[1] if source is None else source.shape[1]
        mask = future_mask(x.shape[1], keys, x.device) if self.causal_mask else None
        for layer in self.layers:
            query = layer(query, key, value, mask)
        return self.norm(query)


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
    to the text features before projection and to every transformer's input. `kernel_size` is
    one size or [text, audio, vision]; padding "same" keeps lengths (odd kernels only),
    "valid" shortens a sequence by kernel - 1 steps. `emotion_dim` is unused.
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
        hidden: PositiveInt,
        num_heads: PositiveInt,
        layers: PositiveInt,
        memory_layers: PositiveInt,
        memory_at_least_layers: bool,
        kernel_size: PositiveInt | list[PositiveInt],
        padding: Padding,
        positions: PositionRule,
        kv_dropout: KVDropout,
        causal_mask: bool,
        init: Init,
        attn_dropout: DropoutRate,
        attn_dropout_audio: DropoutRate,
        attn_dropout_vision: DropoutRate,
        relu_dropout: DropoutRate,
        res_dropout: DropoutRate,
        embed_dropout: DropoutRate,
        out_dropout: DropoutRate,
    ) -> None:
        super().__init__(modalities)
        settings = {"hidden": hidden, "num_heads": num_heads, "kernel_size": kernel_size}
        self.check_settings({"modalities": modalities, "padding": padding, **settings})
        kernels = self.select(*self.kernel_sizes(kernel_size, padding))
        dims = self.select(text_dim, audio_dim, vision_dim)
        source_dropout = self.select(attn_dropout, attn_dropout_audio, attn_dropout_vision)
        stack = partial(
            TransformerStack,
            num_heads=num_heads,
            relu_dropout=relu_dropout,
            res_dropout=res_dropout,
            embed_dropout=embed_dropout,
            positions=positions,
            kv_dropout=kv_dropout,
            causal_mask=causal_mask,
            init=init,
        )
        memory_dim = (len(self.modalities) - 1) * hidden
        memory_depth = max(layers, memory_layers) if memory_at_least_layers else memory_layers

        self.kernels = kernels
        self.padding = padding
        self.text_dropout = nn.Dropout(embed_dropout)
        self.projections = nn.ModuleDict(
            {
                m: nn.Conv1d(dims[m], hidden, kernels[m], padding=padding, bias=False)
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
                target: stack(memory_dim, layers=memory_depth, attn_dropout=attn_dropout)
                for target in self.modalities
            }
        )
        fused_dim = len(self.modalities) * memory_dim
        self.projection = ResidualProjection(fused_dim, out_dropout)
        self.output = nn.Linear(fused_dim, num_emotions)

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> None:
        """Two or three modalities, `hidden` a multiple of `num_heads`, valid kernel sizes."""
        modalities = parse_modalities(settings["modalities"])
        if len(modalities) < 2:
            raise MemoError(
                f"model mult needs at least two modalities, got modalities={modalities}: "
                "each modality attends to the others (crossmodal attention). For one modality "
                "use model=rnn_ef, rnn_lf or eea"
            )
        hidden, heads = settings["hidden"], settings["num_heads"]
        if hidden % heads:
            raise config_error("model.hidden", hidden, f"a multiple of num_heads ({heads})")
        cls.kernel_sizes(settings["kernel_size"], settings["padding"])

    @staticmethod
    def kernel_sizes(kernel_size: int | Sequence[int], padding: Padding) -> list[int]:
        """Text, audio and vision kernel sizes from one size or three; 'same' needs odd sizes."""
        sizes = [kernel_size] * 3 if isinstance(kernel_size, int) else list(kernel_size)
        odd = padding == "same"
        valid = [isinstance(k, int) and k >= 1 and not (odd and k % 2 == 0) for k in sizes]
        if len(sizes) != 3 or not all(valid):
            kind = "positive odd" if odd else "positive"
            raise config_error(
                "model.kernel_size", kernel_size, f"a {kind} number or three [text, audio, vision]"
            )
        return sizes

    def forward(
        self,
        text: torch.Tensor,
        audio: torch.Tensor,
        vision: torch.Tensor,
        emotion_vectors: torch.Tensor,
    ) -> torch.Tensor:
        inputs = self.select(text, audio, vision)
        for m, x in inputs.items():
            if self.padding == "valid" and x.shape[1] < self.kernels[m]:
                raise MemoError(
                    f"model mult: {m} sequences have {x.shape[1]} steps, fewer than the "
                    f"convolution's kernel size {self.kernels[m]} (model.kernel_size, "
                    "model.padding=valid)"
                )
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
