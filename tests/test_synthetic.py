"""The built-in corpus: shapes, determinism, label structure, raw-data quirks, caching."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compose_config
from data_fixtures import component

from memo.data.glove import glove6b50
from memo.data.synthetic import build_corpus
from memo.errors import MemoError


def dataset_cfg(name: str, *overrides: str):
    return component(compose_config([f"dataset={name}", *overrides]).dataset)


def test_mosei_shapes_sizes_and_labels(cache_dir):
    corpus = build_corpus(dataset_cfg("mosei", "dataset.scale=0.05"), cache_dir)
    assert corpus.source == "synthetic" and corpus.extras == {}
    sizes = {name: len(split) for name, split in corpus.splits.items()}
    assert sizes == {"train": round(0.05 * 15290), "valid": round(0.05 * 2291), "test": 242}
    train = corpus.splits["train"]
    assert train.emotions == ("anger", "disgust", "fear", "happy", "sad", "surprise")
    assert train.text.shape[1:] == (20, 50)
    assert train.audio.shape[1:] == (20, 74) and train.vision.shape[1:] == (20, 35)
    assert train.text.dtype == np.float32 and set(np.unique(train.labels)) == {0.0, 1.0}
    none = (train.labels.sum(1) == 0).mean()
    several = (train.labels.sum(1) > 1).mean()
    assert 0.1 < none < 0.35 and several > 0.1  # many with no emotion, multi-label


def test_iemocap_one_label_per_sample_and_extra_pools(cache_dir):
    corpus = build_corpus(dataset_cfg("iemocap", "dataset.scale=0.2"), cache_dir)
    for name, split in corpus.splits.items():
        assert split.emotions == ("neutral", "happy", "sad", "angry")
        assert (split.labels.sum(1) == 1).all(), name
    counts = corpus.splits["train"].labels.sum(0)
    assert list(counts) == [round(0.2 * c) for c in (954, 338, 690, 735)]
    pool = corpus.extras["test"]
    assert pool.emotions == ("excited", "surprised", "frustrated")
    assert (pool.labels.sum(1) == 1).all()
    assert list(pool.labels.sum(0)) == [round(0.2 * c) for c in (141, 25, 278)]


def test_deterministic_and_cached(cache_dir, tmp_path):
    cfg = dataset_cfg("mosei", "dataset.scale=0.02")
    first = build_corpus(cfg, cache_dir)
    assert len(list((cache_dir / "synthetic").glob("*.npz"))) == 1
    cached = build_corpus(cfg, cache_dir)
    fresh = build_corpus(cfg, tmp_path / "other-cache")
    for split in ("train", "valid", "test"):
        for field in ("text", "audio", "vision", "labels"):
            a = getattr(first.splits[split], field)
            assert np.array_equal(a, getattr(cached.splits[split], field))
            assert np.array_equal(a, getattr(fresh.splits[split], field))
    other_seed = build_corpus(
        dataset_cfg("mosei", "dataset.scale=0.02", "dataset.synthetic.seed=1"), cache_dir
    )
    assert not np.array_equal(other_seed.splits["train"].audio, first.splits["train"].audio)


def test_corrupt_cache_is_regenerated(cache_dir):
    cfg = dataset_cfg("mosei", "dataset.scale=0.02")
    first = build_corpus(cfg, cache_dir)
    (path,) = (cache_dir / "synthetic").glob("*.npz")
    path.write_bytes(path.read_bytes()[:1000])
    again = build_corpus(cfg, cache_dir)
    assert np.array_equal(first.splits["test"].vision, again.splits["test"].vision)


def test_text_is_real_glove_left_padded_and_quirks_cleaned(cache_dir):
    corpus = build_corpus(
        dataset_cfg("mosei", "dataset.scale=0.2", "dataset.synthetic.inf_rate=0.05"), cache_dir
    )
    train = corpus.splits["train"]
    glove = glove6b50()
    first_row = train.text[0][np.abs(train.text[0]).sum(1) > 0][0]
    distances = np.abs(np.asarray(glove.matrix[:6000]) - first_row).sum(1)
    assert distances.min() < 1e-5  # a step is an actual GloVe vector
    padded = np.abs(train.text).sum(2) == 0
    # Left padding: once a sample's words start, no padded step follows.
    assert not (np.diff(padded.astype(int), axis=1) > 0).any()
    assert padded[:, 0].mean() > 0.3
    assert np.isfinite(train.audio).all()  # raw -inf values were zeroed
    assert ((np.abs(train.vision).sum(2) == 0) & ~padded).mean() > 0.005  # all-zero frames


def test_unknown_generator_key_and_bad_scale(cache_dir):
    with pytest.raises(MemoError, match="dataset.synthetic"):
        build_corpus(dataset_cfg("mosei", "+dataset.synthetic.noise=2"), cache_dir)
    with pytest.raises(MemoError, match="dataset.scale"):
        build_corpus(dataset_cfg("mosei", "dataset.scale=0"), cache_dir)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("~dataset.cues.fear", "missing ['fear']"),
        ("dataset.cues.fear=[dread]", "unknown ['dread']"),
        ("~dataset.prevalence.sad", "needs a prevalence for every emotion (missing ['sad'])"),
        ("~dataset.synthetic.seed", "'dataset.synthetic.seed' is missing"),
    ],
)
def test_the_shape_a_dataset_gives_its_built_in_corpus_is_checked(cache_dir, override, message):
    with pytest.raises(MemoError) as error:
        build_corpus(dataset_cfg("mosei", "dataset.scale=0.01", override), cache_dir)
    assert message in str(error.value) and "\n" not in str(error.value)
