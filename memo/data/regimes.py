"""Regimes: pure functions from a corpus to the splits a run trains, selects and tests on.

- full: every split as it is.
- zsl (zero-shot) on emotion z: MOSEI trains and selects without any sample positive for z
  and without its column, then tests on the full test split; IEMOCAP trains on its 4
  emotions and tests on the test split extended with z's samples as a 5th column.
- fsl (few-shot) on emotion f: MOSEI keeps only the first ceil(fraction * positives)
  positives of f in training; IEMOCAP adds that many of f's samples to training, and f's
  samples to validation and test, as a 5th column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig, OmegaConf

from memo.data.split import Corpus, Split, concat
from memo.errors import MemoError, config_error

REGIMES = ("full", "zsl", "fsl")

# IEMOCAP's 9-emotion order, by which the authors' code indexes zero-shot emotions.
IEMOCAP_NINE = (
    "anger", "excited", "fear", "sad", "surprised", "frustrated", "happy", "neutral", "disgust",
)  # fmt: skip


@dataclass(frozen=True)
class RegimeData:
    """What a run uses: train/valid over the trained emotions, test over the evaluated ones.

    `target` names the unseen or low-resource emotion of a zero-/few-shot regime (None for
    `full`); `test.emotions` may extend `train.emotions` with it.
    """

    train: Split
    valid: Split
    test: Split
    target: str | None = None

    @property
    def seen(self) -> tuple[str, ...]:
        return self.train.emotions


def apply_regime(corpus: Corpus, regime: DictConfig) -> RegimeData:
    """Select the splits of `regime.name` from `corpus`; none may end up empty."""
    data = _select(corpus, regime)
    for name in ("train", "valid", "test"):
        split = getattr(data, name)
        if len(split) == 0 or not split.emotions:
            what = "no samples" if len(split) == 0 else "no emotions"
            raise MemoError(
                f"the {name} split has {what} under regime={regime.name} ({corpus.description}); "
                "nothing to train or evaluate on"
            )
    return data


def _select(corpus: Corpus, regime: DictConfig) -> RegimeData:
    splits = corpus.splits
    if regime.name == "full":
        return RegimeData(splits["train"], splits["valid"], splits["test"])
    if regime.name not in REGIMES:
        raise config_error("regime.name", regime.name, " | ".join(REGIMES))
    if OmegaConf.is_missing(regime, "emotion"):
        raise config_error(
            "regime.emotion", "???", f"an emotion name or index (required by regime={regime.name})"
        )
    emotion = resolve_emotion(regime.emotion, corpus)
    pooled = bool(corpus.extras)
    if regime.name == "zsl":
        if pooled:
            return RegimeData(
                splits["train"],
                splits["valid"],
                extend(splits["test"], corpus, "test", emotion),
                emotion,
            )
        return RegimeData(
            without_emotion(splits["train"], emotion),
            without_emotion(splits["valid"], emotion),
            splits["test"],
            emotion,
        )
    fraction = float(regime.fraction)
    if not 0 < fraction <= 1:
        raise config_error("regime.fraction", regime.fraction, "a number in (0, 1]")
    extra = 1 if regime.authors_off_by_one else 0
    if pooled:
        pool = samples_of(corpus.extras["train"], emotion)
        keep = few_shot_count(len(pool), fraction, extra)
        return RegimeData(
            concat(splits["train"], pool.rows(np.arange(keep))),
            extend(splits["valid"], corpus, "valid", emotion),
            extend(splits["test"], corpus, "test", emotion),
            emotion,
        )
    return RegimeData(
        few_positives(splits["train"], emotion, fraction, extra),
        splits["valid"],
        splits["test"],
        emotion,
    )


def resolve_emotion(value: object, corpus: Corpus) -> str:
    """The emotion named by `regime.emotion`: a name, or an index as the authors' code uses.

    MOSEI indexes its 6 emotions; IEMOCAP indexes the 9-emotion order, where only the
    extra emotions (excited 1, surprised 4, frustrated 5) can be held out.
    """
    base = corpus.splits["train"].emotions
    candidates = corpus.extras["train"].emotions if corpus.extras else base
    order = IEMOCAP_NINE if corpus.extras else base
    allowed = ", ".join(f"{e} ({order.index(e)})" if e in order else e for e in candidates)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(order):
            raise config_error("regime.emotion", value, allowed)
        value = order[value]
    if value not in candidates:
        hint = ""
        if value in base and corpus.extras:
            hint = f" ({value} is one of the {len(base)} trained emotions)"
        raise MemoError(
            f"config key 'regime.emotion': got {value!r}{hint}; allowed for {corpus.dataset}: "
            f"{allowed}"
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
