"""memo: multimodal emotion recognition experiments (EEA and baselines) configured with Hydra."""

from memo.errors import MemoError

__all__ = ["MemoError", "evaluate", "load", "train"]


def __getattr__(name: str):
    """`memo.train`, `memo.evaluate`, `memo.load` (memo.api), imported on first use so that
    `import memo.<module>` stays light."""
    if name in ("train", "evaluate", "load"):
        from memo import api

        return getattr(api, name)
    raise AttributeError(f"module 'memo' has no attribute {name!r}")
