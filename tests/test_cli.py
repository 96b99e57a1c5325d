"""The command line: one real `python run.py` end to end (run directory, printed table,
metrics.json, TensorBoard) and one proving a MemoError ends it in one line with exit 2; the
rest in process: other datasets, eval mode, and each kind of bad config value."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from conftest import TINY, read_metrics, run_cli, run_in_process, single_run_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from memo import cli
from memo.cli import command_line_overrides
from memo.errors import MemoError

MOSEI = ("anger", "disgust", "fear", "happy", "sad", "surprise")


def events(run_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
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


def test_a_memo_error_ends_the_cli_in_one_line_with_exit_2(tmp_path):
    """The one subprocess for the error path: the other bad values are checked in process as
    the MemoError they raise."""
    result = run_cli([*TINY, "trainer.device=gpu"], tmp_path, check=False)
    assert result.returncode == 2
    message = "error: config key 'trainer.device': got 'gpu'; allowed: auto | cpu"
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [
        line for line in result.stderr.splitlines() if message in line
    ]
    assert len([line for line in result.stderr.splitlines() if message in line]) == 1
    assert "Traceback" not in result.stderr


def test_iemocap_run_reports_accuracy(tmp_path, capsys):
    metrics = run_in_process(tmp_path, ["dataset=iemocap", "dataset.scale=0.1", *TINY[1:]])
    table = capsys.readouterr().out
    assert "Acc" in table and "WA" not in table
    assert metrics == read_metrics(tmp_path / "run")
    assert metrics["test_emotions"] == ["neutral", "happy", "sad", "angry"]
    assert {"acc/avg", "f1/avg", "auc/avg"} <= set(metrics["test"])


def test_eval_mode_reproduces_the_test_metrics(tmp_path):
    trained = run_in_process(tmp_path, TINY, tmp_path / "trained")
    ckpt = tmp_path / "trained" / "checkpoints" / "best.pt"
    run_in_process(tmp_path, [*TINY, "mode=eval", f"ckpt={ckpt}"], tmp_path / "eval")
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert again["mode"] == "eval" and again["epochs_run"] == 0
    assert again["test"] == pytest.approx(trained["test"], nan_ok=True)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.modalities=tx", "config key 'model.modalities': got 'tx'; allowed: a non-empty"),
        ("model.hidden_text=64", "config key 'model.hidden_text': got 64"),
        ("trainer.device=gpu", "config key 'trainer.device': got 'gpu'; allowed: auto | cpu"),
        ("dataset.emotions=[anger,joyful]", "missing ['joyful']"),
        ("dataset.source=web", "config key 'dataset.source': got 'web'"),
    ],
)
def test_bad_config_values_fail_with_one_clear_message(tmp_path, override, message):
    """What the CLI prints after `error: ` (test_a_memo_error_ends_the_cli_in_one_line...)."""
    with pytest.raises(MemoError, match=re.escape(message)) as error:
        run_in_process(tmp_path, [*TINY, override])
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.lrr=1", "config key 'trainer.lrr' is not a setting of trainer; did you mean "
                          "'trainer.lr'?"),
        ("model=transformer", "config group 'model' has no option 'transformer' (options: eea | "),
    ],
)  # fmt: skip
def test_composition_errors_end_the_cli_in_one_line(tmp_path, monkeypatch, capsys, override,
                                                    message):  # fmt: skip
    """An unknown key or group option: the real CLI entry point (`memo.cli.run`), in process
    (it fails while composing, before any run or logging starts)."""
    monkeypatch.setattr(sys, "argv", ["run.py", *TINY, override])
    monkeypatch.setattr(cli, "_owned", [])
    monkeypatch.setenv(cli.FULL_ERROR, "unset again below")
    monkeypatch.delenv(cli.FULL_ERROR)  # undone in reverse: the variable ends as it began
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        cli.run()
    assert stop.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: " + message) and stderr.count("\n") == 1, stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "seed=0,1", "model=eea"],
        ["--cfg", "job", "seed=1"],
        ["--cfg=job", "seed=1"],
        ["seed=1", "--info", "config"],
        ["--info", "-m", "a=1"],
        ["-cn", "config", "+x=1", "~y"],
        ["-c", "hydra", "--resolve", "--package", "trainer", "trainer.lr=1"],
        ["seed=-1", "--experimental-rerun", "f.pkl"],
        [],
    ],
)
def test_the_overrides_are_read_as_hydra_reads_them(argv):
    """memo reads the overrides without Hydra's private parser; this keeps the two in step."""
    from hydra._internal.utils import get_args_parser

    assert command_line_overrides(argv) == get_args_parser().parse_known_args(argv)[0].overrides


def test_memo_imports_nothing_private_of_hydra():
    """hydra._internal may change in any release; memo's code must not depend on it."""
    sources = (Path(__file__).parents[1] / "memo").rglob("*.py")
    private = re.compile(r"^\s*(from|import) hydra\._internal", re.M)
    assert [p.name for p in sources if private.search(p.read_text())] == []


def test_a_run_imports_nothing_of_the_report_package():
    """The report (tables, plots) is for sweeps and `python -m memo.report`; a single run's
    modules must not import it (start-up cost, and one direction of dependency)."""
    memo_dir = Path(__file__).parents[1] / "memo"
    run_modules = [memo_dir / "experiment.py", memo_dir / "cli.py", *memo_dir.glob("training/*.py")]
    report = re.compile(r"^\s*(from|import) memo\.report", re.M)
    assert [p.name for p in run_modules if report.search(p.read_text())] == []
