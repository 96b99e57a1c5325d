"""Baselines (EF-LSTM, LF-LSTM, MulT): shapes, modality subsets, gradients, fitting, widening."""

from __future__ import annotations

import hydra
import pytest
import torch
from conftest import compose_config

from memo.errors import MemoError
from memo.models.base import EmotionModel
from memo.models.mult import MulT
from memo.models.rnn import EarlyFusionRNN, LateFusionRNN

DIMS = {"text_dim": 8, "audio_dim": 6, "vision_dim": 5}
K = 4
EMOTION_DIM = 7
BOUND = {**DIMS, "num_emotions": K, "emotion_dim": EMOTION_DIM}
SMALL = {
    "rnn_ef": (EarlyFusionRNN, {"hidden": 12}),
    "rnn_lf": (LateFusionRNN, {"hidden_text": 12, "hidden_audio": 8, "hidden_vision": 6}),
    "mult": (MulT, {"hidden": 8, "num_heads": 2, "layers": 2, "memory_layers": 1}),
}
ALL_SUBSETS = ["t", "a", "v", "ta", "tv", "av", "tav"]
MULTI_SUBSETS = ["ta", "tv", "av", "tav"]


def build(name: str, modalities: str = "tav", **overrides: object) -> EmotionModel:
    """conf/model/<name>.yaml's model, made small by SMALL's sizes and `overrides`."""
    factory = hydra.utils.instantiate(compose_config([f"model={name}"]).model)
    return factory(**{**BOUND, "modalities": modalities, **SMALL[name][1], **overrides})


def batch(
    size: int = 3, lengths: tuple[int, int, int] = (20, 20, 20), seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """(text, audio, vision, emotion_vectors) of random values."""
    gen = torch.Generator().manual_seed(seed)
    feats = [
        torch.randn(size, length, dim, generator=gen)
        for length, dim in zip(lengths, DIMS.values(), strict=True)
    ]
    return (*feats, torch.randn(K, EMOTION_DIM, generator=gen))


def cases(names: list[str], subsets: list[str]) -> list[tuple[str, str]]:
    return [(name, subset) for name in names for subset in subsets]


@pytest.mark.parametrize(
    ("name", "modalities"),
    cases(["rnn_ef", "rnn_lf"], ALL_SUBSETS) + cases(["mult"], MULTI_SUBSETS),
)
def test_aligned_output_shape(name: str, modalities: str) -> None:
    assert build(name, modalities)(*batch()).shape == (3, K)


@pytest.mark.parametrize(
    ("name", "modalities"), cases(["rnn_lf"], ALL_SUBSETS) + cases(["mult"], MULTI_SUBSETS)
)
def test_unaligned_output_shape(name: str, modalities: str) -> None:
    assert build(name, modalities)(*batch(lengths=(20, 30, 25))).shape == (3, K)


def test_early_fusion_refuses_unaligned() -> None:
    with pytest.raises(MemoError, match="text 20, audio 30, vision 25"):
        build("rnn_ef")(*batch(lengths=(20, 30, 25)))


def test_early_fusion_ignores_unused_lengths() -> None:
    assert build("rnn_ef", "ta")(*batch(lengths=(20, 20, 7))).shape == (3, K)


@pytest.mark.parametrize("modalities", ["t", "a", "v"])
def test_mult_refuses_single_modality(modalities: str) -> None:
    with pytest.raises(MemoError, match="at least two modalities"):
        build("mult", modalities)


def test_mult_refuses_hidden_not_multiple_of_heads() -> None:
    with pytest.raises(MemoError, match="model.hidden"):
        build("mult", hidden=9, num_heads=2)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_mult_wider_convolution_keeps_unaligned_lengths(kernel_size: int) -> None:
    model = build("mult", kernel_size=kernel_size)
    assert model(*batch(lengths=(20, 30, 3))).shape == (3, K)


def test_mult_refuses_even_kernel() -> None:
    with pytest.raises(MemoError, match="model.kernel_size"):
        build("mult", kernel_size=2)


@pytest.mark.parametrize("name", list(SMALL))
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = build(name)
    model(*batch()).sum().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name


@pytest.mark.parametrize("name", list(SMALL))
def test_overfits_tiny_dataset(name: str) -> None:
    torch.manual_seed(0)
    model = build(name)
    inputs = batch(size=32, lengths=(10, 10, 10), seed=1)
    labels = torch.randint(0, 2, (32, K), generator=torch.Generator().manual_seed(2)).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return loss_fn(model(*inputs), labels).item()

    initial = eval_loss()
    for _ in range(60):
        model.train()
        optimizer.zero_grad()
        loss_fn(model(*inputs), labels).backward()
        optimizer.step()
    assert eval_loss() < 0.4 * initial


@pytest.mark.parametrize("name", list(SMALL))
def test_widening_keeps_trained_rows_and_adds_one(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, num_emotions=3).eval()
    text, audio, vision, _ = batch()
    with torch.no_grad():
        before = model(text, audio, vision, torch.zeros(3, EMOTION_DIM))
        old_weight = model.output.weight.clone()
        model.adapt_emotions(["a", "b", "c"], ["a", "b", "c", "d"])
        after = model(text, audio, vision, torch.zeros(4, EMOTION_DIM))
    assert after.shape == (3, 4)
    assert torch.equal(model.output.weight[:3], old_weight)
    torch.testing.assert_close(after[:, :3], before, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(SMALL))
def test_narrowing_reorders_rows(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, num_emotions=3).eval()
    text, audio, vision, _ = batch()
    with torch.no_grad():
        before = model(text, audio, vision, torch.zeros(3, EMOTION_DIM))
        model.adapt_emotions(["a", "b", "c"], ["c", "a"])
        after = model(text, audio, vision, torch.zeros(2, EMOTION_DIM))
    torch.testing.assert_close(after, before[:, [2, 0]], rtol=0, atol=1e-6)


def test_widening_keeps_device_and_dtype() -> None:
    model = build("rnn_lf").double()
    model.adapt_emotions(["a", "b", "c", "d"], ["a", "e"])
    assert model.output.weight.dtype == torch.float64
    assert model.output.bias.dtype == torch.float64


@pytest.mark.parametrize("name", list(SMALL))
def test_scoring_another_emotion_count_needs_adapt(name: str) -> None:
    text, audio, vision, _ = batch()
    with pytest.raises(MemoError, match="adapt_emotions"):
        build(name)(text, audio, vision, torch.zeros(K + 1, EMOTION_DIM))


def test_adapt_refuses_wrong_trained_count() -> None:
    with pytest.raises(MemoError, match="4 rows"):
        build("rnn_ef").adapt_emotions(["a", "b"], ["a", "b", "c"])


@pytest.mark.parametrize(("name", "cls"), [(n, c) for n, (c, _) in SMALL.items()])
def test_config_instantiates(name: str, cls: type) -> None:
    factory = hydra.utils.instantiate(compose_config([f"model={name}"]).model)
    model = factory(text_dim=300, audio_dim=74, vision_dim=35, num_emotions=6, emotion_dim=300)
    assert isinstance(model, cls)
    assert model.modalities == "tav"
    inputs = [torch.randn(2, 5, dim) for dim in (300, 74, 35)]
    assert model(*inputs, torch.randn(6, 300)).shape == (2, 6)
