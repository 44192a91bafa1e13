"""Judgement exercises: read a recorded run and decide (solutions 08 and 11). The runs are files, not typed numbers.

`scripts/make_judgement_data.py` made the files in `ftlearn/checks/data/` with the course's own code
(`ftlearn.train.fit` on the IMDB sample); each records how it was made under "made". Every right answer
below is computed from those files, so the checks stay right if the files are made again. A learner's
answer is graded into RIGHT or the name of a known wrong answer, whose hint is shown; no hint names the
right answer. `reveal=True` shows the reasoning: each check's `_xxx_answer` function, which works the answer
out from the recorded run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftlearn.checks.core import CheckResult, Mistake, check, close, exercise
from ftlearn.history import History

DATA_DIR = Path(__file__).resolve().parent / "data"
# each recorded run, and the keys its file must have
RECORDED = {
    "bert_epochs": ("made", "history", "test_labels", "test_correct_by_epoch"),
    "lm_lr_sweep": ("made", "base_perplexity", "runs"),
    "diverged_run": ("made", "history", "stopped_by"),
}
RIGHT = "<graded right>"  # what the grader returns for a right answer (no hint text contains it)
REMAKE = "Reinstall the course, or make the file again with `python scripts/make_judgement_data.py`."


class RecordedRunError(ValueError):
    """A recorded run that is missing or damaged."""


def load_recorded(name: str) -> dict:
    """One recorded run (a key of RECORDED) as plain data, checked for the keys the exercises read."""
    if name not in RECORDED:
        raise RecordedRunError(f"No recorded run {name!r}; there are {', '.join(RECORDED)}.")
    path = DATA_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordedRunError(f"{path} is missing. {REMAKE}") from None
    except (OSError, ValueError) as exc:
        raise RecordedRunError(f"{path} cannot be read ({exc}). {REMAKE}") from None
    missing = [key for key in RECORDED[name] if key not in data] if isinstance(data, dict) else list(RECORDED[name])
    if missing:
        raise RecordedRunError(f"{path} lacks {', '.join(missing)}. {REMAKE}")
    return data


def recorded_history(name: str) -> History:
    """The History of a recorded run ("bert_epochs" or "diverged_run"), ready for `.plot()`."""
    return History.from_dict(load_recorded(name)["history"])


def lr_sweep() -> tuple[dict[float, float], float]:
    """Lesson 11's recorded sweep: {lr: held-out perplexity (inf if the run diverged)}, and the untrained model's."""
    data = load_recorded("lm_lr_sweep")
    return {run["lr"]: float(run["perplexity"]) for run in data["runs"]}, float(data["base_perplexity"])


def _judge(
    name: str,
    fn: Callable,
    args: tuple,
    grade: Callable[[Any], str],
    hints: dict[str, tuple[str, str]],
    hint: str,
) -> CheckResult:
    """Grade `fn(*args)` with `grade` (RIGHT or a key of `hints`: (hint, kind)) through the one checker."""

    def graded(*a: Any) -> str | None:
        answer = fn(*a)
        return None if answer is None else grade(answer)  # None: the checker's "did you forget `return`?"

    return check(
        name,
        graded,
        lambda *a: RIGHT,
        [args],
        compare=lambda got, want: got == want,
        mistakes=[Mistake(lambda *a, key=key: key, text, kind=kind) for key, (text, kind) in hints.items()],
        hint=hint,
    )


def _letter(answer: Any, choices: str) -> str | None:
    """'b' for 'b', 'B', ' (b) '...; None when the answer is not one of the choices."""
    text = str(answer).strip().strip("().").lower()
    return text if len(text) == 1 and text in choices else None


def _pair(answer: Any) -> tuple[Any, Any] | None:
    return tuple(answer) if isinstance(answer, (tuple, list)) and len(answer) == 2 else None


# ---- which epoch to keep (solutions 08) ---------------------------------------------------------

EPOCH_REASONS = {
    "a": "it has the lowest training loss",
    "b": "it has the lowest validation loss: after it the validation loss rises while the training loss keeps "
    "falling, so the model learns its training reviews rather than reviews in general",
    "c": "it has the highest validation accuracy",
    "d": "it is the last epoch, so the model has learned the most",
}


def _epoch_facts(history: History) -> dict:
    evals = history.evals
    epochs = [round(e["epoch"]) for e in evals]
    losses, accuracies = [e["loss"] for e in evals], [e["accuracy"] for e in evals]
    return {
        "epochs": epochs,
        "best": epochs[losses.index(min(losses))],
        "top_accuracy": epochs[accuracies.index(max(accuracies))],
        "n_val": evals[0].get("n"),
    }


def _epoch_answer(history: History) -> tuple[int, str]:
    """The epoch to keep, and why: reason (b)."""
    # The training loss falls epoch after epoch, so its lowest point is always the last epoch and says nothing
    # about new reviews. The validation loss is measured on reviews the model never trains on; once it turns up
    # while the training loss keeps falling, the model is learning its training reviews rather than reviews in
    # general. Keep the epoch where the validation loss is lowest (it uses every review's probability, so it is a
    # smoother signal than accuracy, which moves in steps of one review).
    val_losses = [e["loss"] for e in history.evals]
    lowest = val_losses.index(min(val_losses))
    return round(history.evals[lowest]["epoch"]), "b"


@exercise(answer=_epoch_answer)
def check_epoch_choice(fn: Callable) -> CheckResult:
    """Check `fn(history)` -> (epoch to keep, reason letter) on the recorded BERT run (solutions 08)."""
    history = recorded_history("bert_epochs")
    facts = _epoch_facts(history)
    n_val = facts["n_val"] or "the"

    def grade(answer: Any) -> str:
        pair = _pair(answer)
        if pair is None:
            return "shape"
        epoch, reason = pair
        try:
            epoch = int(epoch)
        except (TypeError, ValueError):
            return "shape"
        letter = _letter(reason, "abcd")
        if epoch != facts["best"]:
            if epoch not in facts["epochs"]:
                return "zero-based" if epoch + 1 in facts["epochs"] else "no such epoch"
            if epoch == facts["top_accuracy"]:
                return "accuracy"
            if epoch == facts["epochs"][-1]:
                return "last"
            return "other epoch"
        if letter is None:
            return "letter"
        return RIGHT if letter == "b" else f"reason {letter}"

    hints = {
        "shape": ("return a pair: (epoch number, reason letter), e.g. `return 3, 'a'`.", "convention"),
        "no such epoch": (
            "that epoch is not in history.evals: the run evaluated after each epoch, 1, 2, ...",
            "edge",
        ),
        "zero-based": ("epochs count from 1 here (history.evals[i]['epoch']), not from 0.", "off_by_one"),
        "accuracy": (
            f"validation accuracy on {n_val} reviews moves in steps of one review and is noisy from epoch to epoch: "
            "which recorded number uses every review's probability, and so ranks the epochs more smoothly?",
            "reading",
        ),
        "last": (
            "the training loss is lowest at the end, but compare it with the validation loss over the epochs: "
            "what happens to the gap between them?",
            "reading",
        ),
        "other epoch": (
            "look again at each recorded curve, epoch by epoch: which one tells you when to stop?",
            "reading",
        ),
        "letter": ("the reason is one letter: a, b, c or d.", "convention"),
        "reason a": (
            "the training loss only falls: keeping its lowest point always keeps the last epoch, however badly the "
            "model does on new reviews.",
            "reading",
        ),
        "reason c": (
            "accuracy on a few hundred reviews is too coarse and noisy to rank epochs: which reason rests on a "
            "smoother signal?",
            "reading",
        ),
        "reason d": (
            "more training is not better here: after some epoch the model fits its training reviews at the expense "
            "of new ones.",
            "reading",
        ),
    }
    return _judge("epoch_choice", fn, (history,), grade, hints, "Plot the run (history.plot()) and read history.evals.")


# ---- does A beat B? the paired standard error (solutions 08) ------------------------------------

VERDICTS = ("A better", "B better", "within 2 standard errors")


def _paired_ref(correct_a: list[int], correct_b: list[int]) -> dict:
    from ftlearn.metrics import paired_accuracy_difference

    report = paired_accuracy_difference([1] * len(correct_a), correct_a, correct_b)  # right = predicted the 1
    return {key: report[key] for key in ("difference", "se", "verdict")}


def _paired_variant(se_rule: str = "paired", threshold: float = 2.0, flip: bool = False) -> Callable:
    import numpy as np

    def wrong(correct_a: list[int], correct_b: list[int]) -> dict:
        a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
        if flip:
            a, b = b, a
        g, n = a - b, len(a)
        se = {
            "paired": g.std(ddof=1) / np.sqrt(n),
            "ddof0": g.std(ddof=0) / np.sqrt(n),
            "no sqrt": g.std(ddof=1),
            "over n": g.std(ddof=1) / n,
            "unpaired": np.sqrt(a.mean() * (1 - a.mean()) / n + b.mean() * (1 - b.mean()) / n),
        }[se_rule]
        diff = g.mean()
        verdict = VERDICTS[0] if diff > threshold * se else VERDICTS[1] if diff < -threshold * se else VERDICTS[2]
        return {"difference": float(diff), "se": float(se), "verdict": verdict}

    return wrong


def _sign_only(correct_a: list[int], correct_b: list[int]) -> dict:
    out = _paired_ref(correct_a, correct_b)
    out["verdict"] = VERDICTS[0] if out["difference"] > 0 else VERDICTS[1] if out["difference"] < 0 else VERDICTS[2]
    return out


def _paired_cases() -> list[tuple]:
    """Two made-up pairs of models on the same reviews, then the recorded run: the kept epoch (A) and the last (B)."""
    # 200 reviews; B is right on a subset of A's: 10 reviews apart, a gap that only the pairing shows is real
    a1 = [1] * 150 + [0] * 50
    b1 = [1] * 140 + [0] * 60
    # 120 reviews; the models disagree often and B wins slightly more
    a2 = ([1, 0, 1, 1, 0, 0] * 20)[:120]
    b2 = ([0, 1, 1, 1, 1, 0] * 20)[:120]
    # 100 reviews; they disagree on 20, A wins 11 of them: a difference well within one standard error
    a3 = [1] * 70 + [1] * 11 + [0] * 9 + [0] * 10
    b3 = [1] * 70 + [0] * 11 + [1] * 9 + [0] * 10
    data = load_recorded("bert_epochs")
    facts = _epoch_facts(History.from_dict(data["history"]))
    kept = data["test_correct_by_epoch"][facts["epochs"].index(facts["best"])]
    return [(a1, b1), (a2, b2), (a3, b3), (kept, data["test_correct_by_epoch"][-1])]


def _same_report(got: Any, want: dict) -> bool:
    if not isinstance(got, dict) or not all(k in got for k in want):
        return False
    verdict = str(got["verdict"]).strip()
    return close(got["difference"], want["difference"]) and close(got["se"], want["se"]) and verdict == want["verdict"]


@exercise()
def check_paired_comparison(fn: Callable) -> CheckResult:
    """Check `fn(correct_a, correct_b)` -> {difference, se, verdict}: A minus B, paired (solutions 08)."""
    return check(
        "paired_comparison",
        fn,
        _paired_ref,
        _paired_cases(),
        compare=_same_report,
        mistakes=[
            Mistake(
                _paired_variant("unpaired"),
                "that standard error treats A and B as two independent samples. They were tested on the *same* "
                "reviews: take the per-review differences g = a - b and use the standard error of their mean.",
                kind="formula",
            ),
            Mistake(
                _paired_variant("ddof0"),
                "use the sample standard deviation of g, dividing by n - 1 (ddof=1).",
                kind="off_by_one",
            ),
            Mistake(
                _paired_variant("no sqrt"),
                "that is the standard deviation of g; the standard error of its mean divides it by the square root "
                "of n.",
                kind="missing",
            ),
            Mistake(
                _paired_variant("over n"),
                "divide the standard deviation by the *square root* of n, not by n.",
                kind="scale",
            ),
            Mistake(
                _paired_variant(flip=True),
                "the difference is A minus B (and the verdict follows its sign).",
                kind="sign",
            ),
            Mistake(_paired_variant(threshold=1.0), "the course's rule is 2 standard errors, not 1.", kind="scale"),
            Mistake(
                _sign_only,
                "any non-zero difference got a winner: the verdict should name one only when the difference is more "
                "than 2 standard errors from 0.",
                kind="missing",
            ),
        ],
        hint="Work with the per-review differences between A and B: the difference is their mean, the standard error "
        f"that of their mean, and the verdict (one of {', '.join(VERDICTS)}) names a winner only when the difference "
        "is far from 0 by the lesson's rule.",
    )


# ---- which learning rate (solutions 11) ---------------------------------------------------------


def _lr_regions(sweep: dict[float, float]) -> tuple[float, set[float]]:
    """The best lr, and the accepted ones: within 5% of the best, with a larger neighbour still within 25%."""
    grid = sorted(sweep)
    best = min(grid, key=lambda lr: sweep[lr])
    floor = sweep[best]
    accepted = {best}
    for i, lr in enumerate(grid):
        larger = grid[i + 1] if i + 1 < len(grid) else None
        if sweep[lr] <= 1.05 * floor and larger is not None and sweep[larger] <= 1.25 * floor:
            accepted.add(lr)
    return best, accepted


def _lr_answer(sweep: dict[float, float], base: float) -> float:
    """The learning rate to use: the bottom of the valley of the sweep."""
    # Too small a learning rate barely moves the weights in a short run (the perplexity stays high); too large a
    # one overshoots (the perplexity climbs above the untrained model's, or becomes inf when the run diverges).
    # Take the lowest held-out perplexity; an lr just as good whose larger neighbour is already much worse sits
    # at the edge of the cliff, where a longer run or another seed can tip over.
    finite = {lr: ppl for lr, ppl in sweep.items() if math.isfinite(ppl) and ppl < base}
    return min(finite, key=finite.get)


@exercise(answer=_lr_answer)
def check_lr_choice(fn: Callable) -> CheckResult:
    """Check `fn(sweep, base)` -> the learning rate to use, read from lesson 11's recorded sweep (solutions 11)."""
    sweep, base = lr_sweep()
    best, accepted = _lr_regions(sweep)
    floor = sweep[best]

    def grade(answer: Any) -> str:
        try:
            lr = float(answer)
        except (TypeError, ValueError):
            return "shape"
        on_grid = [x for x in sweep if math.isclose(x, lr, rel_tol=1e-6)]
        if not on_grid:
            return "off grid"
        lr = on_grid[0]
        if lr in accepted:
            return RIGHT
        if not math.isfinite(sweep[lr]):
            return "diverged"
        if sweep[lr] > base:
            return "worse than none"
        if lr < best:
            return "too small"
        return "edge" if sweep[lr] <= 1.05 * floor else "too large"

    hints = {
        "shape": ("return one learning rate, a number such as 1e-3.", "convention"),
        "off grid": (
            "pick one of the swept values: between two points of the grid the sweep tells you nothing.",
            "edge",
        ),
        "diverged": ("that run diverged (its perplexity is infinite): far too large.", "reading"),
        "worse than none": (
            "with that learning rate the model ends *worse* than before fine-tuning: too large.",
            "reading",
        ),
        "too small": ("too small: in a short run the weights barely move, and the perplexity stays high.", "reading"),
        "too large": (
            "past the bottom of the valley: the perplexity there is clearly higher than the best.",
            "reading",
        ),
        "edge": (
            "nearly as good as the best here, but its larger neighbour on the grid is already much worse: it sits "
            "at the edge of the cliff, where a longer run (or another seed) can tip over. Step back into the valley.",
            "reading",
        ),
    }
    return _judge("lr_choice", fn, (sweep, base), grade, hints, "Plot perplexity against lr on a log axis.")


