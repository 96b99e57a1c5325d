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
from memo.report.jobs import is_run_only, split_override
from memo.training.checkpoints import load_checkpoint
from memo.training.results import format_table
from memo.training.resume import check_compatible, completed_metrics, find_unfinished_run
from memo.training.tensorboard import TensorBoardLogger
from memo.training.trainer import Evaluation, TaskSpec, Trainer, resolve_device, seed_everything

log = logging.getLogger(__name__)

LAST = Path("checkpoints") / "last.pt"


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
    """Train (or, with mode=eval, only evaluate) as configured; write and return the metrics.

    A run directory that already holds a finished run is not trained again; one that holds
    a `last.pt` continues from it (see `resume` in config.yaml).
    """
    started = time.perf_counter()
    validate(cfg)
    if cfg.resume is not False and cfg.mode == "train":
        done = completed_metrics(run_dir)
        if done is not None:
            log.info("%s already holds a finished run; not training again", run_dir)
            return done
        run_dir = _resume_dir(cfg, run_dir)
    seed_everything(int(cfg.seed))
    device = resolve_device(str(cfg.trainer.device))
    corpus = load_corpus(cfg.dataset, cfg.paths.cache_dir)
    data = apply_regime(corpus, cfg.regime)
    log.info(
        "%s: train %d / valid %d / test %d samples; trained on %s; tested on %s",
        corpus.description, len(data.train), len(data.valid), len(data.test),
        ",".join(data.seen), ",".join(data.test.emotions),
    )  # fmt: skip
    task = TaskSpec(
        tuple(cfg.dataset.metrics), bool(cfg.dataset.whole_sample), str(cfg.dataset.selection)
    )
    vectors = VectorTable(cfg, tuple(dict.fromkeys(data.seen + data.test.emotions)), device)
    meta = {
        "model_config": OmegaConf.to_container(cfg.model, resolve=True),
        "dataset": str(cfg.dataset.name),
        "dims": corpus.feature_dims(),
        "emotion_dim": int(cfg.embeddings.dim),
    }
    trained, model_cfg, weights, resume = data.seen, cfg.model, None, None
    if cfg.mode == "eval":
        checkpoint = load_checkpoint(cfg.ckpt)
        check_compatible(checkpoint, meta, Path(cfg.ckpt), keys=("dims", "emotion_dim"))
        trained, weights = tuple(checkpoint["emotions"]), checkpoint["model"]
        model_cfg = OmegaConf.create(checkpoint["model_config"])
    elif cfg.resume is not False and (run_dir / LAST).is_file():
        resume = load_checkpoint(run_dir / LAST)
        check_compatible(resume, meta, run_dir / LAST)
    model = build_model(model_cfg, meta["dims"], len(trained), meta["emotion_dim"])
    if weights is not None:
        model.load_state_dict(weights)
    parameters = sum(p.numel() for p in model.parameters())
    log.info("model: %s, %d parameters, device %s", _choice("model", cfg), parameters, device)

    purge = resume["state"]["epoch"] + 1 if resume else None
    logger = TensorBoardLogger(run_dir / "tb", purge_step=purge)
    trainer = Trainer(
        model, vectors, cfg.trainer, task, run_dir, device, logger, meta,
        _show_progress(cfg.trainer.progress), data.target,
    )  # fmt: skip
    try:
        state = trainer.fit(data.train, data.valid, resume) if cfg.mode == "train" else None
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


def _resume_dir(cfg: DictConfig, run_dir: Path) -> Path:
    """Where training continues: this run directory, or with resume=true in a fresh one, the
    newest unfinished run of the same command under paths.output_dir."""
    if cfg.resume is not True or (run_dir / LAST).is_file():
        return run_dir
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    previous = find_unfinished_run(Path(cfg.paths.output_dir), overrides, exclude=run_dir)
    if previous is None:
        raise MemoError(
            f"resume=true: no unfinished run with the overrides {overrides} under "
            f"{cfg.paths.output_dir}; give its directory with hydra.run.dir=<run dir>"
        )
    log.info("resuming the run in %s (this directory keeps only this log)", previous)
    return previous


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


def _override_hparams() -> dict[str, str]:
    """Every command-line override that shapes results (not paths/progress), as an hparam."""
    if not HydraConfig.initialized():
        return {}
    pairs = (split_override(o) for o in HydraConfig.get().overrides.task)
    return {key: value for key, value in pairs if not is_run_only(key)}


def _log_final(logger, cfg, metrics, result, data, trainer, vectors) -> None:
    """TensorBoard: test metrics at the best epoch, PR curves, hparams, emotion projector."""
    step = metrics["best_epoch"] or 0
    logger.scalars("test", result.metrics, step)
    logger.pr_curves("test", result.labels, result.scores, data.test.emotions, step)
    hparams = {
        **_override_hparams(),  # first, so that the typed values below win
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
