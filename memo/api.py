"""memo from Python: `memo.train`, `memo.evaluate` and `memo.load`, the same runs as the CLI.

A run started here composes the same config as `python run.py <overrides>`, writes the same
run directory (`.hydra/` config and overrides included, so `memo.report` reads it) and
resolves relative paths the same way (against the working directory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from memo import composition
from memo.composition import composition_error
from memo.config import check_values
from memo.errors import MemoError
from memo.experiment import run_experiment
from memo.models.base import EmotionModel
from memo.models.factory import checkpoint_model
from memo.training.checkpoints import load_checkpoint
from memo.training.resume import refuse_early


@dataclass(frozen=True)
class Result:
    """A finished run: its metrics.json content, its directory and its model (best weights)."""

    metrics: dict[str, Any]
    run_dir: Path
    model: EmotionModel


def _overrides(overrides: Any) -> list[str]:
    """`overrides` as a list of strings; a lone string (`"seed=1"`, read as the overrides
    "s", "e", ...) or anything else is a MemoError."""
    if isinstance(overrides, (list, tuple)) and all(isinstance(o, str) for o in overrides):
        return list(overrides)
    raise MemoError(
        f"overrides: got {overrides!r}; allowed: a list of strings such as "
        "['dataset=iemocap', 'trainer.epochs=5']"
    )


def _path(value: Any, name: str) -> Path:
    """`value` (a str or os.PathLike) as a Path; anything else is a MemoError naming `name`."""
    if isinstance(value, (str, os.PathLike)) and str(value).strip():
        return Path(value)
    raise MemoError(f"{name}: got {value!r}; allowed: a path (a str or a pathlib.Path)")


def _quoted(text: str) -> str:
    """`text` as a quoted override value: commas, `=`, brackets and quotes are kept as they
    are (Hydra's own sweep folders are named `trainer.lr=0.1,seed=0`), `${` is not resolved."""
    return "'" + text.replace("'", "\\'").replace("${", "\\${") + "'"


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The run config `python run.py *overrides` would compose; an unknown key or option, or
    an override Hydra cannot parse, is a one-line MemoError as on the command line."""
    overrides = _overrides(overrides)
    try:
        return composition.compose_config(overrides)
    except (HydraException, OmegaConfBaseException) as error:
        raise MemoError(composition_error(error, overrides)) from None


def _new_run_dir(cfg: DictConfig) -> Path:
    """`<paths.output_dir>/<date>/<time>` as on the CLI, with microseconds so that two runs
    started in one second never share a directory."""
    now = datetime.now()
    return Path(cfg.paths.output_dir) / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S-%f")


def _make_run_dir(run_dir: Path) -> None:
    """`run_dir`, made if missing; one that cannot be made is a MemoError (as the CLI's
    output-folder check)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise MemoError(f"run directory {run_dir} cannot be written: {reason}") from None


def _save_hydra_files(cfg: DictConfig, overrides: list[str], run_dir: Path) -> None:
    """`.hydra/config.yaml`, `overrides.yaml` and `hydra.yaml` as a CLI run records them."""
    folder = run_dir / ".hydra"
    folder.mkdir(exist_ok=True)
    OmegaConf.save(cfg, folder / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), folder / "overrides.yaml")
    hydra = {"mode": "RUN", "overrides": {"task": overrides}, "job": {"num": 0},
             "runtime": {"output_dir": str(run_dir.resolve())}}  # fmt: skip
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), folder / "hydra.yaml")


def train(overrides: list[str] | tuple[str, ...] = (), run_dir: Path | str | None = None) -> Result:
    """Run the experiment `python run.py *overrides` runs, in `run_dir` (default: a new
    `<paths.output_dir>/<date>/<time>`); a finished run there with the same config is reused,
    another config is refused (as on the CLI). Raises MemoError on bad input."""
    overrides = _overrides(overrides)
    hydra = [o for o in overrides if o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    if hydra:  # hydra.run.dir=... was ignored: the run went to paths.output_dir
        raise MemoError(
            f"overrides: {hydra[0]!r} sets Hydra's own config, which memo.train does not read; "
            "give the run folder as run_dir=..."
        )
    cfg = compose_config(overrides)
    check_values(cfg)  # as the command line does before it makes the run folder
    run_dir = (_path(run_dir, "run_dir") if run_dir is not None else _new_run_dir(cfg)).resolve()
    _make_run_dir(run_dir)
    refuse_early(cfg, run_dir)  # before .hydra/ is rewritten: it labels the folder's results
    _save_hydra_files(cfg, overrides, run_dir)
    metrics = run_experiment(cfg, run_dir)
    checkpoint = cfg.ckpt if cfg.mode == "eval" else run_dir / "checkpoints" / "best.pt"
    model, _ = load(checkpoint)
    return Result(metrics, run_dir, model)


def evaluate(
    ckpt: Path | str, overrides: list[str] | tuple[str, ...] = (), run_dir: Path | str | None = None
) -> Result:
    """Evaluate the checkpoint `ckpt` on the test split the overrides select (`mode=eval`)."""
    ckpt = _quoted(str(_path(ckpt, "ckpt")))
    return train(["mode=eval", f"ckpt={ckpt}", *_overrides(overrides)], run_dir)


def load(ckpt: Path | str) -> tuple[EmotionModel, DictConfig]:
    """The model a memo checkpoint holds, with its weights (eval mode, CPU), and the run config
    it was trained with. Checked like `mode=eval`: a checkpoint never names code."""
    path = _path(ckpt, "ckpt")
    checkpoint = load_checkpoint(path)
    model, _ = checkpoint_model(
        checkpoint.get("model_config"), path, None, checkpoint["dims"],
        len(checkpoint["emotions"]), int(checkpoint["emotion_dim"]),
    )  # fmt: skip
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model, _nested(checkpoint.get("config"), path)


def _nested(flat: Any, path: Path) -> DictConfig:
    """The checkpoint's flattened config ('trainer.lr': 0.001) as a nested DictConfig; strings
    are escaped so that nothing in the file is read as an interpolation."""
    if not isinstance(flat, dict):
        raise MemoError(f"checkpoint {path} records no config")
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = str(key).split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _escaped(value)
    return OmegaConf.create(nested)


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("${", "\\${")
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value
