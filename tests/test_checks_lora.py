"""The checks of lesson 12: right answers pass, each named mistake gets its own hint, stubs are 'not attempted'."""

import pytest
import torch
import torch.nn.functional as F

from ftlearn import checks
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- learner-style answers
def init(d_in, d_out, r, g, b_zero=True, a_zero=False, transposed=False):
    a = torch.zeros(r, d_in) if a_zero else torch.randn(r, d_in, generator=g) / d_in**0.5
    b = torch.zeros(d_out, r) if b_zero else torch.randn(d_out, r, generator=g)
    return (a.T, b.T) if transposed else (a, b)


def forward(x, w, b, a, bb, alpha, r, scale=None):
    return F.linear(x, w, b) + (alpha / r if scale is None else scale) * F.linear(F.linear(x, a), bb)


def merge(w, a, bb, alpha, r, transposed=False, scale=None):
    delta = (alpha / r if scale is None else scale) * (bb @ a)
    return w + (delta.T if transposed else delta)


def distill(s, y, t, temperature, w, power=2, soft=F.log_softmax, teacher=F.softmax, reverse=False):
    log_q = soft(s / temperature, dim=-1)
    p = teacher(t / temperature, dim=-1)
    if reverse:
        kl = F.kl_div(F.log_softmax(t / temperature, -1), F.softmax(s / temperature, -1), reduction="batchmean")
    else:
        kl = (p * (torch.log(p) if teacher is F.softmax else p) - p * log_q).sum(-1).mean()
    return w * temperature**power * kl + (1 - w) * F.cross_entropy(s, y)


def distill_with_kl_div(s, y, t, temperature, w):
    """The usual library form: F.kl_div(log q, p, reduction='batchmean')."""
    kl = F.kl_div(F.log_softmax(s / temperature, -1), F.softmax(t / temperature, -1), reduction="batchmean")
    return w * temperature**2 * kl + (1 - w) * F.cross_entropy(s, y)


def verdict(result, status, *words):
    assert result.status == status, result
    assert all(w in result.message for w in words), result.message


def test_right_answers_pass():
    assert checks.check_lora_init(init).status == CORRECT
    assert checks.check_lora_forward(forward).status == CORRECT
    assert checks.check_lora_merge(merge).status == CORRECT
    assert checks.check_distillation_loss(distill).status == CORRECT
    assert checks.check_distillation_loss(distill_with_kl_div).status == CORRECT


def test_stubs_are_not_attempted():
    for check in (checks.check_lora_init, checks.check_lora_forward, checks.check_lora_merge,
                  checks.check_distillation_loss):  # fmt: skip
        assert check(stub).status == NOT_ATTEMPTED


# (check, wrong answer, words of its specific hint): tests/test_checks_reveal.py also feeds these to every check
CASES = [
    (checks.check_lora_init, lambda *a: init(*a, b_zero=False), "B is not zero-initialised"),
    (checks.check_lora_init, lambda *a: init(*a, a_zero=True), "A is zero too"),
    (checks.check_lora_init, lambda *a: init(*a, transposed=True), "shapes"),
    (
        checks.check_lora_forward,
        lambda x, w, b, a, bb, al, r: forward(x, w, b, a, bb, al, r, scale=al),
        "alpha / r, not alpha",
    ),
    (
        checks.check_lora_forward,
        lambda x, w, b, a, bb, al, r: forward(x, w, b, a, bb, al, r, scale=r / al),
        "not r / alpha",
    ),
    (checks.check_lora_forward, lambda x, w, b, a, bb, al, r: x @ w.T + b + al / r * x @ (bb @ a), "x A^T B^T"),
    (checks.check_lora_merge, lambda *a: merge(*a, transposed=True), "merge transposed"),
    (checks.check_lora_merge, lambda w, a, bb, al, r: merge(w, a, bb, al, r, scale=al), "wrong scaling"),
    (checks.check_distillation_loss, lambda *a: distill(*a, power=0), "missing τ²"),
    (checks.check_distillation_loss, lambda *a: distill(*a, soft=F.softmax), "softmax where log_softmax belongs"),
    (
        checks.check_distillation_loss,
        lambda *a: distill(*a, teacher=F.log_softmax),
        "log_softmax where softmax belongs",
    ),
    (checks.check_distillation_loss, lambda *a: distill(*a, reverse=True), "KL arguments reversed"),
]


@pytest.mark.parametrize("check_fn, wrong, words", CASES, ids=[c[2] for c in CASES])
def test_each_mistake_gets_a_nudge_first_then_its_own_hint(check_fn, wrong, words, second_try):
    from ftlearn.checks.core import reset_session

    reset_session()
    first = check_fn(wrong)
    assert first.status == WRONG and words not in first.message  # the first try: the kind of mistake only
    verdict(second_try(check_fn, wrong), WRONG, words)


def test_the_hints_are_all_different(second_try):
    from ftlearn.checks import lora

    results = [second_try(check_fn, wrong) for check_fn, wrong, _ in CASES]
    messages = [r.message for r in results]
    assert all(r.status == WRONG and m.startswith("Hint:") for r, m in zip(results, messages, strict=True))
    assert len(set(messages)) == len(messages)
    assert lora.__doc__  # the module names its notebook
