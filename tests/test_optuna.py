"""Optuna search (`python run.py -m hparams_search=...`): the study in `<sweep dir>/optuna.db`
survives a kill, the search resumes it, failed trials do not stop it, the best trial is written."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import CLI_ENV, cli_command, read_metrics, run_cli
from optuna.trial import FrozenTrial, TrialState
from test_schema import cli_in_process  # noqa: F401 (a fixture: memo's CLI in this process)

TINY = ["dataset.scale=0.03", "trainer.epochs=1", "trainer.progress=false"]
# The eea_mosei preset searches trainer.lr and model.dropout; its other keys are fixed here (a
# command-line value replaces the preset's search entry), small and fast.
FIXED = ["trainer.batch_size=64", "model.rnn=gru", "model.hidden_audio=50", "model.hidden_vision=8"]


def search(sweep: Path, n_trials: int, *overrides: str) -> list[str]:
    """`-m hparams_search=eea_mosei` of `n_trials` on the tiny corpus, its study in `sweep`."""
    settings = [f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweep.dir={sweep}"]
    return ["-m", "hparams_search=eea_mosei", *TINY, *FIXED, *settings, *overrides]


def trials(sweep: Path) -> list[FrozenTrial]:
    """The trials of the study in `sweep`, read with Optuna."""
    return optuna.load_study(study_name="memo", storage=f"sqlite:///{sweep}/optuna.db").trials


def kill_after_two_trials(sweep: Path, tmp_path: Path) -> None:
    """Start the search and SIGKILL its process group once the study holds 2 completed trials."""
    command = cli_command(search(sweep, 4), tmp_path)
    with (tmp_path / "killed.log").open("w") as log:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=CLI_ENV, stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + 120
        # Job 0's status exists once the study does: reading it cannot race its creation.
        while (
            not (sweep / "0" / "status.json").exists()
            or sum(t.state == TrialState.COMPLETE for t in trials(sweep)) < 2
        ):
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no 2 completed trials in 120 s"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.slow
def test_a_killed_search_resumes_and_writes_the_best_config(tmp_path):
    sweep = tmp_path / "sweep"
    kill_after_two_trials(sweep, tmp_path)
    before = trials(sweep)
    finished = [t for t in before if t.state == TrialState.COMPLETE]
    running = [t for t in before if t.state == TrialState.RUNNING and len(t.params) == 2]
    # Killed between asking for a trial and drawing its parameters: failed and replaced.
    broken = [t.number for t in before if t.state == TrialState.RUNNING and len(t.params) < 2]
    assert len(finished) >= 2 and len(finished) + len(running) + len(broken) == len(before)

    resumed = run_cli(search(sweep, 4), tmp_path)
    new = 4 - len(finished) - len(running)
    counts = f"{len(finished)} trials finished, {len(running)} to run again, {new} new to run"
    assert counts in resumed.stderr

    # 4 completed trials, numbered as their jobs; a trial left running by the kill ran again
    # with its own parameters; each value is its job's best validation wa/avg.
    after = trials(sweep)
    states = [TrialState.FAIL if n in broken else TrialState.COMPLETE for n in range(len(after))]
    assert [(t.number, t.state) for t in after] == list(enumerate(states))
    assert [t.params for t in after[: len(before)]] == [t.params for t in before]
    after = [t for t in after if t.number not in broken]
    assert len({tuple(t.params.values()) for t in after}) == 4  # the resumed search drew anew
    for trial in after:
        assert set(trial.params) == {"trainer.lr", "model.dropout"}
        assert 1e-4 <= trial.params["trainer.lr"] <= 3e-3
        assert trial.value == read_metrics(sweep / str(trial.number))["valid_best"]["wa/avg"]

    best = max(after, key=lambda t: t.value)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == best.value and results["best_trial"] == best.number
    assert results["best_params"] == best.params
    assert results["trials"] == {"complete": 4, **({"fail": len(broken)} if broken else {})}
    assert f"model.dropout={best.params['model.dropout']}" in results["best_overrides"]
    assert "trainer.batch_size=64" in results["best_overrides"]
    assert "4 jobs: 4 completed." in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_a_trial_killed_before_its_parameters_were_drawn_is_replaced(tmp_path):
    """Run again, it ran with the defaults and its value went to a trial with no parameters
    (a kill between Optuna's ask and its suggestions)."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    storage = f"sqlite:///{sweep}/optuna.db"
    optuna.create_study(storage=storage, study_name="memo", direction="maximize").ask()
    result = run_cli(search(sweep, 1), tmp_path)
    assert "trial 0 was stopped before its parameters were drawn" in result.stderr
    assert [(t.number, t.state) for t in trials(sweep)] == [
        (0, TrialState.FAIL),
        (1, TrialState.COMPLETE),
    ]
    assert set(trials(sweep)[1].params) == {"trainer.lr", "model.dropout"}
    assert not (sweep / "0").exists()


@pytest.mark.slow
def test_failed_trials_do_not_stop_the_search(tmp_path):
    sweep = tmp_path / "sweep"
    # Every trial asks for real files that are not there: a MemoError in each job.
    failing = search(sweep, 2, "dataset.source=files")
    result = run_cli(failing, tmp_path, check=False)
    assert [t.state for t in trials(sweep)] == [TrialState.FAIL, TrialState.FAIL]
    assert "no trial completed: no best config to write" in result.stderr
    assert not (sweep / "optimization_results.yaml").exists()
    # The sweep report still runs and, as for any sweep, ends non-zero naming the failed jobs.
    assert result.returncode == 1
    assert "2 of 2 sweep jobs failed" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["model.dropout=interval(0,2)"],
            "error: search space of 'model.dropout' reaches 2.0: config key 'model.dropout': got "
            "2.0; allowed: a number in [0, 1)",
        ),  # every trial failed, one by one, before
        (["model.rnn=choice(lstm,gruu)"], "search space of 'model.rnn' reaches 'gruu': config"),
        (["trainer.lrr=interval(0.1,0.2)"], "config key 'trainer.lrr' is not a setting of trai"),
        (
            ["model.dropout=interval(0.5,0.1)"],
            "error: search space of 'model.dropout=interval(0.5,0.1)': `low <= high` must hold",
        ),  # Optuna's ValueError traceback before
        (["trainer.lr=tag(log,interval(0,1e-3))"], "`low > 0` must hold for `log=True`"),
        (["hydra.sweeper.n_trials=0"], "error: config key 'hydra.sweeper.n_trials': got 0; allo"),
        (["hydra.sweeper.n_jobs=0"], "error: config key 'hydra.sweeper.n_jobs': got 0; allowed"),
        (
            ["hydra.sweeper.direction=maximise"],
            "error: config key 'hydra.sweeper.direction': got 'maximise'; allowed: maximize | min",
        ),  # n_trials=0 ran nothing with exit 0; n_jobs=0 and maximise were tracebacks
    ],
)
def test_a_bad_search_is_refused_before_any_trial(
    cli_in_process,  # noqa: F811 (the fixture imported above)
    tmp_path,
    overrides: list[str],
    line: str,
) -> None:
    code, err = cli_in_process(*search(tmp_path / "sweep", 2, *overrides))
    assert code == 2
    assert line in err and err.count("\n") == 1, err
    assert not (tmp_path / "sweep" / "0").exists()
