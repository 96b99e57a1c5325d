"""Run integrity: every reported number belongs to the experiment it names (in process)."""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import os
import re
import shutil
import stat

import pytest
from conftest import assert_one_value_per_step, compose_config, read_metrics, run_in_process
from data_fixtures import component
from omegaconf import OmegaConf

import memo
import memo.experiment
import memo.io
from memo.callbacks import OutputDirCheck
from memo.config import validate
from memo.data.regimes import apply_regime
from memo.data.sources import load_corpus
from memo.errors import MemoError
from memo.run_config import RUN_ONLY_KEYS, effective_config, is_run_only
from memo.run_lock import RunLock
from memo.training.checkpoints import load_checkpoint, save_checkpoint

# Half the size most tests use: these tests are about run bookkeeping, not what is learnt.
TINY = ["dataset.scale=0.015", "trainer.epochs=2", "dataset.source=synthetic"]


class SimulatedKill(BaseException):
    """Stands for SIGKILL at a write point: nothing in memo catches it."""


# 1. An untrained model is never reported as completed.


def test_early_stop_must_be_positive_or_null():
    with pytest.raises(
        MemoError, match="'trainer.early_stop': got 0; allowed: an integer >= 1, or null"
    ):
        validate(compose_config(["trainer.early_stop=0"]))
    validate(compose_config(["trainer.early_stop=null"]))


def _without_valid_positives(emotions, monkeypatch):
    """Make the valid split lose every positive of `emotions` (None: of all emotions)."""

    def regime(*args):
        data = apply_regime(*args)
        labels = data.valid.labels.copy()
        for k, emotion in enumerate(data.valid.emotions):
            if emotions is None or emotion in emotions:
                labels[:, k] = 0
        data.valid.labels[:] = labels
        return data

    monkeypatch.setattr(memo.experiment, "apply_regime", regime)


def test_no_selectable_epoch_fails_instead_of_reporting_initial_weights(tmp_path, monkeypatch):
    _without_valid_positives(None, monkeypatch)
    with pytest.raises(MemoError, match="valid wa/avg is undefined in epoch 1"):
        run_in_process(tmp_path, TINY)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_selection_uses_the_emotions_valid_can_score_and_says_so(tmp_path, monkeypatch, caplog):
    _without_valid_positives({"fear"}, monkeypatch)
    metrics = run_in_process(tmp_path, TINY)
    assert metrics["selection"]["excluded"] == ["fear"]
    assert "fear" not in metrics["selection"]["emotions"]
    assert "undefined on valid for fear" in caplog.text


# 2. Resume and reuse only with the same effective config.


def test_a_finished_run_with_other_settings_is_refused_naming_each_key(tmp_path):
    run_in_process(tmp_path, TINY)
    with pytest.raises(MemoError) as error:
        run_in_process(tmp_path, [*TINY, "trainer.lr=5e-4", "seed=3"])
    message = str(error.value)
    assert "trainer.lr: 0.001 -> 0.0005" in message and "seed: 0 -> 3" in message
    assert "resume=false" in message


def test_resume_false_withdraws_the_finished_results_before_training(tmp_path, monkeypatch):
    """resume=false starts a finished run's directory again: its old metrics.json must not
    survive a crash of the new run as the result of the new settings (.hydra/ names them)."""
    run_in_process(tmp_path, TINY)

    def crash(*args, **kwargs):
        raise MemoError("simulated crash in training")

    monkeypatch.setattr(memo.experiment.Trainer, "fit", crash)
    with pytest.raises(MemoError, match="simulated crash"):
        run_in_process(tmp_path, [*TINY, "seed=3", "resume=false"])
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_resume_with_other_settings_is_refused_and_run_only_keys_may_differ(tmp_path):
    run_in_process(tmp_path, TINY)
    (tmp_path / "run" / "metrics.json").unlink()  # as if killed before the end
    with pytest.raises(MemoError, match=r"dataset.scale: 0.015 -> 0.04"):
        run_in_process(tmp_path, [*TINY[1:], "dataset.scale=0.04"])
    moved = [*TINY, f"paths.output_dir={tmp_path / 'elsewhere'}", "trainer.threads=1"]
    assert run_in_process(tmp_path, moved)["epochs_run"] == 2


def test_run_only_keys_are_one_list():
    assert RUN_ONLY_KEYS == ("paths", "trainer.progress", "trainer.threads", "resume", "logger")
    assert is_run_only("paths.cache_dir") and is_run_only("+trainer.threads")
    assert not is_run_only("trainer.lr") and not is_run_only("pathsx")
    keys = effective_config(compose_config([]))
    assert "trainer.lr" in keys and "seed" in keys and not any(k.startswith("paths.") for k in keys)


