"""Interval alignment with the CMU Multimodal SDK's rules, vectorised per video.

A frame (or word) belongs to a reference interval when the two overlap by more than EPSILON
seconds (touching intervals do not); a word's feature is the unweighted mean of its frames.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-5  # the SDK's tolerance for interval comparisons, in seconds


def valid_intervals(intervals: np.ndarray) -> np.ndarray:
    """Mask of (n, 2) intervals that are finite and do not end before they start."""
    start, end = intervals[:, 0], intervals[:, 1]
    return np.isfinite(start) & np.isfinite(end) & (end >= start)


def in_time_order(intervals: np.ndarray) -> bool:
    """Whether the intervals' starts never decrease."""
    return bool(np.all(intervals[1:, 0] >= intervals[:-1, 0]))


def average_frames(
    words: np.ndarray, frames: np.ndarray, features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per word (W, 2), the mean of the features (n, d) of frames (n, 2) overlapping it; counts.

    Words without frames get zeros. Non-finite values propagate as in a plain mean (NaN, or
    an infinity of the frames' sign). Frames no longer than EPSILON can never overlap by more
    than EPSILON and are ignored, so with the rest, "frames starting before a word's end minus
    EPSILON" minus "frames ending by its start plus EPSILON" are exactly its frames: prefix
    sums in start order and in end order (the same when ends never decrease) give every
    word's sum without a loop.
    """
    order = np.flatnonzero(frames[:, 1] - frames[:, 0] > EPSILON)
    order = order[np.argsort(frames[order, 0], kind="stable")]
    if len(order) < len(frames) or np.any(order[1:] < order[:-1]):
        frames, features = frames[order], features[order]  # now in start order
    by_end = None if np.all(frames[1:, 1] >= frames[:-1, 1]) else np.argsort(frames[:, 1])
    ends = frames[:, 1] if by_end is None else frames[by_end, 1]
    hi = np.searchsorted(frames[:, 0], words[:, 1] - EPSILON, side="left")
    lo = np.searchsorted(ends, words[:, 0] + EPSILON, side="right")
    counts = np.where(words[:, 1] - words[:, 0] > EPSILON, np.maximum(hi - lo, 0), 0)

    def window_sums(values: np.ndarray) -> np.ndarray:
        head = _prefix_sums(values)
        tail = head if by_end is None else _prefix_sums(values[by_end])
        return head[hi] - tail[lo]

    finite = np.isfinite(features)
    clean = features if finite.all() else np.where(finite, features, 0.0)
    has = counts > 0
    means = np.zeros((len(words), features.shape[1]), dtype=np.float64)
    means[has] = window_sums(clean)[has] / counts[has, None]
    single = counts == 1  # the frame itself, exactly: its index is the sum of one index
    means[single] = clean[window_sums(np.arange(len(frames)))[single]]
    for value, test in ((np.inf, np.isposinf), (-np.inf, np.isneginf), (np.nan, np.isnan)):
        hit = test(features)
        columns = np.flatnonzero(hit.any(axis=0))
        if len(columns):
            touched = window_sums(hit[:, columns].astype(np.int32))[has] > 0
            with np.errstate(invalid="ignore"):  # inf + -inf is NaN, as in a plain mean
                means[np.ix_(has, columns)] += np.where(touched, value, 0.0)
    return means, counts


def overlaps(references: np.ndarray, intervals: np.ndarray, max_pairs: int) -> list[np.ndarray]:
    """Per reference (R, 2), the ascending indices of the `intervals` (N, 2, in start order)
    that overlap it by more than EPSILON.

    Only candidates are compared, not all R x N pairs: the intervals starting before the
    reference ends, from the first whose end, or an earlier one's, passes its start (an
    overlap above EPSILON needs both). ValueError when they are more than `max_pairs` pairs.
    """
    reach = np.maximum.accumulate(intervals[:, 1]) if len(intervals) else intervals[:, 1]
    lo = np.searchsorted(reach, references[:, 0], side="right")
    counts = np.maximum(np.searchsorted(intervals[:, 0], references[:, 1], side="left") - lo, 0)
    if counts.sum() > max_pairs:
        raise ValueError(f"{counts.sum()} pairs to compare, over the limit of {max_pairs}")
    owner = np.repeat(np.arange(len(references)), counts)
    index = np.arange(counts.sum()) + np.repeat(lo - (np.cumsum(counts) - counts), counts)
    start = np.maximum(references[owner, 0], intervals[index, 0])
    end = np.minimum(references[owner, 1], intervals[index, 1])
    hit = end - start > EPSILON
    ends = np.cumsum(np.bincount(owner[hit], minlength=len(references)))
    return np.split(index[hit], ends[:-1]) if len(references) else []


def left_pad(rows: np.ndarray, length: int) -> np.ndarray:
    """The last `length` rows of (n, d) `rows`, after zero rows when there are fewer."""
    out = np.zeros((length, rows.shape[1]), dtype=rows.dtype)
    kept = rows[len(rows) - min(len(rows), length) :]
    out[length - len(kept) :] = kept
    return out


def _prefix_sums(values: np.ndarray) -> np.ndarray:
    """Cumulative sums along the first axis with a leading zero row."""
    out = np.zeros((len(values) + 1, *values.shape[1:]), dtype=values.dtype)
    np.cumsum(values, axis=0, out=out[1:])
    return out
