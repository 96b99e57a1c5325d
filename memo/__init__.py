"""memo: multimodal emotion recognition experiments (EEA and baselines) configured with Hydra."""

from memo.errors import MemoError

__all__ = ["MemoError"]
