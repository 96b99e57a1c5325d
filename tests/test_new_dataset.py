"""A dataset and a metric added entirely outside memo/ (tests/toy_dataset.py and
tests/configs/dataset/toy.yaml) run end to end, zero-shot included: composed with the extra
config folder on hydra.searchpath, as `python run.py hydra.searchpath=[...]` composes it, and
run in process (tests/, where toy_dataset.py lives, is on the test process's sys.path)."""

from __future__ import annotations

import numpy as np
from conftest import ROOT, compose_config, read_metrics, run_in_process
from data_fixtures import component
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from memo.data.synthetic import build_corpus

TESTS = ROOT / "tests"
SEARCH_PATH = f"hydra.searchpath=[file://{TESTS / 'configs'}]"


def test_a_dataset_defined_outside_memo_trains_zero_shot(tmp_path, capsys):
    cfg = compose_config([SEARCH_PATH, "dataset=toy"])
    toy = component(cfg.dataset)
    built = build_corpus(toy, tmp_path / "cache")  # its built-in corpus, shaped by its class
    assert built.splits["train"].emotions == ("calm", "joy", "anger")
    assert built.splits["train"].labels.sum(0).tolist() == [60, 60, 60]
    assert built.splits["test"].text.shape[1:] == (8, 50)
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    toy.exports()["npz"].write(built, folder)  # its own file format, read back by its reader

    data = f"paths.data_dir={tmp_path / 'data'}"
    args = [SEARCH_PATH, "dataset=toy", "dataset.source=files", data, "regime=zsl",
            "regime.emotion=0", "trainer.epochs=2", "trainer.progress=false"]  # fmt: skip
    run_dir = tmp_path / "run"
    run_in_process(tmp_path, args, run_dir)
    table = capsys.readouterr().out
    metrics = read_metrics(run_dir)
    assert (metrics["dataset"], metrics["data_source"]) == ("toy", "files")
    assert metrics["target_emotion"] == "anger"  # index 0 of the toy's emotion_index
    assert metrics["seen_emotions"] == ["calm", "joy"]
    assert metrics["test_emotions"] == ["calm", "joy", "anger"]
    assert metrics["selection"]["metric"] == "auc/avg"
    test = metrics["test"]
    assert {"recall/anger", "recall/target", "recall/avg_seen", "auc/target"} <= set(test)
    assert "wa/avg" not in test and "exact" not in test
    assert 0 <= test["recall/avg"] <= 1 and np.isfinite(test["auc/target"])
    assert "anger (unseen)" in table and "Rec" in table  # the results table
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert {"valid/recall/avg", "test/recall/anger"} <= set(events.Tags()["scalars"])
