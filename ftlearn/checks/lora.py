"""Checks for the exercises of solutions/12_lora_and_distillation.ipynb.

LoRA's initialisation, its forward pass and its merge; the distillation loss at temperature τ.
Shapes follow nn.Linear: x (n, d_in) for n rows, W (d_out, d_in), b (d_out,), A (r, d_in), B (d_out, r).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ftlearn.checks.core import CheckResult, Mistake, check, exercise
from ftlearn.checks.losses import close_or_same_nan

_D = torch.float64


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=_D)


# ---------------------------------------------------------------- initialisation
_INIT_CASES = [(6, 4, 2, 0), (16, 8, 4, 1)]  # d_in, d_out, r, seed


def _init_summary(fn: Callable) -> Callable:
    """What matters about (A, B): their shapes, whether B is zero, whether A holds varied random values."""

    def summary(d_in, d_out, r, seed):
        a, b = fn(d_in, d_out, r, torch.Generator().manual_seed(seed))
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        return tuple(a.shape), tuple(b.shape), bool((b == 0).all()), bool(a.numel() > 1 and a.std() > 0)

    return summary


def _uniform(rows: int, cols: int, g: torch.Generator, fan_in: int) -> torch.Tensor:
    return (torch.rand(rows, cols, generator=g, dtype=_D) * 2 - 1) / fan_in**0.5


def _init_reference(d_in, d_out, r, g):
    return _uniform(r, d_in, g, d_in), torch.zeros(d_out, r, dtype=_D)


@exercise(answer=_init_reference)
def check_lora_init(fn: Callable[..., tuple]) -> CheckResult:
    """Check `fn(d_in, d_out, r, generator) -> (A, B)`: A (r, d_in) random, B (d_out, r) zero (notebook 12)."""
    return check(
        "lora_init",
        _init_summary(fn),
        _init_summary(_init_reference),
        _INIT_CASES,
        mistakes=[
            Mistake(
                _init_summary(lambda i, o, r, g: (_uniform(r, i, g, i), _uniform(o, r, g, r))),
                "B is not zero-initialised. With B = 0 the update B A is 0, so the wrapped model's first forward "
                "equals the pretrained model's; a random B adds noise to every layer before any training.",
                kind="logic",
            ),
            Mistake(
                _init_summary(lambda i, o, r, g: (torch.zeros(r, i, dtype=_D), torch.zeros(o, r, dtype=_D))),
                "A is zero too. The gradient of B is built from A x, and that of A from B: with both zero, both "
                "gradients stay zero and nothing ever trains. Only B starts at zero; A is random.",
                kind="logic",
            ),
            Mistake(
                _init_summary(lambda i, o, r, g: (torch.zeros(r, i, dtype=_D), _uniform(o, r, g, r))),
                "A and B are swapped: A (r, d_in) is the random one and B (d_out, r) the zero one.",
                kind="order",
            ),
            Mistake(
                _init_summary(lambda i, o, r, g: (_uniform(i, r, g, i), torch.zeros(r, o, dtype=_D))),
                "shapes: A is (r, d_in) and B is (d_out, r), so that B A has W's shape (d_out, d_in).",
                kind="axis",
            ),
        ],
        hint="Check the two shapes, and which matrix starts at zero: before training the wrapped layer must equal "
        "the frozen one, yet both matrices must be able to learn.",
    )


# ---------------------------------------------------------------- forward
def _forward_cases() -> list[tuple]:
    cases = []
    for seed, (n, d_in, d_out, r, alpha) in enumerate([(3, 5, 5, 2, 4.0), (4, 6, 3, 2, 8.0), (2, 4, 7, 3, 3.0)]):
        x, w, b = _randn(n, d_in, seed=seed), _randn(d_out, d_in, seed=seed + 10), _randn(d_out, seed=seed + 20)
        a, bb = _randn(r, d_in, seed=seed + 30), _randn(d_out, r, seed=seed + 40)  # B non-zero: as after training
        cases.append((x, w, b, a, bb, alpha, r))
    return cases  # the first is square (d_in = d_out), so a transposed update still runs and can be recognised


def _forward(x, w, b, a, bb, alpha, r, scale=None):
    s = alpha / r if scale is None else scale
    return x @ w.T + b + s * (x @ a.T @ bb.T)


@exercise(answer=_forward)
def check_lora_forward(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(x, W, b, A, B, alpha, r)`: x W^T + b + (alpha / r) x A^T B^T (notebook 12)."""
    return check(
        "lora_forward",
        fn,
        _forward,
        _forward_cases(),
        mistakes=[
            Mistake(
                lambda x, w, b, a, bb, alpha, r: _forward(x, w, b, a, bb, alpha, r, scale=alpha),
                "wrong scaling: the update is multiplied by alpha / r, not alpha.",
                kind="scale",
            ),
            Mistake(
                lambda x, w, b, a, bb, alpha, r: _forward(x, w, b, a, bb, alpha, r, scale=r / alpha),
                "wrong scaling: alpha / r, not r / alpha.",
                kind="scale",
            ),
            Mistake(
                lambda x, w, b, a, bb, alpha, r: _forward(x, w, b, a, bb, alpha, r, scale=1.0),
                "the update is not scaled: multiply x A^T B^T by alpha / r.",
                kind="scale",
            ),
            Mistake(
                lambda x, w, b, a, bb, alpha, r: (alpha / r) * (x @ a.T @ bb.T),
                "only the update: add the frozen layer's own output x W^T + b.",
                kind="missing",
            ),
            Mistake(
                lambda x, w, b, a, bb, alpha, r: x @ w.T + (alpha / r) * (x @ a.T @ bb.T),
                "the base layer's bias b is missing.",
                kind="missing",
            ),
            Mistake(
                lambda x, w, b, a, bb, alpha, r: x @ w.T + b + (alpha / r) * (x @ (bb @ a)),
                "the update B A has W's shape (d_out, d_in), so it is applied as W is: x (B A)^T = x A^T B^T.",
                kind="axis",
            ),
        ],
    )


