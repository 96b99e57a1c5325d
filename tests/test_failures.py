"""Bad inputs that are not about one file format: each ends in one clear message."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, compose_config, read_metrics, run_in_process
from omegaconf import OmegaConf

from memo.callbacks import OutputDirCheck
from memo.data.regimes import Full, ZeroShot, apply_regime
from memo.data.split import Corpus, Split
from memo.errors import MemoError, out_of_memory
from memo.models.base import EmotionModel
from memo.training.checkpoints import load_checkpoint, save_checkpoint
from memo.training.tensorboard import TensorBoardLogger
from memo.training.trainer import TaskSpec, Trainer


class BreaksAfter(EmotionModel):
    """A linear model whose logits turn NaN from its `calls`-th training batch on."""

    modalities = "t"

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.calls, self.seen = calls, 0

    def forward(self, text, audio, vision, emotion_vectors):
        logits = self.linear(text[:, -1])
        if self.training:
            self.seen += 1
            if self.seen >= self.calls:
                return logits * float("nan")
        return logits


def tiny_split(n: int = 40) -> Split:
    rng = np.random.default_rng(0)
    labels = (rng.random((n, 2)) < 0.5).astype(np.float32)
    features = rng.standard_normal((n, 2, 3)).astype(np.float32)
    return Split(features, features, features, labels, ("a", "b"))


def trainer_for(model: EmotionModel, run_dir: Path) -> Trainer:
    config = compose_config(["trainer.batch_size=10", "trainer.epochs=3"]).trainer
    return Trainer(
        model, lambda emotions: torch.zeros(len(emotions), 3), config,
        TaskSpec(("wa",), False, "wa"), run_dir, torch.device("cpu"),
        TensorBoardLogger(run_dir / "tb"), {}, show_progress=False,
    )  # fmt: skip


def test_non_finite_loss_names_epoch_and_batch_and_keeps_the_earlier_checkpoint(tmp_path):
    trainer = trainer_for(BreaksAfter(calls=7), tmp_path)  # 4 batches per epoch: epoch 2, batch 3
    with pytest.raises(
        MemoError, match=r"non-finite training loss \(nan\) in epoch 2, batch 3 of 4"
    ):
        trainer.fit(tiny_split(), tiny_split())
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["state"]["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in last["model"].values())


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(MemoError, match="corrupt or not a memo checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(MemoError, match="corrupt or not a memo checkpoint"):
        load_checkpoint(path)
    torch.save({"weights": torch.ones(1)}, path)
    with pytest.raises(MemoError, match="not a memo checkpoint"):
        load_checkpoint(path)
    with pytest.raises(MemoError, match="missing.pt: no such file$"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(MemoError, match=f"checkpoint {tmp_path}: a directory, not a file$"):
        load_checkpoint(tmp_path)


def test_checkpoints_are_loaded_as_data_not_code(tmp_path):
    """weights_only=True: a checkpoint that names arbitrary Python objects is refused."""
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": OmegaConf.create({"a": 1})}, path)
    with pytest.raises(MemoError, match="corrupt or not a memo checkpoint"):
        load_checkpoint(path)


def test_eval_with_a_corrupt_checkpoint(tmp_path):
    """What the CLI prints after `error: ` (test_cli: a MemoError ends it in one line, exit 2)."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02garbage")
    message = f"checkpoint {bad} is corrupt or not a memo checkpoint"
    with pytest.raises(MemoError, match=re.escape(message)) as error:
        run_in_process(tmp_path, [*TINY, "mode=eval", f"ckpt={bad}"])
    assert "\n" not in str(error.value)


