"""The built wheel works away from the clone: configs, the `memo` command, a sweep, the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from conftest import ROOT

TINY = ["dataset.scale=0.03", "trainer.epochs=1", "trainer.progress=false"]


# Nothing from the clone; one OpenMP thread, as every CLI test process gets (conftest.CLI_ENV):
# on a busy machine, threads that wait for each other make this test take minutes.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment holding only the built memo wheel; its dependencies are
    reached through a .pth file to this environment's site-packages (no network, no copy)."""
    tmp = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp / "dist"), str(ROOT)], tmp)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("memo-*.whl")
    env = tmp / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp
    )
    (Path(site.stdout.strip()) / "memo-deps.pth").write_text(sysconfig.get_paths()["purelib"])
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp)
    return env


@pytest.mark.slow
def test_the_wheel_trains_sweeps_and_reports_outside_the_clone(installed, tmp_path):
    python, memo = installed / "bin" / "python", installed / "bin" / "memo"
    where = run([str(python), "-c", "import memo; print(memo.__file__)"], tmp_path).stdout
    assert where.startswith(str(installed))  # the wheel's memo, not the clone's
    run([str(memo), *TINY, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and (tmp_path / "run" / "run.log").is_file()
    run([str(memo), "-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path)
    assert (tmp_path / "sweep" / "summary.md").is_file()
    report = run(
        [str(python), "-m", "memo.report", str(tmp_path / "sweep"), "--no-plots"], tmp_path
    )
    assert "seed" in report.stdout
