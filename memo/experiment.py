"""One run, from composed config to `metrics.json`: data -> regime -> model -> train -> test."""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from memo.config import Components, validate
from memo.data.embeddings import WordVectors, emotion_vectors
from memo.data.fingerprint import fingerprint
from memo.data.regimes import RegimeData, apply_regime
from memo.data.sources import load_corpus
from memo.data.split import Corpus
from memo.errors import MemoError, out_of_memory
from memo.io import remove_temp_files, write_json
from memo.loggers import build_loggers
from memo.models.base import EmotionModel
from memo.models.factory import build_model, checkpoint_model, model_name
from memo.run_config import (
    RESUMED_FILE,
    effective_config,
    flat_config,
    is_run_only,
    split_override,
)
from memo.run_lock import RunLock
from memo.training.checkpoint_eval import check_model_overrides, check_regime, trained_by
from memo.training.checkpoints import load_checkpoint
from memo.training.results import format_table
from memo.training.resume import (
    check_compatible,
    find_unfinished_run,
    finished_run,
    last_checkpoint,
)
from memo.training.runtime import resolve_device, seed_everything
from memo.training.trainer import Evaluation, TaskSpec, Trainer

log = logging.getLogger(__name__)

LAST = Path("checkpoints") / "last.pt"


def _choice(group: str, cfg: DictConfig) -> str:
    """The config-group option picked for `group` (e.g. model -> 'eea')."""
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices[group])
    return model_name(cfg[group]._target_)


def _show_progress(setting: Any) -> bool:
    if setting == "auto":  # a terminal or a notebook, and not one of a sweep's jobs
        multirun = HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"
        return (sys.stderr.isatty() or "ipykernel" in sys.modules) and not multirun
    return bool(setting)


class VectorTable:
    """Emotion vectors for every emotion a run may score, as device tensors by emotion set."""

    def __init__(
        self,
        source: WordVectors,
        words: dict[str, str],
        emotions: tuple[str, ...],
        device: torch.device,
    ) -> None:
        array = emotion_vectors(source, words, emotions)
        self.rows = {e: torch.as_tensor(array[k], device=device) for k, e in enumerate(emotions)}
        self.sha256 = hashlib.sha256(array.tobytes()).hexdigest()  # the vectors' identity

    def __call__(self, emotions: tuple[str, ...]) -> torch.Tensor:
        return torch.stack([self.rows[e] for e in emotions])


