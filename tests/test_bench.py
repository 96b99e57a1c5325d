"""The benchmark runs end to end at a tiny size and writes the documented JSON; the trainer's
performance plumbing (one-epoch method, training step, phase hook, background checkpoints)
keeps its behaviour."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from conftest import compose_config

from memo.bench.cli import main as bench_main
from memo.data.split import Split
from memo.errors import MemoError
from memo.training.checkpoints import CheckpointWriter, load_checkpoint
from memo.training.tensorboard import TensorBoardLogger
from memo.training.trainer import PHASES, TaskSpec, Trainer

RESULT_KEYS = {
    "model", "precision", "scale", "seq_len", "batch_size", "device", "threads", "sizes",
    "train_samples_per_s", "eval_samples_per_s", "epoch_s", "floor_s", "overhead",
    "floor_train_samples_per_s", "floor_eval_samples_per_s", "phases_s", "peak_rss_mb",
    "peak_gpu_mb", "reps",
}  # fmt: skip
BENCH_PHASES = {*PHASES, "test", "test_metrics", "checkpoint_write_wait", "epoch"}


@pytest.mark.slow
def test_benchmark_smoke(tmp_path, capsys):
    """`python -m memo.bench ...`: its main in process; each measurement runs in a worker
    process of its own, as always."""
    out = tmp_path / "bench.json"
    bench_main([
        "--scale", "0.01", "--epochs", "2", "--models", "eea", "--precisions", "fp32",
        "--threads", "1", "--warmup-batches", "1", "--out", str(out),
    ])  # fmt: skip
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert {"command", "machine", "settings", "results", "bf16_speedup", "targets"} <= set(report)
    assert {"device", "torch", "cores", "OMP_NUM_THREADS"} <= set(report["machine"])
    (row,) = report["results"]
    assert set(row) >= RESULT_KEYS
    assert (row["model"], row["precision"], row["epochs_measured"]) == ("eea", "fp32", 2)
    assert row["sizes"] == {"train": 153, "valid": 23, "test": 48}
    assert set(row["phases_s"]) >= BENCH_PHASES
    assert row["train_samples_per_s"] > 0 and row["eval_samples_per_s"] > 0
    assert row["epoch_s"] > 0 and row["floor_s"] > 0 and row["overhead"] > 0
    assert row["overhead_cpu"] > 0
    assert row["peak_rss_mb"] > 0 and row["peak_gpu_mb"] is None
    assert "| eea | fp32 |" in printed  # the printed table


def tiny_split(n: int = 40) -> Split:
    rng = np.random.default_rng(0)
    labels = (rng.random((n, 2)) < 0.5).astype(np.float32)
    features = rng.standard_normal((n, 3, 4)).astype(np.float32)
    return Split(features, features, features, labels, ("a", "b"))


class Linear(torch.nn.Module):
    modalities = "t"

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, text, audio, vision, emotion_vectors):
        return self.linear(text[:, -1])


def make_trainer(tmp_path, epochs: int = 3, **options) -> Trainer:
    config = compose_config(["trainer.batch_size=16", f"trainer.epochs={epochs}"]).trainer
    return Trainer(
        Linear(), lambda emotions: torch.zeros(len(emotions), 4), config,
        TaskSpec(("wa", "f1", "auc"), True, "wa"), tmp_path, torch.device("cpu"),
        TensorBoardLogger(tmp_path / "tb"), {"dims": {}}, show_progress=False, **options,
    )  # fmt: skip


def test_run_epoch_is_what_fit_runs(tmp_path):
    torch.manual_seed(0)
    fitted = make_trainer(tmp_path / "fit")
    state = fitted.fit(tiny_split(), tiny_split())
    torch.manual_seed(0)
    phases: list[str] = []
    stepped = make_trainer(tmp_path / "step", on_phase=phases.append)
    run = stepped.prepare(tiny_split(), tiny_split())
    results = [stepped.run_epoch(run, epoch) for epoch in (1, 2, 3)]
    stepped.checkpoints.wait()
    assert [r.train_loss for r in results] == [h["train_loss"] for h in state.history]
    assert [r.valid.loss for r in results] == [h["valid_loss"] for h in state.history]
    assert phases == list(PHASES) * 3  # the hook sees each phase end, in order
    for folder in ("fit", "step"):
        last = load_checkpoint(tmp_path / folder / "checkpoints" / "last.pt")
        assert last["state"]["epoch"] == 3
    first = load_checkpoint(tmp_path / "fit" / "checkpoints" / "last.pt")["model"]
    second = load_checkpoint(tmp_path / "step" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_train_step_is_the_step_the_training_loop_takes(tmp_path):
    """Steps on the epoch's batches, in its order, give the weights a trained epoch gives."""
    torch.manual_seed(0)
    fitted = make_trainer(tmp_path / "fit", epochs=1)
    run = fitted.prepare(tiny_split(), tiny_split())
    fitted.run_epoch(run, 1)
    fitted.checkpoints.wait()
    torch.manual_seed(0)
    stepped = make_trainer(tmp_path / "step", epochs=1)
    run = stepped.prepare(tiny_split(), tiny_split())
    order = torch.randperm(len(run.train), generator=run.generator)
    stepped.model.train()
    for start in (0, 16, 32):
        stepped.train_step(run, run.train.batch(order[start : start + 16]))
    first, second = fitted.model.state_dict(), stepped.model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_checkpoints_hold_the_weights_of_their_epoch_not_later_ones(tmp_path):
    """The background writer snapshots tensors: training on does not change a queued file."""
    weights = torch.zeros(1000)
    writer = CheckpointWriter()
    writer.save([tmp_path / "a.pt", tmp_path / "b.pt"], {"model": {"w": weights}})
    weights += 1  # the next epoch trains in place while the file is being written
    writer.wait()
    for name in ("a.pt", "b.pt"):
        assert torch.equal(load_checkpoint(tmp_path / name)["model"]["w"], torch.zeros(1000))


