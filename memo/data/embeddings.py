"""Emotion vectors: one frozen word vector per emotion, from the configured source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from omegaconf import DictConfig

from memo.data.glove import glove6b50
from memo.errors import MemoError, config_error

SOURCES = ("glove6b50", "file")


def emotion_vectors(
    embeddings: DictConfig, words: Mapping[str, str], emotions: Sequence[str]
) -> np.ndarray:
    """(K, dim) float32 vectors for `emotions`, each looked up by its word in `words`."""
    unnamed = [e for e in emotions if e not in words]
    if unnamed:
        raise MemoError(
            f"no word configured for emotions {unnamed} under dataset.words "
            f"(configured: {sorted(words)})"
        )
    wanted = [str(words[e]) for e in emotions]
    if embeddings.name == "glove6b50":
        vectors = glove6b50().vectors(wanted)
    elif embeddings.name == "file":
        from memo.data.word_vectors import read_word_vectors

        table = read_word_vectors(embeddings, wanted)
        vectors = np.stack([table[w] for w in wanted]).astype(np.float32)
    else:
        raise config_error("embeddings.name", embeddings.name, " | ".join(SOURCES))
    if vectors.shape[1] != embeddings.dim:
        raise config_error(
            "embeddings.dim", embeddings.dim, f"the vectors' actual size {vectors.shape[1]}"
        )
    return vectors