def run_experiment(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train (or, with mode=eval, only evaluate) as configured; write and return the metrics.

    The run directory is locked for the run's life. One that already holds a finished run of
    the same effective config is not run again; one that holds a `last.pt` of the same config
    continues from it (see `resume` in config.yaml); any other config is refused. A failed
    memory allocation is a MemoError naming the settings that size memory.
    """
    try:
        return _run_locked(cfg, run_dir)
    except (MemoryError, RuntimeError) as error:
        memory = out_of_memory(error)
        if memory is None:
            raise
        raise memory from None


def _run_locked(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """`run_experiment` itself."""
    started = time.perf_counter()
    components = validate(cfg)
    effective = effective_config(cfg)
    with ExitStack() as locks:
        locks.enter_context(RunLock(run_dir))
        done = finished_run(cfg.resume, run_dir, effective)
        if done is not None:
            log.info("%s already holds a finished run of this config, on %s; not running it "
                     "again", run_dir, done.get("data_description"))  # fmt: skip
            return done
        if cfg.mode == "train" and cfg.resume is not False:
            resumed_dir = _resume_dir(cfg, run_dir)
            if resumed_dir != run_dir:
                locks.enter_context(RunLock(resumed_dir))
                run_dir = resumed_dir
        return _run(cfg, components, run_dir, effective, started)


def _run(
    cfg: DictConfig, parts: Components, run_dir: Path, effective: dict[str, Any], started: float
):
    """The run itself, in a locked run directory, with the components `validate` built."""
    for folder in (run_dir, run_dir / "checkpoints"):
        remove_temp_files(folder)  # left by a killed writer
    # A metrics.json here belongs to a finished run that resume=false starts again: removed
    # now, so that a crash cannot leave it as the result of the settings .hydra/ now names.
    (run_dir / "metrics.json").unlink(missing_ok=True)
    (run_dir / RESUMED_FILE).unlink(missing_ok=True)  # this folder holds a run again
    seed_everything(int(cfg.seed))
    device = resolve_device(str(cfg.trainer.device))
    # Checkpoints are read before the data, so that a bad file or other settings fail fast.
    checkpoint = load_checkpoint(cfg.ckpt) if cfg.mode == "eval" else None
    resume = last_checkpoint(cfg.resume, run_dir, effective) if cfg.mode == "train" else None
    dataset = parts.dataset
    corpus = load_corpus(dataset, cfg.paths.cache_dir)
    data_files = (
        fingerprint(dataset.expected_files(), Path(cfg.paths.cache_dir))
        if corpus.source == "files"
        else None
    )
    data = apply_regime(corpus, parts.regime, dataset.emotion_index)
    log.info(
        "%s: train %d / valid %d / test %d samples; trained on %s; tested on %s",
        corpus.description, len(data.train), len(data.valid), len(data.test),
        ",".join(data.seen), ",".join(data.test.emotions),
    )  # fmt: skip
    task = TaskSpec(tuple(dataset.metrics), dataset.whole_sample, dataset.selection)
    emotions = tuple(dict.fromkeys(data.seen + data.test.emotions))
    vectors = VectorTable(parts.embeddings, dataset.words, emotions, device)
    dims, emotion_dim = corpus.feature_dims(), int(cfg.embeddings.dim)
    meta = {
        "config": effective,
        "model_name": _choice("model", cfg),
        "model_config": OmegaConf.to_container(cfg.model, resolve=True),
        "dataset": str(cfg.dataset.name),
        "dims": dims,
        "emotion_dim": emotion_dim,
        "data": _data_identity(corpus.source, data_files, vectors.sha256),
    }
    trained = data.seen
    if checkpoint is not None:
        check_compatible(checkpoint, meta, Path(cfg.ckpt), keys=("dataset", "dims", "emotion_dim"))
        trained = tuple(checkpoint["emotions"])
        model, meta["model_config"] = checkpoint_model(
            checkpoint.get("model_config"), Path(cfg.ckpt), cfg.model.get("_target_"),
            dims, len(trained), emotion_dim,
        )  # fmt: skip
        meta["model_name"] = model_name(
            meta["model_config"]["_target_"], checkpoint.get("model_name")
        )
        try:
            model.load_state_dict(checkpoint["model"])
        except (RuntimeError, TypeError, AttributeError) as error:  # keys or shapes differ
            first = str(error).strip().splitlines()[0]
            raise MemoError(
                f"checkpoint {cfg.ckpt}: its weights do not fit its model config ({first})"
            ) from None
        log.info("model and its settings come from the checkpoint %s", cfg.ckpt)
        check_regime(checkpoint, effective, data, Path(cfg.ckpt))
        check_model_overrides(cfg, meta["model_config"], run_dir, Path(cfg.ckpt))
        meta["trained"] = trained_by(checkpoint, Path(cfg.ckpt), Path(cfg.paths.cache_dir))
    else:
        if resume is not None:
            check_compatible(resume, meta, run_dir / LAST)
        model = build_model(cfg.model, dims, len(trained), emotion_dim)
    parameters = sum(p.numel() for p in model.parameters())
    log.info("model: %s (%s), %d parameters, device %s",
             meta["model_name"], model.modalities, parameters, device)  # fmt: skip
    untrained = _untrained_rows(model, trained, data.test.emotions)

    logger = build_loggers(
        cfg, run_dir, resume["state"]["history"] if resume else (),
        flat_config(cfg), _tags(cfg, meta, model, corpus, data),
    )  # fmt: skip
    trainer = Trainer(
        model, vectors, cfg.trainer, task, run_dir, device, logger, meta,
        _show_progress(cfg.trainer.progress), data.target,
    )  # fmt: skip
    try:
        state = trainer.fit(data.train, data.valid, resume) if cfg.mode == "train" else None
        result = trainer.test(data.test, trained)
        metrics = _summary(cfg, meta, model, corpus, data, result, state, started, device)
        metrics["data_files"] = data_files
        metrics["best_checkpoint_sha256"] = _best_checkpoint_sha256(run_dir, cfg) if state else None
        metrics["untrained_output_rows"] = untrained
        _log_final(logger, cfg, metrics, result, data, trainer, vectors)
    finally:
        logger.close()
    write_json(run_dir / "metrics.json", metrics)
    table = format_table(
        metrics["test"], data.test.emotions, task.metrics, _title(metrics), data.target,
        data.target_label,
    )  # fmt: skip
    print(table)
    log.info("metrics written to %s", run_dir / "metrics.json")
    return metrics


def _tags(cfg: DictConfig, meta, model: EmotionModel, corpus: Corpus, data: RegimeData):
    """What names a run in experiment trackers (MLflow and W&B tags)."""
    return {
        "dataset": str(cfg.dataset.name),
        "model": meta["model_name"],
        "modalities": model.modalities,
        "regime": str(cfg.regime.name),
        "target_emotion": str(data.target),
        "data_source": corpus.source,
        "mode": str(cfg.mode),
    }


def _data_identity(source: str, files: dict[str, dict[str, Any]] | None, vectors: str):
    """What a checkpoint records of the data it was trained on, compared on resume: the source,
    each file's hash by name (the folder may move: paths.* are run-only) and the hash of the
    emotion vectors (a replaced vector file changes what EEA is given)."""
    hashes = {Path(p).name: f["sha256"] for p, f in (files or {}).items()}
    return {
        "source": source,
        "sha256": dict(sorted(hashes.items())) or None,
        "emotion_vectors_sha256": vectors,
    }


def _best_checkpoint_sha256(run_dir: Path, cfg: DictConfig) -> str:
    """The hash of the best.pt a finished training run leaves: an evaluation of that file checks
    it is the one these results came from."""
    best = run_dir / "checkpoints" / "best.pt"
    return fingerprint([best], Path(cfg.paths.cache_dir))[str(best.resolve())]["sha256"]


def _untrained_rows(model: EmotionModel, trained, tested) -> list[str]:
    """Test emotions a baseline scores with a new, untrained output row (warned about)."""
    new = [e for e in tested if e not in trained]
    if new and not model.scores_from_vectors:
        log.warning(
            "%s never trained on %s: their scores come from new, untrained output rows "
            "(the paper's zero-shot comparison for baselines)",
            type(model).__name__, ", ".join(new),
        )  # fmt: skip
        return new
    return []


def _selection(history: list[dict[str, Any]], metric: str, emotions) -> dict[str, Any]:
    """Which valid emotions the selection average covered: those whose metric is defined."""
    scalars = history[-1]["scalars"]
    used, excluded = [], []
    for emotion in emotions:
        value = scalars.get(f"valid/{metric}/{emotion}")
        (used if value is not None and math.isfinite(value) else excluded).append(emotion)
    if excluded:
        log.warning(
            "model selection used valid %s/avg over %s only: %s is undefined on valid for %s "
            "(no positive or no negative samples)",
            metric, ", ".join(used), metric, ", ".join(excluded),
        )  # fmt: skip
    return {"metric": f"{metric}/avg", "emotions": used, "excluded": excluded}


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
    write_json(run_dir / RESUMED_FILE, {"resumed_in": str(previous)})  # reports skip it
    return previous


def _summary(cfg, meta, model, corpus: Corpus, data: RegimeData, result: Evaluation, state,
             started, device):  # fmt: skip
    """The content of metrics.json: the results and everything that names them."""
    selection = str(cfg.dataset.selection)
    return {
        "status": "completed",
        "mode": str(cfg.mode),
        "dataset": str(cfg.dataset.name),
        "data_source": corpus.source,
        "data_description": corpus.description,
        "model": meta["model_name"],
        "modalities": model.modalities,
        "model_config": meta["model_config"],
        "regime": str(cfg.regime.name),
        "target_emotion": data.target,
        "seed": _model_seed(cfg, meta),
        "device": str(device),
        "seen_emotions": list(data.seen),
        "test_emotions": list(data.test.emotions),
        "best_epoch": state.best_epoch if state else None,
        "epochs_run": state.epoch if state else 0,
        "valid_best": {selection + "/avg": state.best_value} if state else None,
        "selection": _selection(state.history, selection, data.valid.emotions) if state else None,
        "test": result.metrics,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "checkpoint": str(cfg.ckpt) if cfg.ckpt else None,
        "trained": meta.get("trained"),  # mode=eval: the checkpoint and the run that trained it
        "config": meta["config"],
    }


def _model_seed(cfg: DictConfig, meta: dict[str, Any]) -> int:
    """The seed the reported model was trained with: an evaluation's is its checkpoint's (its
    own `seed` only draws a baseline's untrained rows), so that evaluating one checkpoint
    with several seeds never reads as several trained seeds."""
    trained = (meta.get("trained") or {}).get("seed")
    return trained if isinstance(trained, int) and not isinstance(trained, bool) else int(cfg.seed)


def _title(metrics: dict[str, Any]) -> str:
    """The results table's title: model, data, regime with its target (and few-shot fraction),
    seed, and the epoch of the weights tested."""
    regime = metrics["regime"]
    if metrics["target_emotion"]:
        fraction = metrics["config"].get("regime.fraction")
        share = f", fraction {fraction}" if fraction is not None else ""
        regime += f" (target {metrics['target_emotion']}{share})"
    epoch = (metrics["trained"] or {}).get("weights_epoch") or metrics["best_epoch"]
    weights = f", {'checkpoint' if metrics['mode'] == 'eval' else 'best'} epoch {epoch}"
    return (
        f"{metrics['model']} on {metrics['dataset']} ({metrics['data_source']}), "
        f"regime {regime}, seed {metrics['seed']}{weights if epoch else ''}: test"
    )


def _override_hparams(cfg: DictConfig) -> dict[str, Any]:
    """Every command-line override that shapes results (not run-only keys), as an hparam: its
    composed value where that is one value (`dataset.scale=0.03` -> 0.03), else as given."""
    if not HydraConfig.initialized():
        return {}
    hparams: dict[str, Any] = {}
    for key, given in map(split_override, HydraConfig.get().overrides.task):
        if not is_run_only(key):
            key = key.lstrip("+~")
            value = OmegaConf.select(cfg, key, default=None)
            hparams[key] = value if isinstance(value, (bool, int, float, str)) else given
    return hparams


def _log_final(logger, cfg, metrics, result, data, trainer, vectors) -> None:
    """Loggers: the config, test metrics at the best epoch, PR curves, hparams (the swept keys
    and key settings; headline metrics first), the emotion projector."""
    step = metrics["best_epoch"] or 0
    swept = _override_hparams(cfg)
    label = data.target_label
    roles = {
        e: f"{label} target" if e == data.target else "seen" if e in data.seen else "unseen"
        for e in data.test.emotions
    }
    logger.describe(OmegaConf.to_yaml(cfg, resolve=True), list(swept), roles)
    logger.scalars("test", result.metrics, step)
    logger.pr_curves("test", result.labels, result.scores, data.test.emotions, step)
    hparams = {
        **swept,  # first, so that the settings below win
        "dataset": metrics["dataset"],
        "data_source": metrics["data_source"],
        "model": metrics["model"],
        "model.modalities": metrics["modalities"],
        "regime": metrics["regime"],
        "regime.emotion": data.target,
        "seed": metrics["seed"],
        "trainer.lr": float(cfg.trainer.lr),
        "trainer.epochs": int(cfg.trainer.epochs),
        "trainer.batch_size": int(cfg.trainer.batch_size),
    }
    selection = str(cfg.dataset.selection)
    averages = ("avg", "avg_seen", "target")
    test = {f"test/{k}": v for k, v in result.metrics.items()}
    headline = {f"valid/{k}": v for k, v in (metrics["valid_best"] or {}).items()}
    headline |= {k: test[k] for k in (f"test/{selection}/{a}" for a in averages) if k in test}
    headline |= {k: v for k, v in test.items() if k.rsplit("/", 1)[-1] in averages}
    logger.hparams(hparams, {**headline, **test})
    project = getattr(trainer.model, "projected_emotions", None)
    if project is not None:
        logger.emotion_vectors(data.test.emotions, project(vectors(data.test.emotions)))
