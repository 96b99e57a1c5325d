"""Shared test helpers: config composition, runs in process (`run_in_process`, most tests)
and the real CLI in a subprocess (`run_cli`: kept for the tests that need a real process)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from memo import CONFIG_DIR
from memo.api import compose_config
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
    """`run_experiment` on the composed config, caches and outputs under `tmp_path`: what
    `python run.py overrides` runs, without a process start. Its results table goes to stdout
    (capsys) and its log to the `memo` loggers (the `logs` fixture)."""
    cfg = compose_config(
        [f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={tmp_path / 'outputs'}",
         f"paths.multirun_dir={tmp_path / 'multirun'}", "trainer.progress=false", *overrides]
    )  # fmt: skip
    return run_experiment(cfg, run_dir or tmp_path / "run")


def run_dirs(outputs: Path) -> list[Path]:
    """The run directories (holding metrics.json) under `outputs`, oldest first."""
    return sorted((p.parent for p in outputs.rglob("metrics.json")), key=os.path.getmtime)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread in the test process, as the CLI subprocesses get (OMP_NUM_THREADS=1):
    the tiny models gain nothing from more, and on a busy machine OpenMP threads that wait for
    each other make a one-second run take a minute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Logs:
    """What the `memo` loggers wrote during a test (INFO and up), as the CLI prints it."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    @property
    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.caplog.records)

    def clear(self) -> None:
        self.caplog.clear()


@pytest.fixture
def logs(caplog) -> Logs:
    caplog.set_level(logging.INFO, logger="memo")
    return Logs(caplog)


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
