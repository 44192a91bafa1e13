"""The end-of-lesson quiz check: `check_quiz("04", answers)` marks a learner's answers (questions in ftlearn.quizzes).

Same verdicts as the exercises: correct (with each answer's explanation), wrong (a nudge, then a hint,
per question), not attempted. The answers and explanations of questions not yet answered right are
shown only with `reveal=True`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG, CheckResult, _learner_frame, finish, staged
from ftlearn.quizzes import LETTERS, Question, quiz

_PENDING, _RIGHT, _WRONG = "pending", "right", "wrong"


def _mark(question: Question, given: Any) -> tuple[str, str]:
    """(state, why) for one answer; `why` explains an answer of the wrong form."""
    if given is None or (isinstance(given, str) and not given.strip()):
        return _PENDING, ""
    if question.is_choice:
        letters = LETTERS[: len(question.choices)]
        letter = str(given).strip().lower().rstrip(")").strip()
        if len(letter) != 1 or letter not in letters:
            return _WRONG, f"answer with one letter, {', '.join(letters)} (you gave {given!r})."
        return (_RIGHT, "") if letter == question.answer else (_WRONG, "")
    if isinstance(given, bool):
        return _WRONG, f"answer with a number (you gave {given!r})."
    try:
        value = float(given)
    except (TypeError, ValueError):
        return _WRONG, f"answer with a number (you gave {given!r})."
    return (_RIGHT, "") if abs(value - float(question.answer)) <= question.tolerance else (_WRONG, "")


def _question_lines(number: int, question: Question) -> list[str]:
    lines = [f"q{number}. {question.text}"]
    lines += [f"    {LETTERS[i]}) {choice}" for i, choice in enumerate(question.choices)]
    if not question.is_choice:
        lines.append("    (answer with a number)")
    return lines


def _answer_text(question: Question) -> str:
    if question.is_choice:
        index = LETTERS.index(str(question.answer))
        return f"{question.answer}) {question.choices[index]}"
    return f"{question.answer:g}"


def _template(questions: tuple[Question, ...]) -> str:
    parts = [f'"q{i}": {chr(34) + "a" + chr(34) if q.is_choice else "0.0"}' for i, q in enumerate(questions, 1)]
    return "{" + ", ".join(parts) + "}"


def check_quiz(
    lesson: str | int, answers: Callable[[], Mapping[str, Any]] | Mapping[str, Any], reveal: bool = False
) -> CheckResult:
    """Mark `answers` (a function returning {"q1": "b", "q2": 0.5, ...}, or that dict) against a lesson's quiz."""
    questions = quiz(lesson)
    name = f"quiz_{int(lesson):02d}"
    given: Any = answers
    if callable(answers):
        try:
            given = answers()
        except NotImplementedError:
            given = {}
        except Exception as exc:  # noqa: BLE001 - the learner's error becomes a message, not a traceback
            return finish(
                CheckResult(name, WRONG, f"Your function raised {type(exc).__name__}: {exc}{_learner_frame(exc)}")
            )
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        return finish(
            CheckResult(
                name, WRONG, f"Return a dict of answers such as {_template(questions)}, not {type(given).__name__}."
            )
        )
    unknown = sorted(str(k) for k in given if k not in {f"q{i}" for i in range(1, len(questions) + 1)})
    lines, states = [], []
    for number, question in enumerate(questions, start=1):
        state, why = _mark(question, given.get(f"q{number}"))
        states.append(state)
        lines += _question_lines(number, question)
        if state == _RIGHT:
            lines.append(f"    ✅ right. {question.explanation}")
        elif state == _WRONG:
            message = f"Not yet: {why}" if why else staged(f"{name}.q{number}", question.nudge, question.hint)
            lines.append(f"    ❌ {message}")
        else:
            lines.append("    ⏳ not answered yet.")
        if reveal and state != _RIGHT:
            lines.append(f"    Answer: {_answer_text(question)}. {question.explanation}")
        lines.append("")
    right = states.count(_RIGHT)
    if _WRONG in states:
        status = WRONG
    elif right == len(questions):
        status = CORRECT
    else:
        status = NOT_ATTEMPTED
    summary = f"{right} of {len(questions)} right."
    if status == NOT_ATTEMPTED:
        summary += f" Answer in the function above, e.g. `return {_template(questions)}`, and run this cell again."
    if unknown:
        summary += f" Not questions of this quiz (left out): {', '.join(unknown)}."
    return finish(CheckResult(name, status, summary + "\n\n" + "\n".join(lines).rstrip()))
