"""Checks for the exercises of solutions/02_cross_entropy.ipynb.

Log-softmax, cross-entropy, ignore_index, label smoothing, binary cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ftlearn.checks.core import CheckResult, Mistake, _to_comparable, check, close, exercise

_D = torch.float64


def _t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=_D)


def close_or_same_nan(got, want) -> bool:
    """Like `close`, but NaN/inf in the same places count as equal, so an unstable answer can match its mistake."""
    import numpy as np

    g, w = _to_comparable(got), _to_comparable(want)
    if isinstance(g, np.ndarray) and isinstance(w, np.ndarray) and g.shape == w.shape:
        both_bad = ~np.isfinite(g) & ~np.isfinite(w)
        same = np.where(both_bad, True, np.isclose(np.nan_to_num(g), np.nan_to_num(w), rtol=1e-6, atol=1e-8))
        return bool(same.all()) and bool((np.isfinite(g) == np.isfinite(w)).all())
    return close(got, want)


def _tensor_answer(fn):
    """Call the learner's function and hand back a float64 tensor (numbers and arrays accepted)."""

    def wrapped(*args):
        out = fn(*args)
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(out, dtype=_D)

    return wrapped


# ---------------------------------------------------------------- log-softmax
_LOGITS_CASES = [
    (_t([1.0, 2.0, 3.0]),),
    (_t([[0.5, -1.0, 2.0, 0.0], [3.0, 3.0, 3.0, 3.0]]),),
    (_t([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 5.0]]),),  # exp(1000) overflows float64
    (_t([[1e4, 0.0, -1e4]]),),
]


def _naive_log_softmax(z):
    return torch.log(torch.exp(z) / torch.exp(z).sum(dim=-1, keepdim=True))


