"""Composing a run config, with Hydra's composition errors turned into one line: an unknown
key or group option gets the closest known one ("did you mean ..."), anything else the first
line of Hydra's message. Used by the command line and the Python API."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from memo import CONFIG_DIR
from memo.schema import unknown_key


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The run config `python run.py *overrides` would compose (Hydra's compose API)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _config_keys(overrides: Sequence[str], key: str) -> list[str] | None:
    """The keys of the node that would hold `key` when `overrides` (less sweeps and the one
    setting `key`) are composed; None if that config cannot be composed either."""
    parent = key.rpartition(".")[0]
    try:
        kept = [
            o.input_line
            for o in OverridesParser.create().parse_overrides(overrides)
            if not o.is_sweep_override() and o.key_or_group != key
        ]
        cfg = compose_config(kept)
        node = OmegaConf.select(cfg, parent) if parent else cfg
    except (HydraException, OmegaConfBaseException):
        return None
    return [str(k) for k in node] if isinstance(node, DictConfig) else None


def composition_error(error: Exception, overrides: Sequence[str]) -> str:
    """A composition error in one line: an unknown key or group option with the closest
    known one, else the first line of Hydra's message."""
    cause = error.__cause__
    key = getattr(cause, "full_key", None)
    if key and "not in struct" in str(cause):
        known = _config_keys(overrides, key)
        if known is not None:
            what = key.rpartition(".")[0] or "the config"
            return str(unknown_key(key, known, what))
    if isinstance(error, MissingConfigException):
        found = re.search(r"Could not find '(.+)/([^/']+)'", str(error))
        options = re.findall(r"^\t(\S+)$", str(error), flags=re.MULTILINE)
        if found and options:
            group, option = found.groups()
            close = difflib.get_close_matches(option, options, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return f"config group '{group}' has no option '{option}'{hint} (options: " + (
                " | ".join(options) + ")"
            )
    return " ".join(str(error).split("\n")[0].split())
