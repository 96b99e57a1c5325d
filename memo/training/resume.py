"""Finding what an earlier, interrupted or finished, run left behind."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from memo.errors import MemoError
from memo.run_config import effective_config, require_same_config
from memo.run_lock import RunLock
from memo.training.checkpoints import load_checkpoint

log = logging.getLogger(__name__)

RESUME_KEYS = ("model_config", "dataset", "data", "dims", "emotion_dim")
NEWER_KEYS = ("data",)  # recorded since this memo version: an older checkpoint lacks them


def completed_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The metrics of a run that finished in `run_dir`, or None."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # written atomically, so only a hand-edited file can be garbled
    return metrics if isinstance(metrics, dict) and metrics.get("status") == "completed" else None


def finished_run(resume: Any, run_dir: Path, effective: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics of the finished run in `run_dir` that this run (with setting `resume` and
    effective config `effective`) reuses instead of running again; None when there is none or
    resume=false. A finished run of other settings is refused, naming each differing key."""
    if resume is False:
        return None
    done = completed_metrics(run_dir)
    if done is not None:
        require_same_config(done.get("config"), effective, f"the finished run in {run_dir}")
    return done


def refuse_early(cfg: DictConfig, run_dir: Path) -> None:
    """Raise MemoError for what a run of `cfg` would refuse in `run_dir` (another memo process
    there, a finished run or a `last.pt` of other settings), checked under the run lock; call
    it before writing the run's record (`.hydra/`) there. An incomplete config is left to the
    run."""
    try:
        effective = effective_config(cfg)
    except OmegaConfBaseException:
        return
    with RunLock(run_dir):
        if finished_run(cfg.get("resume"), run_dir, effective) is None:
            last_checkpoint(cfg.get("resume"), run_dir, effective)  # also: eval into a training


def last_checkpoint(resume: Any, run_dir: Path, effective: dict[str, Any]) -> dict[str, Any] | None:
    """The `checkpoints/last.pt` in `run_dir` that a run with setting `resume` and effective
    config `effective` continues from; None when there is none or resume=false. One of other
    settings is refused, naming each differing key."""
    last = run_dir / "checkpoints" / "last.pt"
    if resume is False or not last.is_file():
        return None
    checkpoint = load_checkpoint(last)
    require_same_config(checkpoint.get("config"), effective, f"checkpoint {last}")
    return checkpoint


def recorded_overrides(run_dir: Path) -> list[str] | None:
    """The command-line overrides `.hydra/overrides.yaml` records (without `resume=`), sorted:
    what reports label the run with; None without the file, or a file that is not a list of
    overrides (damaged)."""
    try:
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_bytes())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        return None
    return sorted(o for o in overrides if not o.startswith("resume="))


def find_unfinished_run(output_root: Path, overrides: list[str], exclude: Path) -> Path | None:
    """The newest run under `output_root` with the same overrides and a last.pt, unfinished."""
    wanted = sorted(o for o in overrides if not o.startswith("resume="))
    candidates = sorted(output_root.glob("*/*/checkpoints/last.pt"), reverse=True)
    for last in candidates:
        run_dir = last.parent.parent
        if run_dir.resolve() == exclude.resolve() or completed_metrics(run_dir) is not None:
            continue
        if recorded_overrides(run_dir) == wanted:
            return run_dir
    return None


def check_compatible(
    checkpoint: dict[str, Any],
    meta: dict[str, Any],
    path: Path,
    keys: tuple[str, ...] = RESUME_KEYS,
) -> None:
    """A checkpoint fits only the same model, data and sizes: say exactly what differs. One of
    the NEWER_KEYS that an older memo's checkpoint lacks is not compared, and logged."""
    unrecorded = [key for key in keys if key in NEWER_KEYS and key not in checkpoint]
    if unrecorded:
        log.warning("checkpoint %s records no %s (an older memo): not checked", path,
                    ", ".join(unrecorded))  # fmt: skip
    differences = [
        f"{key}: checkpoint has {checkpoint.get(key)!r}, this run has {meta[key]!r}"
        for key in keys
        if key not in unrecorded and checkpoint.get(key) != meta[key]
    ]
    if differences:
        raise MemoError(f"checkpoint {path} does not fit this run: " + "; ".join(differences))
