"""Composing a run config, with Hydra's composition errors turned into one line: an unknown
key or group option gets the closest known one ("did you mean ..."), anything else the first
line of Hydra's message naming the key. Used by the command line and the Python API."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from contextlib import nullcontext

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from memo import CONFIG_DIR
from memo.errors import MemoError
from memo.schema import unknown_key

LIST_GROUPS = ("logger",)  # the groups whose options combine: logger=[tensorboard,mlflow]


def compose_config(overrides: Sequence[str] = (), hydra: bool = False) -> DictConfig:
    """The run config `python run.py *overrides` would compose (Hydra's compose API), with
    Hydra's own section when `hydra` is true. Inside a running Hydra app (a callback), with
    that app's config search path."""
    check_overrides(overrides)
    running = GlobalHydra.instance().is_initialized()
    config_dir = str(CONFIG_DIR)
    with nullcontext() if running else initialize_config_dir(config_dir, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def group_options(group: str) -> list[str] | None:
    """The options of memo's config group `group` (`model`, `hydra/launcher`), None if it is
    not one."""
    folder = CONFIG_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else None


def check_overrides(overrides: Sequence[str]) -> None:
    """Refuse a group override that Hydra would crash on, silently merge or refuse in its own
    terms: `model=null`, a list of options for a group that takes one (`model=[eea,mult]`
    merges both files), `+experiment=paper_mosei` (every group of memo's is in the defaults
    list already). An override Hydra cannot parse is left for Hydra to report."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return
    for override in parsed:
        group, options = override.key_or_group, group_options(override.key_or_group)
        if options is None or override.is_delete() or override.is_sweep_override():
            continue
        value = override.value()
        listed = f"(options: {' | '.join(options)})"
        if override.is_add() or override.is_force_add():
            raise MemoError(
                f"config group '{group}' is chosen without '+': "
                f"{group}={override.get_value_string()}"
            )
        if value is None:
            raise MemoError(f"config group '{group}' takes an option, not null {listed}")
        if isinstance(value, list) and group not in LIST_GROUPS:
            each = ",".join(map(str, value))
            raise MemoError(
                f"config group '{group}' takes one option, got {override.get_value_string()} "
                f"{listed}; to run each in turn, sweep: -m {group}={each}"
            )


def _config_keys(overrides: Sequence[str], key: str) -> tuple[list[str], str, str | None] | None:
    """The keys of the node that would hold `key` when `overrides` (less sweeps and those
    setting `key` or a key below it) are composed, how to name that node, and the class its
    `_target_` names; None if that config cannot be composed either."""
    parent = key.rpartition(".")[0]
    try:
        kept = [
            o.input_line
            for o in OverridesParser.create().parse_overrides(overrides)
            if not o.is_sweep_override() and not f"{o.key_or_group}.".startswith(f"{key}.")
        ]
        cfg = compose_config(kept, hydra=True)
        node = OmegaConf.select(cfg, parent) if parent else cfg
    except (HydraException, OmegaConfBaseException, MemoError):
        return None
    if not isinstance(node, DictConfig):
        return None
    what = parent or "the config"
    choice = cfg.hydra.runtime.choices.get(parent.replace(".", "/"))
    if key.startswith("hydra.") and choice:  # which of Hydra's plugins is in use is not obvious
        what = f"{parent} ({parent.replace('.', '/')}={choice})"
    target = node.get("_target_")
    return [str(k) for k in node if parent or k != "hydra"], what, target and str(target)


def _parameters(target: str | None) -> set[str]:
    """The fields or keyword parameters of the class `target` names (none if it names none)."""
    from memo.data.components import component_class, component_schema

    try:
        cls = component_class({"_target_": target}, "", object)
    except MemoError:
        return set()
    return set(component_schema(cls, "", typed=False).fields)


def _unknown_key(error: Exception, overrides: Sequence[str]) -> str | None:
    """An override of a key the config lacks, in one line: the option of a group that would
    declare it (`logger.mlflow.experiment` without logger=mlflow), or the closest keys."""
    key = error.__cause__.full_key
    set_key = re.search(r"Could not override '([^']+)'", str(error))
    parent, _, name = key.rpartition(".")
    if name in (group_options(parent) or ()):
        return (
            f"config key '{set_key.group(1) if set_key else key}' is a setting of "
            f"{parent}={name}, which this run does not choose; choose it with {parent}={name}"
            + (f" (or with others: {parent}=[...,{name}])" if parent in LIST_GROUPS else "")
        )
    found = _config_keys(overrides, key)
    if found is None:
        return None
    known, what, target = found
    parameters = _parameters(target) if target else set()
    if name in parameters:  # e.g. after trainer.optimizer._target_=torch.optim.SGD
        return (
            f"config key '{key}' is a parameter of {target} that {parent} does not list; "
            f"add it with +{key}=<value>"
        )
    return str(unknown_key(key, {*known, *parameters}, what))


def _unknown_option(error: MissingConfigException) -> str | None:
    """An option a config group lacks, with the closest one and the options."""
    found = re.search(r"Could not (?:find|load) '(.+)/([^/']+)'", str(error))
    if not found:
        return None
    group, option = found.groups()
    options = re.findall(r"^\t(\S+)$", str(error), flags=re.MULTILINE) or group_options(group)
    if not options:
        return None
    close = difflib.get_close_matches(option, options, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"config group '{group}' has no option '{option}'{hint} (options: " + (
        " | ".join(options) + ")"
    )


def _unparsable(overrides: Sequence[str]) -> str | None:
    """The first override Hydra's grammar refuses, named with the parser's reason."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as error:
            reason = " ".join(str(error).split("\n")[0].split())
            if "=" not in override and not override.startswith("~"):  # `seed 3`, `seed:3`
                reason = "an override is key=value, with no spaces around '='"
            return (
                f"cannot parse the override {override!r}: {reason} (grammar: "
                "https://hydra.cc/docs/advanced/override_grammar/basic/)"
            )
    return None


def composition_error(error: Exception, overrides: Sequence[str]) -> str:
    """A composition error in one line: an unknown key or group option with the closest
    known one, a value Hydra's own config refuses with its key, an override that cannot be
    parsed, else the first line of Hydra's message."""
    cause = error.__cause__
    message = None
    unknown = isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and "not in" in str(cause)
    if unknown and cause.full_key:
        message = _unknown_key(error, overrides)
    elif isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        message = f"config key '{cause.full_key}': {str(cause).splitlines()[0]}"
    elif isinstance(error, MissingConfigException):
        message = _unknown_option(error)
    elif isinstance(error, OverrideParseException):
        message = _unparsable(overrides)
    first = " ".join(str(error).split("\n")[0].split())
    return message or re.sub(r", set env var HYDRA_FULL_ERROR=1 .*", "", first)  # memo sets it
