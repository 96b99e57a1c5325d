"""memo's command line: `python run.py [group=option ...] [key=value ...]` (Hydra)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from memo.errors import MemoError
from memo.experiment import run_experiment


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Run one configured experiment; a MemoError ends it with its message, no stack trace."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_experiment(cfg, run_dir)
    except MemoError as error:
        logging.getLogger("memo").error("error: %s", error)
        sys.exit(2)


if __name__ == "__main__":
    main()
