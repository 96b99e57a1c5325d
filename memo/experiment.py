"""One run, from composed config to `metrics.json`: data -> regime -> model -> train -> test."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from memo.config import validate
from memo.data.embeddings import emotion_vectors
from memo.data.regimes import RegimeData, apply_regime
from memo.data.sources import load_corpus
from memo.data.split import Corpus
from memo.errors import MemoError
from memo.io import write_json
from memo.models.base import EmotionModel
from memo.training.checkpoints import load_checkpoint
from memo.training.results import format_table
from memo.training.tensorboard import TensorBoardLogger
from memo.training.trainer import Evaluation, TaskSpec, Trainer, resolve_device, seed_everything

log = logging.getLogger(__name__)


def _choice(group: str, cfg: DictConfig) -> str:
    """The config-group option picked for `group` (e.g. model -> 'eea')."""
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices[group])
    return str(cfg[group].get("name") or cfg[group]._target_.rsplit(".", 1)[-1].lower())


def _show_progress(setting: Any) -> bool:
    if setting == "auto":
        multirun = HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"
        return sys.stderr.isatty() and not multirun
    return bool(setting)


class VectorTable:
    """Emotion vectors for every emotion a run may score, as device tensors by emotion set."""

    def __init__(self, cfg: DictConfig, emotions: tuple[str, ...], device: torch.device) -> None:
        array = emotion_vectors(cfg.embeddings, cfg.dataset.words, emotions)
        self.rows = {e: torch.as_tensor(array[k], device=device) for k, e in enumerate(emotions)}

    def __call__(self, emotions: tuple[str, ...]) -> torch.Tensor:
        return torch.stack([self.rows[e] for e in emotions])


def build_model(model_cfg: DictConfig, dims: dict[str, int], emotions: int, emotion_dim: int):
    """Instantiate `model_cfg` (a `_partial_` target) with sizes taken from the data."""
    factory = instantiate(model_cfg)
    try:
        model = factory(
            text_dim=dims["text"],
            audio_dim=dims["audio"],
            vision_dim=dims["vision"],
            num_emotions=emotions,
            emotion_dim=emotion_dim,
        )
    except TypeError as error:
        raise MemoError(f"model config does not match {model_cfg._target_}: {error}") from None
    if not isinstance(model, EmotionModel):
        raise MemoError(f"model._target_ {model_cfg._target_} is not a memo EmotionModel")
    return model


def run_experiment(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train (or, with mode=eval, only evaluate) as configured; write and return the metrics."""
    started = time.perf_counter()
    validate(cfg)
    seed_everything(int(cfg.seed))
    device = resolve_device(str(cfg.trainer.device))
    corpus = load_corpus(cfg.dataset, cfg.paths.cache_dir)
    data = apply_regime(corpus, cfg.regime)
    log.info(
        "%s: train %d / valid %d / test %d samples; trained on %s; tested on %s",
        corpus.description,
        len(data.train),
        len(data.valid),
        len(data.test),
        ",".join(data.seen),
        ",".join(data.test.emotions),
    )
    task = TaskSpec(
        tuple(cfg.dataset.metrics), bool(cfg.dataset.whole_sample), str(cfg.dataset.selection)
    )
    vectors = VectorTable(cfg, tuple(dict.fromkeys(data.seen + data.test.emotions)), device)
    dims = corpus.feature_dims()
    emotion_dim = int(cfg.embeddings.dim)
    model_cfg = cfg.model
    checkpoint = load_checkpoint(cfg.ckpt) if cfg.mode == "eval" else None
    if checkpoint is not None:
        model_cfg = OmegaConf.create(checkpoint["model_config"])
        _check_compatible(checkpoint, dims, emotion_dim, cfg.ckpt)
    trained = tuple(checkpoint["emotions"]) if checkpoint is not None else data.seen
    model = build_model(model_cfg, dims, len(trained), emotion_dim)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
    log.info(
        "model: %s, %d parameters, device %s",
        _choice("model", cfg),
        sum(p.numel() for p in model.parameters()),
        device,
    )

    logger = TensorBoardLogger(run_dir / "tb")
    meta = {
        "model_config": OmegaConf.to_container(cfg.model, resolve=True),
        "dims": dims,
        "emotion_dim": emotion_dim,
        "dataset": str(cfg.dataset.name),
    }
    trainer = Trainer(
        model,
        vectors,
        cfg.trainer,
        task,
        run_dir,
        device,
        logger,
        meta,
        _show_progress(cfg.trainer.progress),
        data.target,
    )
    try:
        state = trainer.fit(data.train, data.valid) if checkpoint is None else None
        result = trainer.test(data.test, trained)
        metrics = _summary(cfg, corpus, data, result, state, started, device)
        _log_final(logger, cfg, metrics, result, data, trainer, vectors)
    finally:
        logger.close()
    write_json(run_dir / "metrics.json", metrics)
    label = "unseen" if cfg.regime.name == "zsl" else "few-shot"
    table = format_table(
        metrics["test"], data.test.emotions, task.metrics, _title(metrics), data.target, label
    )
    print(table)
    log.info("metrics written to %s", run_dir / "metrics.json")
    return metrics