def test_resume_false_starts_the_directory_again(tmp_path):
    run_in_process(tmp_path, TINY)
    metrics = run_in_process(tmp_path, [*TINY, "trainer.lr=5e-4", "resume=false"])
    assert metrics["config"]["trainer.lr"] == 5e-4


# 3. One process per run directory.


def test_a_second_process_in_a_run_directory_is_refused(tmp_path):
    with RunLock(tmp_path / "run"), pytest.raises(MemoError) as error:
        run_in_process(tmp_path, TINY)
    assert f"pid {os.getpid()} on host" in str(error.value)
    run_in_process(tmp_path, TINY)  # released with the holder


def test_a_refused_single_run_is_refused_before_hydra_rewrites_the_record(tmp_path, capsys):
    """Hydra writes `.hydra/` (what reports label results with) after its on_run_start callback
    and before the run: the callback refuses first, so the finished run's record stays its own."""
    run_dir = tmp_path / "run"
    run_in_process(tmp_path, TINY, run_dir)

    def start(*overrides: str) -> None:
        """OutputDirCheck.on_run_start as Hydra calls it for `python run.py overrides`."""
        cfg = compose_config([*TINY, f"paths.cache_dir={tmp_path / 'cache'}", *overrides])
        hydra = {"hydra": {"run": {"dir": str(run_dir)}}}
        OutputDirCheck().on_run_start(OmegaConf.merge(hydra, cfg))

    start()  # the same settings: reused by the run, nothing to refuse
    with pytest.raises(SystemExit) as stop:
        start("trainer.lr=5e-4")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the finished run in {run_dir} was made with other settings")
    assert "trainer.lr: 0.001 -> 0.0005" in err
    with RunLock(run_dir), pytest.raises(SystemExit):  # another process runs there
        start()
    assert f"run directory {run_dir} is in use by another memo process" in capsys.readouterr().err
    (run_dir / "metrics.json").unlink()  # unfinished: its last.pt is resumed only as it was made
    with pytest.raises(SystemExit):
        start("seed=3")
    assert f"error: checkpoint {run_dir / 'checkpoints' / 'last.pt'} was made with other" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):  # an evaluation would take the unfinished run's folder
        start("mode=eval", f"ckpt={run_dir / 'checkpoints' / 'best.pt'}")
    assert "mode: 'train' -> 'eval'" in capsys.readouterr().err


# 4. mode=eval records what the checkpoint holds; checkpoints never name code.


@pytest.fixture(scope="module")
def rnn_lf_checkpoint(tmp_path_factory):
    """One trained checkpoint for the module; the tests only read it (and change copies)."""
    tmp_path = tmp_path_factory.mktemp("rnn_lf")
    args = [*TINY, "model=rnn_lf", "model.modalities=ta", "regime=zsl", "regime.emotion=fear"]
    run_in_process(tmp_path, args, tmp_path / "train")
    return tmp_path / "train" / "checkpoints" / "best.pt"


def test_eval_records_the_checkpoints_model(tmp_path, rnn_lf_checkpoint, caplog):
    args = [*TINY, "mode=eval", f"ckpt={rnn_lf_checkpoint}", "regime=zsl", "regime.emotion=fear"]
    metrics = run_in_process(tmp_path, args, tmp_path / "eval")
    assert (metrics["model"], metrics["modalities"]) == ("rnn_lf", "ta")
    assert metrics["model_config"]["_target_"] == "memo.models.rnn.LateFusionRNN"
    assert metrics["untrained_output_rows"] == ["fear"]
    assert "untrained output rows" in caplog.text


