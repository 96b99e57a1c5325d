"""memo.schema: types and bounds in words, every bad value named by its own key, unknown keys
with the closest known one, and the CLI's one-line composition errors."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

import pytest
from conftest import run_cli
from hydra.core.global_hydra import GlobalHydra

from memo import cli
from memo.errors import MemoError
from memo.schema import (
    PositiveInt,
    Probability,
    Range,
    Schema,
    Seed,
    check_value,
    describe,
    unknown_key,
)


@pytest.mark.parametrize(
    ("hint", "words"),
    [
        (int, "an integer"),
        (float, "a number"),
        (bool, "true | false"),
        (PositiveInt, "an integer >= 1"),
        (Probability, "a number in [0, 1]"),
        (Annotated[float, Range(0, 1, low_open=True)], "a number in (0, 1]"),
        (Annotated[float, Range(1, low_open=True)] | None, "a number > 1, or null"),
        (Seed, "an integer in [0, 4294967295]"),
        (Literal["auto", True, False], "auto | true | false"),
        (list[str], "a list of strings"),
        (str | PositiveInt, "a string, or an integer >= 1"),
    ],
)
def test_types_are_described_in_words(hint: Any, words: str) -> None:
    assert describe(hint) == words


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (True, int),  # a bool is not an integer
        (1, bool),
        (1, Literal[True]),  # 1 == True, but not the same type
        ("1", int),
        (float("nan"), float),
        (float("inf"), float),
        (0, PositiveInt),
        (1.5, PositiveInt),
        (-0.1, Probability),
        (2**32, Seed),
        (None, int),
        ("lstm", Literal["gru"]),
    ],
)
def test_bad_scalars_are_refused(value: Any, hint: Any) -> None:
    with pytest.raises(MemoError, match=r"config key 'k': got .*; allowed: "):
        check_value(value, hint, "k")


@pytest.mark.parametrize(
    ("value", "hint"),
    [(1, float), (0.5, Probability), (None, int | None), (3, str | PositiveInt), (True, bool)],
)
def test_good_scalars_pass(value: Any, hint: Any) -> None:
    check_value(value, hint, "k")


def test_a_bad_item_is_named_by_its_own_key() -> None:
    with pytest.raises(MemoError, match=r"'k\.train\.anger': got -1; allowed: an integer >= 0"):
        check_value({"train": {"anger": -1}}, dict[str, dict[str, Annotated[int, Range(0)]]], "k")
    with pytest.raises(MemoError, match=r"'k\[2\]': got 0; allowed: an integer >= 1"):
        check_value([3, 5, 0], PositiveInt | list[PositiveInt], "k")


class Knobs(TypedDict):
    rate: Probability
    seed: int


class Settings(TypedDict, total=False):
    knobs: Knobs


@dataclass
class Node:
    size: PositiveInt
    settings: Settings
    name: str = "x"


def test_records_refuse_unknown_and_missing_keys_and_check_nested_ones() -> None:
    schema = Schema.of_record(Node, "node")
    schema.check({"size": 1, "settings": {}}, "n")  # `name` has a default, `knobs` is optional
    with pytest.raises(
        MemoError, match=r"'n\.sise' is not a setting of node; did you mean 'n\.size'"
    ):
        schema.check({"size": 1, "settings": {}, "sise": 2}, "n")
    with pytest.raises(MemoError, match=r"'n\.size' is missing; allowed: an integer >= 1"):
        schema.check({"settings": {}}, "n")
    with pytest.raises(MemoError, match=r"'n\.settings\.knobs\.rate': got 2; allowed: a number in"):
        schema.check({"size": 1, "settings": {"knobs": {"rate": 2, "seed": 0}}}, "n")


def test_parameters_are_a_schema_less_the_bound_ones() -> None:
    def build(dims: int, *, hidden: PositiveInt, rnn: Literal["lstm", "gru"] = "lstm") -> None:
        """A model factory: memo passes `dims` itself."""

    schema = Schema.of_parameters(build, "model", bound=("dims",))
    assert set(schema.fields) == {"hidden", "rnn"} and schema.optional == {"rnn"}
    schema.check({"_target_": "x", "hidden": 3}, "model")
    with pytest.raises(MemoError, match="'model.dims' is not a setting of model"):
        schema.check({"hidden": 3, "dims": 2}, "model")


def test_an_unknown_key_without_a_close_one_lists_the_keys() -> None:
    error = unknown_key("trainer.zzz", ["lr", "epochs"], "trainer")
    assert (
        str(error) == "config key 'trainer.zzz' is not a setting of trainer; its keys: epochs, lr"
    )


@pytest.fixture
def cli_in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run `memo.cli.run` in this process with the given arguments: (exit code, stderr)."""

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["memo", *args])
        monkeypatch.delenv(cli.FULL_ERROR, raising=False)
        monkeypatch.setattr(cli, "_owned", [])
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            with pytest.raises(SystemExit) as exited:
                cli.run()
        finally:
            GlobalHydra.instance().clear()
            # Hydra's job logging adds handlers on this test's captured stderr; left behind,
            # a later test's first log line fails ("--- Logging error ---") on the closed stream.
            root.handlers[:], root.level = handlers, level
        return exited.value.code, capsys.readouterr().err

    return run


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["trainer.lrr=1"],
            "config key 'trainer.lrr' is not a setting of trainer; did you mean 'trainer.lr'?",
        ),  # fmt: skip
        (["model=rnn_ef", "model.hidden_audio=3"], "did you mean 'model.hidden'?"),
        (["modle=eea"], "did you mean 'mode' or 'model'?"),
        (["-m", "seed=0,1", "trainer.lrr=2"], "did you mean 'trainer.lr'?"),
        (
            ["model=eeaa"],
            "config group 'model' has no option 'eeaa'; did you mean 'eea'? (options: eea | mult",
        ),  # fmt: skip
        (
            ["trainer.lr=["],
            "error: cannot parse the override 'trainer.lr=[': no viable alternative at input '['",
        ),  # fmt: skip
        (
            ["seed", "3"],
            "error: cannot parse the override 'seed': an override is key=value, with no spaces",
        ),  # "Error parsing override 'seed'" before
        (
            ["+experiment=paper_mosei"],
            "error: config group 'experiment' is chosen without '+': experiment=paper_mosei",
        ),  # "Multiple values for experiment. To override a value use 'override experiment: ..."
        (
            ["logger=null"],
            "error: config group 'logger' takes an option, not null (options: csv | mlflow |",
        ),  # a ValueError traceback before
        (
            ["model=[eea,mult]"],
            "error: config group 'model' takes one option, got [eea,mult] (options: eea | ",
        ),  # both files merged before: "'model.rnn' is not a setting of model=MulT"
        (["-m", "regime=[zsl,fsl]"], "to run each in turn, sweep: -m regime=zsl,fsl"),
        (
            ["logger=[tensorboard,mlfow]"],
            "config group 'logger' has no option 'mlfow'; did you mean 'mlflow'?",
        ),  # "Could not load 'logger/mlfow'." before
        (
            ["logger.mlflow.experiment=x"],
            "config key 'logger.mlflow.experiment' is a setting of logger=mlflow, which this run "
            "does not choose; choose it with logger=mlflow",
        ),  # "Could not override 'logger.mlflow.experiment'." before
        (
            ["hydra.launcher.n_jobs=4"],
            "'hydra.launcher.n_jobs' is not a setting of hydra.launcher (hydra/launcher=basic)",
        ),
        (
            ["hydra/launcher=parallel", "hydra.launcher.njobs=2"],
            "did you mean 'hydra.launcher.n_jobs'?",
        ),
        (
            ["-m", "--cfg", "job", "seed=0,1"],
            "error: Only one of --run, --multirun, --cfg, --info and --shell_completion can be",
        ),  # a ValueError traceback before
        (
            ["trainer.optimizer._target_=torch.optim.SGD", "trainer.optimizer.momentum=0.9"],
            "config key 'trainer.optimizer.momentum' is a parameter of torch.optim.SGD that "
            "trainer.optimizer does not list; add it with +trainer.optimizer.momentum=<value>",
        ),  # "is not a setting of trainer.optimizer; its keys: _partial_, ..." before
        (
            ["trainer.optimizer._target_=torch.optim.SGD", "trainer.optimizer.momentun=0.9"],
            "did you mean 'trainer.optimizer.momentum'?",
        ),
        (
            ["hydra/launcher=parallel", "hydra.launcher.n_jobs=abc"],
            "config key 'hydra.launcher.n_jobs': Value 'abc' of type 'str' could not be converted",
        ),  # "Error merging override hydra.launcher.n_jobs=abc" before
    ],
)
def test_composition_errors_are_one_line(cli_in_process, args: list[str], line: str) -> None:
    code, err = cli_in_process(*args)
    assert code == 2
    assert line in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["-m", "seed=0,abc"], "error: sweep job 1 (seed=abc): config key 'seed': got 'abc'; "),
        (["-m", "trainer.lrr=1,2"], "sweep job 0 (trainer.lrr=1): config key 'trainer.lrr' is"),
        (
            ["-m", "regime=zsl", "regime.emotion=fear,joyful"],
            "sweep job 1 (regime=zsl regime.emotion=joyful): config key 'regime.emotion': got",
        ),  # job 0 trained first, job 1 failed when its turn came
        (
            ["-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=0", "seed=0,1"],
            "error: config key 'hydra.launcher.n_jobs': got 0; allowed: an integer >= 1, or -1",
        ),  # joblib's ValueError traceback before
        (
            ["-m", "hydra/launcher=submitit", "hydra.launcher.timeout_min=-5", "seed=0"],
            "error: config key 'hydra.launcher.timeout_min': got -5; allowed: an integer >= 1",
        ),  # every job failed in submitit, 42 lines, before
        (["-m", "hydra.sweep.dir=", "seed=0"], "config key 'hydra.sweep.dir': got ''; allowed: a"),
        (["-m", "seed=range(3,0)"], "error: the sweep has no jobs: seed=range(3,0) gives no va"),
        # ^ ran nothing, with exit 0
        (["hydra.run.dir="], "error: config key 'hydra.run.dir': got ''; allowed: a string that"),
        (
            ["hydra.job.chdir=true"],
            "error: config key 'hydra.job.chdir': got True; allowed: false (memo reads relative",
        ),  # ran inside the run folder: data/ there missing, the built-in corpus used silently
        (["-m", "hydra.job.chdir=true", "seed=0"], "'hydra.job.chdir': got True; allowed: false"),
        (["paths.output_dir="], "error: config key 'paths.output_dir': got ''; allowed: a str"),
        (
            ["hparams_search=eea_mosei"],
            "error: hparams_search=eea_mosei takes effect only in a sweep: add -m (without it, one",
        ),  # trained one run with the default values before
        (
            ["hydra/launcher=slurm"],
            "error: hydra/launcher=slurm takes effect only in a sweep: add -m",
        ),  # trained here, not on the cluster, before
    ],
)
def test_bad_values_end_a_run_or_sweep_before_any_folder_or_job(
    cli_in_process, tmp_path, monkeypatch, args: list[str], line: str
) -> None:
    """A bad value in one job of a sweep failed only when its turn came, after the others had
    run; an empty sweep or run folder wrote into the working directory (paths.output_dir=:
    /<date>)."""
    monkeypatch.chdir(tmp_path)
    code, err = cli_in_process(*args)
    assert code == 2
    assert line in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_the_cli_prints_a_bad_value_as_one_line_before_loading_data(tmp_path) -> None:
    """The real process: one line on stderr, exit 2, no run directory made."""
    out = tmp_path / "run"
    result = run_cli(["trainer.threshold=2", f"hydra.run.dir={out}"], tmp_path, check=False)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith(
        "error: config key 'trainer.threshold': got 2; allowed: a number in (0, 1)"
    )
    assert not (out / "metrics.json").exists() and not (out / "checkpoints").exists()


def test_hydras_hint_to_set_its_full_error_variable_is_left_out() -> None:
    """memo's CLI sets HYDRA_FULL_ERROR itself, so Hydra's hint to set it misled."""
    from hydra.errors import InstantiationException

    from memo.composition import composition_error

    error = InstantiationException(
        "Error locating target 'optuna.Nope', set env var HYDRA_FULL_ERROR=1 to see chained "
        "exception.\nfull_key: hydra.sweeper.sampler"
    )
    assert composition_error(error, []) == "Error locating target 'optuna.Nope'"


def test_the_python_api_reports_a_bad_override_in_one_line() -> None:
    from memo.api import compose_config

    with pytest.raises(
        MemoError, match=r"^config key 'model\.dropuot' is not a setting of model; "
    ):
        compose_config(["model.dropuot=0.1"])