def _check_compatible(checkpoint: dict, dims: dict[str, int], emotion_dim: int, path) -> None:
    """A checkpoint must match the data's feature sizes and the emotion vector size."""
    if checkpoint.get("dims") != dims or checkpoint.get("emotion_dim") != emotion_dim:
        raise MemoError(
            f"checkpoint {path} was trained on feature sizes {checkpoint.get('dims')} with "
            f"{checkpoint.get('emotion_dim')}-d emotion vectors; this data has {dims} and "
            f"{emotion_dim}-d vectors"
        )


def _summary(cfg, corpus: Corpus, data: RegimeData, result: Evaluation, state, started, device):
    """The content of metrics.json."""
    return {
        "status": "completed",
        "mode": str(cfg.mode),
        "dataset": str(cfg.dataset.name),
        "data_source": corpus.source,
        "data_description": corpus.description,
        "model": _choice("model", cfg),
        "modalities": str(cfg.model.modalities),
        "regime": str(cfg.regime.name),
        "target_emotion": data.target,
        "seed": int(cfg.seed),
        "device": str(device),
        "seen_emotions": list(data.seen),
        "test_emotions": list(data.test.emotions),
        "best_epoch": state.best_epoch if state else None,
        "epochs_run": state.epoch if state else 0,
        "valid_best": {cfg.dataset.selection + "/avg": state.best_value} if state else None,
        "test": result.metrics,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "checkpoint": str(cfg.ckpt) if cfg.ckpt else None,
    }


def _title(metrics: dict[str, Any]) -> str:
    best = f", best epoch {metrics['best_epoch']}" if metrics["best_epoch"] else ""
    return (
        f"{metrics['model']} on {metrics['dataset']} ({metrics['data_source']}), "
        f"regime {metrics['regime']}, seed {metrics['seed']}{best}: test"
    )


def _log_final(logger, cfg, metrics, result, data, trainer, vectors) -> None:
    """TensorBoard: test metrics at the best epoch, PR curves, hparams, emotion projector."""
    step = metrics["best_epoch"] or 0
    logger.scalars("test", result.metrics, step)
    logger.pr_curves("test", result.labels, result.scores, data.test.emotions, step)
    hparams = {
        "dataset": metrics["dataset"],
        "data_source": metrics["data_source"],
        "model": metrics["model"],
        "modalities": metrics["modalities"],
        "regime": metrics["regime"],
        "target_emotion": str(data.target),
        "seed": metrics["seed"],
        "epochs": int(cfg.trainer.epochs),
        "batch_size": int(cfg.trainer.batch_size),
        "lr": float(cfg.trainer.lr),
    }
    logger.hparams(hparams, {f"hparam/test/{k}": v for k, v in result.metrics.items()})
    project = getattr(trainer.model, "projected_emotions", None)
    if project is not None:
        logger.emotion_vectors(data.test.emotions, project(vectors(data.test.emotions)))
