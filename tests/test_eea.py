"""EEA: shapes for every modality subset, gradient flow, the method's scoring, emotion swapping."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config
from hydra.utils import instantiate

from memo.errors import MemoError
from memo.models.eea import EEA

SUBSETS = ["t", "a", "v", "ta", "tv", "av", "tav"]
B, E = 5, 8


def make(modalities: str = "tav", **kwargs) -> EEA:
    torch.manual_seed(0)
    sizes = dict(hidden_text=E, hidden_audio=6, hidden_vision=4, num_layers=2, dropout=0.0)
    sizes.update(kwargs)
    eea = instantiate(compose_config(["model=eea"]).model)  # the YAML's settings, then these
    return eea(7, 5, 3, num_emotions=4, emotion_dim=E, modalities=modalities, **sizes)


def inputs(steps=(10, 10, 10)):
    torch.manual_seed(1)
    t, a, v = steps
    return torch.randn(B, t, 7), torch.randn(B, a, 5), torch.randn(B, v, 3), torch.randn(4, E)


@pytest.mark.parametrize("modalities", SUBSETS)
@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_shapes_aligned_and_unaligned(modalities, rnn):
    model = make(modalities, rnn=rnn)
    assert model(*inputs()).shape == (B, 4)
    assert model(*inputs((10, 17, 13))).shape == (B, 4)


def test_every_parameter_gets_a_gradient():
    model = make("tav")
    model(*inputs()).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        # The last step of the top layer's backward direction is its first step (zero
        # state), so its recurrent weights cannot matter: that is the method, not a bug.
        if not name.endswith("weight_hh_l1_reverse"):
            assert param.grad.abs().sum() > 0, name


def test_logits_follow_the_method():
    """logit_k = w_t h_t.e_k + w_a h_a.(W_a e_k + b_a) + w_v h_v.(W_v e_k + b_v)."""
    model = make("tav").eval()
    text, audio, vision, vectors = inputs()
    with torch.no_grad():
        h = {m: model.encoders[m](x) for m, x in zip("tav", (text, audio, vision), strict=True)}
        expected = (
            model.fusion[0] * h["t"] @ vectors.T
            + model.fusion[1] * h["a"] @ model.projections["a"](vectors).T
            + model.fusion[2] * h["v"] @ model.projections["v"](vectors).T
        )
        assert torch.allclose(model(text, audio, vision, vectors), expected, atol=1e-6)
    assert torch.allclose(make("ta").fusion.data, torch.tensor([0.5, 0.5]))
    assert make("a").fusion is None  # one modality: its score is the logit


def test_bidirectional_outputs_are_summed():
    model = make("t", num_layers=1).eval()
    text = inputs()[0]
    out, _ = model.encoders["t"].rnn(text)
    expected = out[:, -1, :E] + out[:, -1, E:]
    assert torch.allclose(model.encoders["t"](text), expected)


def test_new_emotions_are_scored_through_their_vectors():
    """Zero-shot readiness: adding an emotion vector leaves the others' logits unchanged."""
    model = make("tav").eval()
    text, audio, vision, vectors = inputs()
    unseen = torch.randn(1, E)
    with torch.no_grad():
        seen_logits = model(text, audio, vision, vectors)
        wider = model(text, audio, vision, torch.cat([vectors, unseen]))
        alone = model(text, audio, vision, unseen)
    assert wider.shape == (B, 5)
    assert torch.allclose(wider[:, :4], seen_logits, atol=1e-6)
    assert torch.allclose(wider[:, 4:], alone, atol=1e-6)


def test_text_hidden_size_must_match_vector_size():
    with pytest.raises(MemoError, match="model.hidden_text.*embeddings.dim"):
        make("tav", hidden_text=E + 1)
    make("av", hidden_text=E + 1)  # without text the sizes are independent


@pytest.mark.parametrize("bad", ["", "x", "tt", "tavx", "TA"])
def test_invalid_modality_strings(bad):
    with pytest.raises(MemoError, match="model.modalities.*subset of 'tav'"):
        make(bad)