@exercise(answer="ftlearn.losses:log_softmax")
def check_log_softmax(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check `fn(logits)`: log-softmax over the last dimension, finite even at logits of 1e4 (notebook 02)."""
    return check(
        "log_softmax",
        _tensor_answer(fn),
        lambda z: torch.log_softmax(z, dim=-1),
        _LOGITS_CASES,
        compare=close_or_same_nan,
        mistakes=[
            Mistake(
                _naive_log_softmax,
                "unstable softmax: exp(1000) overflows to inf. Subtract the row maximum m first: "
                "log_softmax(z) = (z - m) - log(sum(exp(z - m))).",
                kind="stability",
            ),
            Mistake(
                lambda z: z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True)),
                "z - log(sum(exp(z))) overflows for large z: compute log-sum-exp as m + log(sum(exp(z - m))) with m "
                "the row maximum.",
                kind="stability",
            ),
            Mistake(
                lambda z: torch.log(torch.softmax(z, dim=-1)),
                "log(softmax(z)) gives log(0) = -inf when a probability underflows: compute "
                "(z - m) - log(sum(exp(z - m))) directly.",
                kind="stability",
            ),
            Mistake(
                lambda z: z - torch.log(torch.exp(z - z.amax(-1, keepdim=True)).sum(-1, keepdim=True)),
                "you shifted by the maximum m inside the exp but forgot it outside: subtract m from z as well.",
                kind="formula",
            ),
            Mistake(
                lambda z: torch.softmax(z, dim=-1),
                "missing log: you returned the probabilities, not their logs.",
                kind="missing",
            ),
            Mistake(
                lambda z: torch.log_softmax(z, dim=0),
                "wrong dimension: normalise over the last dimension (classes), dim=-1.",
                kind="axis",
            ),
        ],
    )


# ---------------------------------------------------------------- cross-entropy
_CE_CASES = [
    (_t([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]]), torch.tensor([0, 2])),
    (_t([[0.0, 0.0], [1.0, -1.0], [3.0, 4.0], [-2.0, 2.0]]), torch.tensor([1, 0, 0, 1])),
    (_t([[1000.0, 0.0, -1000.0], [0.0, 1e4, 0.0]]), torch.tensor([1, 1])),  # large logits
]


def _pick(logp, target):
    return logp[torch.arange(len(target)), target]


@exercise(answer="ftlearn.losses:cross_entropy")
def check_cross_entropy(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check `fn(logits, target)`: mean of -log softmax(logits)[i, target[i]], stable at large logits (notebook 02)."""
    return check(
        "cross_entropy",
        _tensor_answer(fn),
        torch.nn.functional.cross_entropy,
        _CE_CASES,
        compare=close_or_same_nan,
        mistakes=[
            Mistake(
                lambda z, y: -_pick(torch.log(torch.exp(z) / torch.exp(z).sum(1, keepdim=True)), y).mean(),
                "unstable softmax: exp of a large logit overflows. Use a log-softmax that subtracts the row maximum "
                "first.",
                kind="stability",
            ),
            Mistake(
                lambda z, y: -_pick(torch.log(torch.softmax(z, 1)), y).mean(),
                "log(softmax) underflows to log(0) = -inf for very wrong predictions: use log_softmax directly.",
                kind="stability",
            ),
            Mistake(
                lambda z, y: _pick(torch.log_softmax(z, 1), y).mean(),
                "sign: the loss is the *negative* log-probability of the correct class.",
                kind="sign",
            ),
            Mistake(
                lambda z, y: -_pick(torch.softmax(z, 1), y).mean(),
                "missing log: cross-entropy averages -log p(correct), not -p(correct).",
                kind="missing",
            ),
            Mistake(
                lambda z, y: 1 - _pick(torch.softmax(z, 1), y).mean(),
                "missing log: cross-entropy averages -log p(correct).",
                kind="missing",
            ),
            Mistake(
                lambda z, y: -_pick(torch.log_softmax(z, 1), y).sum(),
                "you returned the sum: average over the rows (the 'mean' reduction).",
                kind="scale",
            ),
            Mistake(
                lambda z, y: -torch.log_softmax(z, 1).mean(),
                "you averaged -log p over every class; pick the log-probability of the target class in each row.",
                kind="formula",
            ),
            Mistake(
                lambda z, y: -_pick(torch.log_softmax(z, 0), y).mean(),
                "wrong dimension: the softmax runs over classes, dim=1, not over the batch.",
                kind="axis",
            ),
        ],
    )


# ---------------------------------------------------------------- ignore_index
_IGNORE = -100
_IGN_CASES = [
    (
        _t([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [1.0, 1.0, 1.0], [0.0, -3.0, 3.0]]),
        torch.tensor([0, _IGNORE, 2, _IGNORE]),
    ),
    (_t([[0.3, -0.2], [1.5, 0.5], [-1.0, 2.0]]), torch.tensor([_IGNORE, 1, 0])),
    (_t([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([1, 0])),
]


def _ce_ignore(z, y, ignore_index=_IGNORE):
    return torch.nn.functional.cross_entropy(z, y, ignore_index=ignore_index)


def _masked(z, y):
    keep = y != _IGNORE
    return -_pick(torch.log_softmax(z, 1), torch.where(keep, y, 0)) * keep, keep


@exercise()
def check_cross_entropy_ignore_index(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(logits, target, ignore_index=-100)`: mean CE over the rows not ignored (notebook 02)."""

    def explained(*args):
        try:
            return _tensor_answer(fn)(*args)
        except IndexError as exc:
            if str(_IGNORE) in str(exc):  # torch refuses -100 as an index: say why it got there
                raise IndexError(
                    f"{exc}. The ignored target {_IGNORE} was used as a class index: leave those rows out before "
                    "picking log-probabilities"
                ) from None
            raise

    return check(
        "cross_entropy_ignore_index",
        explained,
        _ce_ignore,
        _IGN_CASES,
        compare=close_or_same_nan,
        mistakes=[
            Mistake(
                lambda z, y: _masked(z, y)[0].sum() / len(y),
                "you divided by all rows: the mean runs over the rows that are *not* ignored (padding must not dilute "
                "the loss).",
                kind="scale",
            ),
            Mistake(
                lambda z, y: _masked(z, y)[0].sum(),
                "you returned the sum: divide by the number of rows that are not ignored.",
                kind="scale",
            ),
            Mistake(
                lambda z, y: -_pick(torch.log_softmax(z, 1), y % z.shape[1]).mean(),
                "ignored rows still count: a target of -100 indexes from the end in Python. Drop those rows before "
                "averaging.",
                kind="edge",
            ),
            Mistake(
                lambda z, y: -_pick(torch.log_softmax(z, 1), torch.where(y != _IGNORE, y, 0)).mean(),
                "ignored rows still count (you replaced -100 by class 0): leave them out of both the sum and the "
                "count.",
                kind="edge",
            ),
        ],
    )


# ---------------------------------------------------------------- label smoothing
_LS_CASES = [
    (_t([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]]), torch.tensor([0, 2]), 0.1),
    (_t([[0.0, 3.0, -1.0, 0.5]]), torch.tensor([1]), 0.3),
    (_t([[1.0, -1.0], [0.0, 0.0]]), torch.tensor([0, 1]), 0.0),
]


def _ls_ref(z, y, eps):
    return torch.nn.functional.cross_entropy(z, y, label_smoothing=eps)


def _ls_terms(z, y):
    logp = torch.log_softmax(z, 1)
    return -_pick(logp, y), -logp  # (N,), (N, C)


@exercise()
def check_label_smoothing(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """Check `fn(logits, target, eps)`: mean CE against the target (1 - eps) * one_hot + eps / C (notebook 02)."""

    def off_classes(z, y, eps):  # the other common convention: eps spread over the C - 1 wrong classes only
        nll, all_nll = _ls_terms(z, y)
        c = z.shape[1]
        return ((1 - eps) * nll + eps * (all_nll.sum(1) - nll) / (c - 1)).mean()

    return check(
        "label_smoothing",
        _tensor_answer(fn),
        _ls_ref,
        _LS_CASES,
        mistakes=[
            Mistake(
                off_classes,
                "PyTorch spreads eps over *all* C classes (the correct one included): "
                "target = (1 - eps) * one_hot + eps / C.",
                kind="formula",
            ),
            Mistake(
                lambda z, y, eps: (_ls_terms(z, y)[0] + eps * _ls_terms(z, y)[1].mean(1)).mean(),
                "the true class keeps weight (1 - eps), not 1: multiply -log p(target) by (1 - eps).",
                kind="formula",
            ),
            Mistake(
                lambda z, y, eps: ((1 - eps) * _ls_terms(z, y)[0] + eps * _ls_terms(z, y)[1].sum(1)).mean(),
                "each class gets eps / C, so the uniform part is eps times the *mean* of -log p over classes, not the "
                "sum.",
                kind="scale",
            ),
            Mistake(
                lambda z, y, eps: ((1 - eps) * _ls_terms(z, y)[0]).mean(),
                "you dropped the uniform part: add eps * mean over classes of -log p.",
                kind="missing",
            ),
            Mistake(
                lambda z, y, eps: _ls_terms(z, y)[0].mean(),
                "that is plain cross-entropy, eps is not used: mix (1 - eps) * (-log p(target)) with eps * mean over "
                "classes of -log p.",
                kind="missing",
            ),
        ],
    )


# ---------------------------------------------------------------- binary cross-entropy
_BCE_CASES = [
    (_t([-2.0, 0.0, 0.5, 3.0]), _t([0.0, 1.0, 1.0, 0.0])),
    (_t([-800.0, 800.0, 40.0, -40.0]), _t([1.0, 0.0, 1.0, 0.0])),  # sigmoid saturates: log(0) in the naive formula
]


def _bce_naive(z, y):
    p = torch.sigmoid(z)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


@exercise(answer="ftlearn.losses:binary_cross_entropy_with_logits")
def check_bce_with_logits(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check `fn(z, y)`: mean binary cross-entropy from logits, finite for |z| in the hundreds (notebook 02)."""
    return check(
        "bce_with_logits",
        _tensor_answer(fn),
        torch.nn.functional.binary_cross_entropy_with_logits,
        _BCE_CASES,
        compare=close_or_same_nan,
        mistakes=[
            Mistake(
                _bce_naive,
                "sigmoid(800) rounds to exactly 1, so log(1 - p) = log(0) = -inf: work from the logit, e.g. "
                "max(z, 0) - z*y + log(1 + exp(-|z|)).",
                kind="stability",
            ),
            Mistake(
                lambda z, y: -(y * torch.log(torch.sigmoid(z))).mean(),
                "missing the (1 - y) * log(1 - p) term for negative examples.",
                kind="missing",
            ),
            Mistake(
                lambda z, y: (
                    y * torch.nn.functional.logsigmoid(z) + (1 - y) * torch.nn.functional.logsigmoid(-z)
                ).mean(),
                "sign: the loss is the *negative* log-likelihood.",
                kind="sign",
            ),
            Mistake(
                lambda z, y: (z.clamp(min=0) + z * y + torch.log1p(torch.exp(-z.abs()))).mean(),
                "sign of the z*y term: loss = max(z, 0) - z*y + log(1 + exp(-|z|)).",
                kind="sign",
            ),
            Mistake(
                lambda z, y: torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum"),
                "you returned the sum: take the mean.",
                kind="scale",
            ),
        ],
    )
