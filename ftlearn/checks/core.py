"""The exercise checker: run a learner's function on cases and answer correct / wrong+hint / not attempted.

Used by every exercise notebook in `solutions/` and `exercises/`; see notebook 00 for the tour.
A check never shows a raw traceback: an exception in the learner's code becomes a short message
naming the exception and the line of their cell it came from.

Hints come in stages, counted per check in this Python session (a notebook's kernel): the first wrong
answer gets a nudge about the *kind* of mistake, the second the specific hint. The reference answer is
shown only when asked for: `check_xxx(fn, reveal=True)` or `show_solution("check_xxx")`.
Every verdict is also kept in `outcomes()`, which `ftlearn progress` reads after running a notebook.
"""

from __future__ import annotations

import copy
import functools
import inspect
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


# The kinds of mistake a check can recognise, and the nudge a first wrong answer of that kind gets.
KINDS: dict[str, str] = {
    "sign": "A sign or a direction is flipped somewhere: check which way each term should go.",
    "scale": "Your numbers are off by a constant factor: check what you divide or multiply by (a mean or a sum? "
    "an N, a 2, a 100?).",
    "missing": "A piece of the recipe is missing: a term, a step or an update that the exercise asks for.",
    "order": "The pieces are right but their order is not: check which step must come first.",
    "off_by_one": "Off by one: check where a count, an index or a range starts and stops.",
    "axis": "Right operation, wrong dimension: check which axis you reduce, slice or broadcast over.",
    # "formula" only where the exercise (or the lesson section it builds on) gives an equation; else "logic"
    "formula": "One piece is computed differently from the lesson's equation: re-read it term by term.",
    "logic": "One step does something other than what the exercise (and the lesson behind it) describes: re-read "
    "it, then follow your code one step at a time.",
    "stability": "The math is right, but the computation is not numerically safe for large or small values.",
    "edge": "Typical inputs work, a boundary case does not (an empty part, a zero, an input that already fits).",
    "convention": "The idea is right, but a convention differs: a name, an ordering or the form of what you return.",
    "reading": "That is not what the recorded run shows: plot it again and ask what each curve (or number) says.",
}


@dataclass
class Mistake:
    """A known wrong implementation, the kind of mistake it is (a key of KINDS) and the hint for it.

    The default kind, "logic", holds for any exercise; "formula" sends the learner back to an equation, so it is for
    exercises that have one (tests/test_checks.py holds every check to that).
    """

    fn: Callable[..., Any]
    hint: str
    kind: str = "logic"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown mistake kind {self.kind!r}; use one of {', '.join(KINDS)}")


# ---------------------------------------------------------------- what this session has seen

_WRONG_TRIES: dict[str, int] = {}  # check name -> wrong answers so far in this session
_OUTCOMES: list[CheckResult] = []  # every verdict, in order, for `ftlearn progress`
_KNOWN: dict[str, dict[str, Any]] = {}  # check name -> its reference, mistakes and fallback hint (for reveal, docs)
_LOOKING = [False]  # True while `known` runs a check on a stub only to learn its tables
_REVEAL_NOTE = "Still stuck? Run the check again with `reveal=True` to see the reference answer."


def reset_session() -> None:
    """Forget the wrong tries and verdicts of this session (hints start again from the nudge)."""
    _WRONG_TRIES.clear()
    _OUTCOMES.clear()


def outcomes() -> list[dict[str, str]]:
    """Every check of this session as {"exercise", "status"}: its latest verdict, in the order first checked."""
    last: dict[str, str] = {}
    for result in _OUTCOMES:
        last[result.name] = result.status
    return [{"exercise": name, "status": status} for name, status in last.items()]


def staged(name: str, nudge: str, hint: str = "") -> str:
    """The message for a wrong answer: the nudge on the first try of `name`, the hint from the second on."""
    tries = _WRONG_TRIES[name] = _WRONG_TRIES.get(name, 0) + 1
    if tries == 1 or not hint:
        more = " Run the check again after a change: a second wrong answer gets a more specific hint." if hint else ""
        return f"Not yet. {nudge}{more}"
    return f"Hint: {hint}" + (f" {_REVEAL_NOTE}" if tries >= 3 else "")


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


