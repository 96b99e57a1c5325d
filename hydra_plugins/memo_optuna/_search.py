"""The search behind `hydra/sweeper=memo_optuna`.

The study is `<sweep dir>/optuna.db` (SQLite, study name `memo`), held by one search at a time
(a lock on the sweep folder). Trial n runs as job n, in `<sweep dir>/n`. Started again with the
same `hydra.sweep.dir`, a search keeps the finished trials, runs again the trials that were
running when it was stopped (in their own job folders, so memo resumes them from their last
checkpoint), and asks for new ones until the study holds `n_trials`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import optuna
import yaml
from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, Transformer
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from memo.config import check_job
from memo.errors import MemoError
from memo.io import atomic_write
from memo.run_lock import RunLock
from memo.schema import PositiveInt, check_value

if TYPE_CHECKING:
    from hydra_plugins.memo_optuna.sweeper import OptunaSweeper

log = logging.getLogger(__name__)

STUDY = "memo"
DB_FILE = "optuna.db"
RESULTS_FILE = "optimization_results.yaml"
SWEEP_FILE = "multirun.yaml"  # the sweep's config, as Hydra's basic sweeper writes it
Params = dict[str, Any]


SETTINGS = {  # hydra.sweeper's settings (sweeper.py), with the values a search can run with
    "direction": Literal["maximize", "minimize"],
    "n_trials": PositiveInt,
    "n_jobs": PositiveInt,
}


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of a sweep override: an interval (`tag(log, ...)`: on a log
    scale) is drawn from between its ends; a choice, glob or range is a choice of its values.
    Ends Optuna refuses (low > high; low <= 0 on a log scale) are a MemoError naming the key."""
    value = override.value()
    try:
        if isinstance(value, IntervalSweep):
            log_scale = "log" in value.tags
            if isinstance(value.start, int) and isinstance(value.end, int):
                return IntDistribution(value.start, value.end, log=log_scale)
            return FloatDistribution(float(value.start), float(value.end), log=log_scale)
        return CategoricalDistribution(list(override.sweep_iterator(Transformer.encode)))
    except ValueError as error:
        raise MemoError(f"search space of '{override.input_line}': {error}") from None


def check_space(space: dict[str, BaseDistribution], fixed: list[str]) -> None:
    """Before any trial: each key's ends (an interval) or values (a choice), composed with the
    fixed overrides and one value of every other key, pass the run config's checks, so that a
    search space reaching values a run refuses (`model.dropout=interval(0,2)`, a misspelt
    key) ends the search, not each trial."""
    ends = {
        key: dist.choices if isinstance(dist, CategoricalDistribution) else (dist.low, dist.high)
        for key, dist in space.items()
    }
    for key, values in ends.items():
        others = [as_override(k, v[0]) for k, v in ends.items() if k != key]  # one value each
        for value in values:
            try:
                check_job([*fixed, *others, as_override(key, value)])
            except MemoError as error:
                raise MemoError(f"search space of '{key}' reaches {value!r}: {error}") from None