def test_a_failed_checkpoint_write_is_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = CheckpointWriter()
    writer.save([blocker / "last.pt"], {"model": {}})
    with pytest.raises(MemoError, match=f"cannot write {blocker / 'last.pt'}"):
        writer.wait()
    writer.wait()  # reported once


def test_startup_probe_times_run_py_to_its_first_step_without_loading_tensorboard(tmp_path):
    from memo.bench.startup import _spawn

    run_dir = f"hydra.run.dir={tmp_path / 'run'}"
    probe = _spawn(["trainer.device=cpu", "dataset.scale=0.01", run_dir], tmp_path, threads=1)
    assert 0 < probe["interpreter_s"] < probe["to_step_start_s"] < probe["to_first_step_s"]
    assert probe["cpu_s"] > 0
    # start-up stays light: TensorBoard waits for the first write, h5py for an HDF5 file
    assert not {"tensorboard", "torch.utils.tensorboard", "h5py"} & set(probe["loaded_before_step"])


def test_the_allocator_is_tuned_except_where_the_user_set_it(monkeypatch) -> None:
    """glibc keeps freed heap for the next batch (no page faults per batch); a MALLOC_*_
    variable the user exported wins."""
    from memo.training.runtime import MALLOC_SETTINGS, tune_allocator

    if not sys.platform.startswith("linux"):
        pytest.skip("mallopt is glibc's (Linux)")
    assert tune_allocator() == {name: value for name, (_, value) in MALLOC_SETTINGS.items()}
    monkeypatch.setenv("MALLOC_TOP_PAD_", "0")
    assert "MALLOC_TOP_PAD_" not in tune_allocator()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--scale", "nan"], "argument --scale: got 'nan'; allowed: a number > 0"),
        (["--seq-len", "0"], "argument --seq-len: got '0'; allowed: an integer >= 1"),
        (["--batch-size", "1.5"], "argument --batch-size: got '1.5'; allowed: an integer >= 1"),
        (["--warmup-epochs", "-1"], "argument --warmup-epochs: got '-1'; allowed: an integer >="),
        (["--startup-runs", "0"], "argument --startup-runs: got '0'; allowed: an integer >= 1"),
        (["--grid-pairs", "0"], "argument --grid-pairs: got '0'; allowed: an integer >= 1"),
        (["--scaling-seq-lens", "1.5"], "argument --scaling-seq-lens: got '1.5'; allowed: comma"),
        (["--scaling-scales", ""], "argument --scaling-scales: got ''; allowed: comma-separated"),
        (["--grid-text-dims", "50.5"], "argument --grid-text-dims: got '50.5'; allowed: comma"),
        (["--out", "/"], "argument --out: / is a folder; allowed: a JSON file's path"),
        (["--device", "gpu"], "argument --device: got 'gpu'; allowed: auto | cpu | cuda"),
        (["--out", "/dev/null/x.json"], "argument --out: /dev/null is a file, so /dev/null/x"),
    ],
)
def test_bad_option_values_are_refused_before_measuring(args, line, capsys):
    """--scale nan, 0 or negative counts were accepted (a NaN-sized run, an empty median);
    1.5 steps became 1; --out a folder was an IsADirectoryError after the first measurement."""
    with pytest.raises(SystemExit) as exited:
        bench_main(["--skip-main", *args])
    assert exited.value.code == 2
    assert f"python -m memo.bench: error: {line}" in capsys.readouterr().err


def test_device_cuda_without_a_gpu_is_an_option_error(monkeypatch, capsys):
    """A MemoError traceback naming trainer.device before."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exited:
        bench_main(["--skip-main", "--device", "cuda"])
    assert exited.value.code == 2
    assert "error: argument --device: got 'cuda'; allowed: auto | cpu (no CUDA device here)" in (
        capsys.readouterr().err
    )
