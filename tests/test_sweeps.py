"""Sweeps end to end (`python run.py -m`): job directories, failures, summary, report, launchers."""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest
from conftest import CLI_ENV, ROOT, cli_command, read_metrics, run_cli, run_in_process
from hydra.core.hydra_config import HydraConfig
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import plugin_data_pb2

from memo.composition import compose_config
from memo.errors import MemoError
from memo.report.__main__ import main as report_main
from memo.run_lock import RunLock
from memo.sweep import SweepReport, run_sweep_job, torch_threads
from memo.training.runtime import Interrupted

TINY = ["dataset.scale=0.03", "trainer.epochs=1", "trainer.progress=false", "regime=zsl"]
# `-m` last: run_cli puts its path overrides first, and Hydra's parser takes flags before or after
# all the overrides, not between them.
MULTIRUN = "-m"


def sweep_dir(tmp_path: Path) -> Path:
    """The one sweep directory under `tmp_path/multirun`."""
    sweeps = [p.parent for p in (tmp_path / "multirun").glob("*/*/multirun.yaml")]
    assert len(sweeps) == 1, sweeps
    return sweeps[0]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def status(job_dir: Path) -> dict:
    return json.loads((job_dir / "status.json").read_text())


def report(capsys, *args: str) -> subprocess.CompletedProcess:
    """`python -m memo.report args`, its main in process: exit code, stdout and stderr."""
    capsys.readouterr()  # what came before
    code = report_main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["memo.report", *args], code, out, err)


def hparams(sweep: Path) -> dict[str, dict]:
    """TensorBoard runs under `sweep` and the hyperparameters each recorded."""
    runs = EventMultiplexer().AddRunsFromDirectory(str(sweep))
    runs.Reload()
    found = {}
    for run, tags in runs.PluginRunToTagToContent("hparams").items():
        start = tags["_hparams_/session_start_info"]
        info = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info
        found[run] = {k: v.string_value or v.number_value for k, v in info.hparams.items()}
    return found


@pytest.mark.slow
def test_sweep_runs_every_job_and_summarises_over_seeds(tmp_path):
    run_cli([*TINY, "regime.emotion=fear,sad", "seed=0,1", MULTIRUN], tmp_path)
    sweep = sweep_dir(tmp_path)

    # Job <n> is the n-th combination, emotions outermost; the manifest says which is which.
    expected = [("fear", 0), ("fear", 1), ("sad", 0), ("sad", 1)]
    manifest = read_csv(sweep / "manifest.csv")
    assert [row["job"] for row in manifest] == ["0", "1", "2", "3"]
    metrics = {}
    for num, (emotion, seed) in enumerate(expected):
        metrics[num] = read_metrics(sweep / str(num))
        assert (metrics[num]["target_emotion"], metrics[num]["seed"]) == (emotion, seed)
        assert f"regime.emotion={emotion} seed={seed}" in manifest[num]["overrides"]
        assert manifest[num]["status"] == status(sweep / str(num))["status"] == "completed"

    # One row per emotion, mean and sample std over the two seeds of the headline metrics.
    rows = read_csv(sweep / "summary.csv")
    assert [(r["regime.emotion"], r["n"], r["seeds"]) for r in rows] == [
        ("fear", "2", "0 1"),
        ("sad", "2", "0 1"),
    ]
    headline = [m for m in metrics[0]["test"] if m.endswith(("/avg", "/avg_seen", "/target"))]
    assert {"wa/avg", "wa/avg_seen", "wa/target", "auc/target"} <= set(headline)
    for row, jobs in zip(rows, ([0, 1], [2, 3]), strict=True):
        for metric in headline:
            values = [metrics[j]["test"][metric] for j in jobs]
            assert float(row[f"{metric} mean"]) == pytest.approx(statistics.fmean(values))
            assert float(row[f"{metric} std"]) == pytest.approx(statistics.stdev(values))
    markdown = (sweep / "summary.md").read_text()
    assert "| regime.emotion | data | n | seeds | wa/avg |" in markdown
    assert "| fear | synthetic | 2 | 0, 1 |" in markdown and "`regime=zsl`" in markdown

    # TensorBoard over the sweep: every job its own run, with the swept values as hparams.
    found = hparams(sweep)
    assert set(found) == {f"{n}/tb" for n in range(4)}
    for num, (emotion, seed) in enumerate(expected):
        assert found[f"{num}/tb"]["regime.emotion"] == emotion
        assert found[f"{num}/tb"]["seed"] == seed


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """A sweep whose job 1 asks for real files that are not there (a failure only the job can
    find: a bad value is refused for the whole sweep before any job starts)."""
    tmp_path = tmp_path_factory.mktemp("failing")
    jobs = ["regime.emotion=fear", "dataset.source=auto,files"]
    result = run_cli([*TINY, *jobs, MULTIRUN], tmp_path, check=False)
    return result, sweep_dir(tmp_path)


