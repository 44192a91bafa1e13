"""The exercise checker: run a learner's function on cases and answer correct / wrong+hint / not attempted.

Used by every exercise notebook in `solutions/` and `exercises/`; see notebook 00 for the tour.
A check never shows a raw traceback: an exception in the learner's code becomes a short message
naming the exception and the line of their cell it came from.
"""

from __future__ import annotations

import copy
import math
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CORRECT, WRONG, NOT_ATTEMPTED = "correct", "wrong", "not attempted"
STRICT_ENV = "FTLEARN_CHECKS_STRICT"  # "1" in the test suite: anything but correct raises (solutions must pass)
_ICONS = {CORRECT: "✅", WRONG: "❌", NOT_ATTEMPTED: "⏳"}


@dataclass
class CheckResult:
    """What a check found; shows itself as one readable line in a notebook."""

    name: str
    status: str
    message: str = ""

    def __bool__(self) -> bool:
        return self.status == CORRECT

    def __repr__(self) -> str:
        text = f"{_ICONS[self.status]} {self.name}: {self.status}"
        return f"{text}. {self.message}" if self.message else f"{text}."


@dataclass
class Mistake:
    """A known wrong implementation and the hint to give when the learner's output matches it."""

    fn: Callable[..., Any]
    hint: str


def _to_comparable(value: Any) -> Any:
    """Turn tensors and arrays into numpy float64 arrays so one comparison handles them all."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return value.detach().cpu().to(torch.float64 if value.is_floating_point() else value.dtype).numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return value


def describe(value: Any) -> str:
    """A short description of a value for a hint: type, shape and a few numbers."""
    import numpy as np

    value = _to_comparable(value)
    if isinstance(value, np.ndarray):
        flat = value.ravel()[:4]
        preview = ", ".join(f"{x:.4g}" if np.issubdtype(value.dtype, np.floating) else str(x) for x in flat)
        more = ", ..." if value.size > 4 else ""
        return f"array of shape {tuple(value.shape)} [{preview}{more}]"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def close(got: Any, want: Any, rtol: float = 1e-6, atol: float = 1e-8) -> bool:
    """True when got equals want: numbers and arrays within tolerance, containers element-wise."""
    import numpy as np

    got, want = _to_comparable(got), _to_comparable(want)
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(close(got[k], want[k], rtol, atol) for k in want)
        )
    if isinstance(want, (list, tuple)) and not _is_numeric_sequence(want):
        return (
            isinstance(got, (list, tuple))
            and len(got) == len(want)
            and all(close(g, w, rtol, atol) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, (np.ndarray, list, tuple)) or isinstance(got, np.ndarray):
        try:
            g, w = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
        except (TypeError, ValueError):
            return False
        return g.shape == w.shape and bool(np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=False))
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            g = float(got)
        except (TypeError, ValueError):
            return False
        return math.isclose(g, float(want), rel_tol=rtol, abs_tol=atol)
    return got == want


def _is_numeric_sequence(value: Sequence) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)


def _has_nan(value: Any) -> bool:
    import numpy as np

    value = _to_comparable(value)
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return bool(arr.size) and not bool(np.isfinite(arr).all())


def _learner_frame(exc: BaseException) -> str:
    """'line N' of the deepest frame that comes from notebook code (not from a library)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if "ipykernel" in frame.filename or frame.filename.startswith("<"):
            code = (frame.line or "").strip()
            return f" (line {frame.lineno} of your cell: `{code}`)" if code else f" (line {frame.lineno} of your cell)"
    return ""


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(*copy.deepcopy(args))


class CheckFailed(AssertionError):
    """Raised instead of returning a non-correct result when FTLEARN_CHECKS_STRICT=1."""


def finish(result: CheckResult) -> CheckResult:
    """Return the result; in strict mode (the test suite's solutions run) raise unless it is correct."""
    if os.environ.get(STRICT_ENV, "") == "1" and not result:
        raise CheckFailed(repr(result))
    return result


def check(
    name: str,
    fn: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Iterable[tuple],
    *,
    mistakes: Sequence[Mistake] = (),
    compare: Callable[[Any, Any], bool] = close,
    hint: str = "",
) -> CheckResult:
    """Compare `fn` with `reference` on each case (a tuple of arguments) and explain any difference.

    `mistakes` are known wrong versions: when the learner's answer matches one, its hint is shown.
    A function that raises NotImplementedError has not been attempted yet.
    """
    for args in cases:
        args = args if isinstance(args, tuple) else (args,)
        try:
            got = _call(fn, args)
        except NotImplementedError:
            return finish(
                CheckResult(
                    name,
                    NOT_ATTEMPTED,
                    "Replace the `raise NotImplementedError` with your code, then run this cell again.",
                )
            )
        except Exception as exc:  # noqa: BLE001 - any learner error becomes a hint, not a traceback
            return finish(
                CheckResult(name, WRONG, f"Your function raised {type(exc).__name__}: {exc}{_learner_frame(exc)}")
            )
        want = _call(reference, args)
        if compare(got, want):
            continue
        for mistake in mistakes:
            try:
                if compare(got, _call(mistake.fn, args)):
                    return finish(CheckResult(name, WRONG, f"Hint: {mistake.hint}"))
            except Exception:  # noqa: BLE001 - a mistake model that cannot run simply does not match
                continue
        if _has_nan(got) and not _has_nan(want):
            return finish(
                CheckResult(
                    name,
                    WRONG,
                    "Your result has NaN or inf where the answer is finite: look for an overflow (exp of a large "
                    "number?) or a log of 0.",
                )
            )
        detail = (
            f"For input {describe(args[0]) if len(args) == 1 else ', '.join(describe(a) for a in args)} "
            f"you returned {describe(got)}, expected {describe(want)}."
        )
        return finish(CheckResult(name, WRONG, f"{detail} {hint}".strip()))
    return finish(CheckResult(name, CORRECT))
