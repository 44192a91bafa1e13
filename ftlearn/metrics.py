"""Classification metrics written out: confusion matrix, accuracy, precision, recall, F1.

Introduced in notebook 07 (BERT fine-tuning, by hand); the Trainer's `compute_metrics` in notebook 08
and the `ftlearn finetune` command report the same numbers. Binary convention: label 1 (positive
review) is the positive class. Everything is derived from the confusion matrix, so the four
numbers can never disagree with each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_labels(values: Any) -> np.ndarray:
    """A 1-D integer numpy array from a list, numpy array or torch tensor of class ids."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"Expected a 1-D sequence of class ids, got shape {array.shape}.")
    return array.astype(np.int64)


def _not_empty(t: np.ndarray, p: np.ndarray) -> None:
    """Refuse no labels at all, as scikit-learn does: a score of 0.0 for nothing would read as a measurement."""
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} labels but y_pred has {len(p)}.")
    if not len(t):
        raise ValueError("y_true and y_pred are empty: a metric needs at least one label and prediction.")


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int = 2) -> np.ndarray:
    """Counts C[i, j] = how many examples of true class i were predicted as class j (notebook 07).

    For two classes: [[TN, FP], [FN, TP]], the same layout as scikit-learn.
    """
    t, p = _as_labels(y_true), _as_labels(y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} labels but y_pred has {len(p)}.")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if len(arr) and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} holds a class id outside 0..{num_classes - 1}.")
    # Each (true, pred) pair becomes one index into the flattened num_classes x num_classes grid.
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _safe_div(num: float, den: float) -> float:
    # scikit-learn's zero_division=0: a metric with an empty denominator counts as 0, not NaN.
    return float(num) / float(den) if den else 0.0


def metrics_from_confusion(cm: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 (class 1 positive) from a 2x2 confusion matrix (notebook 07)."""
    cm = np.asarray(cm)
    if cm.shape != (2, 2):
        raise ValueError(f"Expected a 2x2 confusion matrix, got shape {cm.shape}.")
    tn, fp, fn, tp = (int(x) for x in cm.ravel())
    precision = _safe_div(tp, tp + fp)  # of the reviews we called positive, how many were
    recall = _safe_div(tp, tp + fn)  # of the positive reviews, how many we found
    return {
        "accuracy": _safe_div(tp + tn, tn + fp + fn + tp),
        "precision": precision,
        "recall": recall,
        # F1 = harmonic mean = 2TP / (2TP + FP + FN); written this way it is 0, not NaN, when TP = 0.
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn),
    }


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Fraction of predictions equal to the label (notebook 07)."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    _not_empty(t, p)
    return float((t == p).mean())


def precision(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """TP / (TP + FP): how many predicted positives are right (notebook 07)."""
    _not_empty(_as_labels(y_true), _as_labels(y_pred))
    return metrics_from_confusion(confusion_matrix(y_true, y_pred))["precision"]


def recall(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """TP / (TP + FN): how many true positives were found (notebook 07)."""
    _not_empty(_as_labels(y_true), _as_labels(y_pred))
    return metrics_from_confusion(confusion_matrix(y_true, y_pred))["recall"]


def f1_score(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Harmonic mean of precision and recall, 2TP / (2TP + FP + FN) (notebook 07)."""
    _not_empty(_as_labels(y_true), _as_labels(y_pred))
    return metrics_from_confusion(confusion_matrix(y_true, y_pred))["f1"]


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int = 2) -> dict[str, Any]:
    """All four metrics plus the confusion matrix (as nested lists, JSON-ready) (notebook 07).

    With more than two classes there is no positive class: accuracy, the macro averages of `per_class_metrics`
    and the confusion matrix.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    if num_classes == 2:
        return {**metrics_from_confusion(cm), "confusion_matrix": cm.tolist(), "n": int(cm.sum())}
    per_class = per_class_metrics(cm)
    return {
        "accuracy": _safe_div(np.trace(cm), cm.sum()),
        **{f"macro_{key}": float(np.mean(per_class[key])) for key in ("precision", "recall", "f1")},
        "confusion_matrix": cm.tolist(),
        "n": int(cm.sum()),
    }


def per_class_metrics(cm: np.ndarray) -> dict[str, list]:
    """Each class's precision, recall, F1 and support (its true count) from a C x C confusion matrix.

    Class c is the positive class in turn: precision = C[c, c] / column c's sum, recall = C[c, c] / row c's sum;
    an empty denominator gives 0, as in `metrics_from_confusion`. The macro F1 is the mean of the F1 column.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"Expected a square confusion matrix, got shape {cm.shape}.")
    right, predicted, true = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    return {
        "precision": [_safe_div(r, p) for r, p in zip(right, predicted, strict=True)],
        "recall": [_safe_div(r, t) for r, t in zip(right, true, strict=True)],
        # 2TP / (2TP + FP + FN) = 2 C[c, c] / (column sum + row sum)
        "f1": [_safe_div(2 * r, p + t) for r, p, t in zip(right, predicted, true, strict=True)],
        "support": [int(t) for t in true],
    }


