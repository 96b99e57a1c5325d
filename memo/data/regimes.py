"""Regimes: which emotions a run trains, selects and tests on, as memo/conf/regime components.

- full: every split as it is.
- zsl (zero-shot) on emotion z: a dataset without extra pools trains and selects without any
  sample positive for z and without its column, then tests on the full test split; a dataset
  with pools trains on its emotions and tests on the test split extended with the pool's z
  samples as one more column.
- fsl (few-shot) on emotion f: without pools, training keeps only the first
  ceil(fraction * positives) positives of f; with pools, training gets that many of the pool's
  f samples, and validation and test all of them, as one more column.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, ClassVar

import numpy as np

from memo.data.split import Corpus, Split, concat
from memo.errors import MemoError, config_error
from memo.schema import NonNegativeInt, Range

if TYPE_CHECKING:
    from memo.data.datasets.base import Dataset


@dataclass(frozen=True)
class RegimeData:
    """What a run uses: train/valid over the trained emotions, test over the evaluated ones.

    `target` names the unseen or low-resource emotion of a zero-/few-shot regime (None for
    `full`), and `target_label` how tables mark it; `test.emotions` may extend
    `train.emotions` with it.
    """

    train: Split
    valid: Split
    test: Split
    target: str | None = None
    target_label: str = ""

    @property
    def seen(self) -> tuple[str, ...]:
        return self.train.emotions


@dataclass(frozen=True, kw_only=True)
class Regime(ABC):
    """A regime: memo/conf/regime/<name>.yaml names a subclass with `_target_` and holds its
    values."""

    name: str  # names the regime in logs, metrics.json and titles

    LABEL: ClassVar[str] = ""  # how tables and loggers mark the target emotion

    @abstractmethod
    def select(self, corpus: Corpus, index: Sequence[str]) -> RegimeData:
        """The splits a run uses; `index` is the order by which an integer emotion names one."""


@dataclass(frozen=True, kw_only=True)
class Full(Regime):
    """Train and evaluate on all of the dataset's emotions."""

    def select(self, corpus: Corpus, index: Sequence[str]) -> RegimeData:
        splits = corpus.splits
        return RegimeData(splits["train"], splits["valid"], splits["test"])


@dataclass(frozen=True, kw_only=True)
class ZeroShot(Regime):
    """Train without one emotion, then test on all emotions including it."""

    emotion: str | NonNegativeInt  # the unseen emotion, by name or index

    LABEL = "unseen"

    def select(self, corpus: Corpus, index: Sequence[str]) -> RegimeData:
        emotion, splits = resolve_emotion(self.emotion, corpus, index), corpus.splits
        if corpus.extras:
            test = extend(splits["test"], corpus, "test", emotion)
            return RegimeData(splits["train"], splits["valid"], test, emotion)
        train, valid = (without_emotion(splits[s], emotion) for s in ("train", "valid"))
        return RegimeData(train, valid, splits["test"], emotion)


@dataclass(frozen=True, kw_only=True)
class FewShot(Regime):
    """Train with only a small fraction of one emotion's positive samples."""

    emotion: str | NonNegativeInt  # the low-resource emotion, by name or index
    fraction: Annotated[float, Range(0, 1, low_open=True)]  # training positives kept (ceil)
    authors_off_by_one: bool  # keep one more positive, as the authors' released code does

    LABEL = "few-shot"

    def select(self, corpus: Corpus, index: Sequence[str]) -> RegimeData:
        emotion, splits = resolve_emotion(self.emotion, corpus, index), corpus.splits
        extra = 1 if self.authors_off_by_one else 0
        if not corpus.extras:
            train = few_positives(splits["train"], emotion, self.fraction, extra)
            return RegimeData(train, splits["valid"], splits["test"], emotion)
        pool = samples_of(corpus.extras["train"], emotion)
        keep = few_shot_count(len(pool), self.fraction, extra)
        return RegimeData(
            concat(splits["train"], pool.rows(np.arange(keep))),
            extend(splits["valid"], corpus, "valid", emotion),
            extend(splits["test"], corpus, "test", emotion),
            emotion,
        )


