"""Golden numbers: each model's per-epoch training losses and final test averages on the
built-in corpus (fixed seed, CPU, one thread). A refactor must keep them exact; a deliberate
change of a model's computation updates that model's entry and says why in its commit."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from memo.experiment import run_experiment

# model -> (train/loss at epochs 1 and 2, test wa/avg, f1/avg, auc/avg)
GOLDEN = {
    "eea": ((1.05763578414917, 0.9243284463882446),
            (0.5951494946683205, 0.7146685494790131, 0.6838152883313011)),
    "rnn_ef": ((1.063820719718933, 0.9871289730072021),
               (0.6297980791369745, 0.6491758155050115, 0.7108604785189406)),
    "rnn_lf": ((1.0678040981292725, 1.0351345539093018),
               (0.5539102969988309, 0.5250089630723318, 0.6651413683570211)),
    "mult": ((1.1430737972259521, 1.0397835969924927),
             (0.5481617238201547, 0.662129078462443, 0.5664403797030476)),
}  # fmt: skip


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("model", sorted(GOLDEN))
def test_numbers_are_unchanged(tmp_path, model, one_thread):
    cfg = compose_config(
        [f"model={model}", "dataset.scale=0.03", "trainer.epochs=2", "trainer.progress=false",
         "trainer.device=cpu", "dataset.source=synthetic", f"paths.cache_dir={tmp_path / 'cache'}",
         f"paths.output_dir={tmp_path / 'outputs'}"]
    )  # fmt: skip
    metrics = run_experiment(cfg, tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    losses = tuple(e.value for e in events.Scalars("train/loss"))
    test = metrics["test"]
    assert (losses, (test["wa/avg"], test["f1/avg"], test["auc/avg"])) == GOLDEN[model]
