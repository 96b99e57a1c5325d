"""Per-emotion and whole-sample metrics for multi-label emotion recognition.

Each emotion is a separate binary task: a sample is predicted to show emotion k when its
sigmoid score exceeds a threshold. Per-emotion metrics follow Tong et al. (2017) and the
EEA paper (weighted accuracy, weighted F1, ROC AUC, plain accuracy); the whole-sample
accuracies (exact, subset, intersect) are the ones reported on CMU-MOSEI.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "METRICS",
    "WHOLE_SAMPLE",
    "Metric",
    "accuracy",
    "evaluate",
    "multilabel_accuracies",
    "roc_auc",
    "weighted_accuracy",
    "weighted_f1",
]


def _as_bool(name: str, array: np.ndarray) -> np.ndarray:
    """Return a 2-D 0/1 array as booleans; raise ValueError if it is not 2-D or not 0/1."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, K) array; got shape {array.shape}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 values")
    return array.astype(bool)


def _check_pair(labels: np.ndarray, other: np.ndarray, other_name: str) -> None:
    """Raise ValueError unless `labels` and `other` share one (N, K) shape with N > 0."""
    if labels.shape != other.shape:
        raise ValueError(
            f"labels and {other_name} must have the same (N, K) shape; "
            f"got {labels.shape} and {other.shape}"
        )
    if labels.shape[0] == 0:
        raise ValueError("labels is empty: metrics need at least one sample")


def _both_classes(labels: np.ndarray) -> np.ndarray:
    """(K,) mask of emotions whose column holds at least one positive and one negative."""
    positives = labels.sum(axis=0)
    return (positives > 0) & (positives < labels.shape[0])


