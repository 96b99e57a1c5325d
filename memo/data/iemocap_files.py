"""IEMOCAP's files, the 4-emotion pickle and the 9-emotion release's `.p` extra pools: reader
and writer."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memo.data.py2pickle import dump_py2_array
from memo.data.safe_pickle import safe_load
from memo.data.split import MODALITIES, SPLITS, Corpus, Split
from memo.data.validate import clean_features, expect_same, expect_shape, listing
from memo.errors import MemoError

if TYPE_CHECKING:
    from memo.data.datasets.iemocap import Iemocap

MAIN_FILES = {True: "iemocap_data.pkl", False: "iemocap_data_noalign.pkl"}
EXTRA_FILES = {"text": "text_{}.p", "audio": "covarep_{}.p", "vision": "facet_{}.p"}
EXTRA_LABELS = "y_{}.p"
# Columns of the 9-emotion release's one-hot y (M, 11).
EXTRA_COLUMNS = (
    "other", "anger", "excited", "fear", "sad", "surprised",
    "frustrated", "happy", "neutral", "disgust", "unknown",
)  # fmt: skip
POOLED = EXTRA_COLUMNS[1:-1]  # the emotions whose samples can form extra pools


def main_file(dataset: Iemocap) -> Path:
    """iemocap_data.pkl, or iemocap_data_noalign.pkl when `dataset.aligned` is false."""
    return Path(dataset.dir) / MAIN_FILES[bool(dataset.aligned)]


def expected_files(dataset: Iemocap) -> list[Path]:
    """The 4-emotion pickle plus, when extra emotions are configured, the 12 `.p` files."""
    folder = Path(dataset.dir)
    extras = [
        folder / name.format(s)
        for s in SPLITS
        for name in (*EXTRA_FILES.values(), EXTRA_LABELS)
        if dataset.extra_emotions
    ]
    return [main_file(dataset), *extras]


def read_corpus(dataset: Iemocap) -> Corpus:
    """The 4-emotion splits and, per split, the pool of `dataset.extra_emotions` samples."""
    folder = Path(dataset.dir)
    path = main_file(dataset)
    splits = _read_main(path, dataset)
    extras = {s: _read_extras(folder, s, dataset) for s in SPLITS if dataset.extra_emotions}
    for modality in MODALITIES:
        sizes = {f"{path.name} {s}": getattr(splits[s], modality).shape[2] for s in SPLITS}
        sizes |= {
            EXTRA_FILES[modality].format(s): getattr(pool, modality).shape[2]
            for s, pool in extras.items()
        }
        expect_same(f"{modality} feature sizes (last dimension) in {folder}", sizes)
    return Corpus(dataset.name, "files", f"IEMOCAP files in {folder}", splits, extras)


def _read_main(path: Path, dataset: Iemocap) -> dict[str, Split]:
    data = _expect_keys(safe_load(path, encoding="latin1"), SPLITS, str(path))
    emotions = tuple(dataset.emotions)
    splits = {}
    for split in SPLITS:
        part = _expect_keys(data[split], (*MODALITIES, "labels"), f"{path} ['{split}']")
        wheres = {m: f"{path} ['{split}']['{m}']" for m in MODALITIES}
        raw = {m: expect_shape(part[m], ("N", "T", "D"), wheres[m]) for m in MODALITIES}
        where = f"{path} ['{split}']['labels'] (emotions {emotions}, negative/positive)"
        pairs = expect_shape(part["labels"], ("N", len(emotions), 2), where)
        counts = {m: len(a) for m, a in raw.items()} | {"labels": len(pairs)}
        expect_same(f"{path} ['{split}'] sample counts", counts)
        labels = one_positive(one_hot_pairs(pairs, where), where)
        features = {
            m: clean_features(raw[m], wheres[m], bool(dataset.zero_nonfinite)) for m in MODALITIES
        }
        splits[split] = Split(**features, labels=labels, emotions=emotions)
    return splits


def _read_extras(folder: Path, split: str, dataset: Iemocap) -> Split:
    """The `split` samples of the configured extra emotions, trimmed from 21 to 20 steps."""
    extras = tuple(dataset.extra_emotions)
    y_path = folder / EXTRA_LABELS.format(split)
    y = one_positive(expect_shape(safe_load(y_path, "latin1"), ("M", 11), str(y_path)), str(y_path))
    classes = np.argmax(y, axis=1)
    columns = np.array([EXTRA_COLUMNS.index(e) for e in extras])
    keep = np.isin(classes, columns)
    raw, counts = {}, {y_path.name: len(y)}
    for modality, name in EXTRA_FILES.items():
        path = folder / name.format(split)
        raw[modality] = (path, expect_shape(safe_load(path, "latin1"), ("M", "T", "D"), str(path)))
        counts[path.name] = len(raw[modality][1])
    expect_same(f"sample counts (first dimension) of the {split} .p files in {folder}", counts)
    zero_nonfinite = bool(dataset.zero_nonfinite)
    features = {  # [:, :-1] drops the last of the 21 steps
        m: clean_features(array[keep, :-1], str(path), zero_nonfinite)
        for m, (path, array) in raw.items()
    }
    labels = (classes[keep, None] == columns[None, :]).astype(np.float32)
    return Split(**features, labels=labels, emotions=extras)


def one_hot_pairs(pairs: np.ndarray, where: str) -> np.ndarray:
    """The positive entries of (N, K, 2) [negative, positive] pairs, after checking that every
    pair is [1, 0] or [0, 1] (NaN or [1, 1] would otherwise be read as some label)."""
    good = ((pairs == 0) | (pairs == 1)).all(axis=-1) & (pairs.sum(axis=-1) == 1)
    bad = np.argwhere(~good)
    if len(bad):
        sample, emotion = bad[0].tolist()
        raise MemoError(
            f"{where}: expected one-hot pairs [1, 0] or [0, 1], found {len(bad)} that are not "
            f"(first: sample {sample}, emotion {emotion}: {pairs[sample, emotion].tolist()})"
        )
    return pairs[..., 1]


def one_positive(labels: np.ndarray, where: str) -> np.ndarray:
    """`labels` as float32 0/1 after checking every value is 0 or 1, one 1 per row."""
    binary = (labels == 0) | (labels == 1)
    if not binary.all():
        raise MemoError(
            f"{where}: expected labels of 0 or 1, found {int((~binary).sum())} other values "
            f"(e.g. {labels[~binary][:3].tolist()})"
        )
    positives = (labels > 0).sum(axis=1)
    bad = np.flatnonzero(positives != 1)
    if len(bad):
        raise MemoError(
            f"{where}: expected exactly one positive emotion per sample, found "
            f"{len(bad)} rows with {sorted(set(positives[bad].tolist()))} positives "
            f"(first rows {bad[:5].tolist()})"
        )
    return (labels > 0).astype(np.float32)


def _expect_keys(value: object, keys: tuple[str, ...], where: str) -> dict:
    """`value` as a dict holding at least `keys`."""
    if not isinstance(value, dict):
        raise MemoError(f"{where}: expected a dict with keys {list(keys)}, found {type(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise MemoError(
            f"{where}: expected keys {list(keys)}, missing {missing}; found {listing(value)}"
        )
    return value


def write_corpus(corpus: Corpus, out: Path, dataset: Iemocap) -> list[Path]:
    """The 4-emotion pickle (labels as (N, 4, 2) pairs) and the 9-emotion `.p` extras."""
    data = {}
    for s in SPLITS:
        split = corpus.splits[s].columns(dataset.emotions)
        data[s] = {m: np.asarray(getattr(split, m), dtype=np.float32) for m in MODALITIES}
        data[s]["labels"] = np.stack([1 - split.labels, split.labels], axis=-1).astype(np.float32)
    main = out / MAIN_FILES[dataset.aligned]
    with main.open("wb") as file:
        pickle.dump(data, file, protocol=4)
    written = [main]
    for s, pool in corpus.extras.items():
        labels = one_positive(pool.labels, f"extra pool {s} of the corpus being exported")
        classes = [EXTRA_COLUMNS.index(e) for e in pool.emotions]
        y = np.eye(len(EXTRA_COLUMNS), dtype=np.float32)[np.array(classes)[labels.argmax(1)]]
        arrays = {name.format(s): _extra_step(getattr(pool, m)) for m, name in EXTRA_FILES.items()}
        arrays[EXTRA_LABELS.format(s)] = y
        for name, array in arrays.items():
            dump_py2_array(array, out / name)
            written.append(out / name)
    return written


def _extra_step(features: np.ndarray) -> np.ndarray:
    """Append a zero step: the 9-emotion release has 21 steps, which the reader trims to 20."""
    pad = np.zeros((len(features), 1, features.shape[2]), dtype=np.float32)
    return np.concatenate([np.asarray(features, dtype=np.float32), pad], axis=1)