# ---------------------------------------------------------------- merge
def _merge(w, a, bb, alpha, r):
    return w + (alpha / r) * (bb @ a)


def _merge_cases() -> list[tuple]:
    return [(w, a, bb, alpha, r) for _, w, _, a, bb, alpha, r in _forward_cases()]


@exercise(answer=_merge)
def check_lora_merge(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(W, A, B, alpha, r)`: the merged weight W + (alpha / r) B A (notebook 12)."""
    return check(
        "lora_merge",
        fn,
        _merge,
        _merge_cases(),
        mistakes=[
            Mistake(
                lambda w, a, bb, alpha, r: w + (alpha / r) * (bb @ a).T,
                "merge transposed: B A already has W's shape (d_out, d_in); add it as it is, not its transpose "
                "(A^T B^T).",
                kind="axis",
            ),
            Mistake(
                lambda w, a, bb, alpha, r: w + alpha * (bb @ a),
                "wrong scaling: the merged update is (alpha / r) B A, not alpha B A.",
                kind="scale",
            ),
            Mistake(
                lambda w, a, bb, alpha, r: w + (r / alpha) * (bb @ a),
                "wrong scaling: alpha / r, not r / alpha.",
                kind="scale",
            ),
            Mistake(
                lambda w, a, bb, alpha, r: w + bb @ a, "the update is not scaled: add (alpha / r) B A.", kind="scale"
            ),
            Mistake(
                lambda w, a, bb, alpha, r: (alpha / r) * (bb @ a),
                "you returned the update only: add it to W.",
                kind="missing",
            ),
        ],
    )


# ---------------------------------------------------------------- distillation loss
def _distill_cases() -> list[tuple]:
    cases = []
    for seed, (n, c, t, w) in enumerate([(4, 3, 2.0, 0.5), (6, 2, 3.0, 0.7), (5, 4, 4.0, 0.25)]):
        s, te = _randn(n, c, seed=seed) * 2, _randn(n, c, seed=seed + 50) * 2
        y = torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))
        cases.append((s, y, te, t, w))
    return cases


def _kl(s, te, t, *, kind="right"):
    log_q, log_p = F.log_softmax(s / t, -1), F.log_softmax(te / t, -1)
    if kind == "reversed":  # KL(student || teacher)
        return (log_q.exp() * (log_q - log_p)).sum(-1).mean()
    if kind == "probs-as-logs":  # F.kl_div(softmax(s / τ), ...): the student's probabilities where logs are needed
        return (log_p.exp() * (log_p - log_q.exp())).sum(-1).mean()
    if kind == "logs-as-probs":  # the teacher's log-probabilities used as its probabilities
        return (log_p * (log_p - log_q)).sum(-1).mean()
    if kind == "elementwise-mean":  # F.kl_div(..., reduction="mean"): divides by N x C, not N
        return (log_p.exp() * (log_p - log_q)).mean()
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def _distill(s, y, te, t, w, *, kind="right", power=2, temper=True, swap=False):
    soft = t**power * _kl(s, te, t if temper else 1.0, kind=kind)
    hard = F.cross_entropy(s, y)
    return (1 - w) * soft + w * hard if swap else w * soft + (1 - w) * hard


@exercise(answer=_distill)
def check_distillation_loss(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(student_logits, labels, teacher_logits, tau, soft_weight)`: w τ² KL + (1 - w) CE (notebook 12)."""
    return check(
        "distillation_loss",
        fn,
        _distill,
        _distill_cases(),
        compare=close_or_same_nan,
        mistakes=[
            Mistake(
                lambda *a: _distill(*a, power=0),
                "missing τ² factor: softening by τ shrinks the soft loss's gradients by 1 / τ², so multiply the KL "
                "term by τ² to keep it on the scale of the hard loss.",
                kind="scale",
            ),
            Mistake(lambda *a: _distill(*a, power=1), "the KL term is scaled by τ², not τ.", kind="scale"),
            Mistake(
                lambda *a: _distill(*a, kind="probs-as-logs"),
                "softmax where log_softmax belongs: the KL needs the student's *log*-probabilities, log_softmax(s / τ) "
                "(F.kl_div's first argument is a log-probability).",
                kind="formula",
            ),
            Mistake(
                lambda *a: _distill(*a, kind="logs-as-probs"),
                "log_softmax where softmax belongs: the teacher's probabilities p = softmax(t / τ) weight the sum "
                "p (log p - log q), not its log-probabilities.",
                kind="formula",
            ),
            Mistake(
                lambda *a: _distill(*a, kind="reversed"),
                "KL arguments reversed: you computed KL(student || teacher). The student matches the teacher: "
                "KL(teacher || student) = sum p_teacher (log p_teacher - log q_student).",
                kind="order",
            ),
            Mistake(
                lambda *a: _distill(*a, temper=False),
                "the temperature divides the logits inside both softmaxes: softmax(s / τ) and softmax(t / τ).",
                kind="missing",
            ),
            Mistake(
                lambda *a: _distill(*a, kind="elementwise-mean"),
                "the KL is summed over classes and averaged over examples ('batchmean'), not averaged over every "
                "element.",
                kind="scale",
            ),
            Mistake(
                lambda *a: _distill(*a, swap=True),
                "weights swapped: soft_weight multiplies the soft (KL) term, 1 - soft_weight the cross-entropy.",
                kind="order",
            ),
        ],
    )
