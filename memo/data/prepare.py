"""Prepare CMU-MOSEI from the CMU Multimodal SDK's `.csd` files, in memo's MOSEI layout.

    python -m memo.data.prepare mosei --csd DIR --out data/cmu-mosei [--seq-len 20]
                                      [--visual facet|openface]

reads the word-vector, COVAREP, FACET 4.2 (or OpenFace 2) and label sequences and writes
text_/audio_/video_/ey_/y_{train,valid,test}.h5 (dataset d1) split by the standard folds,
plus prepare.json (settings and counts). It follows the SDK's recipe: align to the words
with an averaging collapse, impute zeros, align to the labelled segments, hard_unify, and
get_tensors with left padding. docs/prepare-mosei.md lists where it deliberately differs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from tqdm import tqdm

from memo.cli_args import path_argument
from memo.data.align import (
    EPSILON,
    average_frames,
    in_time_order,
    left_pad,
    overlaps,
    valid_intervals,
)
from memo.data.csd import CsdReader
from memo.data.h5out import RowWriter, atomic_h5
from memo.data.mosei_csd import (
    EY_COLUMNS,
    LABEL_COLUMNS,
    SENTIMENT_COLUMN,
    VISUAL,
    sequences,
    standard_folds,
)
from memo.data.mosei_files import DATASET_KEY, FILES
from memo.data.mosei_files import LABELS as EY_FILE
from memo.data.split import SPLITS
from memo.data.validate import NO_SUCH_FILE, check_file, file_problem, output_folder
from memo.errors import MemoError
from memo.io import write_json

log = logging.getLogger(__name__)

FEATURES = ("text", "audio", "vision")
MAX_SEQ_LEN = 1000  # bounds the output's size; real segments rarely exceed 100 words
MAX_PAIRS = 1 << 22  # (segment, word) pairs compared per video; real videos need thousands


class Tally:
    """What preparation dropped, imputed or repaired: bad input (warnings) and recipe steps."""

    def __init__(self) -> None:
        self.warnings: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()

    def warn(self, what: str, count: int | np.integer) -> None:
        """Count `count` cases of bad input `what`."""
        if count:
            self.warnings[what] += int(count)

    def note(self, what: str, count: int | np.integer) -> None:
        """Count `count` cases of a recipe step `what` (expected on real data)."""
        if count:
            self.notes[what] += int(count)

    def log(self) -> None:
        """One line per count: notes at INFO, bad input at WARNING."""
        for what, count in self.notes.items():
            log.info("%d %s", count, what)
        for what, count in self.warnings.items():
            log.warning("%d %s", count, what)


def sequence_files(csd_dir: Path, visual: str) -> dict[str, Path]:
    """The four `.csd` files by role (text, audio, vision, labels); an error lists missing ones."""
    if not Path(csd_dir).is_dir():
        raise MemoError(f"{csd_dir}: not a folder (expected the CMU-MOSEI .csd files in it)")
    paths = {role: Path(csd_dir) / name for role, (name, _) in sequences(visual).items()}
    missing = [path.name for path in paths.values() if file_problem(path) == NO_SUCH_FILE]
    if missing:
        raise MemoError(f"{csd_dir}: missing the CMU-MOSEI sequences {missing}")
    return {role: check_file(path) for role, path in paths.items()}


def word_rows(
    data: dict[str, tuple[np.ndarray, np.ndarray]], tally: Tally
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A video's word intervals (W, 2), in time order, and one float32 row per word and modality.

    Text rows are the word vectors; audio and vision rows the mean of the frames overlapping
    each word (zeros when none, the SDK's impute). NaN / +inf results become 0; -inf stays
    (memo's loader zeroes it, as for the authors' files).
    """
    words, vectors = data["text"]
    valid = valid_intervals(words)
    tally.warn("words with non-finite or reversed intervals (dropped)", np.sum(~valid))
    long = valid & (words[:, 1] - words[:, 0] >= EPSILON)
    tally.note("zero-length words (skipped, as the SDK's align)", np.sum(valid & ~long))
    if not in_time_order(words[long]):
        tally.warn("videos with words out of time order (sorted)", 1)
    order = np.flatnonzero(long)[np.argsort(words[long, 0], kind="stable")]
    words = words[order]
    rows = {"text": vectors[order]}
    for role in ("audio", "vision"):
        frames, features = data[role]
        valid = valid_intervals(frames)
        tally.warn(f"{role} frames with non-finite or reversed intervals (dropped)", np.sum(~valid))
        if not in_time_order(frames[valid]):
            tally.warn(f"videos with {role} frames out of time order (sorted)", 1)
        rows[role], counts = average_frames(words, frames[valid], features[valid])
        tally.note(f"words without {role} frames (zeros, as the SDK's impute)", np.sum(counts == 0))
    for role, values in rows.items():
        values = values.astype(np.float32)
        bad = np.isnan(values) | np.isposinf(values)
        tally.warn(f"{role} values NaN or +inf (set to 0)", np.sum(bad))
        values[bad] = 0.0
        rows[role] = values
    return words, rows