# ---------------------------------------------------------------- what the learner's call did besides returning

TIME_LIMIT_ENV = "FTLEARN_CHECK_TIME_LIMIT"  # seconds per call of the learner's function
DEFAULT_TIME_LIMIT = 30.0
_NONE_RETURNED = (
    "Your function returned None: did you forget `return`? (An in-place update such as `x += 1` or "
    "`x.add_(1)` changes x but gives back nothing.)"
)


class _TimeLimitReached(BaseException):
    """Raised inside the learner's function when its time is up; a BaseException so `except Exception` lets it by."""


def time_limit() -> float | None:
    """Seconds a check gives one call of the learner's function: $FTLEARN_CHECK_TIME_LIMIT, else 30 (0: none)."""
    raw = os.environ.get(TIME_LIMIT_ENV, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_TIME_LIMIT
    except ValueError:
        seconds = DEFAULT_TIME_LIMIT
    return seconds if seconds > 0 else None


def _call_limited(fn: Callable[..., Any], args: tuple, limit: float | None) -> Any:
    """fn(*args), stopped with _TimeLimitReached after `limit` seconds.

    On the main thread (a Jupyter kernel runs cells there, and so does pytest) a SIGALRM timer interrupts
    the function itself, so an endless loop really stops. Elsewhere (another thread, Windows) the call
    runs in a helper thread that is abandoned when time is up: the check answers, the loop runs on.
    """
    import signal
    import threading

    if limit is None:
        return fn(*args)
    on_main = threading.current_thread() is threading.main_thread()
    if on_main and hasattr(signal, "setitimer") and signal.getitimer(signal.ITIMER_REAL)[0] == 0:

        def stop(signum: int, frame: Any) -> None:
            raise _TimeLimitReached

        previous = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the checking thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True, name="ftlearn-check")
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        raise _TimeLimitReached
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def same(a: Any, b: Any) -> bool:
    """True when `a` and `b` hold exactly the same values (tensors, arrays, containers); unknown objects: True."""
    import numpy as np

    try:
        import torch

        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
                return False
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            a, b = a.detach(), b.detach()
            if a.is_floating_point():  # NaN where NaN was is no change
                return bool(torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num()))
            return bool(torch.equal(a, b))
        if isinstance(a, torch.nn.Module):
            return isinstance(b, torch.nn.Module) and same(a.state_dict(), b.state_dict())
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b) or (a != a and b != b)  # NaN equals NaN here
    except Exception:  # noqa: BLE001 - objects without a usable ==: cannot tell, so no complaint
        return True


def _changed_inputs(fn: Callable[..., Any], before: tuple, after: tuple) -> list[str]:
    """Names of the arguments that a call changed in place (`before` is an untouched copy of `after`)."""
    import inspect

    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        names = []
    return [
        f"`{names[i]}`" if i < len(names) else f"argument {i + 1}"
        for i, (b, a) in enumerate(zip(before, after, strict=True))
        if not same(b, a)
    ]


def _mutates(fn: Callable[..., Any], args: tuple) -> bool:
    """Whether `fn` (a reference) changes its own inputs: then the learner's may too."""
    mine = copy.deepcopy(args)
    fn(*mine)
    return bool(_changed_inputs(fn, args, mine))


def _returned_none_downstream(exc: BaseException) -> bool:
    """A TypeError about None raised in the check's own code (e.g. float(result)), not in the learner's."""
    if not isinstance(exc, TypeError) or "NoneType" not in str(exc):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and os.sep + "checks" + os.sep in frames[-1].filename and "ftlearn" in frames[-1].filename


def _matches(compare: Callable[[Any, Any], bool], got: Any, want: Any) -> bool:
    """compare(got, want), False when the learner's value is of a kind the comparison cannot even look at."""
    try:
        return bool(compare(got, want))
    except Exception:  # noqa: BLE001 - e.g. list(3.0): a wrong type is a wrong answer, not a traceback
        return False


