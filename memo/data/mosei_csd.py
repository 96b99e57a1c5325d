"""The CMU Multimodal SDK's CMU-MOSEI release: file names, label columns, folds, and a writer
of a corpus as its `.csd` sequences."""

from __future__ import annotations

import json
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

import numpy as np

from memo.data.csd import csd_writer
from memo.data.split import MODALITIES, SPLITS, Corpus, Split
from memo.errors import MemoError

# The SDK's file and root group name of each sequence; two choices of visual features.
SEQUENCES = {
    "text": ("CMU_MOSEI_TimestampedWordVectors.csd", "glove_vectors"),
    "audio": ("CMU_MOSEI_COVAREP.csd", "COVAREP"),
    "labels": ("CMU_MOSEI_Labels.csd", "All Labels"),
}
VISUAL = {
    "facet": ("CMU_MOSEI_VisualFacet42.csd", "FACET 4.2"),
    "openface": ("CMU_MOSEI_VisualOpenFace2.csd", "OpenFace_2"),
}

# Columns of the "All Labels" features, and the ey files' emotion order (memo's MOSEI order).
LABEL_COLUMNS = ("sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear")
EY_EMOTIONS = ("anger", "disgust", "fear", "happy", "sad", "surprise")
EY_COLUMNS = [LABEL_COLUMNS.index(e) for e in EY_EMOTIONS]  # 3, 5, 6, 1, 2, 4
SENTIMENT_COLUMN = LABEL_COLUMNS.index("sentiment")


def sequences(visual: str = "facet") -> dict[str, tuple[str, str]]:
    """(file name, root name) of the text, audio, vision and labels sequences."""
    if visual not in VISUAL:
        raise MemoError(f"visual features: got {visual!r}; allowed: {' | '.join(VISUAL)}")
    return {**SEQUENCES, "vision": VISUAL[visual]}


def standard_folds() -> dict[str, list[str]]:
    """Video ids of the standard train / valid / test folds (2249 / 300 / 678 videos)."""
    text = resources.files("memo.data").joinpath("cmu_mosei_folds.json").read_text()
    folds = json.loads(text)
    return {split: list(folds[split]) for split in SPLITS}


WORD_SECONDS = 0.5  # a word slot: the word's 0.4 s, then a 0.1 s pause
SEGMENT_PAUSE = 1.0  # seconds between a video's segments


def write_corpus(corpus: Corpus, out: Path) -> list[Path]:
    """MOSEI as the SDK's word-vector, COVAREP, FACET 4.2 and label sequences.

    Each split's samples become labelled segments of its standard fold's videos, taken in id
    order so that preparation keeps the sample order. Each step from the first non-zero one
    is a word with one audio and one visual frame inside it and a frame of ones in the pause
    after it, which no word overlaps: alignment gives back each step exactly.
    """
    folds = standard_folds()
    files = sequences("facet")
    metadata = {"dataset name": "CMU-MOSEI (memo built-in corpus)"}
    with ExitStack() as stack:
        add = {
            role: stack.enter_context(csd_writer(out / name, root, metadata))
            for role, (name, root) in files.items()
        }
        for s in SPLITS:
            split = corpus.splits[s].columns(list(EY_EMOTIONS))
            labels = np.zeros((len(split), len(LABEL_COLUMNS)))
            labels[:, EY_COLUMNS] = split.labels
            videos = sorted(folds[s])
            per_video = -(-len(split) // len(videos))
            for v, start in enumerate(range(0, len(split), per_video)):
                samples = range(start, min(start + per_video, len(split)))
                for role, (intervals, features) in _video_sequences(split, labels, samples).items():
                    add[role](videos[v], intervals, features)
    return [out / name for name, _ in files.values()]


def _video_sequences(
    split: Split, labels: np.ndarray, samples: range
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Intervals and features of each sequence for one video holding `samples` as segments."""
    parts: dict[str, list] = {role: [] for role in ("text", "audio", "vision", "labels")}
    clock = 0.0
    for i in samples:
        steps = {m: getattr(split, m)[i] for m in MODALITIES}
        used = np.flatnonzero(np.any([np.any(x != 0, axis=1) for x in steps.values()], axis=0))
        first = used[0] if len(used) else len(steps["text"])
        starts = clock + WORD_SECONDS * np.arange(len(steps["text"]) - first)
        words = np.stack([starts, starts + 0.8 * WORD_SECONDS], axis=1)
        parts["text"].append((words, steps["text"][first:]))
        inside = np.stack([starts + 0.2 * WORD_SECONDS, starts + 0.6 * WORD_SECONDS], axis=1)
        pause = np.stack([starts + 0.84 * WORD_SECONDS, starts + 0.96 * WORD_SECONDS], axis=1)
        for m in ("audio", "vision"):
            frames = steps[m][first:]
            both = np.stack([frames, np.ones_like(frames)], axis=1).reshape(-1, frames.shape[1])
            parts[m].append((np.stack([inside, pause], axis=1).reshape(-1, 2), both))
        end = words[-1, 1] if len(words) else clock + WORD_SECONDS
        parts["labels"].append((np.array([[clock, end]]), labels[i : i + 1]))
        clock = end + SEGMENT_PAUSE
    return {
        role: (np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]))
        for role, pieces in parts.items()
    }
