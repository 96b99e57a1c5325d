"""Reading a run directory's files for the report, validating every field the report uses, so
that a damaged file becomes a reason (`Damaged`) instead of a crash further on."""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from memo.run_config import (
    config_differences,
    effective_config,
    flatten,
    is_run_only,
    shown,
)

METRICS_FILE = "metrics.json"
STATUS_FILE = "status.json"  # written by memo.sweep for every sweep job
HYDRA_FILE = ".hydra/hydra.yaml"  # written by Hydra into every run directory
CONFIG_FILE = ".hydra/config.yaml"  # the composed config, written by Hydra at every start
REQUIRED = object()  # `lookup` default: the key must be present


class Damaged(Exception):
    """A run's file that cannot be read or lacks what the report needs; the message says why."""


@dataclass(frozen=True)
class Result:
    """What the report uses of a run's metrics.json, validated."""

    status: str
    dataset: str
    data_source: str  # synthetic | files
    seed: int
    target: str | None  # the zero-/few-shot emotion
    emotions: tuple[str, ...]  # the test emotions
    test: dict[str, float | None]  # test metrics; None where undefined (null in the file)
    settings: dict[str, Any]  # effective values of the keys its config sets (see check_config)


@dataclass(frozen=True)
class Identity:
    """What Hydra recorded about a run: its command-line overrides and its place in a sweep."""

    overrides: tuple[str, ...]
    multirun: bool
    num: int | None  # job number in its sweep; None outside one


def is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_score(value: Any) -> bool:
    """A metric value: a finite number, or None (undefined, e.g. no positives)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value is None or (number and math.isfinite(value))


def is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(is_text(v) for v in value)


def parse(folder: Path, name: str, loads: Callable[[str], Any]) -> Any:
    """The content of `folder/name` decoded as UTF-8 and parsed by `loads` (JSON or YAML)."""
    try:
        text = (folder / name).read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise Damaged(f"{name}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    except OSError as error:
        raise Damaged(f"{name}: cannot be read ({error.strerror})") from None
    if not text.strip():
        raise Damaged(f"{name}: empty")
    try:
        return loads(text)
    except (ValueError, yaml.YAMLError) as error:  # json.JSONDecodeError is a ValueError
        kind = "JSON" if name.endswith(".json") else "YAML"
        raise Damaged(f"{name}: not valid {kind} ({_why(error)})") from None


def _why(error: Exception) -> str:
    """A parser's error in one line: YAML's problem and place, or JSON's message."""
    mark = getattr(error, "problem_mark", None)
    if isinstance(error, yaml.MarkedYAMLError) and mark is not None:
        return f"{error.problem}: line {mark.line + 1} column {mark.column + 1}"
    return " ".join(str(error).split())


def lookup(
    data: Any,
    name: str,
    key: str,
    valid: Callable[[Any], bool],
    expected: str,
    default: Any = REQUIRED,
) -> Any:
    """`data[k1][k2]...` for the dotted `key` of file `name`, checked by `valid`."""
    value = data
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            if default is REQUIRED:
                raise Damaged(f"{name}: no '{key}'")
            return default
        value = value[part]
    return check(value, name, key, valid, expected)


def check(value: Any, name: str, key: str, valid: Callable[[Any], bool], expected: str) -> Any:
    """`value`, read from `key` of file `name`, if `valid` accepts it."""
    if not valid(value):
        raise Damaged(f"{name}: '{key}' is {reprlib.repr(value)}; expected {expected}")
    return value


def parse_object(run: Path, name: str) -> dict[str, Any]:
    """The JSON object in `run/name`."""
    data = parse(run, name, json.loads)
    if not isinstance(data, dict):
        raise Damaged(f"{name}: expected a JSON object, found {type(data).__name__}")
    return data


