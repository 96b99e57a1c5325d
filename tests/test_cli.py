"""The real command line, end to end: run directory, metrics.json, TensorBoard, errors."""

from __future__ import annotations

import json

import pytest
from conftest import TINY, read_metrics, run_cli, single_run_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

MOSEI = ("anger", "disgust", "fear", "happy", "sad", "surprise")


def events(run_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_mosei_run_leaves_a_complete_run_directory(tmp_path):
    result = run_cli(TINY, tmp_path)
    run_dir = single_run_dir(tmp_path)
    for name in (".hydra/config.yaml", "run.log", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))

    # The printed table: one row per emotion plus the average, WA / F1 / AUC columns.
    assert "WA" in result.stdout and "AUC" in result.stdout
    for emotion in (*MOSEI, "average"):
        assert any(line.startswith(emotion) for line in result.stdout.splitlines()), emotion

    metrics = read_metrics(run_dir)
    assert metrics["dataset"] == "mosei" and metrics["data_source"] == "synthetic"
    assert metrics["model"] == "eea" and metrics["regime"] == "full" and metrics["seed"] == 0
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] == 2
    assert metrics["test_emotions"] == list(MOSEI)
    for emotion in (*MOSEI, "avg"):
        for metric in ("wa", "f1", "auc"):
            assert 0.0 <= metrics["test"][f"{metric}/{emotion}"] <= 1.0
    assert {"exact", "subset", "intersect"} <= set(metrics["test"])
    assert metrics["wall_time_s"] > 0

    tb = events(run_dir)
    scalars = set(tb.Tags()["scalars"])
    expected = {
        "train/loss",
        "valid/loss",
        "train/lr",
        "valid/wa/anger",
        "valid/wa/avg",
        "valid/auc/surprise",
        "train/f1/avg",
        "test/wa/avg",
        "test/exact",
    }
    assert expected <= scalars, expected - scalars
    assert len(tb.Scalars("valid/loss")) == 2
    assert tb.Scalars("test/wa/avg")[0].value == pytest.approx(metrics["test"]["wa/avg"])
    assert {f"test/pr/{e}" for e in MOSEI} <= set(tb.Tags()["tensors"])
    hparams = tb.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hparams and "_hparams_/session_start_info" in hparams
    assert (run_dir / "tb" / "projector_config.pbtxt").is_file()


def test_iemocap_run_reports_accuracy(tmp_path):
    result = run_cli(["dataset=iemocap", "dataset.scale=0.1", *TINY[1:]], tmp_path)
    assert "Acc" in result.stdout and "WA" not in result.stdout
    metrics = read_metrics(single_run_dir(tmp_path))
    assert metrics["test_emotions"] == ["neutral", "happy", "sad", "angry"]
    assert {"acc/avg", "f1/avg", "auc/avg"} <= set(metrics["test"])


def test_eval_mode_reproduces_the_test_metrics(tmp_path):
    run_cli(TINY, tmp_path)
    trained = single_run_dir(tmp_path)
    run_cli(
        [
            *TINY,
            "mode=eval",
            f"ckpt={trained / 'checkpoints' / 'best.pt'}",
            f"paths.output_dir={tmp_path / 'eval'}",
        ],
        tmp_path,
    )
    (evaluated,) = [p.parent for p in (tmp_path / "eval").glob("*/*/metrics.json")]
    again = json.loads((evaluated / "metrics.json").read_text())
    assert again["mode"] == "eval" and again["epochs_run"] == 0
    assert again["test"] == pytest.approx(read_metrics(trained)["test"], nan_ok=True)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.modalities=tx", "config key 'model.modalities': got 'tx'; allowed: a non-empty"),
        ("model.hidden_text=64", "config key 'model.hidden_text': got 64"),
        ("trainer.device=gpu", "config key 'trainer.device': got 'gpu'; allowed: auto | cpu"),
        ("dataset.emotions=[anger,joyful]", "missing ['joyful']"),
        ("dataset.source=web", "config key 'dataset.source': got 'web'"),
        ("trainer.lrr=1", "Key 'lrr' is not in struct"),
        ("model=transformer", "Could not find 'model/transformer'"),
    ],
)
def test_bad_config_values_fail_with_one_clear_message(tmp_path, override, message):
    result = run_cli([*TINY, override], tmp_path, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    if override.split("=")[0] not in ("trainer.lrr", "model"):
        assert "Traceback" not in result.stderr
