"""Every config combination composes, validates and builds its model."""

from __future__ import annotations

import itertools

import pytest
from conftest import CONF, compose_config
from hydra.utils import instantiate

from memo.config import validate
from memo.errors import MemoError
from memo.models.base import EmotionModel
from memo.models.factory import build_model


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


COMBINATIONS = list(
    itertools.product(
        options("dataset"), options("model"), options("regime"), options("embeddings")
    )
)


@pytest.mark.parametrize(("dataset", "model", "regime", "embeddings"), COMBINATIONS)
def test_every_combination_composes_and_builds(dataset, model, regime, embeddings):
    target = [] if regime == "full" else ["regime.emotion=1"]  # required by zsl and fsl
    cfg = compose_config(
        [f"dataset={dataset}", f"model={model}", f"regime={regime}", f"embeddings={embeddings}",
         *target]
    )  # fmt: skip
    validate(cfg)
    dims = {"text": cfg.embeddings.dim, "audio": 74, "vision": 35}
    built = build_model(cfg.model, dims, len(cfg.dataset.emotions), cfg.embeddings.dim)
    assert isinstance(built, EmotionModel)


@pytest.mark.parametrize("preset", options("experiment"))
@pytest.mark.parametrize("model", options("model"))
def test_paper_presets_use_the_paper_hyperparameters_with_every_model(preset, model):
    cfg = compose_config([f"experiment={preset}", f"model={model}"])
    validate(cfg)
    assert cfg.dataset.name == preset.removeprefix("paper_")
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.lr) == (100, 64, 1e-3)
    assert cfg.trainer.clip_grad_norm == 1.0 and cfg.trainer.early_stop == 8
    assert (cfg.trainer.scheduler.factor, cfg.trainer.scheduler.patience) == (0.1, 5)
    assert cfg.seed == 0
    assert cfg.model._target_.startswith("memo.models.")


def test_eea_defaults_are_the_papers_and_text_size_follows_the_vectors():
    cfg = compose_config(["model=eea"])
    model = cfg.model
    assert (model.num_layers, model.bidirectional, model.dropout) == (2, True, 0.15)
    assert (model.hidden_audio, model.hidden_vision) == (200, 100)
    assert model.hidden_text == cfg.embeddings.dim == 50


def test_optimizer_and_scheduler_are_instantiated_from_config():
    import torch

    cfg = compose_config(["trainer.lr=0.01", "trainer.optimizer._target_=torch.optim.SGD"])
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = instantiate(cfg.trainer.optimizer)(params)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.01
    scheduler = instantiate(cfg.trainer.scheduler)(optimizer)
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("mode=predict", "'mode'"),
        ("mode=eval", "'ckpt'"),
        ("seed=-1", "'seed'"),
        ("trainer.epochs=0", "'trainer.epochs'"),
        ("trainer.batch_size=1.5", "'trainer.batch_size'"),
        ("trainer.progress=maybe", "'trainer.progress'"),
        ("dataset.metrics=[wa,precision]", "'dataset.metrics'"),
        ("dataset.selection=auc2", "'dataset.selection'"),
        ("dataset.source=web", "'dataset.source'"),
        ("regime=zsl", "'regime.emotion'"),
        ("+regime.emotion=fear", "'regime'"),
        ("regime._target_=memo.data.regimes.Nope", "'regime._target_'"),
        ("model.modalities=avt2", "'model.modalities'"),
    ],
)
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(MemoError, match=f"config key {key}"):
        validate(compose_config([override]))
