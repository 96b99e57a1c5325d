"""Every model trains (in process: the same `run_experiment` as `python run.py`; the CLI itself
is test_cli's), and training on exported real-format files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, compose_config, read_metrics, run_in_process
from data_fixtures import component

from memo.data.export import main as export_main
from memo.data.files import load_files_corpus
from memo.data.synthetic import build_corpus
from memo.errors import MemoError


@pytest.mark.parametrize("model", ["eea", "rnn_ef", "rnn_lf", "mult"])
def test_each_model_trains(tmp_path, model):
    # One epoch: test_golden trains each model for two at this size, to exact numbers.
    metrics = run_in_process(tmp_path, [f"model={model}", *TINY, "trainer.epochs=1"])
    assert metrics == read_metrics(tmp_path / "run")
    assert metrics["model"] == model and metrics["epochs_run"] == 1
    assert 0 <= metrics["test"]["wa/avg"] <= 1


@pytest.mark.parametrize("model", ["eea", "rnn_lf"])
def test_zero_shot_on_iemocap_scores_the_extra_emotion(tmp_path, capsys, model):
    args = ["dataset=iemocap", "dataset.scale=0.1", f"model={model}", "regime=zsl",
            "regime.emotion=frustrated", *TINY[1:]]  # fmt: skip
    metrics = run_in_process(tmp_path, args)
    assert metrics["seen_emotions"] == ["neutral", "happy", "sad", "angry"]
    assert (
        metrics["test_emotions"][-1] == "frustrated" and metrics["target_emotion"] == "frustrated"
    )
    assert {"acc/target", "acc/avg_seen", "auc/target"} <= set(metrics["test"])
    assert "frustrated (unseen)" in capsys.readouterr().out  # the printed table


def test_few_shot_title_names_the_target_and_fraction(tmp_path, capsys):
    args = ["dataset=iemocap", "dataset.scale=0.1", "regime=fsl", "regime.emotion=excited",
            "regime.fraction=0.1", *TINY[1:]]  # fmt: skip
    metrics = run_in_process(tmp_path, args)
    table = capsys.readouterr().out
    best = metrics["best_epoch"]
    assert f"regime fsl (target excited, fraction 0.1), seed 0, best epoch {best}: test" in table
    assert "excited (few-shot)" in table


def export(dataset: str, data_dir: Path, scale: float, monkeypatch) -> None:
    """`python -m memo.data.export` (its main, in process) into `data_dir`; its built-in corpus
    cache (.cache/memo, relative) under the test's working directory."""
    monkeypatch.chdir(data_dir.parent)
    folder = data_dir / ("cmu-mosei" if dataset == "mosei" else "iemocap")
    export_main(["--dataset", dataset, "--out", str(folder), "--scale", str(scale)])


@pytest.mark.parametrize(("dataset", "scale"), [("mosei", 0.02), ("iemocap", 0.1)])
def test_training_on_exported_real_format_files(tmp_path, monkeypatch, logs, dataset, scale):
    export(dataset, tmp_path / "data", scale, monkeypatch)
    args = [f"dataset={dataset}", "dataset.source=files", f"dataset.scale={scale}", *TINY[1:],
            f"paths.data_dir={tmp_path / 'data'}"]  # fmt: skip
    metrics = run_in_process(tmp_path, args)
    assert metrics["data_source"] == "files"
    files = metrics["data_files"]  # the exact files, traceable by size and content hash
    assert files and all(Path(p).is_file() for p in files)
    for path, print_ in files.items():
        assert Path(path).stat().st_size == print_["size"] and len(print_["sha256"]) == 64
    assert str(tmp_path / "data") in metrics["data_description"]
    assert "real" in logs.text and "files" in logs.text


def test_auto_prefers_complete_files_and_says_why_it_does_not(tmp_path, monkeypatch, logs):
    monkeypatch.chdir(tmp_path)  # the default paths.data_dir, `data`, is relative to it
    one_epoch = [*TINY, "trainer.epochs=1"]
    first = run_in_process(tmp_path, one_epoch, tmp_path / "first")
    assert first["data_source"] == "synthetic"
    export("mosei", tmp_path / "data", 0.02, monkeypatch)
    assert run_in_process(tmp_path, one_epoch, tmp_path / "second")["data_source"] == "files"
    (tmp_path / "data" / "cmu-mosei" / "ey_test.h5").unlink()
    logs.clear()
    assert run_in_process(tmp_path, one_epoch, tmp_path / "third")["data_source"] == "synthetic"
    assert "because 1 of the real files are missing" in logs.text
    with pytest.raises(MemoError, match="ey_test.h5"):
        run_in_process(tmp_path, [*TINY, "dataset.source=files"], tmp_path / "fourth")


def test_resume_refuses_a_checkpoint_trained_on_other_data(tmp_path, monkeypatch):
    """The real files arrive while a run (dataset.source=auto) is interrupted: the same config
    now reads them, and continuing would mix two corpora under the files' name."""
    monkeypatch.chdir(tmp_path)  # the default paths.data_dir, `data`, is relative to it
    args = [*TINY, "trainer.epochs=1", "dataset.scale=0.02"]
    run_in_process(tmp_path, args, tmp_path / "run")
    (tmp_path / "run" / "metrics.json").unlink()  # as if killed after its last checkpoint
    export("mosei", tmp_path / "data", 0.02, monkeypatch)
    message = re.escape("data: checkpoint has {'source': 'synthetic', 'sha256': None, ")
    with pytest.raises(MemoError, match=message + r".*this run has \{'source': 'files', 'sha256'"):
        run_in_process(tmp_path, args, tmp_path / "run")


@pytest.mark.parametrize("dataset", ["mosei", "iemocap"])
def test_files_and_built_in_paths_give_identical_tensors(tmp_path, monkeypatch, dataset):
    cfg = compose_config([f"dataset={dataset}", "dataset.scale=0.02",
                          f"paths.data_dir={tmp_path / 'data'}"])  # fmt: skip
    export(dataset, tmp_path / "data", 0.02, monkeypatch)
    built = build_corpus(component(cfg.dataset), tmp_path / "cache")
    loaded = load_files_corpus(component(cfg.dataset), tmp_path / "cache")
    for name, split in built.splits.items():
        for field in ("text", "audio", "vision", "labels"):
            assert np.array_equal(getattr(split, field), getattr(loaded.splits[name], field))
    for name, pool in built.extras.items():
        assert np.array_equal(pool.audio, loaded.extras[name].audio)
        assert pool.emotions == loaded.extras[name].emotions