def video_samples(
    data: dict[str, tuple[np.ndarray, np.ndarray]], seq_len: int, tally: Tally
) -> dict[str, np.ndarray] | None:
    """One video's labelled segments: features (k, seq_len, d) per modality and labels (k, 7).

    A segment holds the words overlapping it, the same rows for every modality, left-padded
    with zeros or cut to its last `seq_len` words. None when no segment has a word.
    """
    words, rows = word_rows(data, tally)
    segments, labels = data["labels"]
    valid = valid_intervals(segments)
    tally.warn("segments with non-finite or reversed intervals (dropped)", np.sum(~valid))
    long = valid & (segments[:, 1] - segments[:, 0] >= EPSILON)
    tally.note("zero-length segments (skipped, as the SDK's align)", np.sum(valid & ~long))
    labelled = np.isfinite(labels).all(axis=1) & (labels[:, EY_COLUMNS] >= 0).all(axis=1)
    tally.warn(
        "segments with non-finite labels or negative emotion intensities (dropped)",
        np.sum(long & ~labelled),
    )
    keep = np.flatnonzero(long & labelled)
    try:
        member = overlaps(segments[keep], words, MAX_PAIRS)
    except ValueError as err:
        raise MemoError(
            f"{len(keep)} labelled segments and {len(words)} words nest far more than in any "
            f"real video: {err}"
        ) from None
    sizes = np.array([len(index) for index in member])
    has_words = sizes > 0
    tally.note("segments without words (dropped, as the SDK's hard_unify)", np.sum(~has_words))
    tally.note(f"segments longer than {seq_len} words (kept the last)", np.sum(sizes > seq_len))
    if not has_words.any():
        return None
    samples = {
        role: np.stack([left_pad(values[index], seq_len) for index in member if len(index)])
        for role, values in rows.items()
    }
    samples["labels"] = labels[keep[has_words]]
    return samples


class SplitFiles:
    """The five files of one split (three feature files, ey, y), appended to video by video."""

    def __init__(
        self, stack: ExitStack, out: Path, split: str, seq_len: int, dims: dict[str, int]
    ) -> None:
        layout = {role: (name.format(split), (seq_len, dims[role])) for role, name in FILES.items()}
        layout["ey"] = (EY_FILE.format(split), (len(EY_COLUMNS),))
        layout["y"] = (f"y_{split}.h5", (1,))
        self.rows = {
            key: RowWriter(
                stack.enter_context(atomic_h5(out / name)),
                DATASET_KEY,
                shape,
                np.float32 if key in FILES else np.float64,
            )
            for key, (name, shape) in layout.items()
        }

    def append(self, samples: dict[str, np.ndarray]) -> None:
        """Add one video's samples."""
        for role in FILES:
            self.rows[role].append(samples[role])
        self.rows["ey"].append(samples["labels"][:, EY_COLUMNS])
        self.rows["y"].append(samples["labels"][:, [SENTIMENT_COLUMN]])

    def flush(self) -> None:
        """Write every queued row."""
        for writer in self.rows.values():
            writer.flush()

    def __len__(self) -> int:
        return len(self.rows["ey"])


def shared_videos(readers: dict[str, CsdReader], tally: Tally) -> list[str]:
    """Video ids present in every sequence, sorted; the others are counted and dropped."""
    every = set().union(*(reader.ids for reader in readers.values()))
    shared = set.intersection(*(set(reader.ids) for reader in readers.values()))
    for reader in readers.values():
        absent = len(every - set(reader.ids))
        tally.warn(f"videos absent from {reader.path.name} (dropped from every sequence)", absent)
    return sorted(shared)