def search_space(
    arguments: list[str], config_loader: ConfigLoader
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The distributions of the sweep overrides among `arguments` and the other overrides, which
    every trial gets as they are. A later override of a key replaces an earlier one."""
    overrides: dict[str, Override] = {}
    for override in OverridesParser.create(config_loader).parse_overrides(arguments):
        overrides.pop(override.get_key_element(), None)  # so that the order is the later one's
        overrides[override.get_key_element()] = override
    space = {k: distribution(o) for k, o in overrides.items() if o.is_sweep_override()}
    fixed = [str(o.input_line) for o in overrides.values() if not o.is_sweep_override()]
    return space, fixed


def as_override(key: str, value: Any) -> str:
    """`key=value` in Hydra's override syntax."""
    if value is None:
        return f"{key}=null"
    return f"{key}={str(value).lower() if isinstance(value, bool) else value}"


def job_value(result: JobReturn) -> float | None:
    """The job's return value as a finite number; None when it failed or returned none."""
    if result.status != JobStatus.COMPLETED:
        return None
    value = result.return_value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def run_trials(
    study: optuna.Study, launcher: Launcher, trials: list[tuple[int, Params]], fixed: list[str]
) -> Sequence[JobReturn]:
    """Run `(number, params)` trials, numbered consecutively, as the jobs of those numbers, and
    tell the study each one's value; a job that failed or returned no number is a failed trial."""
    overrides = [[*fixed, *(as_override(k, v) for k, v in params.items())] for _, params in trials]
    try:
        results = launcher.launch(overrides, initial_job_idx=trials[0][0])
    except Exception:  # e.g. a misspelt key in the search space: no trial ran
        for number, _ in trials:
            study.tell(number, state=TrialState.FAIL)
        raise
    for (number, params), result in zip(trials, results, strict=True):
        value = job_value(result)
        if value is None:
            study.tell(number, state=TrialState.FAIL)
            log.warning("trial %d failed or returned no number: see job %d", number, number)
        else:
            study.tell(number, value)
            log.info("trial %d: %s with %s", number, value, params)
    return results


def search(sweeper: OptunaSweeper, arguments: list[str]) -> list[JobReturn]:
    """Run the search configured by `sweeper` (`hydra.sweeper`) and the command line's
    `arguments`, then write the best trial to `<sweep dir>/optimization_results.yaml`."""
    config = sweeper.config
    for name, hint in SETTINGS.items():
        check_value(getattr(sweeper, name), hint, f"hydra.sweeper.{name}")
    params = [f"{key}={value}" for key, value in sweeper.params.items()]
    space, fixed = search_space([*params, *arguments], sweeper.hydra_context.config_loader)
    if not space:
        raise MemoError(
            "nothing to search: give hydra.sweeper.params (e.g. hparams_search=eea_mosei) or a "
            "sweep override such as 'trainer.lr=tag(log,interval(1e-4,1e-2))'"
        )
    check_space(space, fixed)
    sweep_dir = Path(config.hydra.sweep.dir).absolute()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / SWEEP_FILE)
    results: list[JobReturn] = []
    with RunLock(sweep_dir):  # one search per study: a trial left running belongs to no one
        storage = f"sqlite:///{sweep_dir / DB_FILE}"
        study = optuna.create_study(
            storage=storage,
            study_name=STUDY,
            sampler=sweeper.sampler,
            direction=sweeper.direction,
            load_if_exists=True,
        )
        if study.direction.name.lower() != sweeper.direction:
            raise MemoError(
                f"the study in {sweep_dir / DB_FILE} is to {study.direction.name.lower()}, not to "
                f"{sweeper.direction}: use another hydra.sweep.dir"
            )
        trials = study.get_trials(deepcopy=False)
        if trials:  # resumed: a sampler seeded as before would draw the first run's trials again
            sweeper.sampler.reseed_rng()
        # A trial killed between its creation and the draws of its parameters never ran:
        # running it now would report the defaults' value under partial parameters.
        drawn = [t for t in trials if set(t.params) == set(space)]
        for trial in trials:
            if trial.state == TrialState.RUNNING and trial not in drawn:
                study.tell(trial.number, state=TrialState.FAIL)
                log.warning("trial %d was stopped before its parameters were drawn: failed, "
                            "and a new trial takes its place", trial.number)  # fmt: skip
        stale = [t for t in drawn if t.state == TrialState.RUNNING]
        ran = sum(t.state.is_finished() for t in drawn)
        to_ask = sweeper.n_trials - len(stale) - ran
        log.info(
            "study %s in %s: %d trials finished, %d to run again, %d new to run",
            STUDY, storage, ran, len(stale), max(to_ask, 0),
        )  # fmt: skip
        for trial in stale:  # stopped mid-run: run again in its job folder
            results += run_trials(study, sweeper.launcher, [(trial.number, trial.params)], fixed)
        while to_ask > 0:
            # Under the lock only this search adds trials, so their numbers are consecutive.
            asked = [study.ask(space) for _ in range(min(sweeper.n_jobs, to_ask))]
            batch = [(trial.number, trial.params) for trial in asked]
            results += run_trials(study, sweeper.launcher, batch, fixed)
            to_ask -= len(asked)
        write_results(study, sweep_dir, fixed)
    return results


def write_results(study: optuna.Study, sweep_dir: Path, fixed: list[str]) -> None:
    """`<sweep dir>/optimization_results.yaml`: the best trial's value, parameters and the
    overrides that run it again, and how many trials ended in each state."""
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    if not states["complete"]:
        log.error("no trial completed: no best config to write")
        return
    best = study.best_trial
    results = {
        "name": "optuna",
        "study": STUDY,
        "storage": f"sqlite:///{sweep_dir / DB_FILE}",
        "direction": study.direction.name.lower(),
        "best_value": best.value,
        "best_params": best.params,
        "best_trial": best.number,  # also its job number: <sweep dir>/<number> by default
        "best_overrides": [*fixed, *(as_override(k, v) for k, v in best.params.items())],
        "trials": dict(states),
    }
    text = yaml.safe_dump(results, sort_keys=False)
    atomic_write(sweep_dir / RESULTS_FILE, lambda handle: handle.write(text.encode()))
    log.info(
        "best: trial %d, %s with %s; written to %s",
        best.number, best.value, best.params, sweep_dir / RESULTS_FILE,
    )  # fmt: skip
