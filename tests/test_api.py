"""The Python API: memo.train / memo.evaluate / memo.load run and record what the CLI does."""

from __future__ import annotations

import os

import pytest
import torch
from omegaconf import OmegaConf

import memo
from memo.errors import MemoError
from memo.report.__main__ import main as report_main
from memo.training.checkpoints import load_checkpoint, save_checkpoint

TINY = ["dataset.scale=0.03", "trainer.epochs=2", "dataset.source=synthetic",
        "trainer.progress=false"]  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory for the module: relative paths resolve against it."""
    folder, previous = tmp_path_factory.mktemp("api"), os.getcwd()
    os.chdir(folder)
    yield folder
    os.chdir(previous)


@pytest.fixture(scope="module")
def trained(workdir):
    return memo.train([*TINY, "model=rnn_lf", "model.modalities=ta"])


def test_train_returns_metrics_run_dir_and_the_best_model(trained, workdir):
    tmp_path = workdir
    assert trained.run_dir.parent.parent == tmp_path / "outputs"
    assert trained.metrics["model"] == "rnn_lf" and trained.metrics["status"] == "completed"
    assert (tmp_path / ".cache" / "memo").is_dir()  # paths.cache_dir relative to the cwd
    assert type(trained.model).__name__ == "LateFusionRNN" and not trained.model.training
    saved = OmegaConf.load(trained.run_dir / ".hydra" / "overrides.yaml")
    assert list(saved) == [*TINY, "model=rnn_lf", "model.modalities=ta"]
    assert OmegaConf.load(trained.run_dir / ".hydra" / "config.yaml").model.modalities == "ta"


def test_api_runs_are_read_by_the_report(trained, capsys):
    """`python -m memo.report <run dir> --no-plots` (its main, in process)."""
    capsys.readouterr()
    assert report_main([str(trained.run_dir), "--no-plots"]) == 0
    out, err = capsys.readouterr()
    assert "model.modalities=ta" in out and "damaged" not in out + err


def test_a_refused_run_leaves_the_folders_record_alone(trained):
    """Another config into a finished run's folder is refused before `.hydra/` is rewritten:
    the folder's record must keep naming the settings that made its numbers."""
    record = trained.run_dir / ".hydra" / "overrides.yaml"
    before = record.read_bytes()
    with pytest.raises(MemoError, match=r"other settings \(seed: 0 -> 3"):
        memo.train([*TINY, "model=rnn_lf", "model.modalities=ta", "seed=3"], trained.run_dir)
    assert record.read_bytes() == before


def test_evaluate_reproduces_the_test_metrics(trained, tmp_path):
    best = trained.run_dir / "checkpoints" / "best.pt"
    evaluated = memo.evaluate(best, TINY, run_dir=tmp_path / "eval")
    assert evaluated.metrics["test"] == trained.metrics["test"]
    assert evaluated.metrics["model"] == "rnn_lf"


def test_load_gives_the_model_and_its_config(trained):
    model, config = memo.load(trained.run_dir / "checkpoints" / "best.pt")
    assert config.trainer.lr == 0.001 and config.model.modalities == "ta"
    weights = dict(model.named_parameters())
    for name, value in trained.model.named_parameters():
        assert torch.equal(weights[name], value)


def test_load_reads_no_interpolation_from_the_file(trained, tmp_path):
    checkpoint = load_checkpoint(trained.run_dir / "checkpoints" / "best.pt")
    checkpoint["config"]["regime.name"] = "${oc.env:HOME}"
    hostile = tmp_path / "hostile.pt"
    save_checkpoint(hostile, checkpoint)
    _, config = memo.load(hostile)
    assert config.regime.name == "${oc.env:HOME}"  # the text itself, not the variable


def test_bad_overrides_are_memo_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MemoError, match="trainer.epochs"):
        memo.train(["trainer.epochs=0"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: memo.train("seed=1"), "overrides: got 'seed=1'; allowed: a list of strings"),
        (lambda: memo.train([1]), "overrides: got [1]; allowed: a list of strings"),
        (lambda: memo.train(None), "overrides: got None; allowed: a list of strings"),
        (lambda: memo.train(["seed=1"], run_dir=5), "run_dir: got 5; allowed: a path"),
        (lambda: memo.evaluate(None), "ckpt: got None; allowed: a path"),
        (lambda: memo.evaluate("x.pt", "seed=1"), "overrides: got 'seed=1'"),
        (lambda: memo.evaluate("no/such.pt"), "config key 'ckpt': got 'no/such.pt'; allowed: a "),
        (lambda: memo.load(5), "ckpt: got 5; allowed: a path"),
        (lambda: memo.train(["model=null"]), "config group 'model' takes an option, not null"),
        (
            lambda: memo.train(["hydra.run.dir=elsewhere"]),
            "overrides: 'hydra.run.dir=elsewhere' sets Hydra's own config, which memo.train does",
        ),  # ignored before: the run went to outputs/<date>/<time>
        (
            lambda: memo.train([], run_dir="/dev/null/run"),
            "run directory /dev/null/run cannot be written: Not a directory",
        ),  # NotADirectoryError before
    ],
)
def test_wrong_argument_types_are_memo_errors(tmp_path, monkeypatch, call, message):
    """A lone string was read as one override per character ("Error parsing override 's'");
    None and numbers were TypeErrors or ValueErrors from deep inside."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MemoError) as raised:
        call()
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_takes_a_checkpoint_in_a_folder_named_like_a_sweep_job(trained, tmp_path):
    """Hydra names sweep folders `trainer.lr=0.1,seed=0`: "Ambiguous value for argument
    'ckpt=...'" before (the path was pasted into an override unquoted)."""
    folder = tmp_path / "trainer.lr=0.1,seed=0" / "it's [1] ${x}"
    folder.mkdir(parents=True)
    ckpt = folder / "best.pt"
    ckpt.write_bytes((trained.run_dir / "checkpoints" / "best.pt").read_bytes())
    evaluated = memo.evaluate(ckpt, TINY, run_dir=tmp_path / "eval")
    assert evaluated.metrics["test"] == trained.metrics["test"]
