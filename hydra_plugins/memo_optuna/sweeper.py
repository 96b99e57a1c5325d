"""`hydra/sweeper=memo_optuna`: an Optuna search whose study lives in `<sweep dir>/optuna.db`, so
that a killed search continues where it stopped. Optuna is imported only when a search runs.

No `from __future__ import annotations` here: Hydra's plugin scan runs this module before it is
in sys.modules, where dataclasses cannot resolve string annotations."""

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


def _tpe() -> dict[str, Any]:
    return {"_target_": "optuna.samplers.TPESampler", "seed": 0}


@dataclass
class OptunaSweeperConf:
    """`hydra.sweeper`: what to search, how many trials, and in which direction."""

    _target_: str = "hydra_plugins.memo_optuna.sweeper.OptunaSweeper"
    direction: str = "maximize"  # maximize | minimize the jobs' return value
    n_trials: int = 20  # trials in the study in all, those of earlier runs of the sweep included
    n_jobs: int = 1  # trials launched together (a parallel launcher runs them at once)
    sampler: Any = field(default_factory=_tpe)  # an Optuna sampler (Hydra instantiates it)
    # key: choice(a,b,...) | a,b,... | range(start,stop[,step]) | interval(low,high) |
    # tag(log,interval(low,high)); a plain value is passed to every trial as it is
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="memo_optuna", node=OptunaSweeperConf, provider="memo"
)


class OptunaSweeper(Sweeper):
    """Asks Optuna for each trial's overrides, runs the trial as the sweep's job of the same
    number, and tells Optuna the job's return value (see `_search.search`)."""

    def __init__(
        self, direction: str, n_trials: int, n_jobs: int, sampler: Any, params: dict[str, str]
    ) -> None:
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.sampler = sampler
        self.params = params

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> Sequence[JobReturn]:
        from hydra_plugins.memo_optuna._search import search
        from memo.errors import MemoError

        try:
            return search(self, arguments)
        except MemoError as error:  # bad settings or a busy study: one line and exit 2, as memo
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