@pytest.mark.parametrize(
    ("regime", "refused"),
    [
        ([], "treats fear, which it never trained on, as trained"),
        (["regime=zsl", "regime.emotion=sad"], "treats sad, which it trained on, as unseen"),
        (["regime=fsl", "regime.emotion=fear"], "treats fear, which it never trained on, as"),
    ],
)  # fmt: skip
def test_eval_refuses_a_regime_that_mislabels_the_checkpoints_emotions(
    tmp_path, rnn_lf_checkpoint, regime, refused
):
    """A zero-shot checkpoint (trained without fear) evaluated as if it had trained on fear, or
    with a trained emotion as the unseen one: its table would label trained scores zero-shot."""
    args = [*TINY, "mode=eval", f"ckpt={rnn_lf_checkpoint}", *regime]
    trained = "anger, disgust, happy, sad, surprise (regime=zsl regime.emotion=fear)"
    with pytest.raises(MemoError, match=f"was trained on {re.escape(trained)}.*{refused}"):
        run_in_process(tmp_path, args, tmp_path / "eval")
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_eval_refuses_model_overrides_that_would_label_another_model(tmp_path, rnn_lf_checkpoint):
    """Reports label a run by its recorded overrides; evaluation uses the checkpoint's model."""
    args = [*TINY, f"paths.cache_dir={tmp_path / 'cache'}", "regime=zsl", "regime.emotion=fear"]
    with pytest.raises(MemoError, match=r"overrides model=mult describe another \(_target_: "):
        memo.evaluate(rnn_lf_checkpoint, [*args, "model=mult"], tmp_path / "mult")
    assert not (tmp_path / "mult" / "metrics.json").exists()
    same = ["model=rnn_lf", "model.modalities=ta"]  # naming the checkpoint's model is fine
    assert memo.evaluate(rnn_lf_checkpoint, [*args, *same], tmp_path / "same").metrics["model"]


def test_eval_refuses_a_best_pt_replaced_after_its_run_finished(tmp_path, rnn_lf_checkpoint):
    run = tmp_path / "copy"
    shutil.copytree(rnn_lf_checkpoint.parent.parent, run)
    best = run / "checkpoints" / "best.pt"
    checkpoint = load_checkpoint(best)
    next(iter(checkpoint["model"].values())).add_(1.0)  # other weights, same place and format
    save_checkpoint(best, checkpoint)
    args = [*TINY, "mode=eval", f"ckpt={best}", "regime=zsl", "regime.emotion=fear"]
    with pytest.raises(MemoError, match=f"checkpoint {best} is not the best.pt its run finished"):
        run_in_process(tmp_path, args, tmp_path / "eval")


def test_eval_records_the_checkpoint_file_and_its_training(tmp_path, rnn_lf_checkpoint, capsys):
    """Also the seed the model was trained with: evaluating one checkpoint with seeds 0, 1, 2
    must not read as three trained seeds in a report."""
    args = [*TINY, "mode=eval", f"ckpt={rnn_lf_checkpoint}", "regime=zsl", "regime.emotion=fear"]
    metrics = run_in_process(tmp_path, [*args, "seed=1"], tmp_path / "eval")
    assert (metrics["seed"], metrics["config"]["seed"]) == (0, 1)
    epoch = metrics["trained"]["weights_epoch"]
    title = f"regime zsl (target fear), seed 0, checkpoint epoch {epoch}: test"
    assert title in capsys.readouterr().out
    trained = metrics["trained"]
    digest = hashlib.sha256(rnn_lf_checkpoint.read_bytes()).hexdigest()
    assert trained.pop("weights_epoch") == trained.pop("best_epoch") >= 1  # a best.pt
    assert trained == {
        "sha256": digest, "of_finished_run": True, "dataset": "mosei", "data_source": "synthetic",
        "seed": 0,
        "regime.name": "zsl",
        "regime.emotion": "fear",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"_target_": "os.system"}, "'_target_' names 'os.system'"),
        ({"rnn": {"_target_": "shutil.rmtree", "path": "/"}}, "'rnn._target_'"),
        ({"hidden_text": [{"_target_": "asyncio.subprocess"}]}, "'hidden_text._target_'"),
        ({"_args_": ["x"]}, "refused model config key '_args_'"),
        ({"unknown": 1}, "refused model config key 'unknown'"),
    ],
)  # fmt: skip
def test_a_checkpoint_naming_code_is_refused(tmp_path, rnn_lf_checkpoint, change, refused):
    checkpoint = load_checkpoint(rnn_lf_checkpoint)
    checkpoint["model_config"].update(change)
    hostile = tmp_path / "hostile.pt"
    save_checkpoint(hostile, checkpoint)
    with pytest.raises(MemoError, match=f"checkpoint {hostile}: .*{refused}"):
        run_in_process(tmp_path, [*TINY, "mode=eval", f"ckpt={hostile}"], tmp_path / "eval")


# 5. and kill at every write point: identical metrics, one TensorBoard value per step.


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reference")  # one torch thread: conftest.py
    return run_in_process(tmp_path, [*TINY, "trainer.epochs=3", "trainer.early_stop=100"])


def _kill_at(monkeypatch, target, name: str, when) -> None:
    """Replace `target.name` by a wrapper that raises SimulatedKill when `when(*args)` holds."""
    original = getattr(target, name)

    def wrapper(*args, **kwargs):
        if when(*args):
            raise SimulatedKill(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)


