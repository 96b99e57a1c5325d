"""A run's effective config: the values that decide its numbers, compared on resume and reuse.

A run directory's results belong to the config that produced them. Resuming it, or reusing a
finished one, is allowed only when the effective config is unchanged; keys that only place,
display or pace a run (and cannot change a number) are the one exception, listed here.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from memo.errors import MemoError

# Written into the folder of a resume=true command whose run continued in an earlier folder:
# that folder holds no run of its own, and reports skip it.
RESUMED_FILE = "resumed.json"

# Keys that cannot change results, so they may differ between a run and its resume:
#   paths.*           where data, caches and outputs live (the data itself is checked through
#                     the checkpoint's feature sizes and the data source recorded with it)
#   trainer.progress  whether a progress bar is drawn
#   trainer.threads   CPU threads: they change speed, not the computation
#   resume            how the run directory was found
#   logger            where the numbers are sent (TensorBoard, MLflow, W&B), not what they are
RUN_ONLY_KEYS = ("paths", "trainer.progress", "trainer.threads", "resume", "logger")


def is_run_only(key: str) -> bool:
    """Whether `key` (dotted, optionally with a +/~ override prefix) is one of RUN_ONLY_KEYS."""
    key = key.lstrip("+~")
    return any(key == k or key.startswith(k + ".") for k in RUN_ONLY_KEYS)


def split_override(override: str) -> tuple[str, str]:
    """`key=value` -> (key, value); an override without `=` (e.g. `~key`) has value ''."""
    key, _, value = override.partition("=")
    return key, value


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> `{'a.b': leaf}` (an empty mapping is a leaf)."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without Hydra's own section, flattened to dotted keys
    (e.g. 'trainer.lr')."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return flatten(container)


def effective_config(cfg: DictConfig) -> dict[str, Any]:
    """`flat_config` without RUN_ONLY_KEYS: the values that decide a run's numbers."""
    return {k: v for k, v in flat_config(cfg).items() if not is_run_only(k)}


def config_differences(
    stored: dict[str, Any], current: dict[str, Any], shared_only: bool = False
) -> list[str]:
    """'key: old -> new' for every key whose value differs (a missing key shows as <absent>);
    `shared_only`: only keys both have (records of memo versions that added a setting)."""
    absent = "<absent>"
    keys = set(stored) & set(current) if shared_only else set(stored) | set(current)
    return [
        f"{key}: {stored.get(key, absent)!r} -> {current.get(key, absent)!r}"
        for key in sorted(keys)
        if stored.get(key, absent) != current.get(key, absent)
    ]


def shown(differences: list[str], limit: int = 5) -> str:
    """The first `limit` of `config_differences`, joined for a message."""
    return "; ".join(differences[:limit]) + ("; ..." if len(differences) > limit else "")


def require_same_config(stored: Any, current: dict[str, Any], what: str) -> None:
    """Refuse to continue or reuse `what` (a run's results or checkpoint) made with another
    effective config, listing each differing key with its old and new value."""
    if not isinstance(stored, dict):
        raise MemoError(
            f"{what} records no config, so it cannot be shown to match this run; "
            "use resume=false or another output directory"
        )
    differences = config_differences(stored, current)
    if differences:
        raise MemoError(
            f"{what} was made with other settings ({'; '.join(differences)}); its numbers do "
            "not belong to this config. Use resume=false to start this directory again, or "
            "another output directory (hydra.run.dir / hydra.sweep.dir)"
        )
