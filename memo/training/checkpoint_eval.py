"""What `mode=eval` checks and records about the checkpoint it evaluates, so that its results
are labelled as what the checkpoint is: its regime's seen and unseen emotions, its model, the
file itself and the run that trained it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from memo.data.fingerprint import fingerprint
from memo.data.regimes import RegimeData
from memo.errors import MemoError
from memo.run_config import config_differences, shown, split_override
from memo.training.resume import completed_metrics, recorded_overrides

log = logging.getLogger(__name__)


def _mapping(checkpoint: dict[str, Any], key: str) -> dict[str, Any]:
    """`checkpoint[key]` where it is a mapping, else {} (a checkpoint is someone else's data)."""
    value = checkpoint.get(key)
    return value if isinstance(value, dict) else {}


def _regime(config: dict[str, Any]) -> dict[str, Any]:
    """The `regime.*` keys of a flat config, which say how a model was trained."""
    return {k: v for k, v in config.items() if k.startswith("regime.") and k != "regime._target_"}


def _overrides(values: dict[str, Any]) -> str:
    """`{'regime.name': 'zsl', 'regime.emotion': 'fear'}` -> `regime=zsl regime.emotion=fear`."""
    return " ".join(f"{'regime' if k == 'regime.name' else k}={v}" for k, v in values.items())


def check_regime(checkpoint, effective: dict[str, Any], data: RegimeData, path: Path):
    """Refuse an evaluation whose regime does not describe how the checkpoint was trained: its
    tables and metrics.json would call trained emotions unseen (zero-shot scores that are not),
    emotions it never trained seen, or label another few-shot setting."""
    trained = list(checkpoint["emotions"])
    stored = _mapping(checkpoint, "config")
    problems = []
    unseen = [e for e in trained if e not in data.seen]
    if unseen:
        problems.append(f"treats {', '.join(unseen)}, which it trained on, as unseen")
    never = [e for e in data.seen if e not in trained]
    if never:
        problems.append(f"treats {', '.join(never)}, which it never trained on, as trained")
    fsl = "fsl" in (stored.get("regime.name"), effective.get("regime.name"))
    if fsl and not problems and _regime(stored) != _regime(effective):
        problems.append("names another few-shot setting")
    if problems:
        how = _overrides(_regime(stored)) or "an unrecorded regime"
        raise MemoError(
            f"checkpoint {path} was trained on {', '.join(trained)} ({how}); this evaluation's "
            f"regime ({_overrides(_regime(effective))}) "
            f"{' and '.join(problems)}, so its results would be mislabelled. Evaluate it with "
            "the regime it was trained with (or, for zero-shot, one whose unseen emotion it "
            "never trained on)"
        )


def check_model_overrides(cfg: DictConfig, model_config, run_dir: Path, path: Path):
    """Refuse model overrides (`model=mult`, `model.modalities=ta`) that describe another model
    than the checkpoint's: evaluation uses the checkpoint's, but reports label a run by its
    recorded overrides."""
    overrides = recorded_overrides(run_dir) or []
    named = [o for o in overrides if split_override(o)[0].lstrip("+~").split(".")[0] == "model"]
    if not named:
        return
    composed = OmegaConf.to_container(cfg.model, resolve=True)
    composed.pop("_partial_", None)
    differences = config_differences(model_config, composed)
    if differences:
        raise MemoError(
            f"mode=eval evaluates the model checkpoint {path} holds, but the overrides "
            f"{' '.join(named)} describe another ({shown(differences, 3)}, as checkpoint -> "
            "overrides) and would label its results. Leave out the model overrides"
        )


def trained_by(checkpoint, path: Path, cache_dir: Path) -> dict[str, Any]:
    """What an evaluation records about its checkpoint: the file's hash, the run that trained
    it, and the epoch its weights are from (warned about when they are not the best epoch's)."""
    state, stored = _mapping(checkpoint, "state"), _mapping(checkpoint, "config")
    epoch, best = state.get("epoch"), state.get("best_epoch")
    if epoch != best:
        log.warning(
            "checkpoint %s holds the weights after epoch %s, not those of its run's selected "
            "(best) epoch %s; the run's result is its best.pt", path, epoch, best,
        )  # fmt: skip
    sha256 = fingerprint([path], cache_dir)[str(path.resolve())]["sha256"]
    in_run = path.name == "best.pt" and path.parent.name == "checkpoints"
    run = completed_metrics(path.parent.parent) if in_run else None
    recorded = (run or {}).get("best_checkpoint_sha256")
    recorded = recorded if isinstance(recorded, str) else None  # a hand-edited file: unknown
    if recorded is not None and recorded != sha256:
        raise MemoError(
            f"checkpoint {path} is not the best.pt its run finished with: its sha256 "
            f"{sha256[:16]}... differs from {recorded[:16]}... recorded in "
            f"{path.parent.parent / 'metrics.json'} (replaced after training?)"
        )
    if recorded is None:
        log.warning(
            "checkpoint %s is not the best.pt of a finished run (no metrics.json beside it "
            "records it): its training may have been interrupted", path,
        )  # fmt: skip
    return {
        "sha256": sha256,
        "of_finished_run": recorded is not None,
        "dataset": checkpoint.get("dataset"),
        "data_source": _mapping(checkpoint, "data").get("source"),
        "seed": stored.get("seed"),
        **_regime(stored),
        "weights_epoch": epoch,
        "best_epoch": best,
    }