def _nth(n: int):
    calls = []
    return lambda *args: calls.append(1) or len(calls) == n


POINTS = {
    "corpus cache": ("memo.data.synthetic", "_write_cache", lambda: _nth(1)),
    "first checkpoint": ("memo.training.checkpoints", "save_checkpoint", lambda: _nth(1)),
    "last checkpoint": ("memo.training.checkpoints", "save_checkpoint", lambda: _nth(4)),
    "tensorboard": ("memo.training.tensorboard.TensorBoardLogger", "log", lambda: _nth(2)),
    "final logging": ("memo.training.tensorboard.TensorBoardLogger", "pr_curves", lambda: _nth(1)),
    "metrics": ("memo.experiment", "write_json", lambda: _nth(1)),
}


@pytest.mark.parametrize("point", sorted(POINTS))
def test_kill_at_each_write_point_then_rerun(tmp_path, monkeypatch, reference, point):
    module, name, when = POINTS[point]
    target = _resolve(module)
    args = [*TINY, "trainer.epochs=3", "trainer.early_stop=100"]
    with monkeypatch.context() as patch:
        _kill_at(patch, target, name, when())
        with pytest.raises(SimulatedKill):
            run_in_process(tmp_path, args)
    rerun = run_in_process(tmp_path, args)
    assert rerun["test"] == reference["test"] and rerun["best_epoch"] == reference["best_epoch"]
    assert_one_value_per_step(tmp_path / "run", epochs=3)


def _resolve(dotted: str):
    """A module, or a class given as `module.Class`."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError:
        module, _, name = dotted.rpartition(".")
        return getattr(importlib.import_module(module), name)


# 6. Data: a data folder the user named must hold the files.


def test_a_named_data_folder_without_files_is_an_error(tmp_path):
    cfg = compose_config([f"paths.data_dir={tmp_path / 'typo'}"])
    with pytest.raises(MemoError, match="dataset.source=auto: 12 of the 12 expected mosei"):
        load_corpus(component(cfg.dataset), tmp_path / "cache")


# 7. Divergence.


def test_an_exploding_loss_stops_the_run(tmp_path):
    with pytest.raises(MemoError, match="training diverged: mean train loss .* in epoch 1"):
        run_in_process(tmp_path, [*TINY, "trainer.lr=1e3", "trainer.clip_grad_norm=null"])


# 8. Faults: disk full, permissions, temp files.


def test_disk_full_names_the_path_at_the_first_failed_write_and_resume_works(
    tmp_path, monkeypatch, reference
):
    args = [*TINY, "trainer.epochs=3", "trainer.early_stop=100"]
    original, last = os.fsync, tmp_path / "run" / "checkpoints" / "last.pt"

    def full_disk(fd):
        if last.exists():  # the disk fills up once epoch 1 is saved
            raise OSError(errno.ENOSPC, "No space left on device")
        original(fd)

    with monkeypatch.context() as patch:
        patch.setattr(memo.io.os, "fsync", full_disk)
        with pytest.raises(MemoError, match=r"cannot write .*: No space left on device"):
            run_in_process(tmp_path, args)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["state"]["epoch"] == 1
    assert not list((tmp_path / "run" / "checkpoints").glob(".*.tmp"))
    assert run_in_process(tmp_path, args)["test"] == reference["test"]


def test_outputs_honour_the_umask_and_stale_temp_files_are_removed(tmp_path):
    stale = tmp_path / "run" / "checkpoints" / ".last.pt.abc123.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a checkpoint")
    previous = os.umask(0o022)
    try:
        run_in_process(tmp_path, TINY)
    finally:
        os.umask(previous)
    assert not stale.exists()
    for path in ("metrics.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert stat.S_IMODE((tmp_path / "run" / path).stat().st_mode) == 0o644, path
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "completed"
    assert read_metrics(tmp_path / "run")["config"]["seed"] == 0


def test_weights_that_do_not_fit_the_stored_model_are_one_line(tmp_path, rnn_lf_checkpoint):
    checkpoint = load_checkpoint(rnn_lf_checkpoint)
    checkpoint["model"].pop(next(iter(checkpoint["model"])))
    broken = tmp_path / "broken.pt"
    save_checkpoint(broken, checkpoint)
    with pytest.raises(MemoError, match=f"checkpoint {broken}: its weights do not fit"):
        run_in_process(tmp_path, [*TINY, "mode=eval", f"ckpt={broken}"], tmp_path / "eval")