@pytest.mark.slow
def test_a_failing_job_is_recorded_and_fails_the_sweep_at_the_end(failing_sweep):
    result, sweep = failing_sweep
    assert result.returncode != 0
    assert "1 of 2 sweep jobs failed" in result.stderr
    assert "job 1 (dataset.source=files): dataset.source=files: 12 of the 12" in result.stderr

    failed = status(sweep / "1")
    assert failed["status"] == "failed" and "files are missing" in failed["error"]
    assert "Traceback" in failed["traceback"] and "MemoError" in failed["traceback"]
    assert not (sweep / "1" / "metrics.json").exists()
    assert status(sweep / "0")["status"] == "completed"
    assert read_metrics(sweep / "0")["target_emotion"] == "fear"

    rows = {row["dataset.source"]: row for row in read_csv(sweep / "summary.csv")}
    assert (rows["auto"]["n"], rows["auto"]["failed"]) == ("1", "0")
    assert (rows["files"]["n"], rows["files"]["failed"], rows["files"]["wa/avg mean"]) == (
        "0",
        "1",
        "",
    )
    markdown = (sweep / "summary.md").read_text()
    assert "2 jobs: 1 completed, 1 failed." in markdown
    assert "- job 1 (`dataset.source=files`): failed: dataset.source=files: 12 of" in markdown
    assert "`1/status.json`" in markdown


@pytest.mark.slow
def test_report_recreates_the_summary_from_the_run_directories(failing_sweep, tmp_path, capsys):
    _, sweep = failing_sweep
    copy = shutil.copytree(sweep, tmp_path / "sweep")
    for name in ("summary.md", "summary.csv", "summary.tex", "manifest.csv", "plot_wa.png"):
        (copy / name).unlink()

    result = report(capsys, str(copy))
    assert result.returncode == 0, result.stderr
    for name in ("summary.md", "summary.csv", "summary.tex", "manifest.csv"):
        assert (copy / name).read_text() == (sweep / name).read_text(), name
    assert result.stdout == (sweep / "summary.md").read_text()
    for metric in ("wa", "f1", "auc"):
        assert (copy / f"plot_{metric}.png").read_bytes().startswith(b"\x89PNG")
        assert (copy / f"plot_{metric}.png").stat().st_size > 10_000

    # An incomplete sweep: job 0 lost its metrics (killed), job 1 never started.
    (copy / "0" / "metrics.json").unlink()
    shutil.rmtree(copy / "1")
    result = report(capsys, str(copy), "--no-plots")
    assert result.returncode == 0, result.stderr
    assert "incomplete: 2 of 2 jobs have no results" in result.stderr
    assert "- job 0 (`dataset.source=auto`): incomplete: no metrics.json" in result.stdout
    assert "- job 1 (`dataset.source=files`): not started" in result.stdout
    assert [row["status"] for row in read_csv(copy / "manifest.csv")] == [
        "incomplete",
        "not started",
    ]


def test_report_of_nothing_says_so(tmp_path, capsys):
    result = report(capsys, str(tmp_path))
    assert result.returncode == 2
    assert f"error: no runs or sweeps under {tmp_path}" in result.stderr


