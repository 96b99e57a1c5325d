"""Sweeps on a real SLURM cluster (`hydra/launcher=slurm`): the one-node cluster that
`scripts/slurm-local.sh start` sets up (`.ci/run` does); without it, those tests skip saying why."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import CLI_ENV, ROOT, cli_command, read_metrics, run_cli

from memo.slurm import Node, QueueWatcher, read_partitions, request_problem

TINY = ["dataset.scale=0.03", "trainer.epochs=1", "trainer.progress=false"]
SCRIPT = ROOT / "scripts" / "slurm-local.sh"


@pytest.fixture(scope="module")
def jobcomp_log() -> Path:
    """The running cluster's job-completion log; skips the test where no cluster runs."""
    if shutil.which("sinfo") is None:
        pytest.skip("SLURM is not installed: scripts/slurm-local.sh start installs and starts it")
    if not _running("slurmctld"):  # else sinfo (in `status`) waits ~10 s for a controller
        pytest.skip("no SLURM cluster (no slurmctld runs here): scripts/slurm-local.sh start")
    status = subprocess.run([SCRIPT, "status"], capture_output=True, text=True)
    if status.returncode != 0:
        pytest.skip(f"no SLURM cluster ({status.stdout.strip()}): scripts/slurm-local.sh start")
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    return Path(re.search(r"^JobCompLoc\s*=\s*(\S+)", config, re.M).group(1))


def _running(name: str) -> bool:
    """Whether a process called `name` runs on this machine (the one-node cluster's controller
    runs here)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                return True
        except OSError:  # the process ended meanwhile
            continue
    return False


def status(job_dir: Path) -> dict:
    return json.loads((job_dir / "status.json").read_text())


@pytest.mark.slow
def test_a_sweep_runs_on_slurm_and_a_rerun_finishes_a_cancelled_one(jobcomp_log, tmp_path):
    sweep, name = tmp_path / "sweep", f"memo-test-{uuid.uuid4().hex[:8]}"
    args = ["-m", "hydra/launcher=slurm", "seed=0,1", *TINY, f"hydra.sweep.dir={sweep}",
            f"hydra.launcher.name={name}", "hydra.launcher.array_parallelism=1"]  # fmt: skip

    # Once job 0 runs, cancel the sweep's job still waiting behind it (array_parallelism=1).
    command = cli_command(args, tmp_path)
    sweep_run = subprocess.Popen(command, cwd=tmp_path, env=CLI_ENV, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        for _ in range(600):
            if (sweep / "0" / "status.json").exists() or sweep_run.poll() is not None:
                break
            time.sleep(0.1)
        subprocess.run(["scancel", f"--name={name}", "--state=PENDING"], check=True)
        _, stderr = sweep_run.communicate(timeout=120)
    finally:
        sweep_run.kill()
    # memo follows the jobs with squeue (no accounting here) and says how to finish the sweep.
    assert sweep_run.returncode == 1, stderr
    assert "_1 cancelled" in stderr and f"same command with hydra.sweep.dir={sweep}" in stderr
    assert "sacct" not in stderr
    assert status(sweep / "0")["status"] == "completed" and not (sweep / "1").exists()
    metrics_0 = read_metrics(sweep / "0")

    rerun = run_cli(args, tmp_path)
    for job in ("0", "1"):
        assert status(sweep / job)["status"] == "completed"
        assert read_metrics(sweep / job)["seed"] == int(job)
    assert read_metrics(sweep / "0") == metrics_0  # finished before: not trained again
    assert "2 jobs: 2 completed." in (sweep / "summary.md").read_text()
    assert "SLURM jobs:" in rerun.stderr
    # Both arrays went through SLURM: job 1 cancelled in the first, all completed in the re-run.
    states = re.findall(rf"Name={name} JobState=(\w+)", jobcomp_log.read_text())
    assert sorted(states) == ["CANCELLED", "COMPLETED", "COMPLETED", "COMPLETED"]


@pytest.mark.slow
def test_a_request_no_node_can_run_is_refused_before_submitting(jobcomp_log, tmp_path):
    sinfo = subprocess.run(["sinfo", "--noheader", "--format=%c"], capture_output=True, text=True)
    cpus = max(int(n.rstrip("+")) for n in sinfo.stdout.split())
    args = ["-m", "hydra/launcher=slurm", f"hydra.launcher.cpus_per_task={cpus + 1}", *TINY]
    result = run_cli(args, tmp_path, check=False)
    assert result.returncode == 2
    assert (
        f"error: no node of SLURM partition debug can run these jobs: hydra.launcher."
        f"cpus_per_task={cpus + 1}, but its largest node has {cpus} CPUs. The jobs would pend "
        "forever" in result.stderr
    )
    assert not list(tmp_path.glob("multirun/*/*/.submitit"))  # nothing submitted


def test_request_problem_names_what_no_node_offers():
    partitions = read_partitions(
        "cpu*|c1|64|257000|(null)\ngpu|g1|32|515000|gpu:a100:4(S:0-1)\ngpu|g2|16|128000|gpu:2\n"
    )
    assert partitions["gpu"] == [Node("g1", 32, 515000, 4), Node("g2", 16, 128000, 2)]
    fits = {"cpus_per_task": 8, "mem_gb": 64, "gpus_per_node": 4, "partition": "gpu"}
    assert request_problem(fits, partitions) is None
    assert request_problem({**fits, "gpus_per_node": 0, "partition": None}, partitions) is None
    assert request_problem({**fits, "partition": None}, partitions) == (
        "no node of SLURM partition cpu can run these jobs: "
        "hydra.launcher.gpus_per_node=4, but its largest node has 0 GPUs"
    )
    both = {**fits, "cpus_per_task": 40, "partition": "cpu,gpu"}
    assert "partition cpu,gpu can run these jobs: no single node has" in request_problem(
        both, partitions
    )
    assert "no SLURM partition gpus (partitions: cpu, gpu)" in request_problem(
        {**fits, "partition": "gpus"}, partitions
    )


def test_queue_watcher_takes_a_job_gone_from_the_queue_for_ended():
    watcher = QueueWatcher("sweep")
    for job_id in ("7", "7_0", "7_1", "5_0"):
        watcher.register_job(job_id)
    info = watcher.read_info("7_0|RUNNING|vm|None\n7_1|PENDING||Resources\n")
    assert {job_id: job["State"] for job_id, job in info.items()} == {
        "7_0": "RUNNING",
        "7_1": "PENDING",
        "5_0": "ENDED",  # left the queue: done, results or not
    }
