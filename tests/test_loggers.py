"""Loggers: history.csv always, MLflow read back from a real local store, W&B offline run files."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import pytest
from conftest import run_in_process
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import memo.experiment

TINY = ["dataset.scale=0.03", "trainer.epochs=2", "dataset.source=synthetic"]


class SimulatedKill(BaseException):
    """Stands for SIGKILL: nothing in memo catches it."""


def read_history(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_history_csv_has_one_row_per_epoch_matching_tensorboard(tmp_path):
    run_in_process(tmp_path, TINY)
    rows = read_history(tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for tag in ("train/loss", "valid/loss", "train/lr", "valid/wa/avg", "valid/wa/anger"):
        tb = [e.value for e in events.Scalars(tag)]  # float32 in the event files
        assert [float(row[tag]) for row in rows] == pytest.approx(tb, rel=1e-6), tag
    assert not any(column.startswith("test/") for column in rows[0])


def test_csv_alone_writes_no_tensorboard(tmp_path):
    run_in_process(tmp_path, [*TINY, "logger=csv"])
    assert len(read_history(tmp_path / "run")) == 2
    assert not (tmp_path / "run" / "tb").exists()


@pytest.mark.parametrize("override", ["logger=[]", "~logger"])
def test_no_logger_chosen_leaves_history_csv_alone(tmp_path, override):
    """`logger=[]` composed no `logger` key, which the run refused as missing before."""
    from conftest import compose_config

    from memo.config import validate
    from memo.loggers import HistoryCSV, build_loggers

    cfg = compose_config([override])
    validate(cfg)
    loggers = build_loggers(cfg, tmp_path, [], {}, {}).loggers
    assert [type(logger) for logger in loggers] == [HistoryCSV]


def test_a_tracking_store_that_cannot_be_opened_is_one_line(tmp_path):
    """A SQLAlchemy DatabaseError traceback before."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from omegaconf import OmegaConf

    from memo.errors import MemoError
    from memo.loggers.mlflow import MLflowLogger

    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not a database")
    uri = f"sqlite:///{not_a_database}"
    settings = OmegaConf.create({"tracking_uri": uri, "experiment": "memo"})
    with pytest.raises(MemoError) as raised:
        MLflowLogger(settings, tmp_path, str(tmp_path), {}, {})
    assert str(raised.value) == (
        f"logger.mlflow.tracking_uri={uri}: cannot log there (DatabaseError: "
        "(sqlite3.DatabaseError) file is not a database)"
    )


def test_wandb_online_without_a_login_is_one_line(tmp_path, monkeypatch):
    """wandb's UsageError traceback before."""
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    from omegaconf import OmegaConf

    from memo.errors import MemoError
    from memo.loggers.wandb import WandbLogger

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path))
    settings = OmegaConf.create({"mode": "online", "project": "memo", "entity": None})
    with pytest.raises(MemoError, match=r"^logger=wandb \(logger.wandb.mode=online\): cannot "
                       r"log there \(UsageError: No API key configured"):  # fmt: skip
        WandbLogger(settings, tmp_path, {}, {})


def mlflow_runs(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("memo")
    return client, client.search_runs([experiment.experiment_id])


@pytest.mark.slow
def test_mlflow_gets_scalars_config_tags_and_final_metrics(tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    metrics = run_in_process(tmp_path, [*TINY, "logger=[tensorboard,mlflow]"])
    client, runs = mlflow_runs(tmp_path)
    (run,) = runs
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in losses] == [1, 2]
    assert run.data.params["trainer.lr"] == "0.001" and run.data.params["model._target_"]
    tags = run.data.tags
    assert (tags["dataset"], tags["model"], tags["regime"]) == ("mosei", "eea", "full")
    assert tags["data_source"] == "synthetic" and tags["target_emotion"] == "None"
    assert run.data.metrics["test/wa/avg"] == pytest.approx(metrics["test"]["wa/avg"])
    assert run.info.status == "FINISHED"
    assert (tmp_path / "run" / "tb").is_dir()  # both loggers


@pytest.mark.slow
def test_a_killed_and_resumed_run_leaves_one_mlflow_run_with_one_value_per_step(
    tmp_path, monkeypatch
):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    args = [*TINY, "trainer.epochs=3", "trainer.early_stop=100", "logger=[csv,mlflow]"]

    def kill(*args, **kwargs):
        raise SimulatedKill

    with monkeypatch.context() as patch:
        patch.setattr(memo.experiment, "_log_final", kill)  # after training, before the end
        with pytest.raises(SimulatedKill):
            run_in_process(tmp_path, args)
    run_in_process(tmp_path, args)
    client, runs = mlflow_runs(tmp_path)
    (run,) = runs  # the first attempt's run was deleted
    assert [m.step for m in client.get_metric_history(run.info.run_id, "valid/loss")] == [1, 2, 3]
    assert [row["epoch"] for row in read_history(tmp_path / "run")] == ["1", "2", "3"]


def wandb_records(run_dir: Path) -> list:
    """The protobuf records of the one offline W&B run under `run_dir` (LevelDB-log format:
    a 7-byte header, then 32 KiB blocks of records with a 7-byte crc/length/type header)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data, records, pending = path.read_bytes(), [], b""
    assert data[:4] == b":W&B"
    offset, block = 7, 32768
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # too little room for a header: padding
            offset += block - offset % block
            continue
        length, kind = struct.unpack("<HB", data[offset + 4 : offset + 7])
        pending += data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):  # a full record, or the last fragment of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_wandb_offline_run_files_hold_scalars_config_tags_and_summary(tmp_path):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    metrics = run_in_process(tmp_path, [*TINY, "logger=wandb"])
    records = wandb_records(tmp_path / "run")
    kinds = [r.WhichOneof("record_type") for r in records]
    history = [r.history for r in records if r.WhichOneof("record_type") == "history"]
    steps = {
        int(item.value_json)
        for h in history
        for item in h.item
        if (item.key or "/".join(item.nested_key)) == "_step"
    }
    keys = {(item.key or "/".join(item.nested_key)) for h in history for item in h.item}
    assert {1, 2} <= steps and "train/loss" in keys and "valid/wa/avg" in keys
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {item.key: item.value_json for item in run.config.update}
    assert config["trainer.lr"] == "0.001"
    assert {"dataset:mosei", "model:eea", "data_source:synthetic"} <= set(run.tags)
    summary = {
        (item.key or "/".join(item.nested_key)): item.value_json
        for r in records
        if r.WhichOneof("record_type") == "summary"
        for item in r.summary.update
    }
    assert float(summary["test/wa/avg"]) == pytest.approx(metrics["test"]["wa/avg"])
    assert "exit" in kinds
