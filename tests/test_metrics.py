"""Metrics checked against small cases worked out by hand (numbers written out below)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from memo.training.metrics import (
    accuracy,
    evaluate,
    multilabel_accuracies,
    roc_auc,
    weighted_accuracy,
    weighted_f1,
)

# Two emotions, seven samples.
# Column 0: truth 1 1 1 0 0 0 0, pred 1 1 0 0 0 0 1 -> P=3, N=4, TP=2, TN=3, FP=1, FN=1.
# Column 1: truth 0 1 0 1 0 1 0, pred 1 1 1 1 1 1 1 -> P=3, N=4, TP=3, TN=0, FP=4, FN=0.
LABELS = np.array([[1, 0], [1, 1], [1, 0], [0, 1], [0, 0], [0, 1], [0, 0]])
PREDS = np.array([[1, 1], [1, 1], [0, 1], [0, 1], [0, 1], [0, 1], [1, 1]])


def test_weighted_accuracy_formula() -> None:
    # WA = (TP * N / P + TN) / (2 N)
    expected = [(2 * 4 / 3 + 3) / (2 * 4), (3 * 4 / 3 + 0) / (2 * 4)]
    assert expected == pytest.approx([17 / 24, 0.5])
    np.testing.assert_allclose(weighted_accuracy(LABELS, PREDS), expected)


def test_weighted_accuracy_is_mean_of_recalls() -> None:
    # Column 0: recall on positives 2/3, on negatives 3/4. Column 1: 3/3 and 0/4.
    recalls = [(2 / 3 + 3 / 4) / 2, (3 / 3 + 0 / 4) / 2]
    np.testing.assert_allclose(weighted_accuracy(LABELS, PREDS), recalls)


def test_accuracy() -> None:
    # Column 0: right on samples 0, 1, 3, 4, 5 -> 5/7. Column 1: right on 1, 3, 5 -> 3/7.
    np.testing.assert_allclose(accuracy(LABELS, PREDS), [5 / 7, 3 / 7])


def test_weighted_f1() -> None:
    # Column 0: class 1 F1 = 2*2/(2*2+1+1) = 2/3 (support 3); class 0: TP=3, FP=1, FN=1,
    # F1 = 6/8 = 3/4 (support 4); weighted (3 * 2/3 + 4 * 3/4) / 7 = 5/7.
    # Column 1: class 1 F1 = 2*3/(2*3+4+0) = 0.6 (support 3); class 0 never predicted, F1 = 0
    # (support 4); weighted (3 * 0.6 + 4 * 0) / 7 = 9/35.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(weighted_f1(LABELS, PREDS), [5 / 7, 9 / 35])


def test_roc_auc() -> None:
    # Column 0: positives 0.35, 0.8; negatives 0.1, 0.4. Pairs ranked right: 0.35>0.1,
    # 0.8>0.1, 0.8>0.4 (0.35<0.4 wrong) -> 3/4.
    # Column 1: positives 0.9, 0.5; negatives 0.5, 0.2. 0.9 beats both, 0.5 beats 0.2 and
    # ties 0.5 (counts 1/2) -> 3.5/4.
    labels = np.array([[0, 1], [0, 0], [1, 1], [1, 0]])
    scores = np.array([[0.1, 0.9], [0.4, 0.5], [0.35, 0.5], [0.8, 0.2]])
    np.testing.assert_allclose(roc_auc(labels, scores), [0.75, 0.875])


@pytest.mark.parametrize(
    ("truth", "pred", "expected"),
    [
        ([1, 0, 1], [1, 0, 1], (1.0, 1.0, 1.0)),  # identical
        ([1, 1, 0], [0, 0, 0], (0.0, 0.0, 0.0)),  # empty prediction, non-empty truth
        ([0, 0, 0], [0, 0, 0], (1.0, 1.0, 1.0)),  # empty prediction, empty truth
        ([0, 1, 0], [1, 1, 0], (0.0, 0.0, 1.0)),  # false positive before a true positive
        ([1, 1, 0], [0, 1, 0], (0.0, 1.0, 1.0)),  # strict non-empty subset of the truth
        ([0, 0, 0], [0, 0, 1], (0.0, 0.0, 0.0)),  # only a false positive
    ],
)
def test_multilabel_accuracies_single_rows(
    truth: list[int], pred: list[int], expected: tuple[float, float, float]
) -> None:
    result = multilabel_accuracies(np.array([truth]), np.array([pred]))
    assert (result["exact"], result["subset"], result["intersect"]) == expected


def test_multilabel_accuracies_over_rows() -> None:
    # The six rows above together: exact rows 0, 2; subset adds 4; intersect adds 3 and 4.
    truth = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    pred = np.array([[1, 0, 1], [0, 0, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
    result = multilabel_accuracies(truth, pred)
    assert result == pytest.approx({"exact": 2 / 6, "subset": 3 / 6, "intersect": 4 / 6})


def test_evaluate_keys_and_values() -> None:
    scores = np.where(PREDS == 1, 0.9, 0.1)
    result = evaluate(
        LABELS, scores, ["happy", "sad"], ["wa", "acc", "f1", "auc"], whole_sample=True
    )
    assert list(result) == [
        "wa/happy",
        "wa/sad",
        "wa/avg",
        "acc/happy",
        "acc/sad",
        "acc/avg",
        "f1/happy",
        "f1/sad",
        "f1/avg",
        "auc/happy",
        "auc/sad",
        "auc/avg",
        "exact",
        "subset",
        "intersect",
    ]
    assert all(type(value) is float for value in result.values())
    assert result["wa/happy"] == pytest.approx(17 / 24)
    assert result["wa/avg"] == pytest.approx((17 / 24 + 0.5) / 2)
    assert result["acc/avg"] == pytest.approx((5 / 7 + 3 / 7) / 2)
    assert result["f1/sad"] == pytest.approx(9 / 35)
    # Rows truth/pred: [1,1]/[1,1] and twice [0,1]/[0,1] pass all three; [1,0]/[1,1] has a
    # false positive (not subset) and a true positive (intersect); [1,0]/[0,1], [0,0]/[0,1]
    # and [0,0]/[1,1] fail all three -> exact 3/7, subset 3/7, intersect 4/7.
    assert (result["exact"], result["subset"], result["intersect"]) == pytest.approx(
        (3 / 7, 3 / 7, 4 / 7)
    )


def test_evaluate_threshold_is_strict() -> None:
    labels = np.array([[1], [0]])
    scores = np.array([[0.5], [0.2]])
    assert evaluate(labels, scores, ["joy"], ["acc"])["acc/joy"] == 0.5
    assert evaluate(labels, scores, ["joy"], ["acc"], threshold=0.4)["acc/joy"] == 1.0


def test_evaluate_column_without_positives() -> None:
    # "fear" has no positives: WA and AUC are NaN, F1 and accuracy are still computed.
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.7], [0.4, 0.3], [0.1, 0.2]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(labels, scores, ["joy", "fear"], ["wa", "auc", "acc", "f1"])
    assert len(caught) == 1
    assert caught[0].category is RuntimeWarning
    assert "'fear'" in str(caught[0].message) and "no positive" in str(caught[0].message)
    assert math.isnan(result["wa/fear"]) and math.isnan(result["auc/fear"])
    # joy: truth 1 0 1 0, pred 1 0 0 0 -> WA (1*2/2 + 2)/(2*2) = 3/4; AUC 4/4 = 1.
    assert result["wa/joy"] == result["wa/avg"] == 0.75
    assert result["auc/joy"] == result["auc/avg"] == 1.0
    # fear: pred 0 1 0 0 -> accuracy 3/4; weighted F1 = class 0 F1 2*3/(2*3+0+1) = 6/7.
    assert result["acc/fear"] == 0.75
    assert result["f1/fear"] == pytest.approx(6 / 7)


def test_evaluate_column_without_negatives_and_all_nan_average() -> None:
    labels = np.array([[1, 0], [1, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.7]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(labels, scores, ["joy", "fear"], ["wa"])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "'joy'" in messages[0] and "no negative" in messages[0]
    assert "'fear'" in messages[1] and "no positive" in messages[1]
    assert all(w.category is RuntimeWarning for w in caught)
    assert math.isnan(result["wa/joy"]) and math.isnan(result["wa/fear"])
    assert math.isnan(result["wa/avg"])


def test_evaluate_no_warning_when_only_acc_and_f1() -> None:
    labels = np.array([[0], [0]])
    scores = np.array([[0.9], [0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate(labels, scores, ["fear"], ["acc", "f1"])
    assert result["acc/fear"] == 0.5


@pytest.mark.parametrize(
    ("labels", "scores", "emotions", "match"),
    [
        (np.array([1, 0]), np.array([0.9, 0.1]), ["joy"], "2-D"),
        (np.ones((3, 2)), np.ones((3, 3)), ["a", "b"], "same"),
        (np.ones((3, 2)), np.ones((3, 2)), ["a", "b", "c"], "3 emotion names"),
        (np.ones((0, 2)), np.ones((0, 2)), ["a", "b"], "at least one sample"),
        (np.full((2, 1), 0.3), np.ones((2, 1)), ["a"], "0/1"),
    ],
)
def test_evaluate_rejects_bad_inputs(
    labels: np.ndarray, scores: np.ndarray, emotions: list[str], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate(labels, scores, emotions, ["acc"])


def test_evaluate_rejects_unknown_metric() -> None:
    # The allowed list is the registry, which tests/toy_dataset.py extends when it is imported.
    with pytest.raises(
        ValueError, match=r"unknown metric\(s\) \['precision'\]; allowed: \['acc', 'auc'"
    ):
        evaluate(LABELS, PREDS.astype(float), ["happy", "sad"], ["wa", "precision"])


def test_per_emotion_functions_reject_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same"):
        weighted_accuracy(LABELS, PREDS[:, :1])
    with pytest.raises(ValueError, match="2-D"):
        roc_auc(LABELS, np.ones(7))
