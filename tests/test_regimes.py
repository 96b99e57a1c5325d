"""Each regime's exact filtering on small hand-made splits."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import CONF
from omegaconf import OmegaConf

from memo.data.components import build_component
from memo.data.regimes import FewShot, Full, Regime, ZeroShot, apply_regime, few_shot_count
from memo.data.split import Corpus, Split
from memo.errors import MemoError

MOSEI = ("anger", "disgust", "fear", "happy", "sad", "surprise")
IEMOCAP = ("neutral", "happy", "sad", "angry")
EXTRAS = ("excited", "surprised", "frustrated")
# conf/dataset/iemocap.yaml's emotion_index: the 9-emotion order of the authors' scripts.
NINE = OmegaConf.load(CONF / "dataset" / "iemocap.yaml").emotion_index


def split(labels, emotions) -> Split:
    """A split whose text feature 0 at step 0 holds the sample's row number (to track rows)."""
    labels = np.asarray(labels, dtype=np.float32)
    n = len(labels)
    text = np.zeros((n, 2, 3), np.float32)
    text[:, 0, 0] = np.arange(n)
    return Split(text, np.zeros((n, 2, 4), np.float32), np.zeros((n, 2, 1), np.float32), labels,
                 emotions)  # fmt: skip


def ids(s: Split) -> list[int]:
    return s.text[:, 0, 0].astype(int).tolist()


MOSEI_TRAIN = [
    # anger disgust fear happy sad surprise
    [0, 0, 1, 0, 0, 0],  # 0 fear
    [1, 0, 0, 0, 0, 0],  # 1
    [0, 0, 1, 1, 0, 0],  # 2 fear
    [0, 0, 0, 0, 0, 0],  # 3 no emotion
    [0, 0, 1, 0, 1, 0],  # 4 fear
    [0, 1, 0, 0, 0, 0],  # 5
    [0, 0, 1, 0, 0, 0],  # 6 fear
]


def mosei() -> Corpus:
    splits = {
        "train": split(MOSEI_TRAIN, MOSEI),
        "valid": split(MOSEI_TRAIN[:4], MOSEI),
        "test": split(MOSEI_TRAIN[2:], MOSEI),
    }
    return Corpus("mosei", "synthetic", "hand-made", splits)


def iemocap() -> Corpus:
    one_hot = np.eye(4)
    splits = {name: split(one_hot[[0, 1, 2, 3, 0]], IEMOCAP) for name in ("train", "valid", "test")}
    pool = np.eye(3)[[0, 2, 0, 1, 0, 2]]  # excited at rows 0, 2, 4; surprised 3; frustrated 1, 5
    extras = {name: split(pool, EXTRAS) for name in ("train", "valid", "test")}
    return Corpus("iemocap", "synthetic", "hand-made", splits, extras)


def regime(name: str, **values) -> Regime:
    """The regime component of conf/regime/<name>.yaml with `values`."""
    cfg = OmegaConf.load(CONF / "regime" / f"{name}.yaml")
    cfg.merge_with(values)
    return build_component(cfg, "regime", Regime)


def test_each_regime_file_builds_its_component():
    assert isinstance(regime("full"), Full)
    assert regime("zsl", emotion="fear") == ZeroShot(name="zsl", emotion="fear")
    few = regime("fsl", emotion=2)
    assert isinstance(few, FewShot) and (few.fraction, few.authors_off_by_one) == (0.01, False)


def test_full_is_the_identity():
    corpus = mosei()
    data = apply_regime(corpus, regime("full"))
    assert data.train is corpus.splits["train"] and data.test is corpus.splits["test"]
    assert data.target is None and data.seen == MOSEI


