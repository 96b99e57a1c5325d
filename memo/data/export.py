"""Write a corpus in the real releases' file layouts, so the files source can be tried without them.

    python -m memo.data.export --dataset mosei|iemocap --out DIR [--scale S] [--seed N]
    python -m memo.data.export --format csd --out DIR [--scale S] [--seed N]

writes the built-in corpus; `dataset.dir=DIR dataset.source=files` then reads it back.
`--format csd` writes MOSEI as the CMU Multimodal SDK's `.csd` sequences instead, which
`python -m memo.data.prepare mosei --csd DIR --out OUT` turns back into the same arrays.
"""

from __future__ import annotations

import argparse
import pickle
from contextlib import ExitStack
from pathlib import Path

import h5py
import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from memo.data.csd import csd_writer
from memo.data.iemocap_files import (
    EXTRA_COLUMNS,
    EXTRA_FILES,
    EXTRA_LABELS,
    MAIN_FILES,
    one_positive,
)
from memo.data.mosei_csd import EY_COLUMNS, EY_EMOTIONS, LABEL_COLUMNS, sequences, standard_folds
from memo.data.mosei_files import DATASET_KEY, FILES, LABELS
from memo.data.py2pickle import dump_py2_array
from memo.data.split import MODALITIES, SPLITS, Corpus, Split
from memo.data.synthetic import build_corpus
from memo.errors import MemoError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def export_corpus(corpus: Corpus, dataset: DictConfig, out: Path) -> list[Path]:
    """Write `corpus` into folder `out` in the layout of `dataset.name`; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    if corpus.dataset == "mosei":
        return write_mosei(corpus, dataset, out)
    if corpus.dataset == "iemocap":
        return write_iemocap(corpus, dataset, out)
    raise MemoError(f"no file layout for dataset '{corpus.dataset}'; available: mosei, iemocap")


def write_mosei(corpus: Corpus, dataset: DictConfig, out: Path) -> list[Path]:
    """text_/audio_/video_/ey_/y_{split}.h5 with float64 dataset `d1`; ey holds 1.0 per label."""
    written = []
    for s in SPLITS:
        split = corpus.splits[s].columns(list(dataset.emotions))
        arrays = {name.format(s): getattr(split, m) for m, name in FILES.items()}
        arrays[LABELS.format(s)] = split.labels
        arrays[f"y_{s}.h5"] = np.zeros((len(split), 1))  # sentiment, unused by the task
        for name, array in arrays.items():
            with h5py.File(out / name, "w") as file:
                file.create_dataset(DATASET_KEY, data=np.asarray(array, dtype=np.float64))
            written.append(out / name)
    return written


WORD_SECONDS = 0.5  # a word slot: the word's 0.4 s, then a 0.1 s pause
SEGMENT_PAUSE = 1.0  # seconds between a video's segments


def write_mosei_csd(corpus: Corpus, out: Path) -> list[Path]:
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


def write_iemocap(corpus: Corpus, dataset: DictConfig, out: Path) -> list[Path]:
    """The 4-emotion pickle (labels as (N, 4, 2) pairs) and the 9-emotion `.p` extras."""
    data = {}
    for s in SPLITS:
        split = corpus.splits[s].columns(list(dataset.emotions))
        data[s] = {m: np.asarray(getattr(split, m), dtype=np.float32) for m in MODALITIES}
        data[s]["labels"] = np.stack([1 - split.labels, split.labels], axis=-1).astype(np.float32)
    main = out / MAIN_FILES[bool(dataset.aligned)]
    with main.open("wb") as file:
        pickle.dump(data, file, protocol=4)
    written = [main]
    for s, pool in corpus.extras.items():
        labels = one_positive(pool.labels, f"extra pool {s} of the corpus being exported")
        classes = [EXTRA_COLUMNS.index(e) for e in pool.emotions]
        y = np.eye(len(EXTRA_COLUMNS), dtype=np.float32)[np.array(classes)[labels.argmax(1)]]
        arrays = {name.format(s): _extra_step(getattr(pool, m)) for m, name in EXTRA_FILES.items()}
        arrays[EXTRA_LABELS.format(s)] = y
        for name, array in arrays.items():
            dump_py2_array(array, out / name)
            written.append(out / name)
    return written


def _extra_step(features: np.ndarray) -> np.ndarray:
    """Append a zero step: the 9-emotion release has 21 steps, which the reader trims to 20."""
    pad = np.zeros((len(features), 1, features.shape[2]), dtype=np.float32)
    return np.concatenate([np.asarray(features, dtype=np.float32), pad], axis=1)


def main(argv: list[str] | None = None) -> None:
    """Build the built-in corpus from the config tree and export it."""
    parser = argparse.ArgumentParser(
        prog="python -m memo.data.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", default="mosei", choices=["mosei", "iemocap"])
    parser.add_argument(
        "--format",
        default="release",
        choices=["release", "csd"],
        help="release: the authors' h5 / pkl files (default); csd: the SDK's MOSEI sequences",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write the files to")
    parser.add_argument("--scale", type=float, help="corpus size (default: dataset.scale)")
    parser.add_argument("--seed", type=int, default=0, help="dataset.synthetic.seed")
    args = parser.parse_args(argv)
    overrides = [f"dataset={args.dataset}", f"dataset.synthetic.seed={args.seed}"]
    if args.scale is not None:
        overrides.append(f"dataset.scale={args.scale}")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose("config", overrides=overrides)
        if args.format == "csd" and args.dataset != "mosei":
            raise MemoError("--format csd writes CMU-MOSEI only; use --dataset mosei")
        corpus = build_corpus(cfg.dataset, Path(cfg.paths.cache_dir))
        if args.format == "csd":
            written = write_mosei_csd(corpus, args.out)
        else:
            written = export_corpus(corpus, cfg.dataset, args.out)
    except MemoError as err:
        raise SystemExit(f"error: {err}") from None
    sizes = ", ".join(f"{s} {len(corpus.splits[s])}" for s in SPLITS)
    print(f"wrote {len(written)} files ({sizes}) to {args.out}")
    if args.format == "csd":
        print(f"prepare them with: python -m memo.data.prepare mosei --csd {args.out} --out DIR")
    else:
        print(f"read them with: dataset={args.dataset} dataset.dir={args.out} dataset.source=files")


if __name__ == "__main__":
    main()
