"""No check gives its reference answer away unless asked: wrong answers get a nudge, then a hint, never the answer.

The wrong answers are the ones the check tests already use (every known mistake they exercise), plus the
answers every check must survive: a stub, a crash, a missing `return`, and a wrong value no mistake matches.
"""

from __future__ import annotations

import inspect
import re

import pytest
import test_checks_bert
import test_checks_efficiency
import test_checks_gpt2_classifier
import test_checks_judgement
import test_checks_lm_losses
import test_checks_lora
import test_checks_optim
import test_checks_tokenization
import test_checks_trainer
import test_checks_transformer

from ftlearn.checks import check_merge_pair, show_solution
from ftlearn.checks.core import NOT_ATTEMPTED, WRONG, registered, reset_session, solution_text

MIN_LINE = 25  # shorter lines (`return x`, `import torch`) are not an answer by themselves


pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def _wrong_answers_from_the_tests() -> list[tuple]:
    pairs = [(c[0], c[2]) for c in test_checks_bert.CASES]
    pairs += [(c[0], c[2]) for c in test_checks_gpt2_classifier.CASES + test_checks_efficiency.CASES]
    pairs += [(check_fn, wrong) for check_fn, wrong, _ in test_checks_trainer.TABLE + test_checks_judgement.TABLE]
    pairs += [(check_fn, wrong) for check_fn, wrong, _ in test_checks_lora.CASES]
    for table in (test_checks_lm_losses.CASES, test_checks_transformer.CASES):
        pairs += [(check_fn, wrong) for check_fn, _, wrongs in table.values() for wrong, _ in wrongs]
    pairs += [(check_fn, wrong) for check_fn, _, wrongs in test_checks_optim.CASES for wrong, _ in wrongs]
    pairs += [(check_merge_pair, wrong) for wrong, _ in test_checks_tokenization.MISTAKES]
    return pairs


def _stub(*args, **kwargs):
    raise NotImplementedError


def _crash(*args, **kwargs):
    raise ValueError("a bug in the learner's code")


def _no_return(*args, **kwargs):
    return None


def _zero(*args, **kwargs):
    return 0.0


WRONG_ANSWERS = _wrong_answers_from_the_tests() + [
    (check_fn, wrong) for check_fn in registered().values() for wrong in (_crash, _no_return, _zero)
]


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _answer_lines(name: str) -> list[str]:
    """The lines of the reference answer long enough to give something away, without their spaces."""
    lines = []
    for line in solution_text(name).splitlines()[1:]:
        text = line.strip()
        if len(text) >= MIN_LINE and not text.startswith(("#", "def ", '"""', "Reference answer")):
            lines.append(_squeeze(text))
    return lines


def _leaks(name: str, shown: str) -> list[str]:
    """The answer lines of check `name` that `shown` contains (spacing ignored)."""
    flat = _squeeze(shown)
    return [line for line in _answer_lines(name) if line in flat]


def test_the_leak_detector_sees_an_answer_however_it_is_spaced():
    answer = solution_text("adam_step")
    assert _leaks("adam_step", answer)
    assert _leaks("adam_step", "Hint: " + answer.splitlines()[-1].replace(" ", ""))
    assert not _leaks("adam_step", "Hint: no bias correction.")


def _name(check_fn) -> str:
    return check_fn.__name__.removeprefix("check_")


def test_every_check_has_an_answer_to_reveal():
    assert len(registered()) >= 40
    for name in registered():
        assert len(_answer_lines(name)) >= 1, name


@pytest.mark.parametrize(
    "check_fn, wrong", WRONG_ANSWERS, ids=[f"{_name(c)}-{i}" for i, (c, _) in enumerate(WRONG_ANSWERS)]
)
def test_default_output_never_contains_the_reference_answer(check_fn, wrong):
    name = _name(check_fn)
    reset_session()
    messages = [check_fn(wrong) for _ in range(3)]  # the nudge, the hint, the hint again with the way to `reveal`
    assert all(m.status == WRONG for m in messages), messages
    shown = "\n".join(repr(m) for m in messages)
    assert solution_text(name) not in shown
    leaked = _leaks(name, shown)
    assert not leaked, f"{name}'s default output shows its answer: {leaked}"


def test_a_stub_is_told_it_is_not_attempted_and_sees_no_answer():
    for name, check_fn in registered().items():
        result = check_fn(_stub)
        assert result.status == NOT_ATTEMPTED
        assert not _leaks(name, repr(result)), name


def test_reveal_and_show_solution_give_the_answer_on_request(capsys):
    reset_session()
    for name, check_fn in registered().items():
        assert "reveal" in inspect.signature(check_fn).parameters, name
        revealed = check_fn(_zero, reveal=True)
        assert solution_text(name) in revealed.message, name
    show_solution("check_adam_step")
    printed = capsys.readouterr().out
    assert "def _adam_step" in printed and "bias" not in printed.split("\n")[0]
    show_solution("adam_step")
    assert capsys.readouterr().out == printed
    with pytest.raises(ValueError, match="no exercise check named"):
        show_solution("adamm_step")
