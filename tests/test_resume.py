"""Reliability: kill and resume, clean stop on signals, skip finished runs, determinism.

A killed or signalled run, and the determinism across processes, need real processes; what
happens after (resuming, skipping, refusing) runs in process."""

from __future__ import annotations

import pickle
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    CLI_ENV,
    assert_one_value_per_step,
    cli_command,
    read_metrics,
    run_cli,
    run_in_process,
)

from memo.errors import MemoError
from memo.report import render, summarize

ARGS = [
    "dataset.scale=0.03",
    "trainer.epochs=5",
    "trainer.early_stop=100",
    "trainer.progress=false",
]


def start(tmp_path: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    """Start a training run in the background (same overrides as `run_cli`)."""
    command = cli_command([*ARGS, f"hydra.run.dir={run_dir}", *extra], tmp_path)
    return subprocess.Popen(command, cwd=tmp_path, env=CLI_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The reference run, in the test process (one torch thread, as the CLI processes get)."""
    tmp_path = tmp_path_factory.mktemp("reference")
    run_in_process(tmp_path, ARGS, tmp_path / "run")
    return read_metrics(tmp_path / "run")


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_identical_metrics(tmp_path, uninterrupted, logs):
    run_dir = tmp_path / "run"
    process = start(tmp_path, run_dir)
    wait_for(run_dir / "checkpoints" / "last.pt", process)
    process.kill()  # SIGKILL during the second epoch
    process.wait()
    assert not (run_dir / "metrics.json").exists()

    run_in_process(tmp_path, ARGS, run_dir)  # one torch thread, as in the killed process
    assert "resumed after epoch" in logs.text
    assert_one_value_per_step(run_dir, epochs=5)
    resumed = read_metrics(run_dir)
    assert resumed["test"] == uninterrupted["test"]  # bit-for-bit, not approximately
    assert resumed["best_epoch"] == uninterrupted["best_epoch"]
    assert resumed["epochs_run"] == uninterrupted["epochs_run"] == 5


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_resume_true_finds_the_run(tmp_path, uninterrupted):
    outputs = tmp_path / "outputs"
    process = start(tmp_path, outputs / "day" / "first")
    wait_for(outputs / "day" / "first" / "checkpoints" / "last.pt", process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "stopped by SIGTERM" in stderr and "resume=true" in stderr
    assert "Traceback" not in stderr

    # Same command plus resume=true, in a new run directory: continues the first one.
    # (A CLI run: resume=true looks for a run of the same command-line overrides.)
    result = run_cli([*ARGS, "resume=true"], tmp_path)
    assert "resuming the run in" in result.stderr
    assert read_metrics(outputs / "day" / "first")["test"] == uninterrupted["test"]
    # The new directory holds only the resume command's log: a report counts one run.
    assert "1 jobs: 1 completed." in summarize_markdown(outputs)


def summarize_markdown(folder: Path) -> str:
    """The Markdown summary `python -m memo.report folder` prints."""
    return render(summarize([folder]), "md", folder)


def test_a_finished_run_is_not_trained_again(tmp_path, logs):
    run_dir = tmp_path / "run"
    run_in_process(tmp_path, [*ARGS[:1], "trainer.epochs=1"], run_dir)
    stamp = (run_dir / "metrics.json").stat().st_mtime_ns
    run_in_process(tmp_path, [*ARGS[:1], "trainer.epochs=1"], run_dir)
    assert "already holds a finished run" in logs.text
    assert (run_dir / "metrics.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_two_processes_give_bit_identical_metrics(tmp_path, uninterrupted):
    """The reference ran in the test process; the same run in a CLI process gives the same bits."""
    run_cli([*ARGS, f"hydra.run.dir={tmp_path / 'again'}"], tmp_path)
    assert read_metrics(tmp_path / "again")["test"] == uninterrupted["test"]


def test_resuming_with_another_model_says_what_differs(tmp_path):
    run_dir = tmp_path / "run"
    run_in_process(tmp_path, [*ARGS[:1], "trainer.epochs=1", "model.modalities=ta"], run_dir)
    (run_dir / "metrics.json").unlink()  # make it look unfinished
    with pytest.raises(MemoError) as error:  # the CLI prints it after `error: `, exit 2
        run_in_process(tmp_path, [*ARGS[:1], "trainer.epochs=2"], run_dir)
    assert "model.modalities: 'ta' -> 'tav'" in str(error.value)
    assert "trainer.epochs: 1 -> 2" in str(error.value) and "resume=false" in str(error.value)


@pytest.mark.slow
def test_ctrl_c_outside_training_is_a_clean_message(tmp_path):
    # Enough epochs that the run cannot end before the signal lands on a loaded machine
    # (with one epoch it sometimes finished first, exit 0).
    process = start(tmp_path, tmp_path / "run", "trainer.epochs=100")
    assert "data:" in process.stderr.readline()  # past start-up imports, in the run itself
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # say where the run was, not only that it went on
        process.kill()
        pytest.fail(f"the run did not stop on SIGINT:\n{process.communicate()[1][-3000:]}")
    assert process.returncode in (2, 130)  # 130 before/after training, 2 stopped in it
    assert "resume=true" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("damage", ["deleted", "from another run"])
def test_resume_refuses_a_best_pt_that_is_not_the_selected_epoch(tmp_path, damage):
    """Resuming continues from last.pt but takes the selected weights from best.pt: without it,
    or with another run's, the result would be other weights under the best epoch's name."""
    run_dir, args = tmp_path / "run", [*ARGS[:1], "trainer.epochs=1"]
    run_in_process(tmp_path, args, run_dir)
    (run_dir / "metrics.json").unlink()  # killed after the last checkpoint
    best = run_dir / "checkpoints" / "best.pt"
    if damage == "deleted":
        best.unlink()
    else:
        run_in_process(tmp_path, [*args, "seed=1"], tmp_path / "other")
        best.write_bytes((tmp_path / "other" / "checkpoints" / "best.pt").read_bytes())
    reason = "is missing" if damage == "deleted" else "was written by a run with other settings"
    with pytest.raises(MemoError, match=f"cannot resume: {best} {reason}, but last.pt selected"):
        run_in_process(tmp_path, args, run_dir)
    assert not (run_dir / "metrics.json").exists()


def test_resume_refuses_emotion_vectors_changed_since_the_checkpoint(tmp_path):
    """embeddings=file: the vector file is replaced while a run is interrupted; the config (its
    path) is the same, what EEA is given is not."""
    words = ["anger", "disgust", "fear", "happy", "sad", "surprise"]
    path = tmp_path / "vectors.pkl"
    path.write_bytes(pickle.dumps({w: [0.1 * k] * 8 for k, w in enumerate(words)}))
    args = [*ARGS[:1], "trainer.epochs=1", "embeddings=file", f"embeddings.path={path}",
            "embeddings.dim=8", "dataset.source=synthetic"]  # fmt: skip
    run_dir = tmp_path / "run"
    run_in_process(tmp_path, args, run_dir)
    (run_dir / "metrics.json").unlink()  # as if killed after its last checkpoint
    path.write_bytes(pickle.dumps({w: [0.2 * k] * 8 for k, w in enumerate(words)}))
    with pytest.raises(MemoError, match=r"does not fit this run: data: .*'emotion_vectors_sha256'"):
        run_in_process(tmp_path, args, run_dir)


@pytest.mark.parametrize("garbled", [b"[1, 2]", b'{"status": "\xff"}'])
def test_a_garbled_metrics_json_is_not_a_finished_run(tmp_path, garbled):
    """A hand-edited metrics.json that is not a JSON object, or not UTF-8: the run starts again
    (it crashed with a traceback)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_bytes(garbled)
    args = [*ARGS[:1], "trainer.epochs=1"]
    assert run_in_process(tmp_path, args, run_dir)["status"] == "completed"


def test_resume_true_passes_over_a_run_with_damaged_overrides(tmp_path):
    """resume=true looks through every run under paths.output_dir; one whose
    .hydra/overrides.yaml is damaged is not its run (a YAML traceback before)."""
    damaged = tmp_path / "outputs" / "day" / "damaged"
    (damaged / ".hydra").mkdir(parents=True)
    (damaged / ".hydra" / "overrides.yaml").write_text("[1")
    (damaged / "checkpoints").mkdir()
    (damaged / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(MemoError, match="resume=true: no unfinished run with the overrides"):
        run_in_process(tmp_path, [*ARGS[:1], "resume=true"], tmp_path / "outputs" / "day" / "new")
