"""The single in-memory representation of a data split and of a whole corpus."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memo.errors import MemoError

MODALITIES = ("text", "audio", "vision")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """Features (N, T, D) per modality and 0/1 labels (N, K); column k is `emotions[k]`.

    Lengths T may differ between modalities (unaligned data); N may not.
    """

    text: np.ndarray
    audio: np.ndarray
    vision: np.ndarray
    labels: np.ndarray
    emotions: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.labels)
        for name in MODALITIES:
            array = getattr(self, name)
            if array.ndim != 3:
                raise MemoError(f"{name} features must be (N, T, D); got shape {array.shape}")
            if len(array) != n:
                raise MemoError(f"{name} has {len(array)} samples but labels have {n}")
        if self.labels.ndim != 2 or self.labels.shape[1] != len(self.emotions):
            raise MemoError(
                f"labels must be (N, {len(self.emotions)}) for emotions {list(self.emotions)}; "
                f"got shape {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, index: np.ndarray) -> Split:
        """The samples at `index` (integer indices or a boolean mask), same emotions."""
        return Split(
            self.text[index],
            self.audio[index],
            self.vision[index],
            self.labels[index],
            self.emotions,
        )

    def columns(self, emotions: tuple[str, ...] | list[str]) -> Split:
        """The same samples with label columns for `emotions` only, in that order."""
        missing = [e for e in emotions if e not in self.emotions]
        if missing:
            raise MemoError(f"emotions {missing} not in this split's {list(self.emotions)}")
        cols = [self.emotions.index(e) for e in emotions]
        return Split(self.text, self.audio, self.vision, self.labels[:, cols], tuple(emotions))


def concat(first: Split, second: Split) -> Split:
    """Stack the samples of two splits; label columns are the union (first's order, then new).

    A sample gets 0 for every emotion its own split did not label.
    """
    for name in MODALITIES:
        a, b = getattr(first, name).shape[1:], getattr(second, name).shape[1:]
        if a != b:
            raise MemoError(
                f"cannot add samples of {', '.join(second.emotions)} with {name} of shape "
                f"(T, D) = {b} to a split with {a}: a dataset's extra pools must have the shapes "
                "of its splits (aligned data)"
            )
    emotions = first.emotions + tuple(e for e in second.emotions if e not in first.emotions)

    def widen(split: Split) -> np.ndarray:
        labels = np.zeros((len(split), len(emotions)), dtype=split.labels.dtype)
        for k, emotion in enumerate(split.emotions):
            labels[:, emotions.index(emotion)] = split.labels[:, k]
        return labels

    return Split(
        np.concatenate([first.text, second.text]),
        np.concatenate([first.audio, second.audio]),
        np.concatenate([first.vision, second.vision]),
        np.concatenate([widen(first), widen(second)]),
        emotions,
    )


@dataclass(frozen=True)
class Corpus:
    """A dataset's train/valid/test splits plus where they came from.

    `extras` holds, per split name, a pool of samples of additional emotions (the dataset's
    `extra_emotions`) with label columns for those emotions only; empty when it has none.
    Regimes draw on it for zero-/few-shot evaluation.
    """

    dataset: str
    source: str
    description: str
    splits: dict[str, Split]
    extras: dict[str, Split] = field(default_factory=dict)

    def feature_dims(self) -> dict[str, int]:
        """Feature size per modality, taken from the training split."""
        train = self.splits["train"]
        return {name: getattr(train, name).shape[2] for name in MODALITIES}
