"""Building a model: from the run's own config, or from the plain values a checkpoint stores.

A checkpoint is a file from someone else, so it never names code: the class comes from
memo's own models (or the run's composed config), and what the checkpoint contributes is
checked to be plain values accepted by that class's constructor.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from memo.errors import MemoError
from memo.models.base import EmotionModel
from memo.models.eea import EEA
from memo.models.mult import MulT
from memo.models.rnn import EarlyFusionRNN, LateFusionRNN
from memo.schema import Schema

# The model classes a checkpoint may name: memo's own.
MEMO_MODELS: dict[str, type[EmotionModel]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (EEA, EarlyFusionRNN, LateFusionRNN, MulT)
}
# Their config-group names (memo/conf/model/<name>.yaml), for records made outside the CLI.
MODEL_NAMES = {EEA: "eea", EarlyFusionRNN: "rnn_ef", LateFusionRNN: "rnn_lf", MulT: "mult"}
# Constructor arguments bound from the data, not from the config.
DATA_BOUND = ("text_dim", "audio_dim", "vision_dim", "num_emotions", "emotion_dim")
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
PLAIN = (bool, int, float, str, type(None))


def model_name(target: str, recorded: Any = None) -> str:
    """The name a run records for its model: `recorded` (the config-group option a checkpoint
    stored) when it is a short plain name, else memo's name for the class `target`."""
    if isinstance(recorded, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", recorded):
        return recorded
    cls = MEMO_MODELS.get(target)
    return MODEL_NAMES[cls] if cls is not None else target.rsplit(".", 1)[-1]


def _construct(factory, name: str, dims: dict[str, int], emotions: int, emotion_dim: int):
    """Call `factory` with the sizes taken from the data; a signature mismatch is a MemoError."""
    try:
        model = factory(
            text_dim=dims["text"],
            audio_dim=dims["audio"],
            vision_dim=dims["vision"],
            num_emotions=emotions,
            emotion_dim=emotion_dim,
        )
    except TypeError as error:
        raise MemoError(f"model config does not match {name}: {error}") from None
    if not isinstance(model, EmotionModel):
        raise MemoError(f"model._target_ {name} is not a memo EmotionModel")
    return model


def build_model(
    model_cfg: DictConfig, dims: dict[str, int], emotions: int, emotion_dim: int
) -> EmotionModel:
    """Instantiate `model_cfg` (a `_partial_` target from the run's own config) with sizes
    taken from the data."""
    return _construct(instantiate(model_cfg), model_cfg._target_, dims, emotions, emotion_dim)


def _plain(value: Any, key: str, path: Path) -> None:
    """Refuse anything but plain values and lists of them (no mappings, no Hydra keys)."""
    if isinstance(value, list):
        for item in value:
            _plain(item, key, path)
    elif isinstance(value, dict):
        hydra = [k for k in value if k in HYDRA_KEYS]
        named = f"'{key}.{hydra[0]}'" if hydra else f"'{key}' (a mapping)"
        raise MemoError(f"checkpoint {path}: refused model config key {named}; only plain values")
    elif not isinstance(value, PLAIN):
        raise MemoError(f"checkpoint {path}: model config key '{key}' is not a plain value")


def checkpoint_model(
    stored: Any,
    path: Path,
    run_target: str | None,
    dims: dict[str, int],
    emotions: int,
    emotion_dim: int,
) -> tuple[EmotionModel, dict[str, Any]]:
    """The model a checkpoint's stored config describes, and that config's checked values.

    Its `_target_` must be one of memo's models (or the run's own model class); every other
    key must be a plain value the class's constructor takes. Nothing goes through Hydra's
    instantiate, so no key or interpolation in the file can name code."""
    if not isinstance(stored, dict):
        raise MemoError(f"checkpoint {path}: its model config is not a mapping")
    target = stored.get("_target_")
    allowed = dict(MEMO_MODELS)
    if run_target and run_target not in allowed:
        allowed[run_target] = get_class(run_target)
    if not isinstance(target, str) or target not in allowed:
        raise MemoError(
            f"checkpoint {path}: model config key '_target_' names {target!r}; allowed: "
            f"{' | '.join(sorted(allowed))}"
        )
    cls = allowed[target]
    schema = Schema.of_parameters(cls, target, bound=DATA_BOUND)
    values = {}
    for key, value in stored.items():
        if key in ("_target_", "_partial_") and not isinstance(value, dict):
            continue
        if key in HYDRA_KEYS or key not in schema.fields:
            raise MemoError(
                f"checkpoint {path}: refused model config key '{key}'; allowed for {target}: "
                f"{' | '.join(sorted(schema.fields))}"
            )
        _plain(value, key, path)
        values[key] = value
    try:
        schema.check(values, "model")
        cls.check_settings(values)
    except MemoError as error:
        raise MemoError(f"checkpoint {path}: {error}") from None
    model = _construct(partial(cls, **values), target, dims, emotions, emotion_dim)
    return model, {"_target_": target, **values}
