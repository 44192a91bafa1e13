"""Checks for the exercises of solutions/13_your_own_data.ipynb: more than two classes.

The macro F1 written by hand, scikit-learn's "balanced" class weights, and reading a confusion matrix (each class's
recall, and which class is most often taken for which). Labels are ints 0..K-1 (K classes, as lesson 03 writes it);
a confusion matrix has one row per true class and one column per predicted class, as
`ftlearn.metrics.confusion_matrix` builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ftlearn.checks.core import CheckResult, Mistake, check, exercise


def _cm(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        cm[t, p] += 1
    return cm


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


# ---------------------------------------------------------------- macro F1
# Three classes, unequal; the second case has a class that is never predicted (its precision is 0 / 0, taken as 0)
# and the third a class that is in neither list (its F1 is 0 and it still counts in the mean, as in ftlearn.metrics).
_F1_CASES = [
    ([0, 0, 0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 1, 2, 1, 0, 2, 2], 3),
    ([0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 0, 1, 0, 0, 2, 2, 2, 0], 3),
    ([0, 1, 1, 2, 2, 2, 0, 0], [0, 1, 2, 2, 2, 1, 0, 0], 4),
]


def _f1s(y_true, y_pred, num_classes):
    cm = _cm(y_true, y_pred, num_classes)
    right, predicted, true = np.diag(cm), cm.sum(0), cm.sum(1)
    return [_ratio(2 * r, p + t) for r, p, t in zip(right, predicted, true, strict=True)], true


def _macro_f1(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> float:
    return float(np.mean(_f1s(y_true, y_pred, num_classes)[0]))


def _weighted_f1(y_true, y_pred, num_classes):
    f1, support = _f1s(y_true, y_pred, num_classes)
    return float(np.dot(f1, support) / support.sum())


def _f1_of_macro_averages(y_true, y_pred, num_classes):
    cm = _cm(y_true, y_pred, num_classes)
    right, predicted, true = np.diag(cm), cm.sum(0), cm.sum(1)
    p = np.mean([_ratio(r, n) for r, n in zip(right, predicted, strict=True)])
    r = np.mean([_ratio(r, n) for r, n in zip(right, true, strict=True)])
    return _ratio(2 * p * r, p + r)


def _present_only(y_true, y_pred, num_classes):
    f1, support = _f1s(y_true, y_pred, num_classes)
    present = set(y_true) | set(y_pred)
    return float(np.mean([f for c, f in enumerate(f1) if c in present]))


@exercise(answer=_macro_f1)
def check_macro_f1(fn: Callable[..., float]) -> CheckResult:
    """Check `fn(y_true, y_pred, num_classes)`: the mean over the classes of each class's F1 (notebook 13)."""
    return check(
        "macro_f1",
        fn,
        _macro_f1,
        _F1_CASES,
        mistakes=[
            Mistake(
                lambda t, p, c: float(np.mean(np.asarray(t) == np.asarray(p))),
                "that is the micro F1, which for one label per text equals the accuracy: every text counts the same, "
                "so the big class decides. The macro F1 gives each class the same say: the mean of the classes' F1.",
                kind="formula",
            ),
            Mistake(
                _weighted_f1,
                "you weighted each class's F1 by its number of texts (scikit-learn's average='weighted'); the macro "
                "F1 is the plain mean, each class counting once.",
                kind="scale",
            ),
            Mistake(
                _f1_of_macro_averages,
                "you took the F1 of the mean precision and the mean recall; compute each class's F1 first, then "
                "average the F1s.",
                kind="order",
            ),
            Mistake(
                _present_only,
                "a class with no text in either list still counts, with F1 0, when `num_classes` says it exists: "
                "average over all `num_classes` classes.",
                kind="edge",
            ),
        ],
        hint="For each class c, count TP (true c, predicted c), FP (predicted c, true another) and FN (true c, "
        "predicted another); F1 = 2TP / (2TP + FP + FN), 0 when that is 0 / 0; then average the K values.",
    )


# ---------------------------------------------------------------- balanced class weights
_WEIGHT_CASES = [([0, 0, 0, 0, 0, 0, 1, 1, 2, 2], 3), ([0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2], 3), ([1, 1, 0, 0], 2)]


def _balanced(labels: Sequence[int], num_classes: int) -> list[float]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    return [float(len(labels) / (num_classes * n)) if n else 0.0 for n in counts]