def apply_regime(corpus: Corpus, regime: Regime, index: Sequence[str] | None = None) -> RegimeData:
    """The splits `regime` selects from `corpus`; none may end up empty. `index` (the
    dataset's `emotion_index`) orders emotions named by an integer; by default the corpus's
    emotions, then its extra pools' emotions."""
    data = replace(regime.select(corpus, index or _emotions(corpus)), target_label=regime.LABEL)
    for name in ("train", "valid", "test"):
        split = getattr(data, name)
        if len(split) == 0 or not split.emotions:
            what = "no samples" if len(split) == 0 else "no emotions"
            raise MemoError(
                f"the {name} split has {what} under regime={regime.name} ({corpus.description}); "
                "nothing to train or evaluate on"
            )
    return data


def _emotions(corpus: Corpus) -> tuple[str, ...]:
    """The corpus's label columns, then its extra pools' emotions."""
    pools = corpus.extras["train"].emotions if corpus.extras else ()
    return corpus.splits["train"].emotions + pools


def resolve_emotion(value: object, corpus: Corpus, index: Sequence[str]) -> str:
    """The emotion named by `regime.emotion`: a name, or its position in `index` (as the
    authors' code names them). With extra pools only their emotions can be the target."""
    pools = corpus.extras["train"].emotions if corpus.extras else ()
    return target_emotion(value, corpus.splits["train"].emotions, pools, index, corpus.dataset)


def check_target(regime: Regime, dataset: Dataset) -> None:
    """Before any data loads: the regime's `emotion`, if it has one, is one the dataset's
    config offers (its label columns, or its extra pools where it has them)."""
    if hasattr(regime, "emotion"):
        index = dataset.emotion_index or dataset.all_emotions
        target_emotion(
            regime.emotion, dataset.emotions, dataset.extra_emotions, index, dataset.name
        )


def target_emotion(
    value: object, base: Sequence[str], pools: Sequence[str], index: Sequence[str], dataset: str
) -> str:
    """`resolve_emotion` from the emotion names alone: `base` the label columns, `pools` the
    extra pools' emotions (the only possible targets where there are any)."""
    candidates = pools or base
    allowed = ", ".join(f"{e} ({index.index(e)})" if e in index else e for e in candidates)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(index):
            raise config_error("regime.emotion", value, allowed)
        value = index[value]
    if value not in candidates:
        hint = ""
        if value in base and pools:
            hint = f" ({value} is one of the {len(base)} trained emotions)"
        raise MemoError(
            f"config key 'regime.emotion': got {value!r}{hint}; allowed for {dataset}: {allowed}"
        )
    return str(value)


def without_emotion(split: Split, emotion: str) -> Split:
    """Drop every sample positive for `emotion`, then its label column."""
    column = split.emotions.index(emotion)
    kept = split.rows(split.labels[:, column] == 0)
    return kept.columns(tuple(e for e in split.emotions if e != emotion))


def few_shot_count(positives: int, fraction: float, extra: int = 0) -> int:
    """ceil(fraction * positives), plus `extra` (1 reproduces the authors' off-by-one)."""
    return min(positives, math.ceil(fraction * positives) + extra)


def few_positives(split: Split, emotion: str, fraction: float, extra: int = 0) -> Split:
    """Keep the first few positives of `emotion` (file order) and every sample without it."""
    positive = split.labels[:, split.emotions.index(emotion)] > 0
    order = np.flatnonzero(positive)
    keep = ~positive
    keep[order[: few_shot_count(len(order), fraction, extra)]] = True
    return split.rows(keep)


def samples_of(pool: Split, emotion: str) -> Split:
    """The pool's samples of `emotion`, labelled with that one column."""
    return pool.rows(pool.labels[:, pool.emotions.index(emotion)] > 0).columns((emotion,))


def extend(split: Split, corpus: Corpus, name: str, emotion: str) -> Split:
    """`split` plus the extra pool's samples of `emotion`, as one more label column."""
    return concat(split, samples_of(corpus.extras[name], emotion))
