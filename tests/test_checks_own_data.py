"""The checks of lesson 13: right answers pass (checked against scikit-learn and the library), each named mistake
gets its own hint, stubs are 'not attempted'."""

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.utils.class_weight import compute_class_weight

from ftlearn import checks
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG, known, reset_session
from ftlearn.labelled import class_weights
from ftlearn.metrics import confusion_matrix, per_class_metrics

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised

NAMES = ("macro_f1", "balanced_class_weights", "per_class_recall", "most_confused")


def stub(*args, **kwargs):
    raise NotImplementedError


def sklearn_macro_f1(y_true, y_pred, num_classes):
    return f1_score(y_true, y_pred, average="macro", labels=list(range(num_classes)), zero_division=0)


def sklearn_weights(labels, num_classes):
    present = sorted(set(labels))
    found = compute_class_weight("balanced", classes=np.array(present), y=np.array(labels))
    weights = dict(zip(present, found, strict=True))
    return [float(weights.get(c, 0.0)) for c in range(num_classes)]


def library_recall(cm):
    return per_class_metrics(cm)["recall"]


def test_right_answers_pass_whoever_computes_them():
    assert checks.check_macro_f1(sklearn_macro_f1).status == CORRECT
    assert checks.check_balanced_class_weights(sklearn_weights).status == CORRECT
    assert checks.check_balanced_class_weights(class_weights).status == CORRECT  # the library's, which runs use
    assert checks.check_per_class_recall(library_recall).status == CORRECT
    assert checks.check_most_confused(confused_by_loops).status == CORRECT  # a list is fine too


def confused_by_loops(cm, names):
    cells = [(cm[i][j], i, j) for i in range(len(cm)) for j in range(len(cm)) if i != j]
    _, i, j = max(cells)
    return [names[i], names[j]]


def test_the_reference_macro_f1_is_the_librarys_on_random_labels():
    from ftlearn.checks.own_data import _macro_f1

    rng = np.random.default_rng(0)
    for _ in range(20):
        t, p = rng.integers(0, 4, 30).tolist(), rng.integers(0, 4, 30).tolist()
        assert _macro_f1(t, p, 4) == pytest.approx(np.mean(per_class_metrics(confusion_matrix(t, p, 4))["f1"]))
        assert _macro_f1(t, p, 4) == pytest.approx(sklearn_macro_f1(t, p, 4))


@pytest.mark.parametrize("name", NAMES)
def test_each_known_mistake_gets_its_own_hint_on_the_second_try(name):
    check_fn = getattr(checks, f"check_{name}")
    check_fn(stub)
    mistakes = known(name)["mistakes"]
    assert mistakes
    for mistake in mistakes:
        reset_session()
        first = check_fn(mistake.fn)
        assert first.status == WRONG and first.message.startswith("Not yet. "), (name, first)
        second = check_fn(mistake.fn)
        assert second.status == WRONG and mistake.hint in second.message, (name, mistake.hint, second)


@pytest.mark.parametrize("name", NAMES)
def test_a_stub_is_not_attempted(name):
    assert getattr(checks, f"check_{name}")(stub).status == NOT_ATTEMPTED