@exercise(answer=_balanced)
def check_balanced_class_weights(fn: Callable[..., list]) -> CheckResult:
    """Check `fn(labels, num_classes)`: N / (K n_k) for each class k, scikit-learn's 'balanced' (notebook 13)."""

    def counts(labels, c):
        return np.bincount(np.asarray(labels), minlength=c).astype(float)

    return check(
        "balanced_class_weights",
        fn,
        _balanced,
        _WEIGHT_CASES,
        mistakes=[
            Mistake(
                lambda labels, c: list(counts(labels, c) / len(labels)),
                "those are the classes' shares of the data: the weight is the inverse, so a rare class weighs more.",
                kind="formula",
            ),
            Mistake(
                lambda labels, c: list(1 / counts(labels, c)),
                "1 / n_k has the right shape but not the scale: multiply by N / K, so that a data set of equal "
                "classes gets weights of exactly 1.",
                kind="scale",
            ),
            Mistake(
                lambda labels, c: list(len(labels) / counts(labels, c)),
                "N / n_k is K times too large: divide by the number of classes too, N / (K n_k).",
                kind="scale",
            ),
            Mistake(
                lambda labels, c: list(c * counts(labels, c) / len(labels)),
                "inverted: K n_k / N grows with the class's count; the balanced weight is N / (K n_k).",
                kind="formula",
            ),
        ],
        hint="Count each class's texts n_k (np.bincount with minlength=num_classes), then N / (K n_k) for each.",
    )


# ---------------------------------------------------------------- reading a confusion matrix
_CM_CASES = [
    (np.array([[50, 3, 2], [10, 20, 5], [1, 9, 30]]),),
    (np.array([[8, 0, 0, 2], [1, 5, 4, 0], [0, 7, 3, 0], [0, 0, 1, 9]]),),
    (np.array([[5, 1], [4, 0]]),),
]


def _recall(cm: np.ndarray) -> list[float]:
    cm = np.asarray(cm)
    return [_ratio(cm[c, c], cm[c].sum()) for c in range(len(cm))]


@exercise(answer=_recall)
def check_per_class_recall(fn: Callable[[np.ndarray], list]) -> CheckResult:
    """Check `fn(cm)`: each class's recall, the share of its true texts predicted as it (notebook 13)."""
    return check(
        "per_class_recall",
        fn,
        _recall,
        _CM_CASES,
        mistakes=[
            Mistake(
                lambda cm: [_ratio(cm[c, c], cm[:, c].sum()) for c in range(len(cm))],
                "that is each class's precision: you divided by the column (what was predicted as c). Recall divides "
                "by the row: the texts that truly are c.",
                kind="axis",
            ),
            Mistake(
                lambda cm: [_ratio(cm[c, c], cm.sum()) for c in range(len(cm))],
                "you divided by every text; recall is out of the class's own texts, its row.",
                kind="scale",
            ),
            Mistake(
                lambda cm: [float(cm[c, c]) for c in range(len(cm))],
                "those are counts: divide each by the number of texts of that class.",
                kind="missing",
            ),
        ],
        hint="Rows are the true classes: the recall of class c is C[c, c] over the sum of row c.",
    )


def _most_confused(cm: np.ndarray, names: Sequence[str]) -> tuple[str, str]:
    off = np.asarray(cm).copy()
    np.fill_diagonal(off, -1)
    true, predicted = np.unravel_index(int(np.argmax(off)), off.shape)
    return names[true], names[predicted]


_CONFUSED_CASES = [
    (cm, names)
    for (cm,), names in zip(_CM_CASES, (["ai", "emotion", "trivia"], ["a", "b", "c", "d"], ["neg", "pos"]), strict=True)
]


def _largest_cell(cm, names):
    cm = np.asarray(cm)
    true, predicted = np.unravel_index(int(np.argmax(cm)), cm.shape)
    return names[true], names[predicted]


@exercise(answer=_most_confused)
def check_most_confused(fn: Callable[..., tuple]) -> CheckResult:
    """Check `fn(cm, names)`: (true class, predicted class) of the largest off-diagonal cell (notebook 13)."""
    return check(
        "most_confused",
        lambda cm, names: tuple(fn(cm, names)),
        _most_confused,
        _CONFUSED_CASES,
        mistakes=[
            Mistake(
                lambda cm, names: _most_confused(cm, names)[::-1],
                "the order is (true, predicted): rows are the true classes, columns the predictions.",
                kind="order",
            ),
            Mistake(
                _largest_cell,
                "the diagonal holds the right answers: look only at the cells off it.",
                kind="edge",
            ),
        ],
        hint="Copy the matrix, blank out its diagonal (np.fill_diagonal with -1), and take the row and column of the "
        "largest cell left (np.argmax, then np.unravel_index).",
    )
