"""memo: multimodal emotion recognition experiments (EEA and baselines) configured with Hydra."""

from pathlib import Path

from memo.errors import MemoError

CONFIG_DIR = Path(__file__).resolve().parent / "conf"  # the config tree, shipped in the package

__all__ = ["CONFIG_DIR", "MemoError", "evaluate", "load", "train"]


def __getattr__(name: str):
    """`memo.train`, `memo.evaluate`, `memo.load` (memo.api), imported on first use so that
    `import memo.<module>` stays light."""
    if name in ("train", "evaluate", "load"):
        from memo import api

        return getattr(api, name)
    raise AttributeError(f"module 'memo' has no attribute {name!r}")
