"""CMU-MOSEI's emotion task: 6 emotions, multi-label, the authors' HDF5 files."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from memo.data import mosei_csd, mosei_files
from memo.data.datasets.base import Dataset, Export
from memo.data.split import Corpus
from memo.data.synthetic import multi_label
from memo.schema import NonNegativeInt, Probability


@dataclass(frozen=True, kw_only=True)
class Mosei(Dataset):
    """CMU-MOSEI: read by memo.data.mosei_files; its built-in corpus is multi-label."""

    sizes: dict[str, NonNegativeInt]  # built-in corpus: samples per split at scale 1
    prevalence: dict[str, Probability]  # built-in corpus: fraction of samples showing each emotion

    SHAPE_KEYS = ("sizes", "prevalence")

    def expected_files(self) -> list[Path]:
        return mosei_files.expected_files(self)

    def read(self) -> Corpus:
        return mosei_files.read_corpus(self)

    def synthetic_labels(self, split: str, rng: np.random.Generator) -> np.ndarray:
        return multi_label(self.sizes[split], self.prevalence, self, rng)

    def exports(self) -> dict[str, Export]:
        return {
            "release": Export(partial(mosei_files.write_corpus, dataset=self)),
            "csd": Export(
                mosei_csd.write_corpus,
                "prepare them with: python -m memo.data.prepare mosei --csd {out} --out DIR",
            ),
        }
