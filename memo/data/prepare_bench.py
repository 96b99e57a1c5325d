"""Benchmark of `python -m memo.data.prepare mosei` on MOSEI-sized synthetic `.csd` files.

    python -m memo.data.prepare_bench [--scale 0.1] [--dir /tmp]
                                      [--dtype float64|float32] [--gzip] [--keep]

At --scale 1 the files hold what the real release holds: about 3,300 videos (the standard
folds' 3,227 plus some in no fold) of 20-120 s, about 65 hours in all, with 23k labelled
segments, 450k words (300-d vectors), COVAREP frames (74-d, 100 Hz) and FACET 4.2 frames
(35-d, 30 Hz). They are generated in a new folder under --dir, then preparation runs in a
child process and the benchmark reports its wall time, its peak resident memory and frames
per second. That folder (and nothing else) is deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from memo.cli_args import path_argument
from memo.data.csd import csd_writer
from memo.data.mosei_csd import sequences, standard_folds

FULL_VIDEOS = 3300
SECONDS = (20, 122)  # shortest and longest video
WORDS_PER_SECOND = 1.92  # 450k words over 65 hours
WORDS_PER_SEGMENT = 19.4  # 450k words in 23k segments
RATES = {"audio": 100, "vision": 30}  # frames per second
DIMS = {"text": 300, "audio": 74, "vision": 35}
# Share of segments showing happy, sad, anger, surprise, disgust, fear (label columns 1-6).
PREVALENCE = np.array([0.52, 0.25, 0.21, 0.10, 0.17, 0.08])


def video_ids(scale: float, rng: np.random.Generator) -> list[str]:
    """`scale` of each standard fold's ids and of some ids in no fold, sorted."""
    folds = list(standard_folds().values())
    extra = FULL_VIDEOS - sum(len(fold) for fold in folds)
    groups = [*folds, [f"nofold{k:03d}" for k in range(extra)]]
    chosen = [rng.choice(g, max(1, round(scale * len(g))), replace=False) for g in groups]
    return sorted(str(v) for v in np.concatenate(chosen))


def synthetic_videos(
    ids: list[str], dtype: type, rng: np.random.Generator
) -> Iterator[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """Per video id, intervals and features of its four sequences (features cut from pools)."""
    rows = SECONDS[1] * max(RATES.values())
    pools = {role: rng.standard_normal((rows, dim)).astype(dtype) for role, dim in DIMS.items()}
    pools["audio"][rng.random(pools["audio"].shape) < 1e-4] = -np.inf  # as COVAREP has
    for video in ids:
        seconds = rng.uniform(*SECONDS)
        n = max(1, round(seconds * WORDS_PER_SECOND))
        slot = seconds / n
        starts = (np.arange(n) + rng.uniform(0, 0.1, n)) * slot
        lengths = slot * rng.uniform(0.5, 0.85, n) * (rng.random(n) > 0.005)  # a few zero-length
        words = np.stack([starts, starts + lengths], axis=1)
        data = {"text": (words, _cut(pools["text"], n, rng))}
        for role, rate in RATES.items():
            k = np.arange(int(seconds * rate))
            frames = np.stack([k / rate, (k + 1) / rate], axis=1)
            data[role] = (frames, _cut(pools[role], len(k), rng))
        count = min(n, max(1, round(n / WORDS_PER_SEGMENT)))
        cuts = np.sort(rng.choice(np.arange(1, n), count - 1, replace=False))
        bounds = np.concatenate([[0], cuts, [n]])
        segments = np.stack([words[bounds[:-1], 0], words[bounds[1:] - 1, 1]], axis=1)
        labels = np.zeros((len(segments), 7))
        labels[:, 0] = rng.integers(-9, 10, len(segments)) / 3
        present = rng.random((len(segments), 6)) < PREVALENCE
        labels[:, 1:] = present * rng.integers(1, 10, (len(segments), 6)) / 3
        data["labels"] = (segments, labels)
        yield video, data


def _cut(pool: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """`rows` consecutive rows of `pool` from a random offset (cheaper than fresh noise)."""
    start = int(rng.integers(0, len(pool) - rows + 1))
    return pool[start : start + rows]


def generate(folder: Path, scale: float, dtype: type, gzip: bool) -> dict[str, int]:
    """Write the four `.csd` files into `folder`; counts of videos, segments, words, frames."""
    rng = np.random.default_rng(0)
    totals = dict.fromkeys(("videos", "segments", "words", "audio", "vision"), 0)
    with ExitStack() as stack:
        add = {
            role: stack.enter_context(csd_writer(folder / name, root, {}, "gzip" if gzip else None))
            for role, (name, root) in sequences("facet").items()
        }
        for video, data in synthetic_videos(video_ids(scale, rng), dtype, rng):
            for role, (intervals, features) in data.items():
                add[role](video, intervals, features)
            totals["videos"] += 1
            totals["segments"] += len(data["labels"][0])
            totals["words"] += len(data["text"][0])
            totals["audio"] += len(data["audio"][0])
            totals["vision"] += len(data["vision"][0])
    return totals


def run_prepare(csd: Path, out: Path) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of `python -m memo.data.prepare mosei` in a child."""
    command = [sys.executable, "-m", "memo.data.prepare", "mosei", "--csd", str(csd)]
    started = time.perf_counter()
    subprocess.run([*command, "--out", str(out)], check=True)
    seconds = time.perf_counter() - started
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def main(argv: list[str] | None = None) -> None:
    """Generate, prepare, report."""
    parser = argparse.ArgumentParser(
        prog="python -m memo.data.prepare_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of MOSEI's size")
    parser.add_argument(
        "--dir",
        type=path_argument,
        default=Path(tempfile.gettempdir()),
        help="a folder in which a new folder for the data is made, and removed unless --keep "
        "(default: the temp folder)",
    )
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--gzip", action="store_true", help="gzip-compress the .csd datasets")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 2:
        parser.error("--scale must be in (0, 2]")
    work = Path(tempfile.mkdtemp(prefix="memo-prepare-bench-", dir=args.dir))  # only it goes
    csd, out = work / "csd", work / "cmu-mosei"
    try:
        started = time.perf_counter()
        totals = generate(csd, args.scale, np.dtype(args.dtype).type, args.gzip)
        generated = time.perf_counter() - started
        size = sum(path.stat().st_size for path in csd.iterdir())
        seconds, peak = run_prepare(csd, out)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    frames = totals["audio"] + totals["vision"]
    result = {
        "scale": args.scale,
        "dtype": args.dtype,
        "gzip": args.gzip,
        **totals,
        "csd_bytes": size,
        "generate_seconds": round(generated, 1),
        "prepare_seconds": round(seconds, 1),
        "peak_rss_bytes": peak,
        "frames_per_second": round(frames / seconds),
    }
    print(
        f"scale {args.scale}: {totals['videos']} videos, {totals['segments']} segments, "
        f"{totals['words']} words, {totals['audio']} audio + {totals['vision']} visual frames "
        f"({size / 1e9:.2f} GB of .csd, {args.dtype}{', gzip' if args.gzip else ''})\n"
        f"prepare: {seconds:.1f} s, peak memory {peak / 2**30:.2f} GiB, "
        f"{frames / seconds:,.0f} frames/s"
    )
    print(json.dumps(result))
    if args.keep:
        print(f"files kept in {work}")


if __name__ == "__main__":
    main()
