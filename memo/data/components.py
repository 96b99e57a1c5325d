"""Building a component (dataset, regime, word vectors) from its config group's `_target_`.

Each config group names its class with `_target_` and holds the constructor's values, so a new
dataset, regime or vector source is a class and a YAML file; memo never dispatches on names.
"""

from __future__ import annotations

import importlib
from typing import TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from memo.errors import MemoError, config_error

T = TypeVar("T")


def build_component(node: DictConfig, key: str, kind: type[T]) -> T:
    """Instantiate config group `key`: its `_target_`, a subclass of `kind`, given the group's
    values as plain Python. Every problem, a constructor's own MemoError included, is one
    MemoError naming the key."""
    missing = sorted(OmegaConf.missing_keys(node))  # full keys when `node` is in a config
    if missing:
        first = missing[0] if missing[0].startswith(f"{key}.") else f"{key}.{missing[0]}"
        raise config_error(first, "???", f"a value (required by {key}={node.get('name')})")
    target = str(node.get("_target_"))
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise MemoError(
            f"config key '{key}._target_': cannot import {target!r} ({error})"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, kind)):
        raise config_error(f"{key}._target_", target, f"a subclass of {kind.__qualname__}")
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, MemoError):
            raise error.__cause__ from None
        reason = str(error.__cause__ or error).strip().splitlines()[0]
        raise MemoError(f"config key '{key}' ({target}): {reason}") from None