def test_eval_with_a_checkpoint_for_other_data_says_what_differs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default paths.data_dir, `data`, is relative to it
    run_in_process(tmp_path, [*TINY, "trainer.epochs=1"], tmp_path / "trained")
    ckpt = tmp_path / "trained" / "checkpoints" / "best.pt"
    other = ["dataset=iemocap", "dataset.scale=0.1", "mode=eval", f"ckpt={ckpt}"]
    # Same sizes (both built-in corpora) and vectors, but its results would be reported as an
    # IEMOCAP model's, with emotions it never trained on as seen: refused.
    with pytest.raises(MemoError, match="dataset: checkpoint has 'mosei', this run has 'iemocap'"):
        run_in_process(tmp_path, other, tmp_path / "e")
    # A different emotion-vector size is refused with what differs.
    words = ["anger", "disgust", "fear", "happy", "sad", "surprise"]
    vectors = {word: [0.1] * 300 for word in words}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "glove.emotions.840B.300d.pt").write_bytes(pickle.dumps(vectors))
    evaluate = ["mode=eval", f"ckpt={ckpt}", "embeddings=file", "dataset.source=synthetic"]
    with pytest.raises(MemoError, match="emotion_dim: checkpoint has 50, this run has 300"):
        run_in_process(tmp_path, evaluate, tmp_path / "f")


def test_empty_split_or_no_emotion_left_is_refused():
    full = tiny_split()
    empty = Corpus("mosei", "files", "hand-made", {"train": full, "valid": full.rows(np.arange(0)),
                                                   "test": full})  # fmt: skip
    with pytest.raises(MemoError, match="the valid split has no samples under regime=full"):
        apply_regime(empty, Full(name="full"))
    single = Corpus("mosei", "files", "hand-made", {"train": full.columns(("a",)),
                    "valid": full.columns(("a",)), "test": full.columns(("a",))})  # fmt: skip
    with pytest.raises(MemoError, match="the train split has no emotions under regime=zsl"):
        apply_regime(single, ZeroShot(name="zsl", emotion="a"))


def test_output_directory_not_writable(tmp_path, capsys):
    """The Hydra callback that checks the run folder before the run starts (config.yaml's
    hydra.callbacks.output_dir_check), called as Hydra calls it for `hydra.run.dir=...`."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    hydra = OmegaConf.create({"hydra": {"run": {"dir": str(blocker / "run")}}})
    with pytest.raises(SystemExit) as stop:
        OutputDirCheck().on_run_start(hydra)
    assert stop.value.code == 2
    stderr = capsys.readouterr().err
    assert f"output directory {blocker / 'run'}" in stderr
    assert "cannot be written" in stderr and "Traceback" not in stderr


def test_an_emotion_with_no_positives_gives_nan_and_a_warning_not_a_crash(tmp_path, capsys):
    # The built-in MOSEI corpus at this scale has too few fear samples in valid for 0.001.
    with pytest.warns(RuntimeWarning, match="has no positive labels"):
        run_in_process(tmp_path, ["dataset.scale=0.004", "trainer.epochs=1"])
    metrics = read_metrics(tmp_path / "run")  # NaN is written as null
    missing = [k for k, v in metrics["test"].items() if v is None]
    assert missing, "expected at least one emotion without positives at this tiny scale"
    assert "n/a" in capsys.readouterr().out


def test_a_bad_checkpoint_fails_before_the_data_loads(tmp_path, monkeypatch):
    """mode=eval read its checkpoint only after the corpus (minutes for the real files)."""
    import memo.experiment

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    monkeypatch.setattr(memo.experiment, "load_corpus", lambda *_: pytest.fail("data first"))
    with pytest.raises(MemoError, match="corrupt or not a memo checkpoint"):
        run_in_process(tmp_path, ["mode=eval", f"ckpt={junk}"], tmp_path / "e")


def test_settings_that_ask_for_more_memory_than_there_is_are_one_line(tmp_path):
    """A typo in a size (an LSTM of 2,000,000 units: 64 TB of weights) ended in a traceback
    from torch's allocator; numpy's MemoryError likewise."""
    with pytest.raises(MemoError) as raised:
        run_in_process(tmp_path, [*TINY, "model.hidden_audio=2000000"], tmp_path / "run")
    assert str(raised.value).startswith("out of memory: DefaultCPUAllocator: can't allocate")
    assert "check sizes such as model.hidden_*" in str(raised.value)
    with pytest.raises(MemoryError) as numpy_error:
        np.empty(10**13)  # 80 TB
    assert str(out_of_memory(numpy_error.value)).startswith("out of memory: Unable to allocate")
    assert out_of_memory(RuntimeError("shapes differ")) is None
