"""Shared test helpers: config composition and running the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from memo.api import CONFIG_DIR, compose_config
from memo.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
CONF = CONFIG_DIR  # the config tree every test composes from

# Small, fast settings shared by the CLI tests.
TINY = ["dataset.scale=0.03", "trainer.epochs=2", "trainer.progress=false"]


def cli_command(args: list[str], tmp_path: Path) -> list[str]:
    """`python run.py args` with outputs, caches and data under `tmp_path` (the working
    directory, so the default data folder is `tmp_path/data`).

    Flags such as `-m` go first: Hydra accepts them only before the overrides.
    """
    flags = [a for a in args if a.startswith("-")]
    return [
        sys.executable,
        str(ROOT / "run.py"),
        *flags,
        f"paths.output_dir={tmp_path / 'outputs'}",
        f"paths.multirun_dir={tmp_path / 'multirun'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        *[a for a in args if not a.startswith("-")],
    ]


CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_cli(args: list[str], tmp_path: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python run.py args` to completion (see `cli_command`)."""
    command = cli_command(args, tmp_path)
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=CLI_ENV)
    if check and result.returncode != 0:
        raise AssertionError(f"run.py failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def single_run_dir(tmp_path: Path) -> Path:
    """The one run directory under `tmp_path/outputs`."""
    runs = [p.parent for p in (tmp_path / "outputs").glob("*/*/.hydra")]
    assert len(runs) == 1, runs
    return runs[0]


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def run_in_process(tmp_path: Path, overrides: list[str], run_dir: Path | None = None) -> dict:
    """`run_experiment` on the composed config, caches and outputs under `tmp_path`."""
    cfg = compose_config(
        [f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={tmp_path / 'outputs'}",
         "trainer.progress=false", *overrides]
    )  # fmt: skip
    return run_experiment(cfg, run_dir or tmp_path / "run")


def assert_one_value_per_step(run_dir: Path, epochs: int) -> None:
    """Every TensorBoard scalar tag of the run holds exactly one value per step; the per-epoch
    tags have steps 1..epochs."""
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    for tag in events.Tags()["scalars"]:
        steps = [e.step for e in events.Scalars(tag)]
        assert len(steps) == len(set(steps)), (tag, steps)
        if tag.startswith(("train/", "valid/")) and "/pr/" not in tag:
            assert steps == list(range(1, epochs + 1)), (tag, steps)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
