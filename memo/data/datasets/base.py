"""The dataset component: what memo asks a dataset, whichever it is.

memo/conf/dataset/<name>.yaml names a subclass with `_target_` and holds its values; the rest of
memo reads a dataset only through this interface, never by its name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np

from memo.data.split import Corpus
from memo.data.synthetic import SyntheticSettings
from memo.errors import config_error
from memo.schema import PositiveInt, Range, Text
from memo.training.metrics import METRICS

READ_BACK = "read them with: dataset={name} dataset.dir={out} dataset.source=files"


@dataclass(frozen=True)
class Export:
    """A file format the built-in corpus can be written in (`python -m memo.data.export`)."""

    write: Callable[[Corpus, Path], list[Path]]  # (corpus, folder) -> the paths written
    then: str = READ_BACK  # the next step, shown after writing; {name}: dataset, {out}: folder


@dataclass(frozen=True, kw_only=True)
class Dataset(ABC):
    """A dataset's emotions and words, how it is scored, its files and reader, and the shape
    of its built-in corpus. Subclasses add their own keys and implement the abstract methods."""

    name: str  # names the dataset in logs, metrics.json and titles
    source: Literal["auto", "files", "synthetic"]  # real files, or the built-in corpus
    dir: Text  # folder holding the real files
    emotions: list[str]  # label columns, in file order
    extra_emotions: list[str]  # pools of further emotions that zero-/few-shot regimes add
    emotion_index: list[str] | None  # order by which an integer regime.emotion names an emotion
    words: dict[str, str]  # emotion -> word whose vector represents it
    metrics: list[str]  # per-emotion metrics reported (names in memo.training.metrics.METRICS)
    whole_sample: bool  # also the whole-sample accuracies
    selection: str  # the metric whose valid average selects the best epoch
    scale: Annotated[float, Range(0, 10, low_open=True)]  # built-in corpus size / the real one
    seq_len: PositiveInt  # time steps of the built-in corpus
    zero_nonfinite: bool  # zero NaN/+inf features instead of failing
    cues: dict[str, list[str]]  # built-in corpus: NRC categories whose words cue each emotion
    synthetic: SyntheticSettings  # built-in corpus: seed and difficulty knobs

    READER_VERSION: ClassVar[int] = 1  # bump when reading changes, so cached arrays are rebuilt
    # Keys the read corpus depends on (with the class and READER_VERSION, its cache key).
    READ_KEYS: ClassVar[tuple[str, ...]] = ("name", "emotions", "extra_emotions", "zero_nonfinite")
    SHAPE_KEYS: ClassVar[tuple[str, ...]] = ()  # subclass keys its built-in corpus depends on

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise config_error("dataset.metrics", self.metrics, f"a list from {list(METRICS)}")
        if self.selection not in self.metrics:
            raise config_error("dataset.selection", self.selection, " | ".join(self.metrics))
        if self.source != "synthetic" and Path(self.dir).exists() and not Path(self.dir).is_dir():
            raise config_error(
                "dataset.dir", self.dir, "a folder of the real files (this is a file)"
            )
        unnamed = [e for e in self.all_emotions if e not in self.words]
        if unnamed:
            raise config_error(
                "dataset.words", sorted(self.words), f"a word for every emotion; missing {unnamed}"
            )

    @property
    def all_emotions(self) -> list[str]:
        """The label columns, then the extra pools' emotions."""
        return [*self.emotions, *self.extra_emotions]

    @abstractmethod
    def expected_files(self) -> list[Path]:
        """Every file under `dir` that `read` reads."""

    @abstractmethod
    def read(self) -> Corpus:
        """The corpus from the real files, validated (see memo.data.validate)."""

    @abstractmethod
    def synthetic_labels(self, split: str, rng: np.random.Generator) -> np.ndarray:
        """(N, K + extras) 0/1 labels of the built-in corpus's `split`, extra-pool samples
        last (memo.data.synthetic offers `multi_label` and `one_label`)."""

    def exports(self) -> dict[str, Export]:
        """The formats the built-in corpus can be exported in, by name; none by default."""
        return {}
