"""ftlearn.metrics against scikit-learn on random, degenerate and edge-case labels."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from ftlearn import metrics as fm


def _random_labels(seed, n=200, p_pos=0.5, p_flip=0.3):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < p_pos).astype(int)
    pred = np.where(rng.random(n) < p_flip, 1 - y, y)
    return y, pred


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn(seed):
    y, pred = _random_labels(seed, p_pos=0.2 + 0.15 * seed)
    assert np.array_equal(fm.confusion_matrix(y, pred), skm.confusion_matrix(y, pred, labels=[0, 1]))
    assert fm.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    assert fm.precision(y, pred) == pytest.approx(skm.precision_score(y, pred))
    assert fm.recall(y, pred) == pytest.approx(skm.recall_score(y, pred))
    assert fm.f1_score(y, pred) == pytest.approx(skm.f1_score(y, pred))


@pytest.mark.parametrize(
    "y, pred",
    [
        ([0, 0, 0, 0], [0, 0, 0, 0]),  # no positives at all: precision, recall, f1 are 0 (zero_division=0)
        ([1, 1, 0, 0], [0, 0, 0, 0]),  # never predicts positive
        ([0, 0, 0, 1], [1, 1, 1, 1]),  # always predicts positive
        ([1, 0, 1, 0], [1, 0, 1, 0]),  # perfect
    ],
)
def test_degenerate_cases_match_sklearn_zero_division(y, pred):
    got = fm.classification_report(y, pred)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["n"] == len(y)


def test_multiclass_confusion_matrix_and_tensor_input():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    got = fm.confusion_matrix(torch.tensor(y), torch.tensor(pred), num_classes=4)
    assert np.array_equal(got, skm.confusion_matrix(y, pred, labels=range(4)))


def test_metrics_from_confusion_layout():
    # [[TN, FP], [FN, TP]] = [[50, 10], [5, 35]]
    m = fm.metrics_from_confusion(np.array([[50, 10], [5, 35]]))
    assert m["accuracy"] == pytest.approx(85 / 100)
    assert m["precision"] == pytest.approx(35 / 45)
    assert m["recall"] == pytest.approx(35 / 40)
    assert m["f1"] == pytest.approx(2 * 35 / (2 * 35 + 10 + 5))


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="y_true has 2 labels but y_pred has 3"):
        fm.confusion_matrix([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="outside 0..1"):
        fm.confusion_matrix([0, 2], [0, 1])
    with pytest.raises(ValueError, match="2x2"):
        fm.metrics_from_confusion(np.eye(3))


def test_format_metrics():
    assert fm.format_metrics({"accuracy": 0.5, "f1": 0.25}) == "accuracy 0.500 · f1 0.250"


def test_paired_accuracy_difference_by_hand():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    a = np.array([1, 0, 1, 1, 0, 1, 1, 0])  # wrong on example 5
    b = np.array([1, 1, 0, 1, 0, 1, 1, 0])  # wrong on 1, 2, 5
    out = fm.paired_accuracy_difference(y, a, b)
    g = np.array([0, 1, 1, 0, 0, 0, 0, 0])  # A alone right on 1 and 2
    assert out["difference"] == pytest.approx(fm.accuracy(y, a) - fm.accuracy(y, b)) == pytest.approx(g.mean())
    assert out["se"] == pytest.approx(np.std(g, ddof=1) / np.sqrt(8))
    assert (out["a_only_right"], out["b_only_right"], out["n"]) == (2, 0, 8)
    assert (out["accuracy_a"], out["accuracy_b"]) == (
        pytest.approx(fm.accuracy(y, a)),
        pytest.approx(fm.accuracy(y, b)),
    )
    assert out["verdict"] == "within 2 standard errors"  # 0.25 vs 2 x 0.164
    same = fm.paired_accuracy_difference(y, a, a)
    assert same["difference"] == 0 and same["se"] == 0 and same["verdict"] == "within 2 standard errors"


def test_paired_accuracy_difference_verdicts_and_errors():
    y = np.ones(100, dtype=int)
    good, bad = np.ones(100, dtype=int), np.r_[np.zeros(30, dtype=int), np.ones(70, dtype=int)]
    assert fm.paired_accuracy_difference(y, good, bad)["verdict"] == "A better"
    assert fm.paired_accuracy_difference(y, bad, good)["verdict"] == "B better"
    with pytest.raises(ValueError, match="same length"):
        fm.paired_accuracy_difference(y, good[:5], bad)