def prepare_mosei(
    csd_dir: Path | str,
    out: Path | str,
    seq_len: int = 20,
    visual: str = "facet",
    progress: bool | None = None,
) -> dict:
    """Write memo's MOSEI files under `out` from the `.csd` files in `csd_dir`; the report.

    Every output file appears whole or not at all. `progress` (default: stderr is a
    terminal) shows a progress bar over videos.
    """
    if not 1 <= seq_len <= MAX_SEQ_LEN:
        raise MemoError(f"--seq-len: got {seq_len}; allowed: 1 to {MAX_SEQ_LEN} words")
    paths = sequence_files(Path(csd_dir), visual)
    out = output_folder(Path(out), "--out")
    fold_of = {video: split for split, videos in standard_folds().items() for video in videos}
    tally = Tally()
    started = time.perf_counter()
    with ExitStack() as stack:
        readers = {role: stack.enter_context(CsdReader(path)) for role, path in paths.items()}
        if readers["labels"].dim != len(LABEL_COLUMNS):
            raise MemoError(
                f"{paths['labels']}: expected {len(LABEL_COLUMNS)} label columns "
                f"{list(LABEL_COLUMNS)}, found {readers['labels'].dim}"
            )
        videos = shared_videos(readers, tally)
        selected = [video for video in videos if video in fold_of]
        skipped = len(videos) - len(selected)
        tally.note("videos in no standard fold (skipped, as get_tensors)", skipped)
        tally.note("standard-fold videos missing from the .csd files", len(fold_of) - len(selected))
        dims = {role: readers[role].dim for role in FEATURES}
        splits = {split: SplitFiles(stack, out, split, seq_len, dims) for split in SPLITS}
        shown = sys.stderr.isatty() if progress is None else progress
        for video in tqdm(selected, desc="mosei", unit="video", disable=not shown):
            data = {k: r.read(video) for k, r in readers.items()}
            try:
                samples = video_samples(data, seq_len, tally)
            except MemoError as err:
                raise MemoError(f"{csd_dir}: video {video!r}: {err}") from None
            if samples is not None:
                splits[fold_of[video]].append(samples)
        sizes = {split: len(files) for split, files in splits.items()}
        empty = [split for split, size in sizes.items() if size == 0]
        if empty:
            raise MemoError(
                f"{csd_dir}: no labelled segment with words in the standard {empty} fold(s); "
                "nothing written"
            )
        for files in splits.values():
            files.flush()
    report = {
        "dataset": "mosei",
        "seq_len": seq_len,
        "visual": visual,
        "sequences": {
            role: {"file": r.path.name, "name": r.name, "videos": len(r.ids), "dim": r.dim}
            for role, r in readers.items()
        },
        "videos": len(selected),
        "samples": sizes,
        "warnings": dict(tally.warnings),
        "notes": dict(tally.notes),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(out / "prepare.json", report)
    tally.log()
    log.info(
        "wrote %d samples (%s) from %d videos to %s in %.1f s",
        sum(sizes.values()),
        ", ".join(f"{split} {size}" for split, size in sizes.items()),
        len(selected),
        out,
        report["seconds"],
    )
    return report


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m memo.data.prepare mosei --csd DIR --out DIR ...`."""
    parser = argparse.ArgumentParser(
        prog="python -m memo.data.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    datasets = parser.add_subparsers(dest="dataset", required=True)
    mosei = datasets.add_parser("mosei", help="CMU-MOSEI from the SDK's .csd files")
    mosei.add_argument(
        "--csd", required=True, type=path_argument, help="folder with the CMU_MOSEI_*.csd"
    )
    mosei.add_argument(
        "--out", required=True, type=path_argument, help="output folder (dataset.dir)"
    )
    mosei.add_argument("--seq-len", type=int, default=20, help="words per sample (default 20)")
    mosei.add_argument("--visual", choices=sorted(VISUAL), default="facet", help="visual features")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        prepare_mosei(args.csd, args.out, args.seq_len, args.visual)
    except MemoError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("error: interrupted; partial files removed, run again to restart", file=sys.stderr)
        raise SystemExit(130) from None
    print(f"train on them with: dataset=mosei dataset.dir={args.out} dataset.source=files")


if __name__ == "__main__":
    main()