def read_identity(run: Path) -> Identity:
    """The overrides and sweep position Hydra recorded in `run/.hydra/hydra.yaml`."""
    data = parse(run, HYDRA_FILE, yaml.safe_load)
    overrides = lookup(data, HYDRA_FILE, "hydra.overrides.task", is_texts, "a list of overrides")
    mode = lookup(data, HYDRA_FILE, "hydra.mode", is_text, "RUN or MULTIRUN")
    multirun = mode == "MULTIRUN"
    num = lookup(data, HYDRA_FILE, "hydra.job.num", is_integer, "an integer") if multirun else None
    return Identity(tuple(overrides), multirun, num)


def read_metrics(run: Path) -> Result:
    """The validated content of `run/metrics.json`."""
    data = parse_object(run, METRICS_FILE)

    def get(key: str, valid: Callable[[Any], bool], expected: str) -> Any:
        return lookup(data, METRICS_FILE, key, valid, expected)

    test = get("test", lambda v: isinstance(v, dict) and len(v) > 0, "an object of metrics")
    for metric, value in test.items():
        check(value, METRICS_FILE, f"test.{metric}", is_score, "a finite number or null")
    config = get("config", lambda v: isinstance(v, dict), "the run's effective config")
    settings = check_config(run, config)
    return Result(
        status=get("status", lambda v: v == "completed", "'completed' (memo writes no other)"),
        dataset=get("dataset", is_text, "a dataset name"),
        data_source=get("data_source", is_text, "'synthetic' or 'files'"),
        seed=get("seed", is_integer, "an integer"),
        target=get("target_emotion", lambda v: v is None or is_text(v), "an emotion or null"),
        emotions=tuple(
            get("test_emotions", lambda v: is_texts(v) and len(v) > 0, "a list of emotions")
        ),
        test={metric: None if value is None else float(value) for metric, value in test.items()},
        settings=settings,
    )


def check_config(run: Path, recorded: dict[str, Any]) -> dict[str, Any]:
    """Refuse results whose effective config is not the one in `run/.hydra/config.yaml`.

    Hydra rewrites `.hydra/` at every start in a run directory; where memo cannot refuse the
    start before that (a sweep job, an API run, two starts at once), the labels the report
    takes from `.hydra/` would name settings that did not produce these numbers. Keys only one
    side has (a memo version that added a setting or a run-only key) are not compared.

    Returns the run's settings: the recorded values of the keys `config.yaml` sets to a value
    (not an interpolation such as `${paths.data_dir}/...`, which differs between machines),
    the seed left out."""
    saved = parse(run, CONFIG_FILE, yaml.safe_load)
    if not isinstance(saved, dict):
        raise Damaged(f"{CONFIG_FILE}: expected a mapping, found {type(saved).__name__}")
    try:
        current = effective_config(OmegaConf.create(saved))
    except OmegaConfBaseException as error:
        raise Damaged(f"{CONFIG_FILE}: cannot be resolved ({_why(error)})") from None
    shared = [k for k in recorded if k in current and not is_run_only(k)]
    differences = config_differences({k: recorded[k] for k in shared}, current, shared_only=True)
    if differences:
        raise Damaged(
            f"{METRICS_FILE} holds the results of other settings than {CONFIG_FILE} "
            f"({shown(differences)}, as {METRICS_FILE} -> {CONFIG_FILE}): "
            "a later command in this directory changed its recorded config, so these numbers "
            "are not the results of the overrides it lists"
        )
    literal = {k for k, v in flatten(saved).items() if not (isinstance(v, str) and "${" in v)}
    return {k: recorded[k] for k in shared if k in literal and k != "seed"}


def read_outcome(run: Path) -> tuple[str, Result | None, str | None]:
    """(status, result, error) of `run`, from its status.json (sweep jobs) and metrics.json."""
    record = parse_object(run, STATUS_FILE) if (run / STATUS_FILE).exists() else {}
    status = lookup(record, STATUS_FILE, "status", is_text, "a status", default=None)
    error = lookup(record, STATUS_FILE, "error", lambda v: isinstance(v, str), "text", default=None)
    if status in ("failed", "interrupted"):
        return status, None, error
    if (run / METRICS_FILE).exists():
        result = read_metrics(run)
        return result.status, result, None
    if status == "running":
        return "running", None, "no metrics.json yet: still running, or killed"
    return "incomplete", None, "no metrics.json"