@pytest.mark.parametrize("emotion", ["fear", 2])
def test_mosei_zero_shot_drops_positives_and_column_in_train_and_valid(emotion):
    data = apply_regime(mosei(), regime("zsl", emotion=emotion))
    assert (data.target, data.target_label) == ("fear", "unseen")
    assert ids(data.train) == [1, 3, 5]
    assert ids(data.valid) == [1, 3]
    assert (
        data.train.emotions
        == data.valid.emotions
        == ("anger", "disgust", "happy", "sad", "surprise")
    )
    assert data.train.labels.tolist() == [[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]
    # Test: the full split, all six emotions, the unseen one included.
    assert ids(data.test) == [0, 1, 2, 3, 4] and data.test.emotions == MOSEI


def test_mosei_few_shot_keeps_the_first_positives_in_file_order():
    # 4 fear positives (rows 0, 2, 4, 6); fraction 0.5 -> ceil(2.0) = 2 -> rows 0 and 2.
    data = apply_regime(mosei(), regime("fsl", emotion="fear", fraction=0.5))
    assert ids(data.train) == [0, 1, 2, 3, 5]
    assert data.train.emotions == MOSEI and data.target == "fear"
    assert data.target_label == "few-shot"
    assert ids(data.valid) == [0, 1, 2, 3] and ids(data.test) == [0, 1, 2, 3, 4]
    # fraction 0.3 -> ceil(1.2) = 2 as well; the authors' off-by-one keeps a third.
    off = apply_regime(
        mosei(), regime("fsl", emotion="fear", fraction=0.3, authors_off_by_one=True)
    )
    assert ids(off.train) == [0, 1, 2, 3, 4, 5]


def test_few_shot_count():
    assert few_shot_count(1235, 0.01) == 13  # ceil(12.35)
    assert few_shot_count(686, 0.01) == 7
    assert few_shot_count(686, 0.01, extra=1) == 8
    assert few_shot_count(3, 1.0, extra=1) == 3  # never more than exist


@pytest.mark.parametrize("emotion", ["excited", 1])
def test_iemocap_zero_shot_adds_a_fifth_column_to_test_only(emotion):
    data = apply_regime(iemocap(), regime("zsl", emotion=emotion), NINE)
    assert data.target == "excited"
    assert data.train.emotions == data.valid.emotions == IEMOCAP and len(data.train) == 5
    assert data.test.emotions == (*IEMOCAP, "excited")
    assert len(data.test) == 5 + 3
    assert ids(data.test) == [0, 1, 2, 3, 4, 0, 2, 4]  # original rows, then the pool's excited
    assert data.test.labels[:5, 4].tolist() == [0] * 5
    assert data.test.labels[5:].tolist() == [[0, 0, 0, 0, 1]] * 3


def test_iemocap_few_shot_adds_a_fraction_of_the_pool_to_training():
    data = apply_regime(iemocap(), regime("fsl", emotion="frustrated", fraction=0.5), NINE)
    # frustrated pool rows 1 and 5; ceil(0.5 * 2) = 1 -> row 1 only.
    assert data.train.emotions == (*IEMOCAP, "frustrated")
    assert ids(data.train) == [0, 1, 2, 3, 4, 1]
    assert data.train.labels[-1].tolist() == [0, 0, 0, 0, 1]
    assert ids(data.valid) == ids(data.test) == [0, 1, 2, 3, 4, 1, 5]


@pytest.mark.parametrize(
    ("corpus", "emotion", "message"),
    [
        (mosei, "joy", "allowed for mosei: anger (0), disgust (1)"),
        (mosei, 6, "config key 'regime.emotion': got 6"),
        (mosei, "excited", "got 'excited'"),
        (iemocap, "happy", "happy is one of the 4 trained emotions"),
        (iemocap, 0, "got 'anger'"),
        (iemocap, 9, "got 9"),
    ],
)
def test_bad_emotions(corpus, emotion, message):
    with pytest.raises(MemoError, match=re.escape(message)):
        apply_regime(corpus(), regime("zsl", emotion=emotion), NINE if corpus is iemocap else None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["regime.emotion=joyful"], "got 'joyful'; allowed for mosei: anger (0), disgust (1)"),
        (["regime.emotion=6"], "config key 'regime.emotion': got 6; allowed: anger (0)"),
        (["dataset=iemocap", "regime.emotion=happy"], "happy is one of the 4 trained emotions"),
        (["regime=fsl", "regime.emotion=excited", "regime.fraction=0.1"], "got 'excited'"),
    ],
)
def test_a_target_the_dataset_lacks_is_refused_before_any_data(overrides, message):
    """The same messages as test_bad_emotions, from the dataset's config alone: they came only
    after the corpus had been read or built."""
    from conftest import compose_config

    from memo.config import validate

    with pytest.raises(MemoError, match=re.escape(message)):
        validate(compose_config(["regime=zsl", *overrides]))


def test_without_an_index_integers_count_the_emotions_then_the_pools():
    assert apply_regime(iemocap(), regime("zsl", emotion=5)).target == "surprised"


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("zsl", {}, "config key 'regime.emotion': got '???'; allowed: a value (required by"),
        ("fsl", {"emotion": "fear", "fraction": 0}, "config key 'regime.fraction': got 0"),
        ("fsl", {"emotion": "fear", "fraction": "abc"}, "config key 'regime.fraction': got 'abc'"),
        ("full", {"emotion": "fear"}, "'regime.emotion' is not a setting of regime=full"),
    ],
)
def test_bad_regime_values_are_one_line(name, values, message):
    with pytest.raises(MemoError, match=re.escape(message)):
        regime(name, **values)


def test_unaligned_iemocap_cannot_take_the_aligned_extras():
    corpus = iemocap()
    long = corpus.splits["test"]
    unaligned = Split(long.text, np.zeros((len(long), 7, 4), np.float32), long.vision,
                      long.labels, long.emotions)  # fmt: skip
    splits = {**corpus.splits, "test": unaligned}
    corpus = Corpus("iemocap", "files", "unaligned", splits, corpus.extras)
    with pytest.raises(MemoError, match=r"extra pools must have the shapes of its splits"):
        apply_regime(corpus, regime("zsl", emotion="excited"), NINE)
