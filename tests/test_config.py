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
def test_every_combination_composes_and_builds(dataset, model, regime, embeddings, tmp_path):
    target = [] if regime == "full" else ["regime.emotion=1"]  # required by zsl and fsl
    (tmp_path / "glove.emotions.840B.300d.pt").touch()  # embeddings=file checks it exists
    cfg = compose_config(
        [f"dataset={dataset}", f"model={model}", f"regime={regime}", f"embeddings={embeddings}",
         *target, f"paths.data_dir={tmp_path}"]
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
    ("override", "message"),
    [
        ("mode=predict", "'mode': got 'predict'; allowed: train | eval"),
        ("mode=eval", "'ckpt'"),
        ("ckpt=best.pt", "'ckpt': got 'best.pt'; allowed: null with mode=train (add mode=eval"),
        ("mode=eval ckpt=/", "'ckpt': got '/'; allowed: a checkpoint file (this path: a direc"),
        ("mode=eval ckpt=no/such.pt", "'ckpt': got 'no/such.pt'; allowed: a checkpoint file (th"),
        ("paths.output_dir=", "'paths.output_dir': got ''; allowed: a string that is not blank"),
        ("paths.cache_dir=''", "'paths.cache_dir': got ''; allowed: a string that is not blank"),
        ("logger=mlflow logger.mlflow.experiment=", "'logger.mlflow.experiment': got ''"),
        ("logger=wandb logger.wandb.entity=", "'logger.wandb.entity': got ''; allowed: a string"),
        (
            "logger=mlflow logger.mlflow.tracking_uri=htp://host:5000",
            "'logger.mlflow.tracking_uri': got 'htp://host:5000'; allowed: a string that is not "
            "blank (a path, or a URI of scheme file, http, https, sqlite,",
        ),  # an MLflow traceback after the data had loaded, before
        ("seed=-1", "'seed': got -1; allowed: an integer in [0, 4294967295]"),
        ("seed=18446744073709551616", "'seed': got 18446744073709551616; allowed: an integer in"),
        ("trainer.epochs=0", "'trainer.epochs': got 0; allowed: an integer >= 1"),
        ("trainer.batch_size=1.5", "'trainer.batch_size': got 1.5; allowed: an integer >= 1"),
        ("trainer.progress=maybe", "'trainer.progress': got 'maybe'; allowed: auto | true | false"),
        ("trainer.threshold=abc", "'trainer.threshold': got 'abc'; allowed: a number in (0, 1)"),
        ("trainer.threshold=2", "'trainer.threshold': got 2; allowed: a number in (0, 1)"),
        ("trainer.early_stop=0", "'trainer.early_stop': got 0; allowed: an integer >= 1, or null"),
        (
            "trainer.clip_grad_norm=abc",
            "'trainer.clip_grad_norm': got 'abc'; allowed: a number > 0",
        ),
        ("trainer.weight_decay=-1", "'trainer.weight_decay': got -1; allowed: a number >= 0"),
        ("trainer.scheduler.factor=2", "'trainer.scheduler.factor': Factor should be < 1.0"),
        ("trainer.scheduler.patience=abc", "'trainer.scheduler.patience': got 'abc'; allowed: an"),
        ("trainer.scheduler.mode=maxx", "'trainer.scheduler.mode': got 'maxx'; allowed: min | max"),
        ("+trainer.optimizer.amsgrad=yes", "'trainer.optimizer.amsgrad': got 'yes'; allowed: tr"),
        ("trainer.lr=0", "'trainer.lr': got 0; allowed: a number > 0"),
        ("trainer.lr=inf", "'trainer.lr': got inf; allowed: a number > 0"),
        ("trainer.precision=fp16", "'trainer.precision': got 'fp16'; allowed: fp32 | bf16"),
        ("trainer.compile=yes", "'trainer.compile': got 'yes'; allowed: true | false"),
        ("trainer.optimizer.lr=0.5", "'trainer.optimizer.lr': set it with trainer.lr"),
        ("trainer.optimizer._target_=os.system", "'trainer.optimizer._target_': got 'os.system'"),
        ("+trainer.scheduler.factr=0.5", "did you mean 'trainer.scheduler.factor'?"),
        ("dataset.seq_len=0", "'dataset.seq_len': got 0; allowed: an integer >= 1"),
        ("dataset.scale=0", "'dataset.scale': got 0; allowed: a number in (0, 10]"),
        ("dataset.metrics=[wa,precision]", "'dataset.metrics'"),
        ("dataset.selection=auc2", "'dataset.selection'"),
        ("dataset.source=web", "'dataset.source': got 'web'; allowed: auto | files | synthetic"),
        ("dataset.synthetic.cue_rate=2", "'dataset.synthetic.cue_rate': got 2; allowed: a number"),
        ("dataset.sizes.train=x", "'dataset.sizes.train': got 'x'; allowed: an integer >= 0"),
        ("regime=zsl", "'regime.emotion': got '???'"),
        ("regime=fsl regime.emotion=fear regime.fraction=abc", "'regime.fraction': got 'abc'"),
        ("regime=fsl regime.emotion=fear regime.fraction=0", "allowed: a number in (0, 1]"),
        ("regime=zsl regime.emotion=-1", "'regime.emotion': got -1; allowed: a string, or an"),
        ("+regime.emotion=fear", "'regime.emotion' is not a setting of regime=full"),
        ("regime._target_=memo.data.regimes.Nope", "'regime._target_'"),
        ("model.modalities=avt2", "'model.modalities'"),
        ("model.dropout=2", "'model.dropout': got 2; allowed: a number in [0, 1)"),
        ("model.dropout=1", "'model.dropout': got 1; allowed: a number in [0, 1)"),  # all zeros
        ("model=mult model.out_dropout=1", "'model.out_dropout': got 1; allowed: a number in [0,"),
        ("model.hidden_audio=0", "'model.hidden_audio': got 0; allowed: an integer >= 1"),
        ("model.num_layers=0", "'model.num_layers': got 0; allowed: an integer >= 1"),
        ("model.rnn=gruu", "'model.rnn': got 'gruu'; allowed: lstm | gru"),
        ("+model.dropuot=0.1", "'model.dropuot' is not a setting of model=EEA"),
        ("model=mult model.num_heads=7", "'model.hidden': got 40; allowed: a multiple of"),
        ("model=mult model.padding=full", "'model.padding': got 'full'; allowed: same | valid"),
        ("model=mult model.kernel_size=[3,x,3]", "'model.kernel_size[1]': got 'x'"),
        ("embeddings=file embeddings.dim=0", "'embeddings.dim': got 0; allowed: an integer >= 1"),
        ("embeddings.dim=300", "'embeddings.dim': got 300; allowed: 50"),  # glove6b50's size
        ("embeddings=file embeddings.format=csv", "'embeddings.format': got 'csv'"),
        ("logger=wandb logger.wandb.mode=sync", "'logger.wandb.mode': got 'sync'"),
        ("+trainer.lrr=1", "'trainer.lrr' is not a setting of trainer; did you mean 'trainer.lr'?"),
        ("+sed=1", "'sed' is not a setting of the run config; did you mean 'seed'?"),
    ],
)
def test_every_bad_value_ends_at_validation_in_one_line_naming_key_and_allowed(override, message):
    with pytest.raises(MemoError) as raised:
        validate(compose_config(override.split()))
    assert f"config key {message}" in str(raised.value) or message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "override", ["trainer.lr=1", "trainer.early_stop=null", "trainer.clip_grad_norm=null",
                 "regime=zsl regime.emotion=2", "trainer.divergence_factor=null", "logger=[]"]
)  # fmt: skip
def test_valid_values_pass(override):
    validate(compose_config(override.split()))  # trainer.lr=1 is a float like 1.0


def test_every_declared_trainer_key_is_read_and_every_read_key_declared():
    from memo.config import TrainerConfig
    from memo.schema import Schema

    declared = set(Schema.of_record(TrainerConfig, "trainer").fields)
    assert declared == set(compose_config([]).trainer)


def test_the_built_in_corpus_knobs_have_one_copy():
    for name in options("dataset"):
        assert "cue_rate" not in (CONF / "dataset" / f"{name}.yaml").read_text()
        assert compose_config([f"dataset={name}"]).dataset.synthetic.cue_rate == 0.25


def test_a_checkpoint_with_a_bad_model_value_is_refused(tmp_path):
    from memo.models.factory import checkpoint_model

    stored = dict(compose_config([]).model)
    stored.update(dropout=5.0, hidden_text=50)
    with pytest.raises(MemoError, match="checkpoint .*'model.dropout': got 5.0"):
        checkpoint_model(stored, tmp_path / "x.pt", None, {"text": 50, "audio": 74, "vision": 35},
                         6, 50)  # fmt: skip
