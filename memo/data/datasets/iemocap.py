"""IEMOCAP: 4 emotions, one per sample, plus pools of 3 more from the 9-emotion release."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from memo.data import iemocap_files
from memo.data.datasets.base import Dataset, Export
from memo.data.split import Corpus
from memo.data.synthetic import one_label
from memo.errors import config_error
from memo.schema import NonNegativeInt


@dataclass(frozen=True, kw_only=True)
class Iemocap(Dataset):
    """IEMOCAP: read by memo.data.iemocap_files; its built-in corpus has one label per sample."""

    aligned: bool  # true: iemocap_data.pkl, false: iemocap_data_noalign.pkl
    counts: dict[str, dict[str, NonNegativeInt]]  # built-in corpus: per split and emotion, scale 1

    READ_KEYS = (*Dataset.READ_KEYS, "aligned")
    SHAPE_KEYS = ("counts",)

    def __post_init__(self) -> None:
        unknown = [e for e in self.extra_emotions if e not in iemocap_files.POOLED]
        if unknown:
            raise config_error(
                "dataset.extra_emotions", self.extra_emotions, f"a subset of {iemocap_files.POOLED}"
            )
        super().__post_init__()

    def expected_files(self) -> list[Path]:
        return iemocap_files.expected_files(self)

    def read(self) -> Corpus:
        return iemocap_files.read_corpus(self)

    def synthetic_labels(self, split: str, rng: np.random.Generator) -> np.ndarray:
        return one_label(self.counts[split], self, rng)

    def exports(self) -> dict[str, Export]:
        return {"release": Export(partial(iemocap_files.write_corpus, dataset=self))}
