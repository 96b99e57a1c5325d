"""The CUDA path: data resident on the GPU, cuDNN RNNs, no per-batch host synchronisation,
finite metrics, checkpoints loadable on the CPU. Skipped where no GPU is available."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import TINY, compose_config, read_metrics, run_in_process
from hydra.utils import instantiate

from memo.data.split import Split
from memo.models.eea import EEA
from memo.training.batches import DeviceSplit
from memo.training.checkpoints import load_checkpoint
from memo.training.tensorboard import TensorBoardLogger
from memo.training.trainer import TaskSpec, Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")
EMOTIONS = ("anger", "happy", "sad")


def small_eea(emotions: int) -> EEA:
    """A small EEA over 8/6/4-d inputs and 8-d emotion vectors, else the YAML's settings."""
    eea = instantiate(compose_config(["model=eea"]).model)
    return eea(8, 6, 4, emotions, 8, hidden_text=8, hidden_audio=6, hidden_vision=4)


def split(n: int, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(EMOTIONS))) < 0.3).astype(np.float32)
    labels[0], labels[1] = 1.0, 0.0
    return Split(
        rng.standard_normal((n, 5, 8), dtype=np.float32),
        rng.standard_normal((n, 5, 6), dtype=np.float32),
        rng.standard_normal((n, 5, 4), dtype=np.float32),
        labels,
        EMOTIONS,
    )


def trainer(tmp_path, precision: str = "fp32", batch_size: int = 16) -> Trainer:
    config = compose_config(
        [f"trainer.precision={precision}", f"trainer.batch_size={batch_size}",
         "trainer.epochs=2", "trainer.device=cuda"]
    ).trainer  # fmt: skip
    table = torch.randn(len(EMOTIONS), 8, device=CUDA)
    model = small_eea(len(EMOTIONS))
    return Trainer(
        model, lambda emotions: table[[EMOTIONS.index(e) for e in emotions]], config,
        TaskSpec(("wa", "f1", "auc"), True, "wa"), tmp_path, CUDA,
        TensorBoardLogger(tmp_path / "tb"), {}, show_progress=False,
    )  # fmt: skip


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_the_gpu_keeps_data_and_model_there(tmp_path, precision):
    fit = trainer(tmp_path, precision)
    assert all(p.device.type == "cuda" for p in fit.model.parameters())
    run = fit.prepare(split(64), split(32, seed=1))
    for data in (run.train, run.valid):
        assert {t.device.type for t in (data.text, data.audio, data.vision, data.labels)} == {
            "cuda"
        }
    result = fit.run_epoch(run, 1)
    fit.checkpoints.wait()
    assert np.isfinite(result.train_loss) and np.isfinite(result.valid.loss)
    assert all(np.isfinite(v) for k, v in result.valid.metrics.items() if k.startswith("wa/"))
    test = fit.test(split(24, seed=2), EMOTIONS)
    assert test.scores.shape == (24, len(EMOTIONS)) and np.isfinite(test.scores).all()
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")  # map_location=cpu
    assert all(t.device.type == "cpu" for t in last["model"].values())


def _syncs_in_one_epoch(tmp_path, samples: int) -> int:
    """Synchronising calls in the second epoch (the first warms up cuDNN and lazy state)."""
    fit = trainer(tmp_path, batch_size=8)
    run = fit.prepare(split(samples), split(16, seed=1))
    fit.run_epoch(run, 1)
    fit.checkpoints.wait()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit.run_epoch(run, 2)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    fit.checkpoints.wait()
    return sum("synchronizing" in str(w.message) for w in caught)


def test_no_host_synchronisation_per_batch(tmp_path):
    """An epoch of 16 batches synchronises exactly as often as one of 2 (only at its end)."""
    assert _syncs_in_one_epoch(tmp_path / "a", 16) == _syncs_in_one_epoch(tmp_path / "b", 128)


def test_rnns_run_on_cudnn():
    model = small_eea(3).to(CUDA)
    inputs = [torch.randn(4, 5, d, device=CUDA) for d in (8, 6, 4)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        model(*inputs, torch.randn(3, 8, device=CUDA))
    assert any("cudnn_rnn" in event.key for event in profile.key_averages())


def test_device_split_is_resident(tmp_path):
    data = DeviceSplit.from_split(split(10), CUDA)
    assert data.text.is_cuda and data.labels.is_cuda and data.text.dtype == torch.float32


def test_a_run_on_cuda(tmp_path):
    """A whole run (in process; the CLI around it is test_cli's) on the GPU."""
    run_in_process(tmp_path, [*TINY, "trainer.device=cuda"])
    metrics = read_metrics(tmp_path / "run")
    assert metrics["device"].startswith("cuda")
    assert np.isfinite(metrics["test"]["wa/avg"])
