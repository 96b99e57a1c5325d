"""memo's Optuna sweeper for Hydra (`hydra/sweeper=memo_optuna`), found by Hydra's plugin scan."""
