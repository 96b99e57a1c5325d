"""Random data of CMU-MOSEI's size and shapes, in memory or in the release's file layout."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np

from memo.data.mosei_files import DATASET_KEY, FILES, LABELS
from memo.data.split import Split

MOSEI_SIZES = {"train": 15290, "valid": 2291, "test": 4832}
DIMS = {"text": 300, "audio": 74, "vision": 35}
EMOTIONS = ("anger", "disgust", "fear", "happy", "sad", "surprise")
# Share of samples showing each emotion, roughly MOSEI's (about a fifth show none).
LABEL_RATES = (0.21, 0.17, 0.08, 0.53, 0.25, 0.10)
EMOTION_DIM = 300


def sizes(scale: float) -> dict[str, int]:
    """Samples per split at `scale` times MOSEI's size (at least 8)."""
    return {split: max(8, round(n * scale)) for split, n in MOSEI_SIZES.items()}


def dims(text_dim: int = DIMS["text"]) -> dict[str, int]:
    """Feature sizes with `text_dim`-d text (300: the paper's GloVe; 50: the built-in corpus)."""
    return {**DIMS, "text": text_dim}


def random_splits(
    scale: float, seq_len: int, seed: int = 0, text_dim: int = DIMS["text"]
) -> dict[str, Split]:
    """Train/valid/test `Split`s of random MOSEI-shaped features and multi-label labels."""
    rng = np.random.default_rng(seed)
    splits = {}
    for name, n in sizes(scale).items():
        features = {
            m: rng.standard_normal((n, seq_len, d), dtype=np.float32)
            for m, d in dims(text_dim).items()
        }
        labels = (rng.random((n, len(EMOTIONS))) < np.array(LABEL_RATES)).astype(np.float32)
        labels[0], labels[1] = 1.0, 0.0  # every emotion has a positive and a negative
        splits[name] = Split(**features, labels=labels, emotions=EMOTIONS)
    return splits


def write_mosei_files(folder: Path, scale: float, seq_len: int) -> Path:
    """Random MOSEI-size data in the release's HDF5 layout (float32) and a pickled emotion
    vector file for embeddings=file; returns the vector file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, data in random_splits(scale, seq_len).items():
        arrays = {name.format(split): getattr(data, m) for m, name in FILES.items()}
        arrays[LABELS.format(split)] = data.labels
        for name, array in arrays.items():
            with h5py.File(folder / name, "w") as file:
                file.create_dataset(DATASET_KEY, data=array)
    rng = np.random.default_rng(3)
    vectors = {e: rng.standard_normal(EMOTION_DIM).tolist() for e in EMOTIONS}
    path = folder / "emotion_vectors.pkl"
    path.write_bytes(pickle.dumps(vectors, protocol=4))
    return path
