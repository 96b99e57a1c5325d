"""Facts about the CMU Multimodal SDK's CMU-MOSEI release: file names, label columns, folds."""

from __future__ import annotations

import json
from importlib import resources

from memo.data.split import SPLITS
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
