"""MulT as its reference code computes it (docs/mult.md): positions skip padded steps, memory
depth max(layers, 3), separate key/value dropout, the EEA paper's 3/5/3 valid convolutions.

The reference code cannot run here, so `reference_logits` re-derives its forward pass from the
facts in docs/mult.md, by hand and in its own layout (time first, explicit attention
arithmetic, positions counted step by step), reading memo's weights; memo must agree with it.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_config
from hydra.utils import instantiate

from memo.config import validate
from memo.errors import MemoError
from memo.models.mult import MulT, TransformerStack, position_indices

MOSEI_DIMS = {"text_dim": 50, "audio_dim": 74, "vision_dim": 35}  # the built-in corpus
EMOTIONS = 6  # MOSEI's emotions; IEMOCAP's 4 give 2 x 241 parameters fewer
PRESETS = ["mult", "mult_eea_paper", "mult_mosei_senti"]


def preset(name: str, **overrides: Any) -> MulT:
    """The MulT of conf/model/<name>.yaml for the built-in MOSEI corpus, in eval mode."""
    torch.manual_seed(0)
    factory = instantiate(compose_config([f"model={name}"]).model)
    return factory(**MOSEI_DIMS, num_emotions=EMOTIONS, emotion_dim=50, **overrides).eval()


def stack(dim: int = 4, **overrides: Any) -> TransformerStack:
    """A one-block transformer with every dropout off unless overridden."""
    settings = {
        "num_heads": 2, "layers": 1, "attn_dropout": 0.0, "relu_dropout": 0.0,
        "res_dropout": 0.0, "embed_dropout": 0.0, "positions": "skip_zero",
        "kv_dropout": "separate", "causal_mask": False, "init": "reference",
    }  # fmt: skip
    return TransformerStack(dim, **{**settings, **overrides})


def hand_position(p: int, dim: int) -> list[float]:
    """Sinusoidal embedding of position p, MulT's layout: sines then cosines; p = 0 is zeros."""
    half = dim // 2
    if p == 0:
        return [0.0] * dim
    freqs = [math.exp(-i * math.log(10000.0) / (half - 1)) for i in range(half)]
    return [math.sin(p * f) for f in freqs] + [math.cos(p * f) for f in freqs]