# ---- a run that diverged (solutions 11) ---------------------------------------------------------

DIVERGENCE_CAUSES = {
    "a": "a bad batch: one spike, after which the loss comes back down",
    "b": "the learning rate is too high: the loss falls while the warm-up's learning rate is small, then climbs as "
    "the learning rate grows, until it is no longer a finite number",
    "c": "overfitting: the model memorises its training data",
    "d": "the learning rate is too low: the loss hardly moves",
}


def _first_rise(history: History) -> int:
    """Index of the first step whose training loss is above the first step's."""
    return next(i for i, loss in enumerate(history.loss) if loss > history.loss[0])


def _divergence_answer(history: History) -> tuple[str, float]:
    """The cause of the divergence, reason (b), and the learning rate at which the trouble started."""
    # The loss falls while the warm-up's learning rate is small, then climbs step after step as the rate grows,
    # until it is no longer a finite number: no single spike (a bad batch), no falling training loss beside a
    # rising validation loss (overfitting), no flat loss (too small a rate). The first step whose training loss
    # is above the first step's marks where the rate became too large.
    first_rise = next(i for i, loss in enumerate(history.loss) if loss > history.loss[0])
    return "b", history.lr[first_rise]


@exercise(answer=_divergence_answer)
def check_divergence(fn: Callable) -> CheckResult:
    """Check `fn(history)` -> (cause letter, lr where the loss first rose above its start) (solutions 11)."""
    history = recorded_history("diverged_run")
    rise = _first_rise(history)
    want_lr = history.lr[rise]

    def grade(answer: Any) -> str:
        pair = _pair(answer)
        if pair is None:
            return "shape"
        cause, lr = pair
        letter = _letter(cause, "abcd")
        if letter is None:
            return "letter"
        if letter != "b":
            return f"cause {letter}"
        try:
            lr = float(lr)
        except (TypeError, ValueError):
            return "shape"
        if math.isclose(lr, want_lr, rel_tol=1e-6):
            return RIGHT
        if lr > history.lr[-1] * (1 + 1e-6):
            return "peak"
        if math.isclose(lr, history.lr[-1], rel_tol=1e-6):
            return "last lr"
        if rise > 0 and math.isclose(lr, history.lr[rise - 1], rel_tol=1e-6):
            return "one early"
        if lr == history.step[rise] or lr == rise:
            return "step"
        return "other lr"

    hints = {
        "shape": ("return a pair: (cause letter, learning rate), e.g. `return 'a', 0.01`.", "convention"),
        "letter": ("the cause is one letter: a, b, c or d.", "convention"),
        "cause a": (
            "a bad batch gives one spike and the loss recovers; here the loss keeps climbing, step after step.",
            "reading",
        ),
        "cause c": (
            "overfitting shows as the validation loss rising while the *training* loss falls; here the training "
            "loss itself climbs.",
            "reading",
        ),
        "cause d": ("too small a learning rate makes the loss fall slowly; it does not make it climb.", "reading"),
        "last lr": (
            "that is the learning rate of the last step, when the run had already blown up; look for where the "
            "trouble started.",
            "reading",
        ),
        "peak": (
            "that is the schedule's peak, which the run never reached; read the learning rate the run used when its "
            "loss first rose.",
            "reading",
        ),
        "one early": (
            "one step too early: the step you want is the first whose loss is *higher* than the first step's.",
            "off_by_one",
        ),
        "step": ("that is a step number; return the learning rate used at that step (history.lr).", "convention"),
        "other lr": (
            "read the run step by step: where does the training loss first climb above its starting value, and which "
            "learning rate did that step use?",
            "reading",
        ),
    }
    return _judge("divergence", fn, (history,), grade, hints, "Plot the run: history.plot().")