def weighted_accuracy(labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """WA = (TP * N / P + TN) / (2 N) per emotion (Tong et al., 2017), shape (K,).

    Equal to the mean of the recalls on positives and on negatives, so it is not inflated
    by the many negatives. NaN (silently; `evaluate` warns) where a column lacks a class.
    """
    labels, preds = _as_bool("labels", labels), _as_bool("preds", preds)
    _check_pair(labels, preds, "preds")
    tp = (labels & preds).sum(axis=0)
    tn = (~labels & ~preds).sum(axis=0)
    pos = labels.sum(axis=0)
    neg = (~labels).sum(axis=0)
    defined = _both_classes(labels)
    wa = np.full(labels.shape[1], np.nan)
    wa[defined] = (tp[defined] * neg[defined] / pos[defined] + tn[defined]) / (2 * neg[defined])
    return wa


def accuracy(labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Plain per-emotion accuracy (fraction of samples classified right), shape (K,)."""
    labels, preds = _as_bool("labels", labels), _as_bool("preds", preds)
    _check_pair(labels, preds, "preds")
    return (labels == preds).mean(axis=0)


def weighted_f1(labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Per-emotion scikit-learn `f1_score(average="weighted")` over the two classes, (K,).

    `zero_division=0` gives scikit-learn's default value without its warning. scikit-learn is
    imported here, on first use, so that starting a run (or reading data) does not pay for it.
    """
    from sklearn.metrics import f1_score

    labels, preds = _as_bool("labels", labels), _as_bool("preds", preds)
    _check_pair(labels, preds, "preds")
    return np.array(
        [
            f1_score(labels[:, k], preds[:, k], average="weighted", zero_division=0.0)
            for k in range(labels.shape[1])
        ],
        dtype=float,
    )


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-emotion ROC AUC of the scores, shape (K,); NaN where a column lacks a class."""
    from sklearn.metrics import roc_auc_score

    labels = _as_bool("labels", labels)
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (N, K) array; got shape {scores.shape}")
    _check_pair(labels, scores, "scores")
    defined = _both_classes(labels)
    return np.array(
        [
            roc_auc_score(labels[:, k], scores[:, k]) if defined[k] else np.nan
            for k in range(labels.shape[1])
        ],
        dtype=float,
    )


WHOLE_SAMPLE = ("exact", "subset", "intersect")  # the whole-sample accuracies, in table order


def multilabel_accuracies(labels: np.ndarray, preds: np.ndarray) -> dict[str, float]:
    """Whole-sample accuracies over rows: "exact", "subset" and "intersect".

    exact: the predicted set equals the true set. subset: exact, or the predicted set is
    non-empty and every predicted emotion is true. intersect: exact, or at least one
    predicted emotion is true. These are the clean definitions; the authors' code stops
    scanning a row at its first false positive (so a false positive before a true
    positive fails "intersect"), a bug we deliberately do not reproduce.
    """
    labels, preds = _as_bool("labels", labels), _as_bool("preds", preds)
    _check_pair(labels, preds, "preds")
    exact = (labels == preds).all(axis=1)
    any_false_positive = (preds & ~labels).any(axis=1)
    any_true_positive = (preds & labels).any(axis=1)
    subset = exact | (preds.any(axis=1) & ~any_false_positive)
    intersect = exact | any_true_positive
    values = (exact, subset, intersect)
    return {name: float(rows.mean()) for name, rows in zip(WHOLE_SAMPLE, values, strict=True)}


@dataclass(frozen=True)
class Metric:
    """A per-emotion metric: how it is computed and how tables name it."""

    label: str  # column header of the results table and the reports
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (labels, preds, scores)
    needs_both_classes: bool = False  # NaN, with a warning, for an emotion lacking a class


METRICS: dict[str, Metric] = {
    "wa": Metric(
        "WA",
        lambda labels, preds, scores: weighted_accuracy(labels, preds),
        needs_both_classes=True,
    ),
    "acc": Metric("Acc", lambda labels, preds, scores: accuracy(labels, preds)),
    "f1": Metric("F1", lambda labels, preds, scores: weighted_f1(labels, preds)),
    "auc": Metric(
        "AUC", lambda labels, preds, scores: roc_auc(labels, scores), needs_both_classes=True
    ),
}
"""Every per-emotion metric, by the name `dataset.metrics` uses: one entry here reaches the
results table, metrics.json, TensorBoard and the other loggers."""


def _mean_ignoring_nan(values: np.ndarray) -> float:
    """Mean of the non-NaN values; NaN (without numpy's empty-slice warning) if there are none."""
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")


def evaluate(
    labels: np.ndarray,
    scores: np.ndarray,
    emotions: Sequence[str],
    metrics: Sequence[str],
    threshold: float = 0.5,
    whole_sample: bool = False,
    target: str | None = None,
) -> dict[str, float]:
    """Score (N, K) probabilities against (N, K) 0/1 labels; return a flat dict of floats.

    Keys are f"{metric}/{emotion}" and f"{metric}/avg" (mean over emotions, NaN excluded)
    for each requested metric, plus "exact", "subset" and "intersect" if `whole_sample`.
    With a `target` emotion (zero-/few-shot), also f"{metric}/target" (its value) and
    f"{metric}/avg_seen" (the mean over the other emotions).
    A sample is predicted to show an emotion when its score is strictly above `threshold`.
    An emotion with no positives or no negatives gets NaN WA/AUC and one RuntimeWarning.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; allowed: {sorted(METRICS)}")
    labels = _as_bool("labels", labels)
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (N, K) array; got shape {scores.shape}")
    _check_pair(labels, scores, "scores")
    if labels.shape[1] != len(emotions):
        raise ValueError(
            f"labels have {labels.shape[1]} emotion columns but {len(emotions)} emotion names "
            f"were given: {list(emotions)}"
        )
    if target is not None and target not in emotions:
        raise ValueError(f"target emotion {target!r} is not among {list(emotions)}")
    preds = scores > threshold

    nan_metrics = [m for m in metrics if METRICS[m].needs_both_classes]
    if nan_metrics:
        positives = labels.sum(axis=0)
        for emotion, count in zip(emotions, positives, strict=True):
            if count in (0, labels.shape[0]):
                missing = "positive" if count == 0 else "negative"
                warnings.warn(
                    f"emotion {emotion!r} has no {missing} labels among {labels.shape[0]} "
                    f"samples; {', '.join(nan_metrics)} set to NaN for it and left out of avg",
                    RuntimeWarning,
                    stacklevel=2,
                )

    results: dict[str, float] = {}
    for name in metrics:
        values = METRICS[name].compute(labels, preds, scores)
        for emotion, value in zip(emotions, values, strict=True):
            results[f"{name}/{emotion}"] = float(value)
        results[f"{name}/avg"] = _mean_ignoring_nan(values)
        if target is not None:
            others = np.array([e != target for e in emotions])
            results[f"{name}/avg_seen"] = _mean_ignoring_nan(values[others])
            results[f"{name}/target"] = float(values[list(emotions).index(target)])
    if whole_sample:
        results.update(multilabel_accuracies(labels, preds))
    return results