@pytest.mark.slow
def test_parallel_launcher_runs_jobs_at_once(tmp_path):
    """Both jobs wait at their start for each other (tests/sweep_rendezvous.py): they get past
    it only if they run at the same time, whatever the machine's load (no clock comparison)."""
    rendezvous = ["+hydra.callbacks.rendezvous._target_=sweep_rendezvous.Rendezvous",
                  "+hydra.callbacks.rendezvous.jobs=2"]  # fmt: skip
    args = ["hydra/launcher=parallel", *TINY, "regime.emotion=fear,sad", *rendezvous, MULTIRUN]
    tests = os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    env = {**CLI_ENV, "PYTHONPATH": tests}
    result = subprocess.run(cli_command(args, tmp_path), capture_output=True, text=True,
                            cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    sweep = sweep_dir(tmp_path)
    jobs = [status(sweep / str(n)) for n in range(2)]
    assert [job["status"] for job in jobs] == ["completed", "completed"]
    assert jobs[0]["pid"] != jobs[1]["pid"]  # two worker processes ...
    assert sorted(p.name for p in sweep.glob("met-*")) == ["met-0", "met-1"]  # ... at once
    assert not list(sweep.glob("alone-*"))
    # n_jobs=2: each job gets half the cores as torch threads.
    assert [job["torch_threads"] for job in jobs] == [torch_threads(None, {"n_jobs": 2})] * 2
    assert [row["n"] for row in read_csv(sweep / "summary.csv")] == ["1", "1"]


@pytest.mark.parametrize(
    ("setting", "launcher", "expected"),
    [
        (3, {"n_jobs": 2}, 3),  # set explicitly: wins
        (None, None, None),  # basic launcher: torch's default
        (None, {"cpus_per_task": 4}, 4),  # submitit
        (None, {"n_jobs": 10_000}, 1),  # more jobs than cores: one thread each
    ],
)
def test_torch_threads_per_job(setting, launcher, expected):
    assert torch_threads(setting, launcher) == expected


def test_torch_threads_rejects_nonsense():
    with pytest.raises(MemoError, match="trainer.threads"):
        torch_threads(0, None)


@pytest.mark.slow
def test_a_sweep_rerun_with_other_values_never_relabels_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli([MULTIRUN, *TINY, "regime.emotion=anger", f"hydra.sweep.dir={sweep}"], tmp_path)
    anger = read_metrics(sweep / "0")
    rerun = run_cli([MULTIRUN, *TINY, "regime.emotion=disgust", f"hydra.sweep.dir={sweep}"],
                    tmp_path, check=False)  # fmt: skip
    assert rerun.returncode == 2  # refused before any job started: nothing rewritten
    assert "1 job folders of" in rerun.stderr and "no job was started" in rerun.stderr
    assert "regime.emotion: 'anger' -> 'disgust'" in rerun.stderr
    assert read_metrics(sweep / "0") == anger  # untouched, still anger's
    assert status(sweep / "0")["status"] == "completed"
    assert "regime.emotion=anger" in (sweep / "0" / ".hydra" / "overrides.yaml").read_text()


def test_a_sweep_rerun_with_other_settings_is_refused_before_any_job(tmp_path, capsys):
    """SweepReport.on_multirun_start as Hydra calls it for a re-run into a sweep directory whose
    job 1 holds a finished run of other settings (other values, or the same ones reordered):
    Hydra would rewrite the job's `.hydra/` record before the job itself could refuse."""
    sweep, tiny = tmp_path / "sweep", [*TINY[:3], f"paths.cache_dir={tmp_path / 'cache'}"]
    run_in_process(tmp_path, [*tiny, "seed=1"], sweep / "1")  # job 1 of `seed=0,1`
    rerun = compose_config([*tiny, f"hydra.sweep.dir={sweep}"], hydra=True)
    rerun.hydra.overrides.task = [*tiny, "trainer.lr=5e-4", "seed=0,1"]
    with pytest.raises(SystemExit) as stop:
        SweepReport(plots=False).on_multirun_start(rerun)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"error: 1 job folders of {sweep} cannot take this sweep's jobs" in err
    assert "job 1 (" in err and "trainer.lr: 0.001 -> 0.0005" in err
    with RunLock(sweep / "0"), pytest.raises(SystemExit):  # a job folder in use elsewhere
        SweepReport(plots=False).on_multirun_start(rerun)
    assert f"run directory {sweep / '0'} is in use by another memo process" in (
        capsys.readouterr().err
    )
    rerun.hydra.overrides.task = [*tiny, "seed=0,1,2"]  # more seeds, same settings: runs
    SweepReport(plots=False).on_multirun_start(rerun)
    assert (sweep / "manifest.csv").is_file()


def test_a_signal_in_a_sweep_job_is_recorded_as_interrupted_and_stops_the_sweep(tmp_path):
    """Ctrl-C or SIGTERM during training stops the job after its batch (`Interrupted`): the
    job is `interrupted`, not `failed`, and the sweep stops instead of starting the next job."""
    cfg = compose_config([*TINY[:3], f"hydra.sweep.dir={tmp_path}"], hydra=True)
    cfg.hydra.job.num = 0

    def stopped(job_cfg, job_dir):
        raise Interrupted("stopped by SIGTERM during epoch 2; ...")

    HydraConfig.instance().set_config(cfg)
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            run_sweep_job(stopped, cfg, tmp_path)
    finally:
        HydraConfig.instance().cfg = None
    assert status(tmp_path)["status"] == "interrupted"
    assert status(tmp_path)["error"].startswith("stopped by SIGTERM during epoch 2")
    assert str(raised.value) == (  # what the command line prints after `error: interrupted; `
        f"run the same command with hydra.sweep.dir={tmp_path} to finish the sweep (finished jobs "
        "are skipped, interrupted ones resume)"
    )
