"""ftlearn.checks: correct / wrong with a hint / not attempted, never a raw traceback."""

import numpy as np
import pytest
import torch

from ftlearn.checks import CORRECT, NOT_ATTEMPTED, WRONG, CheckFailed, Mistake, check, check_mean_length, close
from ftlearn.checks.core import KINDS


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


def test_known_mistakes_give_a_nudge_then_their_hint_then_the_way_to_the_answer(monkeypatch, second_try):
    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")

    def attempt():
        return check(
            "square",
            lambda x: 2 * x,
            square,
            [(3,)],
            mistakes=[Mistake(lambda x: 2 * x, "squaring is x * x, not 2 * x", kind="formula")],
        )

    first, second, third = attempt(), attempt(), attempt()
    assert first.status == second.status == third.status == WRONG
    assert first.message.startswith("Not yet. " + KINDS["formula"]) and "x * x" not in first.message
    assert second.message == "Hint: squaring is x * x, not 2 * x"
    assert third.message.startswith(second.message) and "reveal=True" in third.message
    with pytest.raises(ValueError, match="unknown mistake kind"):
        Mistake(square, "a hint", kind="typo")
    for fn, hint in [
        (lambda texts: sum(len(t) for t in texts) / len(texts), "counted characters"),
        (lambda texts: sum(len(t.split()) for t in texts), "that is the total"),
        (lambda texts: sum(len(t.split(" ")) for t in texts) / len(texts), "empty strings"),
    ]:
        assert hint in second_try(check_mean_length, fn).message


def test_the_welcome_exercises_first_nudges_fit_them(lenient):
    """Issue 27: the welcome exercises have no equation, so no first nudge of theirs may send the learner to one."""
    from ftlearn.checks import check_positive_fraction
    from ftlearn.checks.core import known, reset_session

    assert Mistake(square, "a hint").kind == "logic" and "equation" not in KINDS["logic"]  # the default fits anywhere
    for check_fn in (check_mean_length, check_positive_fraction):
        name = check_fn.__name__.removeprefix("check_")
        for mistake in known(name)["mistakes"]:
            reset_session()
            first = check_fn(mistake.fn)
            assert first.status == WRONG and first.message.startswith("Not yet. "), first
            assert "equation" not in first.message and mistake.hint not in first.message, first


def _exercise_statement(name: str) -> str:
    """The markdown of the solutions/ section whose code runs `check_<name>(...)`, answers-only notes left out."""
    import re
    from pathlib import Path

    import nbformat

    from ftlearn.authoring.exercises import SOLUTIONS_NOTE

    for path in sorted((Path(__file__).resolve().parents[1] / "solutions").glob("*.ipynb")):
        section: list[str] = []
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown" and SOLUTIONS_NOTE not in cell.source:
                lines = cell.source.splitlines()
                headings = [i for i, line in enumerate(lines) if line.startswith("#")]
                section = ["\n".join(lines[headings[-1] :])] if headings else section + [cell.source]
            elif cell.cell_type == "code" and re.search(rf"\bcheck_{name}\(", cell.source):
                return "\n".join(section)
    return ""


# Exercises whose equation is in the lesson, not in their own text: the lesson and the heading of its section.
EQUATION_IN_LESSON = {"warmup_linear": ("notebooks/04_adam.ipynb", "## 7 · Warmup, then linear decay")}


def test_a_nudge_sends_the_learner_to_an_equation_only_where_the_exercise_has_one():
    """Issue 27: a "formula" mistake's nudge says "re-read the lesson's equation"; elsewhere it must be another kind."""
    from pathlib import Path

    import nbformat

    from ftlearn.checks.core import known, registered

    root = Path(__file__).resolve().parents[1]
    uses_formula = sorted(name for name in registered() if any(m.kind == "formula" for m in known(name)["mistakes"]))
    assert len(uses_formula) >= 10  # never pass by finding nothing
    without = []
    for name in uses_formula:
        if name in EQUATION_IN_LESSON:
            lesson, heading = EQUATION_IN_LESSON[name]
            cells = [c.source for c in nbformat.read(root / lesson, as_version=4).cells if heading in c.source]
            has_equation = bool(cells) and "$$" in cells[0].split(heading, 1)[1]
        else:
            statement = _exercise_statement(name)
            assert statement, f"no exercise in solutions/ runs check_{name}"
            has_equation = "$" in statement or "equation" in statement.lower()
        if not has_equation:
            without.append(name)
    assert not without, f"exercises without an equation whose mistakes say kind='formula' (use 'logic'): {without}"


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


def test_a_function_that_returns_none_is_told_so(monkeypatch):
    from ftlearn.checks import check_causal_lm_loss, check_sgd_step

    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")

    def sgd_without_return(theta, grad, lr, weight_decay):
        theta -= lr * (grad + weight_decay * theta)

    for result in (
        check("square", lambda x: None, square, [(3,)]),
        check_sgd_step(sgd_without_return),
        check_causal_lm_loss(lambda logits, labels: None),  # the check's own float() would choke on it
    ):
        assert result.status == WRONG and "returned None: did you forget `return`?" in result.message, result
    # None raised about in the learner's own code is theirs to see
    assert "raised TypeError" in check("square", lambda x: None + 1, square, [(3,)]).message


def test_a_function_that_changes_its_input_in_place_gets_a_hint(monkeypatch):
    from ftlearn.checks import check_sgd_step

    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")

    def sgd_in_place(theta, grad, lr, weight_decay):
        theta -= lr * (grad + weight_decay * theta)
        return theta  # the right numbers, but the caller's theta is gone

    result = check_sgd_step(sgd_in_place)
    assert result.status == WRONG and "changed its input `theta` in place" in result.message

    def sort_in_place(xs):
        xs.sort()
        return xs

    assert "changed its input `xs`" in check("sorted", sort_in_place, sorted, [([3, 1, 2],)]).message

    def fill(xs):  # a reference that changes its input: then the learner's may too
        xs.append(0)
        return len(xs)

    assert check("fill", fill, fill, [([1, 2],)]).status == CORRECT


@pytest.mark.parametrize("where", ["main thread", "other thread"])
def test_a_function_that_never_returns_is_stopped_with_a_clear_message(monkeypatch, where):
    import threading
    import time

    from ftlearn.checks.core import TIME_LIMIT_ENV

    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")
    monkeypatch.setenv(TIME_LIMIT_ENV, "0.5")

    def endless(x):
        end = time.perf_counter() + 4  # "endless": ends on its own in the thread that nothing can stop
        while time.perf_counter() < end:
            try:
                time.sleep(0.01)
            except Exception:  # a learner's catch-all must not swallow the time limit
                pass

    results = []
    start = time.perf_counter()
    if where == "main thread":
        results.append(check("square", endless, square, [(3,)]))
    else:
        worker = threading.Thread(target=lambda: results.append(check("square", endless, square, [(3,)])))
        worker.start()
        worker.join(10)
    assert time.perf_counter() - start < 5
    assert results[0].status == WRONG and "did not finish within 0.5 s" in results[0].message
    assert check("square", square, square, [(3,)]).status == CORRECT  # the timer is gone afterwards
    time.sleep(0.6)  # no stray alarm goes off later