def left_padded_batch(lengths: tuple[int, int, int], seed: int, pad: bool) -> list[torch.Tensor]:
    """(text, audio, vision) of 4 random samples; with `pad`, each sample keeps only its last
    few steps (fewer per sample) and is zero before them, as the data's left padding is."""
    gen = torch.Generator().manual_seed(seed)
    feats = []
    for length, dim in zip(lengths, MOSEI_DIMS.values(), strict=True):
        x = torch.randn(4, length, dim, generator=gen)
        if pad:
            for row, real in enumerate((length, length - 3, length // 2, 6)):
                x[row, : length - real] = 0.0
        feats.append(x)
    return feats


# --- Positions -------------------------------------------------------------------------------


def test_left_padded_sequence_gets_positions_only_on_its_real_steps() -> None:
    x = torch.zeros(1, 5, 4)
    x[0, 2:] = torch.tensor([[0.5, -1.0, 2.0, 0.1], [1.5, 0.0, -0.3, 0.2], [-2.0, 1.0, 0.0, 0.7]])
    embedded = stack().embed(x)[0]
    assert torch.equal(embedded[:2], torch.zeros(2, 4))  # padded: neither input nor position
    for step, position in zip((2, 3, 4), (1, 2, 3), strict=True):
        expected = torch.tensor([2.0 * v for v in x[0, step].tolist()])  # sqrt(dim) = 2
        expected += torch.tensor(hand_position(position, 4))
        torch.testing.assert_close(embedded[step], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("first_features", "expected"),
    [
        ([0, 0, 0, 7, 8], [0, 0, 0, 1, 2]),  # left padding: real steps count from 1
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),  # no padding
        ([0, 5, 0, 6, 7], [0, 0, 0, 2, 3]),  # inner zero: j + 1 - (zero steps), 0 at most 0
        ([5, 0, 0, 0, 0], [0, 0, 0, 0, 0]),  # the reference would index position -3 and fail
    ],
)
def test_position_rule_on_the_first_feature(first_features: list[int], expected: list[int]) -> None:
    x = torch.ones(1, len(first_features), 3)
    x[0, :, 0] = torch.tensor(first_features, dtype=torch.float32)
    assert position_indices(x, "skip_zero").tolist() == [expected]
    assert position_indices(x, "every_step").tolist() == [list(range(1, len(expected) + 1))]


def test_only_the_first_feature_decides_padding() -> None:
    x = torch.tensor([[[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]])
    assert position_indices(x, "skip_zero").tolist() == [[0, 1]]


# --- Memory depth, convolutions, dropout -----------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "memory_layers", "at_least", "depth"),
    [(4, 3, True, 4), (2, 3, True, 3), (5, 3, True, 5), (4, 3, False, 3), (2, 3, False, 3)],
)
def test_memory_depth(layers: int, memory_layers: int, at_least: bool, depth: int) -> None:
    model = preset(
        "mult", hidden=8, num_heads=2, layers=layers, memory_layers=memory_layers,
        memory_at_least_layers=at_least,
    )  # fmt: skip
    assert {len(memory.layers) for memory in model.memory.values()} == {depth}
    assert {len(cross.layers) for cross in model.crossmodal.values()} == {layers}


def crossmodal_lengths(model: MulT, lengths: tuple[int, int, int]) -> dict[str, tuple[int, int]]:
    """(query steps, key steps) that each crossmodal transformer receives."""
    seen: dict[str, tuple[int, int]] = {}
    for name, cross in model.crossmodal.items():
        cross.register_forward_pre_hook(
            lambda _, args, name=name: seen.update({name: (args[0].shape[1], args[1].shape[1])})
        )
    model(*left_padded_batch(lengths, 0, pad=False), torch.zeros(EMOTIONS, 50))
    return seen


def test_paper_convolutions_shorten_sequences_by_2_4_2() -> None:
    seen = crossmodal_lengths(preset("mult_eea_paper"), (20, 30, 25))
    assert seen == {"ta": (18, 26), "tv": (18, 23), "at": (26, 18), "av": (26, 23),
                    "vt": (23, 18), "va": (23, 26)}  # fmt: skip


def test_same_padding_keeps_lengths() -> None:
    seen = crossmodal_lengths(preset("mult", kernel_size=[3, 5, 3]), (20, 30, 25))
    assert seen["ta"] == (20, 30) and seen["av"] == (30, 25)


def test_valid_convolution_refuses_sequences_shorter_than_its_kernel() -> None:
    with pytest.raises(MemoError, match="a sequences have 4 steps"):
        preset("mult_eea_paper")(*left_padded_batch((20, 4, 20), 0, False), torch.zeros(6, 50))


@pytest.mark.parametrize(
    ("kernel_size", "padding"), [(2, "same"), ([3, 5], "valid"), ([3, 0, 3], "valid")]
)
def test_bad_kernel_sizes_are_refused(kernel_size: object, padding: str) -> None:
    with pytest.raises(MemoError, match="model.kernel_size"):
        preset("mult", kernel_size=kernel_size, padding=padding)


@pytest.mark.parametrize("key", ["padding", "positions", "kv_dropout", "init"])
def test_unknown_switch_values_are_refused(key: str) -> None:
    with pytest.raises(MemoError, match=f"'model.{key}': got 'other'; allowed: "):
        validate(compose_config(["model=mult", f"model.{key}=other"]))


def first_layer_inputs(kv_dropout: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(embedded source, key, value) the first block of a training crossmodal stack receives."""
    torch.manual_seed(0)
    transformer = stack(dim=16, embed_dropout=0.5, kv_dropout=kv_dropout).train()
    captured: list[torch.Tensor] = []
    transformer.layers[0].register_forward_pre_hook(lambda _, args: captured.extend(args[1:3]))
    source = torch.randn(2, 12, 16)
    transformer(torch.randn(2, 10, 16), source)
    return transformer.embed(source), captured[0], captured[1]


def test_keys_and_values_get_separate_dropout_masks() -> None:
    embedded, key, value = first_layer_inputs("separate")
    for dropped in (key, value):  # each is the embedded source, zeroed or scaled by 1 / (1 - p)
        kept = dropped != 0
        torch.testing.assert_close(dropped[kept], 2 * embedded[kept])
        assert 0.3 < kept.float().mean() < 0.7
    assert not torch.equal(key != 0, value != 0)


def test_shared_dropout_gives_keys_and_values_one_mask() -> None:
    _, key, value = first_layer_inputs("shared")
    assert value is key


# --- Parameter counts ------------------------------------------------------------------------


def reference_parameter_count(kernels: tuple[int, int, int], hidden: int = 40) -> int:
    """Parameters of the reference MulT (3 targets, 4 crossmodal and max(4, 3) memory blocks),
    counted by hand: a block of size d has attention 4d^2 + 4d, feed-forward 8d^2 + 5d and two
    LayerNorms 4d; a transformer adds a final LayerNorm 2d."""

    def transformer(d: int, blocks: int) -> int:
        return blocks * (12 * d * d + 13 * d) + 2 * d

    convolutions = sum(
        k * dim * hidden for k, dim in zip(kernels, MOSEI_DIMS.values(), strict=True)
    )
    fused = 6 * hidden
    head = 2 * (fused * fused + fused) + fused * EMOTIONS + EMOTIONS
    return convolutions + 6 * transformer(hidden, 4) + 3 * transformer(2 * hidden, 4) + head


@pytest.mark.parametrize(
    ("name", "kernels", "count"),
    [("mult", (1, 1, 1), 1_531_806), ("mult_eea_paper", (3, 5, 3), 1_550_446)],
)
def test_parameter_counts(name: str, kernels: tuple[int, int, int], count: int) -> None:
    assert reference_parameter_count(kernels) == count
    assert sum(p.numel() for p in preset(name).parameters()) == count


# --- Same weights, same logits as the reference computation ----------------------------------


def reference_positions(first_feature: list[float]) -> list[int]:
    """The references' positions for one left-padded sequence, counted step by step: a padded
    step (first feature exactly 0) gets 0, the n-th real step gets n."""
    positions, real = [], 0
    for value in first_feature:
        real += value != 0
        positions.append(real if value != 0 else 0)
    return positions


def reference_embed(x: torch.Tensor) -> torch.Tensor:
    """(L, B, D) -> sqrt(D) * x plus each step's position embedding (float32 table)."""
    rows = [
        [hand_position(p, x.shape[2]) for p in reference_positions(x[:, b, 0].tolist())]
        for b in range(x.shape[1])
    ]
    table = torch.tensor(rows, dtype=torch.float32).transpose(0, 1)
    return math.sqrt(x.shape[2]) * x + table


def reference_block(
    block: Any, x: torch.Tensor, kv: torch.Tensor | None, heads: int, causal: bool
) -> torch.Tensor:
    """One pre-LayerNorm block in (L, B, D) layout with explicit attention arithmetic."""
    norm = block.attention_norm
    q_in = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias)
    kv_in = q_in if kv is None else F.layer_norm(kv, norm.normalized_shape, norm.weight, norm.bias)
    attention = block.attention
    wq, wk, wv = attention.in_proj_weight.chunk(3)
    bq, bk, bv = attention.in_proj_bias.chunk(3)
    (lq, batch, dim), lk, hd = q_in.shape, kv_in.shape[0], q_in.shape[2] // heads
    q = (q_in @ wq.T + bq).reshape(lq, batch * heads, hd).transpose(0, 1) * hd**-0.5
    k = (kv_in @ wk.T + bk).reshape(lk, batch * heads, hd).transpose(0, 1)
    v = (kv_in @ wv.T + bv).reshape(lk, batch * heads, hd).transpose(0, 1)
    scores = q @ k.transpose(1, 2)
    if causal:
        for i in range(lq):
            scores[:, i, i + 1 + abs(lk - lq) :] = float("-inf")
    mixed = (scores.softmax(-1) @ v).transpose(0, 1).reshape(lq, batch, dim)
    x = x + attention.out_proj(mixed)
    ff_norm = block.feedforward_norm
    hidden = F.layer_norm(x, ff_norm.normalized_shape, ff_norm.weight, ff_norm.bias)
    fc1, fc2 = block.feedforward[0], block.feedforward[3]
    return x + fc2(F.relu(fc1(hidden)))


def reference_transformer(
    encoder: TransformerStack, x: torch.Tensor, kv: torch.Tensor | None, heads: int, causal: bool
) -> torch.Tensor:
    """The reference encoder in (L, B, D) layout: embed, blocks, final LayerNorm (eval mode)."""
    x, kv = reference_embed(x), None if kv is None else reference_embed(kv)
    for block in encoder.layers:
        x = reference_block(block, x, kv, heads, causal)
    return F.layer_norm(x, encoder.norm.normalized_shape, encoder.norm.weight, encoder.norm.bias)


def reference_logits(model: MulT, feats: list[torch.Tensor], causal: bool) -> torch.Tensor:
    """The reference MulT's eval-mode logits from memo's weights (three modalities)."""
    heads = model.crossmodal["ta"].layers[0].attention.num_heads
    streams = {
        m: F.conv1d(x.transpose(1, 2), model.projections[m].weight).permute(2, 0, 1)
        for m, x in zip("tav", feats, strict=True)
    }
    last = []
    for target in "tav":
        sources = [s for s in "tav" if s != target]
        crossed = [
            reference_transformer(model.crossmodal[target + s], streams[target], streams[s],
                                  heads, causal)
            for s in sources
        ]  # fmt: skip
        memory = model.memory[target]
        last.append(reference_transformer(memory, torch.cat(crossed, 2), None, heads, causal)[-1])
    fused = torch.cat(last, dim=1)
    return model.output(model.projection(fused))


@pytest.mark.parametrize("pad", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("name", PRESETS)
def test_same_weights_give_the_reference_logits(name: str, pad: bool) -> None:
    model = preset(name)
    assert {len(memory.layers) for memory in model.memory.values()} == {max(4, 3)}
    feats = left_padded_batch((20, 20, 20), seed=1, pad=pad)
    causal = name == "mult_mosei_senti"
    with torch.no_grad():
        expected = reference_logits(model, feats, causal)
        logits = model(*feats, torch.zeros(EMOTIONS, 50))
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pad", [True, False], ids=["padded", "unpadded"])
def test_positions_on_every_step_differ_from_the_reference_only_with_padding(pad: bool) -> None:
    model = preset("mult", positions="every_step")
    feats = left_padded_batch((20, 20, 20), seed=1, pad=pad)
    with torch.no_grad():
        gap = model(*feats, torch.zeros(EMOTIONS, 50)) - reference_logits(model, feats, False)
    assert (gap.abs().max() > 1e-2) if pad else (gap.abs().max() < 1e-5)
