"""A Hydra callback for tests: each sweep job waits at its start until every job has started,
so a sweep whose jobs all get past it ran them at the same time (no clock comparison).

    +hydra.callbacks.rendezvous._target_=sweep_rendezvous.Rendezvous
    +hydra.callbacks.rendezvous.jobs=2

needs this folder on PYTHONPATH. Job <n> writes `<sweep dir>/arrived-<n>` on arrival and then
`met-<n>` once all `jobs` have arrived, or `alone-<n>` if they have not within `timeout_s`
(jobs run one after another never meet)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class Rendezvous(Callback):
    def __init__(self, jobs: int, timeout_s: float = 120.0) -> None:
        self.jobs, self.timeout_s = jobs, timeout_s

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder, num = Path(config.hydra.sweep.dir), config.hydra.job.num
        (folder / f"arrived-{num}").touch()
        deadline = time.monotonic() + self.timeout_s
        while not all((folder / f"arrived-{n}").exists() for n in range(self.jobs)):
            if time.monotonic() > deadline:
                (folder / f"alone-{num}").touch()
                return
            time.sleep(0.02)
        (folder / f"met-{num}").touch()