class CheckFailed(AssertionError):
    """Raised instead of returning a non-correct result when FTLEARN_CHECKS_STRICT=1."""


def finish(result: CheckResult) -> CheckResult:
    """Keep the verdict for `outcomes()` and return it; in strict mode (the test suite) raise unless correct."""
    _OUTCOMES.append(result)
    if os.environ.get(STRICT_ENV, "") == "1" and not result and not _LOOKING[0]:
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

    `mistakes` are known wrong versions: when the learner's answer matches one, the first wrong try gets the
    nudge of its kind and later tries its hint. `hint` is the second-stage hint when no known mistake matches;
    it must not give the answer away (that is `reveal`'s job). A function that raises NotImplementedError has
    not been attempted yet.
    """
    _KNOWN[name] = {"reference": reference, "mistakes": list(mistakes), "hint": hint}
    limit = time_limit()
    for args in cases:
        args = args if isinstance(args, tuple) else (args,)
        mine = copy.deepcopy(args)  # the learner's own copy; `args` stays as it was, to compare with
        try:
            got = _call_limited(fn, mine, limit)
        except _TimeLimitReached:
            inputs = describe(args[0]) if len(args) == 1 else ", ".join(describe(a) for a in args)
            return finish(
                CheckResult(
                    name,
                    WRONG,
                    f"Your function did not finish within {limit:g} s (for input {inputs}): an endless loop, or much "
                    f"more work than needed? (The limit is ${TIME_LIMIT_ENV}.)",
                )
            )
        except NotImplementedError:
            return finish(
                CheckResult(
                    name,
                    NOT_ATTEMPTED,
                    "Replace the `raise NotImplementedError` with your code, then run this cell again.",
                )
            )
        except Exception as exc:  # noqa: BLE001 - any learner error becomes a hint, not a traceback
            if _returned_none_downstream(exc):  # the check choked on a None the learner returned
                return finish(CheckResult(name, WRONG, _NONE_RETURNED))
            return finish(
                CheckResult(name, WRONG, f"Your function raised {type(exc).__name__}: {exc}{_learner_frame(exc)}")
            )
        want = _call(reference, args)
        if got is None and want is not None:
            return finish(CheckResult(name, WRONG, _NONE_RETURNED))
        changed = _changed_inputs(fn, args, mine)
        if changed and not _mutates(reference, args):
            return finish(
                CheckResult(
                    name,
                    WRONG,
                    f"Your function changed its input {' and '.join(changed)} in place: the caller's value is not "
                    "the one it passed any more. Build a new value instead (e.g. `theta - lr * grad` rather than "
                    "`theta -= lr * grad`, or work on `x.clone()` / `list(x)`).",
                )
            )
        if _matches(compare, got, want):
            continue
        for mistake in mistakes:
            try:
                if _matches(compare, got, _call(mistake.fn, args)):
                    return finish(CheckResult(name, WRONG, staged(name, KINDS[mistake.kind], mistake.hint)))
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
        return finish(CheckResult(name, WRONG, staged(name, detail, f"{detail} {hint}" if hint else "")))
    return finish(CheckResult(name, CORRECT))


# ---------------------------------------------------------------- reveal: the reference answer, on request

_EXERCISES: dict[str, Callable[..., CheckResult]] = {}  # check name ("adam_step") -> its check function


def exercise(
    answer: Callable[..., Any] | None = None,
) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Register a `check_xxx` function and give it `reveal=False`; `answer` overrides the reference shown."""

    def register(check_fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        name = check_fn.__name__.removeprefix("check_")

        @functools.wraps(check_fn)
        def checked(*args: Any, reveal: bool = False, **kwargs: Any) -> CheckResult:
            result = check_fn(*args, **kwargs)
            if reveal:
                result.message = f"{result.message}\n\n{solution_text(name)}".lstrip()
            return result

        signature = inspect.signature(check_fn)
        reveal_param = inspect.Parameter("reveal", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool)
        checked.__signature__ = signature.replace(parameters=[*signature.parameters.values(), reveal_param])
        checked.answer = answer  # type: ignore[attr-defined]
        _EXERCISES[name] = checked
        return checked

    return register


def registered() -> dict[str, Callable[..., CheckResult]]:
    """Every registered exercise check by name ("adam_step" -> check_adam_step), in registration order."""
    import importlib
    from pathlib import Path

    for module in sorted(Path(__file__).parent.glob("*.py")):  # each check module registers its checks on import
        if module.stem not in ("__init__", "core"):
            importlib.import_module(f"{__package__}.{module.stem}")
    return dict(_EXERCISES)


def _not_attempted(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def known(name: str) -> dict[str, Any]:
    """The reference, mistakes and fallback hint of check `name`, learned by running it once on a stub."""
    if name not in _KNOWN:
        check_fn = registered().get(name)
        if check_fn is None:
            raise KeyError(name)
        saved_outcomes = list(_OUTCOMES)
        _LOOKING[0] = True  # a look, not an answer: no strict-mode failure, no verdict kept
        try:
            check_fn(_not_attempted)
        finally:
            _LOOKING[0] = False
            _OUTCOMES[:] = saved_outcomes
    return _KNOWN[name]


def _sources(fn: Callable[..., Any], seen: set[str]) -> list[str]:
    """The source of `fn` and of the ftlearn functions it calls (helpers, library code it delegates to)."""
    fn = inspect.unwrap(fn)
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return []
    key = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
    if key in seen:
        return []
    seen.add(key)
    out = [f"# {fn.__module__}.{fn.__qualname__}\n{inspect.cleandoc(source) if source.startswith(' ') else source}"]
    code = getattr(fn, "__code__", None)
    module = inspect.getmodule(fn)
    names = set(code.co_names) if code else set()
    for imported in _imported_names(source):
        names.add(imported)
    for called in sorted(names):
        target = getattr(module, called, None)
        if target is None:
            target = _import_from_source(source, called)
        if inspect.isfunction(target) and str(getattr(target, "__module__", "")).startswith("ftlearn"):
            if ".checks." in target.__module__ and not called.startswith("_"):
                continue  # another check's machinery, not part of the answer
            if target.__module__ == "ftlearn.checks.core":
                continue
            out.extend(_sources(target, seen))
    return out


def _imported_names(source: str) -> list[str]:
    import re

    return [
        n.strip() for group in re.findall(r"from ftlearn\.[\w.]+ import ([\w, ]+)", source) for n in group.split(",")
    ]


def _import_from_source(source: str, name: str) -> Any:
    import importlib
    import re

    for module_name, group in re.findall(r"from (ftlearn\.[\w.]+) import ([\w, ]+)", source):
        if name in [n.strip() for n in group.split(",")]:
            return getattr(importlib.import_module(module_name), name, None)
    return None


def _check_name(name: str | Callable[..., Any]) -> str:
    if callable(name):
        name = getattr(name, "__name__", "")
    name = str(name).removeprefix("check_")
    if name not in registered():
        raise ValueError(f"no exercise check named {name!r}; known: {', '.join(sorted(registered()))}")
    return name


def solution_text(name: str | Callable[..., Any]) -> str:
    """The reference answer of an exercise check, as readable source code (what `reveal=True` shows)."""
    name = _check_name(name)
    check_fn = registered()[name]
    answer = getattr(check_fn, "answer", None) or known(name)["reference"]
    if isinstance(answer, str):
        import importlib

        module_name, _, attr = answer.partition(":")
        answer = getattr(importlib.import_module(module_name), attr)
    body = "\n".join(_sources(answer, set())) or "(the reference's source is not available)"
    return f"Reference answer for `{name}` (yours may differ and still be right):\n{body.rstrip()}"


def show_solution(name: str | Callable[..., Any]) -> None:
    """Print the reference answer of an exercise check: `show_solution("check_adam_step")`."""
    print(solution_text(name))
