"""Building a component (dataset, regime, word vectors) from its config group's `_target_`.

Each config group names its class with `_target_` and holds the constructor's values, so a new
dataset, regime or vector source is a class and a YAML file; memo never dispatches on names.
The class is also the group's schema (memo.schema): its typed fields or parameters say which
keys the group has and what each may hold.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from memo.errors import MemoError, config_error
from memo.schema import Schema

T = TypeVar("T")


def component_class(
    values: Mapping[str, Any], key: str, kind: type[T] | tuple[type, ...]
) -> type[T]:
    """The class config node `key` names with `_target_`: a subclass of `kind` (or of one of
    several kinds)."""
    target = str(values.get("_target_"))
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise MemoError(
            f"config key '{key}._target_': cannot import {target!r} ({error})"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, kind)):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        named = " or ".join(f"{k.__module__}.{k.__qualname__}" for k in kinds)
        raise config_error(f"{key}._target_", target, f"a subclass of {named}")
    return cls


def check_component(
    values: Mapping[str, Any],
    key: str,
    kind: type[T] | tuple[type, ...],
    bound: Iterable[str] = (),
    typed: bool = True,
) -> type[T]:
    """Check config node `key` (plain values) against its class's schema: the dataclass
    fields of a dataclass component, else its constructor's parameters less `bound` (those
    memo passes itself; `typed=False`: names only, for foreign classes such as torch's).
    Returns the class."""
    cls = component_class(values, key, kind)
    what = f"{key}={values.get('name') or cls.__name__} ({values['_target_']})"
    component_schema(cls, what, bound, typed).check(values, key)
    return cls


def component_schema(cls: type, what: str, bound: Iterable[str] = (), typed: bool = True) -> Schema:
    """A component class's schema: its dataclass fields, else its constructor's parameters
    less `bound` (`typed=False`: names only)."""
    if dataclasses.is_dataclass(cls):
        return Schema.of_record(cls, what)
    return Schema.of_parameters(cls, what, bound, typed)


def build_component(node: DictConfig, key: str, kind: type[T]) -> T:
    """Instantiate config group `key`: its `_target_`, a subclass of `kind`, given the group's
    values as plain Python after the schema check. Every problem, a constructor's own
    MemoError included, is one MemoError naming the key."""
    missing = sorted(OmegaConf.missing_keys(node))  # full keys when `node` is in a config
    if missing:
        first = missing[0] if missing[0].startswith(f"{key}.") else f"{key}.{missing[0]}"
        raise config_error(first, "???", f"a value (required by {key}={node.get('name')})")
    values = OmegaConf.to_container(node, resolve=True)
    cls = check_component(values, key, kind)
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, MemoError):
            raise error.__cause__ from None
        reason = str(error.__cause__ or error).strip().splitlines()[0]
        raise MemoError(f"config key '{key}' ({cls.__module__}.{cls.__name__}): {reason}") from None