def class_report(y_true: Sequence[int], y_pred: Sequence[int], names: Sequence[str]) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support by class name, the macro F1, and the named confusion matrix.

    Any number of classes (two included); `names[i]` is class i. What `ftlearn finetune --train FILE` adds to
    metrics.json, and what `ftlearn compare` prints for each model.
    """
    cm = confusion_matrix(y_true, y_pred, len(names))
    per_class = per_class_metrics(cm)
    return {
        "classes": list(names),
        "macro_f1": float(np.mean(per_class["f1"])),
        "per_class": {
            name: {key: per_class[key][i] for key in ("precision", "recall", "f1", "support")}
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
    }


def format_confusion(cm: Sequence[Sequence[int]], names: Sequence[str]) -> str:
    """The confusion matrix as a table: one row per true class, one column per predicted class, with names."""
    corner = "true \\ predicted"
    first = max(len(corner), *(len(str(n)) for n in names))
    width = max(*(len(str(n)) for n in names), *(len(str(int(x))) for row in cm for x in row))
    head = corner.ljust(first) + "".join(f"  {str(n):>{width}}" for n in names)
    rows = [
        str(n).ljust(first) + "".join(f"  {int(x):>{width}}" for x in row) for n, row in zip(names, cm, strict=True)
    ]
    return "\n".join([head, *rows])


def format_metrics(metrics: dict[str, Any], keys: Sequence[str] = ("accuracy", "precision", "recall", "f1")) -> str:
    """One line such as 'accuracy 0.884 · precision 0.870 · recall 0.890 · f1 0.880' (notebook 07)."""
    return " · ".join(f"{k} {metrics[k]:.3f}" for k in keys if k in metrics)


def paired_accuracy_difference(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int]) -> dict[str, Any]:
    """Accuracies of A and B on the same examples, A minus B, its paired standard error, a 2-SE verdict (notebook 07).

    Per example g = [A right] - [B right] is +1, 0 or -1; the difference is mean(g) and its standard
    error sd(g) / sqrt(N), which only the examples where A and B disagree make non-zero.
    """
    t, a, b = _as_labels(y_true), _as_labels(pred_a), _as_labels(pred_b)
    if not len(t) == len(a) == len(b):
        raise ValueError(f"y_true, pred_a and pred_b must have the same length, got {len(t)}, {len(a)}, {len(b)}.")
    if len(t) < 2:
        raise ValueError("a paired difference needs at least 2 examples.")
    right_a, right_b = (a == t).astype(float), (b == t).astype(float)
    g = right_a - right_b
    diff, se = float(g.mean()), float(g.std(ddof=1) / np.sqrt(len(g)))
    verdict = "A better" if diff > 2 * se else "B better" if diff < -2 * se else "within 2 standard errors"
    return {
        "accuracy_a": float(right_a.mean()),
        "accuracy_b": float(right_b.mean()),
        "difference": diff,
        "se": se,
        "n": int(len(g)),
        "a_only_right": int((g > 0).sum()),
        "b_only_right": int((g < 0).sum()),
        "verdict": verdict,
    }
