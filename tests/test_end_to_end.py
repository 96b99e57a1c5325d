"""Every model through the real CLI, and training on exported real-format files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TINY, compose_config, read_metrics, run_cli, single_run_dir
from data_fixtures import component

from memo.data.files import load_files_corpus
from memo.data.synthetic import build_corpus


@pytest.mark.parametrize("model", ["eea", "rnn_ef", "rnn_lf", "mult"])
def test_each_model_trains_from_the_cli(tmp_path, model):
    run_cli([f"model={model}", *TINY], tmp_path)
    metrics = read_metrics(single_run_dir(tmp_path))
    assert metrics["model"] == model and metrics["epochs_run"] == 2
    assert 0 <= metrics["test"]["wa/avg"] <= 1


@pytest.mark.parametrize("model", ["eea", "rnn_lf"])
def test_zero_shot_on_iemocap_scores_the_extra_emotion(tmp_path, model):
    args = ["dataset=iemocap", "dataset.scale=0.1", f"model={model}", "regime=zsl",
            "regime.emotion=frustrated", *TINY[1:]]  # fmt: skip
    result = run_cli(args, tmp_path)
    metrics = read_metrics(single_run_dir(tmp_path))
    assert metrics["seen_emotions"] == ["neutral", "happy", "sad", "angry"]
    assert (
        metrics["test_emotions"][-1] == "frustrated" and metrics["target_emotion"] == "frustrated"
    )
    assert {"acc/target", "acc/avg_seen", "auc/target"} <= set(metrics["test"])
    assert "frustrated (unseen)" in result.stdout


def export(dataset: str, data_dir, scale: float) -> None:
    folder = data_dir / ("cmu-mosei" if dataset == "mosei" else "iemocap")
    command = [sys.executable, "-m", "memo.data.export", "--dataset", dataset, "--out",
               str(folder), "--scale", str(scale)]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)


@pytest.mark.parametrize(("dataset", "scale"), [("mosei", 0.02), ("iemocap", 0.1)])
def test_training_on_exported_real_format_files(tmp_path, dataset, scale):
    export(dataset, tmp_path / "data", scale)
    args = [f"dataset={dataset}", "dataset.source=files", f"dataset.scale={scale}", *TINY[1:],
            f"paths.data_dir={tmp_path / 'data'}"]  # fmt: skip
    result = run_cli(args, tmp_path)
    metrics = read_metrics(single_run_dir(tmp_path))
    assert metrics["data_source"] == "files"
    files = metrics["data_files"]  # the exact files, traceable by size and content hash
    assert files and all(Path(p).is_file() for p in files)
    for path, print_ in files.items():
        assert Path(path).stat().st_size == print_["size"] and len(print_["sha256"]) == 64
    assert str(tmp_path / "data") in metrics["data_description"]
    assert "real" in result.stderr and "files" in result.stderr


def test_auto_prefers_complete_files_and_says_why_it_does_not(tmp_path):
    run_cli([*TINY, "trainer.epochs=1"], tmp_path)
    assert read_metrics(single_run_dir(tmp_path))["data_source"] == "synthetic"
    export("mosei", tmp_path / "data", 0.02)
    result = run_cli([*TINY, "trainer.epochs=1", f"paths.output_dir={tmp_path / 'second'}"],
                     tmp_path)  # fmt: skip
    (run_dir,) = [p.parent for p in (tmp_path / "second").glob("*/*/metrics.json")]
    assert read_metrics(run_dir)["data_source"] == "files"
    (tmp_path / "data" / "cmu-mosei" / "ey_test.h5").unlink()
    result = run_cli([*TINY, "trainer.epochs=1", f"paths.output_dir={tmp_path / 'third'}"],
                     tmp_path)  # fmt: skip
    assert "because 1 of the real files are missing" in result.stderr
    failed = run_cli([*TINY, "dataset.source=files"], tmp_path, check=False)
    assert failed.returncode == 2 and "ey_test.h5" in failed.stderr


@pytest.mark.parametrize("dataset", ["mosei", "iemocap"])
def test_files_and_built_in_paths_give_identical_tensors(tmp_path, dataset):
    cfg = compose_config([f"dataset={dataset}", "dataset.scale=0.02",
                          f"paths.data_dir={tmp_path / 'data'}"])  # fmt: skip
    export(dataset, tmp_path / "data", 0.02)
    built = build_corpus(component(cfg.dataset), tmp_path / "cache")
    loaded = load_files_corpus(component(cfg.dataset), tmp_path / "cache")
    for name, split in built.splits.items():
        for field in ("text", "audio", "vision", "labels"):
            assert np.array_equal(getattr(split, field), getattr(loaded.splits[name], field))
    for name, pool in built.extras.items():
        assert np.array_equal(pool.audio, loaded.extras[name].audio)
        assert pool.emotions == loaded.extras[name].emotions
