"""Reader for CMU-MOSEI's emotion-task HDF5 files: text_/audio_/video_/ey_{split}.h5 (`d1`)."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
from omegaconf import DictConfig

from memo.data.split import SPLITS, Corpus, Split
from memo.data.validate import clean_features, expect_same, expect_shape
from memo.errors import MemoError

log = logging.getLogger(__name__)

VERSION = 1  # bump when reading changes, so cached arrays are rebuilt
SETTINGS = ("name", "emotions", "zero_nonfinite")  # config keys the result depends on
FILES = {"text": "text_{}_emb.h5", "audio": "audio_{}.h5", "vision": "video_{}.h5"}
LABELS = "ey_{}.h5"
DATASET_KEY = "d1"


def expected_files(dataset: DictConfig) -> list[Path]:
    """The 12 files the emotion task reads, split by split."""
    folder = Path(dataset.dir)
    return [folder / name.format(s) for s in SPLITS for name in (*FILES.values(), LABELS)]


def read_corpus(dataset: DictConfig) -> Corpus:
    """All three splits, validated; labels are `ey > 0` in the order of `dataset.emotions`."""
    folder = Path(dataset.dir)
    splits = {s: _read_split(folder, s, dataset) for s in SPLITS}
    for modality, name in FILES.items():
        expect_same(
            f"{modality} feature sizes (last dimension) across splits in {folder}",
            {name.format(s): getattr(splits[s], modality).shape[2] for s in SPLITS},
        )
    return Corpus("mosei", "files", f"CMU-MOSEI files in {folder}", splits)


def _read_split(folder: Path, split: str, dataset: DictConfig) -> Split:
    features, counts = {}, {}
    for modality, name in FILES.items():
        path = folder / name.format(split)
        array = expect_shape(read_h5(path, np.float32), ("N", "T", "D"), str(path))
        where = f"{path} ({split} {modality})"
        features[modality] = clean_features(array, where, bool(dataset.zero_nonfinite))
        counts[path.name] = len(array)
    ey_path = folder / LABELS.format(split)
    emotions = tuple(dataset.emotions)
    ey = expect_shape(read_h5(ey_path), ("N", len(emotions)), f"{ey_path} (columns {emotions})")
    counts[ey_path.name] = len(ey)
    expect_same(f"sample counts (first dimension) of the {split} files in {folder}", counts)
    return Split(**features, labels=intensities_to_labels(ey, ey_path), emotions=emotions)


def intensities_to_labels(ey: np.ndarray, path: Path) -> np.ndarray:
    """0/1 float32 labels `ey > 0`; intensities must be finite and non-negative.

    They are multiples of 1/3 in the release (a few exceed 3); other values only warn.
    """
    bad = ~np.isfinite(ey) | (ey < 0)
    if bad.any():
        raise MemoError(
            f"{path}: expected finite non-negative emotion intensities, found {int(bad.sum())} "
            f"values that are not (e.g. {ey[bad][:3].tolist()})"
        )
    thirds = np.abs(ey * 3 - np.round(ey * 3)) > 1e-3
    if thirds.any():
        log.warning(
            "%s: %d intensities are not multiples of 1/3 (e.g. %s)",
            path,
            int(thirds.sum()),
            ey[thirds][:3].tolist(),
        )
    return (ey > 0).astype(np.float32)


def read_h5(path: Path, dtype: type | None = None) -> np.ndarray:
    """The whole `d1` dataset of HDF5 file `path`, converted to `dtype` while reading."""
    try:
        with h5py.File(path, "r") as file:
            if DATASET_KEY not in file:
                raise MemoError(
                    f"{path}: expected an HDF5 dataset named '{DATASET_KEY}', "
                    f"found keys {sorted(file.keys())}"
                )
            node = file[DATASET_KEY]
            if not isinstance(node, h5py.Dataset) or node.dtype.kind not in "biuf":
                raise MemoError(
                    f"{path}: '{DATASET_KEY}' must be a numeric dataset, found {node!r}"
                )
            return (node.astype(dtype) if dtype else node)[()]
    except OSError as err:
        raise MemoError(f"{path}: not a readable HDF5 file ({err})") from None
