"""The run config's schema, checked as soon as a run's config is composed.

`validate` refuses, before any data loads, every key that is not declared and every value of
the wrong type or out of bounds, with one line naming the key and the allowed values. The
top level, `trainer`, `paths` and `logger` are declared here; a component group (`dataset`,
`regime`, `embeddings`, `model`) is declared by the class its `_target_` names
(memo.data.components). Defaults live only in the YAML files of memo/conf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from memo.data.components import build_component, check_component
from memo.data.datasets.base import Dataset
from memo.data.embeddings import WordVectors
from memo.data.regimes import Regime, check_target
from memo.data.validate import NO_SUCH_FILE, file_problem
from memo.errors import MemoError, config_error, exit_on_error
from memo.models.base import EmotionModel
from memo.models.factory import DATA_BOUND
from memo.schema import (
    NonBlank,
    NonNegativeFloat,
    NonNegativeInt,
    Pattern,
    PositiveFloat,
    PositiveInt,
    Range,
    Schema,
    Seed,
    Text,
    check_value,
)
from memo.training.trainer import Precision

Component = dict[str, Any]  # a `_target_` group, checked against its class's own schema


@dataclass(frozen=True)
class TrainerConfig:
    """memo/conf/trainer/default.yaml: how a run trains."""

    device: Literal["auto", "cpu", "cuda"]
    epochs: PositiveInt
    batch_size: PositiveInt
    lr: PositiveFloat  # the one learning rate: optimizer.lr must stay ${trainer.lr}
    weight_decay: NonNegativeFloat
    optimizer: Component  # a torch.optim.Optimizer, `_partial_` (parameters bound later)
    scheduler: Component  # a torch.optim.lr_scheduler class, `_partial_` (optimizer bound later)
    clip_grad_norm: PositiveFloat | None
    early_stop: PositiveInt | None
    divergence_factor: Annotated[float, Range(1, low_open=True)] | None
    threshold: Annotated[float, Range(0, 1, low_open=True, high_open=True)]
    progress: Literal["auto", True, False]
    precision: Precision
    compile: bool
    threads: PositiveInt | None


@dataclass(frozen=True)
class PathsConfig:
    """memo/conf/paths/default.yaml: where data, caches and outputs live."""

    data_dir: Text
    cache_dir: Text
    output_dir: Text
    multirun_dir: Text


class NoSettings(TypedDict):
    """A logger without settings (tensorboard, csv)."""


# A local path, or a URI whose scheme MLflow has a tracking store for (a typo such as htp://
# failed only after the data had loaded).
TrackingUri = Annotated[
    str,
    NonBlank(),
    Pattern(
        r"(?![\w+.-]+:)|(file|https?|sqlite|postgresql|mysql|mssql|databricks|databricks-uc|uc)"
        r"(\+\w+)?:",
        "a path, or a URI of scheme file, http, https, sqlite, postgresql, mysql, mssql, "
        "databricks",
    ),
]


class MLflowSettings(TypedDict):
    """memo/conf/logger/mlflow.yaml."""

    tracking_uri: TrackingUri | None
    experiment: Text


class WandbSettings(TypedDict):
    """memo/conf/logger/wandb.yaml."""

    mode: Literal["offline", "online"]
    project: Text
    entity: Text | None


class LoggerConfig(TypedDict, total=False):
    """`logger=[tensorboard,csv,mlflow,wandb]`: the loggers chosen, each with its settings."""

    tensorboard: NoSettings
    csv: NoSettings
    mlflow: MLflowSettings
    wandb: WandbSettings


@dataclass(frozen=True)
class RunConfig:
    """memo/conf/config.yaml: one run."""

    seed: Seed
    mode: Literal["train", "eval"]
    ckpt: Text | None
    resume: Literal["auto", True, False]
    dataset: Component
    model: Component
    regime: Component
    embeddings: Component
    trainer: TrainerConfig
    paths: PathsConfig
    logger: LoggerConfig | None = None  # logger=[] or ~logger: history.csv only


@dataclass(frozen=True)
class Components:
    """The components `validate` built while checking them, for the run to use as they are."""

    dataset: Dataset
    regime: Regime
    embeddings: WordVectors


BOUND = {"optimizer": ("params",), "scheduler": ("optimizer",)}  # passed by the trainer
ONE_SOURCE = {"lr": "${trainer.lr}", "weight_decay": "${trainer.weight_decay}"}


def validate(cfg: DictConfig) -> Components:
    """Check every key and value a run depends on before any data is loaded; returns the
    dataset, regime and word-vector components built on the way (each checks its own values)."""
    _, dataset, regime = _checked_values(cfg)
    components = Components(
        dataset=dataset,
        regime=regime,
        embeddings=build_component(cfg.embeddings, "embeddings", WordVectors),
    )
    _check_optimization(cfg.trainer)
    return components


def check_values(cfg: DictConfig) -> dict[str, Any]:
    """The run config's values, after the checks that read no data and build no model: no
    value left missing, every key declared (a component's by its class), every value of its
    type and in bounds, the zero-/few-shot target one the dataset offers, the model's
    settings fit together, `ckpt` fits `mode`."""
    return _checked_values(cfg)[0]


def _checked_values(cfg: DictConfig) -> tuple[dict[str, Any], Dataset, Regime]:
    """`check_values`, with the dataset and regime components it built for the target check."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        group = missing[0].split(".")[0]
        choice = cfg[group].get("name") if isinstance(cfg.get(group), DictConfig) else None
        raise config_error(missing[0], "???", f"a value (required by {group}={choice})")
    try:
        values = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", "") or "?"
        raise MemoError(f"config key '{key}': {str(error).splitlines()[0]}") from None
    Schema.of_record(RunConfig, "the run config").check(values, "")
    _check_ckpt(values["mode"], values["ckpt"])
    for key, kind in (("dataset", Dataset), ("regime", Regime), ("embeddings", WordVectors)):
        check_component(values[key], key, kind)
    # The dataclasses hold no data: a sweep checks every job's target before the first starts.
    dataset = build_component(cfg.dataset, "dataset", Dataset)
    regime = build_component(cfg.regime, "regime", Regime)
    check_target(regime, dataset)
    model = check_component(values["model"], "model", EmotionModel, bound=DATA_BOUND)
    model.check_settings(values["model"])
    return values, dataset, regime


def _check_ckpt(mode: str, ckpt: str | None) -> None:
    """`ckpt` names an existing file with mode=eval, and is not set with mode=train (where it
    would be ignored: a model trained from scratch instead of the one meant)."""
    if mode == "train" and ckpt is not None:
        raise config_error("ckpt", ckpt, "null with mode=train (add mode=eval to evaluate it)")
    if mode == "eval" and ckpt is None:
        raise config_error("ckpt", ckpt, "a checkpoint path (required with mode=eval)")
    if mode == "eval" and (problem := file_problem(Path(ckpt))):
        where = f" in {Path.cwd()}" if problem == NO_SUCH_FILE else ""
        raise config_error("ckpt", ckpt, f"a checkpoint file (this path: {problem}{where})")


def _check_optimization(trainer: DictConfig) -> None:
    """The optimiser and scheduler: declared keys, the one learning rate, and the values
    torch itself refuses, found by building both over one dummy parameter."""
    import torch

    raw = OmegaConf.to_container(trainer.optimizer, resolve=False)
    for name, source in ONE_SOURCE.items():
        if name in raw and raw[name] != source:
            raise MemoError(
                f"config key 'trainer.optimizer.{name}': set it with trainer.{name} (got "
                f"{raw[name]!r}; trainer.{name} is what memo records and compares)"
            )
    kinds = {
        "optimizer": torch.optim.Optimizer,
        "scheduler": (
            torch.optim.lr_scheduler.LRScheduler,
            torch.optim.lr_scheduler.ReduceLROnPlateau,
        ),
    }
    built: list[Any] = [[torch.zeros(1, requires_grad=True)]]
    for key, kind in kinds.items():
        node = trainer[key]
        values = OmegaConf.to_container(node, resolve=True)
        check_component(values, f"trainer.{key}", kind, bound=BOUND[key], typed=False)
        try:
            built.append(instantiate(node)(built[-1]))
        except (ValueError, TypeError) as error:
            raise _torch_error(f"trainer.{key}", values, error) from None


def _torch_error(key: str, values: dict[str, Any], error: Exception) -> MemoError:
    """torch's refusal of an optimiser or scheduler value, naming the key when its message
    names exactly one of the node's keys ('Invalid weight_decay value: -1')."""
    message = str(error).strip().splitlines()[0]
    lowered = message.lower().replace(" ", "_")
    named = [k for k in values if not k.startswith("_") and k.lower() in lowered]
    where = f"{key}.{named[0]}" if len(named) == 1 else key
    return MemoError(f"config key '{where}': {message} ({values['_target_']})")


# The launcher settings memo's presets (memo/conf/hydra/launcher) declare, with the values a
# job can run with; the plugins' own schemas check only their types.
LAUNCHER_SETTINGS: dict[str, Any] = {
    "n_jobs": PositiveInt | Literal[-1],  # joblib: jobs at once; -1: one per core
    "timeout_min": PositiveInt,
    "cpus_per_task": PositiveInt | None,
    "tasks_per_node": PositiveInt | None,
    "gpus_per_node": NonNegativeInt | None,
    "mem_gb": NonNegativeInt | None,  # SLURM: 0 asks for all of a node's memory
    "array_parallelism": PositiveInt,
    "partition": Text | None,
}


class ConfigCheck(Callback):
    """Hydra callback, first in memo/conf/config.yaml: `check_values` before Hydra creates the
    run folder, and before a sweep launches any job, every planned job's config and the
    launcher's settings, so that a bad value in one job of many ends the sweep at once, not
    when that job's turn comes. A problem ends the command with one line, exit status 2."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_error(lambda: _check_run(config))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_error(lambda: _check_sweep(config))


def _check_hydra(config: DictConfig, folder: str) -> None:
    """The run or sweep folder (`folder`: `hydra.run.dir` or `hydra.sweep.dir`) says something,
    and jobs start where the command did: relative paths (paths.*, ckpt, dataset.dir) name
    what the user sees, never a folder inside the run (data/ there: the built-in corpus)."""
    check_value(OmegaConf.select(config, folder), Text, folder)
    if config.hydra.job.chdir:
        raise config_error(
            "hydra.job.chdir", True, "false (memo reads relative paths from where it starts)"
        )


def _check_run(config: DictConfig) -> None:
    """A single run: also no sweeper or launcher chosen, which only a sweep (-m) would use
    (`hparams_search=eea_mosei` without -m trained one default run; `hydra/launcher=slurm`
    trained here instead of on the cluster)."""
    _check_hydra(config, "hydra.run.dir")
    choices = config.hydra.runtime.choices
    for group in ("hydra/sweeper", "hydra/launcher"):
        if choices.get(group) not in (None, "basic"):
            preset = choices.get("hparams_search")
            chosen = f"hparams_search={preset}" if group == "hydra/sweeper" and preset else ""
            raise MemoError(
                f"{chosen or f'{group}={choices[group]}'} takes effect only in a sweep: add -m "
                "(without it, one run would start here and ignore it)"
            )
    check_values(OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]))


def _check_sweep(config: DictConfig) -> None:
    """The sweep folder, the launcher's settings and every job the basic sweeper will run (a
    search such as Optuna's asks for its jobs as it goes: each is checked when it starts)."""
    from memo.report.jobs import expected_jobs

    _check_hydra(config, "hydra.sweep.dir")
    launcher = config.hydra.launcher
    for key, hint in LAUNCHER_SETTINGS.items():
        if key in launcher:
            check_value(launcher[key], hint, f"hydra.launcher.{key}")
    jobs = expected_jobs(config)
    if jobs == []:  # a sweep of no values, e.g. seed=range(3,0): nothing ran, with exit 0
        parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        sweeps = [o for o in parsed if o.is_sweep_override()]
        empty = [o.input_line for o in sweeps if not list(o.sweep_iterator())]
        raise MemoError(f"the sweep has no jobs: {' '.join(empty)} gives no values")
    for number, overrides in enumerate(jobs or []):
        try:
            check_job(overrides)
        except MemoError as error:
            shown = " ".join(o for o in overrides if not o.startswith("hydra"))
            raise MemoError(f"sweep job {number} ({shown}): {error} (no job was run)") from None


def check_job(overrides: list[str]) -> None:
    """`check_values` of the config `overrides` compose (in a running Hydra app: with its
    config search path); a composition error is a one-line MemoError too."""
    from memo.composition import compose_config, composition_error

    try:
        check_values(compose_config(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise MemoError(composition_error(error, overrides)) from None
