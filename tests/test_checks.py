"""ftlearn.checks: correct / wrong with a hint / not attempted, never a raw traceback."""

import numpy as np
import pytest
import torch

from ftlearn.checks import CORRECT, NOT_ATTEMPTED, WRONG, CheckFailed, Mistake, check, check_mean_length, close


def square(x):
    return x * x


def test_statuses_and_their_display(monkeypatch):
    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")
    ok = check("square", square, square, [(2,), (3.5,)])
    assert ok.status == CORRECT and bool(ok) and repr(ok) == "✅ square: correct."

    def stub(x):
        raise NotImplementedError

    pending = check("square", stub, square, [(2,)])
    assert pending.status == NOT_ATTEMPTED and not pending
    assert repr(pending).startswith("⏳ square: not attempted")

    wrong = check("square", lambda x: x + x, square, [(3,)])
    assert wrong.status == WRONG and "expected 9" in wrong.message and "returned 6" in wrong.message


def test_known_mistakes_give_their_hint(monkeypatch):
    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")
    result = check(
        "square", lambda x: 2 * x, square, [(3,)], mistakes=[Mistake(lambda x: 2 * x, "squaring is x * x, not 2 * x")]
    )
    assert result.message == "Hint: squaring is x * x, not 2 * x"
    for fn, hint in [
        (lambda texts: sum(len(t) for t in texts) / len(texts), "counted characters"),
        (lambda texts: sum(len(t.split()) for t in texts), "that is the total"),
        (lambda texts: sum(len(t.split(" ")) for t in texts) / len(texts), "empty strings"),
    ]:
        assert hint in check_mean_length(fn).message


def test_learner_exceptions_become_one_line(monkeypatch):
    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")
    result = check("square", lambda x: x / 0, square, [(3,)])
    assert result.status == WRONG
    assert result.message.startswith("Your function raised ZeroDivisionError: division by zero")
    assert "Traceback" not in result.message


def test_nan_gets_the_stability_hint(monkeypatch):
    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")

    def naive_logsumexp(x):
        with np.errstate(over="ignore"):  # the overflow is the point of this test
            return np.log(np.exp(x).sum())

    result = check(
        "logsumexp", naive_logsumexp, lambda x: float(torch.logsumexp(torch.tensor(x), 0)), [(np.array([1e4, 0.0]),)]
    )
    assert result.status == WRONG and "NaN or inf" in result.message


def test_strict_mode_raises_unless_correct(monkeypatch):
    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "1")
    assert check("square", square, square, [(2,)])
    with pytest.raises(CheckFailed, match="wrong"):
        check("square", lambda x: x, square, [(2,)])


def test_close_handles_tensors_arrays_and_containers():
    assert close(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))
    assert not close(torch.zeros(2, 3), torch.zeros(3, 2))
    assert close({"a": [1, 2], "b": 0.5}, {"a": [1, 2], "b": 0.5})
    assert not close({"a": 1}, {"b": 1})
    assert close([(1, "x")], [(1, "x")]) and not close([1, 2], [1, 2, 3])
    assert not close("3", 3.0 + 1) and close(3, 3.0)


def test_the_package_re_exports_every_check():
    """A lesson's check that `ftlearn.checks` forgot to re-export would be unreachable from the exercises."""
    import importlib
    import inspect
    import pkgutil

    import ftlearn.checks as package

    defined = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"ftlearn.checks.{info.name}")
        defined |= {
            name
            for name, obj in vars(module).items()
            if name.startswith("check_") and inspect.isfunction(obj) and obj.__module__ == module.__name__
        }
    assert defined, "no check_* functions found"
    assert defined <= set(package.__all__), sorted(defined - set(package.__all__))
    assert all(hasattr(package, name) for name in package.__all__)
