"""A dataset and a metric defined outside memo (tests/test_new_dataset.py): three emotions, one
`toy_<split>.npz` file per split, and a per-emotion recall.

conf: tests/configs/dataset/toy.yaml names `toy_dataset.Toy`; this folder must be importable
(on PYTHONPATH) and tests/configs on Hydra's search path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memo.data.datasets.base import Dataset, Export
from memo.data.split import MODALITIES, SPLITS, Corpus, Split
from memo.data.synthetic import one_label
from memo.data.validate import clean_features
from memo.training.metrics import METRICS, Metric

FILE = "toy_{}.npz"


def recall(labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Per-emotion recall TP / P, shape (K,); NaN where an emotion has no positives."""
    positives = labels.sum(axis=0)
    hits = (labels & preds).sum(axis=0)
    return np.where(positives > 0, hits / np.maximum(positives, 1), np.nan)


# One entry in memo's metric registry reaches the results table, metrics.json and TensorBoard
# (a metric of memo's own is this entry in memo/training/metrics.py).
METRICS["recall"] = Metric(
    "Rec", lambda labels, preds, scores: recall(labels, preds), needs_both_classes=True
)


@dataclass(frozen=True, kw_only=True)
class Toy(Dataset):
    """The toy dataset: one label per sample, features and labels in one .npz per split."""

    counts: dict[str, dict[str, int]]  # built-in corpus: samples per split and emotion, scale 1

    SHAPE_KEYS = ("counts",)

    def expected_files(self) -> list[Path]:
        return [Path(self.dir) / FILE.format(s) for s in SPLITS]

    def read(self) -> Corpus:
        splits = {}
        for split, path in zip(SPLITS, self.expected_files(), strict=True):
            with np.load(path, allow_pickle=False) as data:
                features = {
                    m: clean_features(data[m], f"{path} {m}", self.zero_nonfinite)
                    for m in MODALITIES
                }
                labels = np.asarray(data["labels"], dtype=np.float32)
            splits[split] = Split(**features, labels=labels, emotions=tuple(self.emotions))
        return Corpus(self.name, "files", f"toy files in {self.dir}", splits)

    def synthetic_labels(self, split: str, rng: np.random.Generator) -> np.ndarray:
        return one_label(self.counts[split], self, rng)

    def exports(self) -> dict[str, Export]:
        return {"npz": Export(self.write)}

    def write(self, corpus: Corpus, out: Path) -> list[Path]:
        """Each split as `toy_<split>.npz`."""
        written = []
        for split in SPLITS:
            part = corpus.splits[split]
            arrays = {m: getattr(part, m) for m in (*MODALITIES, "labels")}
            np.savez(out / FILE.format(split), **arrays)
            written.append(out / FILE.format(split))
        return written
