"""The lesson 03/04 checks: right answers pass, common wrong answers get their hint, stubs are 'not attempted'."""

from __future__ import annotations

import pytest
import torch

from ftlearn.checks import CORRECT, NOT_ATTEMPTED, WRONG
from ftlearn.checks import optim as co

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def _stub(*args):
    raise NotImplementedError


def _adam_no_bias(theta, g, m, v, t, lr, b1, b2, eps):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return theta - lr * m / (v.sqrt() + eps), m, v


def _adamw_l2(theta, g, m, v, t, lr, b1, b2, eps, wd):
    return co._adam_step(theta, g + wd * theta, m, v, t, lr, b1, b2, eps)


def _adamw_by_hand(theta, g, m, v, t, lr, b1, b2, eps, wd):
    """A second, independently written AdamW step: must be accepted."""
    theta = theta - lr * wd * theta
    m = m * b1 + g * (1 - b1)
    v = v * b2 + g.pow(2) * (1 - b2)
    step = lr / (1 - b1**t)
    return theta - step * m / (torch.sqrt(v / (1 - b2**t)) + eps), m, v


def _naive_ce_grad(z, y):
    e = torch.exp(z)  # overflows for the large-logit case
    p = e / e.sum(1, keepdim=True)
    return (p - torch.nn.functional.one_hot(y, z.shape[1])) / z.shape[0]


def _fd_forward(f, x, h):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        xp = x.clone().view(-1)
        xp[i] += h
        grad.view(-1)[i] = (f(xp.view_as(x)) - f(x)) / h
    return grad


def _fd_in_place(f, x, h):
    """A correct central difference that nudges x in place and restores it."""
    grad = torch.empty_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + h
        up = f(x)
        flat[i] = old - h
        down = f(x)
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return grad


def _fd_unbracketed(f, x, h):
    """Central difference written `/ 2 * h`: Python reads it as (... / 2) * h."""
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e.view(-1)[i] = h
        grad.view(-1)[i] = (f(x + e) - f(x - e)) / 2 * h
    return grad


CASES = [
    # (check, a correct answer, [(wrong answer, words the hint must contain)])
    (
        co.check_ce_grad_logits,
        co._ce_grad,
        [
            (lambda z, y: co._ce_grad(z, y) * z.shape[0], "mean"),
            (lambda z, y: -co._ce_grad(z, y), "sign"),
            (_naive_ce_grad, "NaN"),
        ],
    ),
    (
        co.check_linear_grads,
        co._linear_grads,
        [
            (lambda X, y, W, b: (co._linear_grads(X, y, W, b)[0].T, co._linear_grads(X, y, W, b)[1]), "shape"),
        ],
    ),
    (
        co.check_sgd_step,
        lambda t, g, lr, wd: t - lr * g - lr * wd * t,
        [
            (lambda t, g, lr, wd: t - lr * g, "weight-decay"),
            (lambda t, g, lr, wd: t - (g + wd * t), "lr times the whole gradient"),
            (
                lambda t, g, lr, wd: t - 2 * lr * g,
                "expected",
            ),  # no known mistake matches: falls back to the generic message
        ],
    ),
    (
        co.check_central_difference,
        _fd_in_place,
        [
            (_fd_forward, "one-sided"),
            (_fd_unbracketed, "/ (2 * h)"),
            (lambda f, x, h: torch.zeros_like(x), "expected"),  # all zeros must not be mistaken for the `/ 2 * h` slip
        ],
    ),
    (co.check_train_gd, co._train_gd, [(lambda X, y, k, lr, s: co._train_gd(X, y, k, lr, s - 1), "one step short")]),
    (
        co.check_momentum_step,
        co._momentum_step,
        [
            (lambda t, g, b, lr, mu: (t - lr * (mu * b + (1 - mu) * g), mu * b + (1 - mu) * g), "averaging form"),
        ],
    ),
    (
        co.check_rmsprop_step,
        co._rmsprop_step,
        [
            (
                lambda t, g, v, lr, a, e: (t - lr * g / (a * v + (1 - a) * g**2 + e).sqrt(), a * v + (1 - a) * g**2),
                "outside the square root",
            ),
        ],
    ),
    (co.check_adam_step, co._adam_step, [(_adam_no_bias, "bias correction")]),
    (co.check_adamw_step, _adamw_by_hand, [(_adamw_l2, "L2")]),
    (
        co.check_warmup_linear,
        co._warmup_linear,
        [
            (lambda s, w, n: (s + 1) / w if s < w else co._warmup_linear(s, w, n), "off by one"),
            (lambda s, w, n: s / w if s < w else (n - s) / max(1, n - w), "clamp"),
        ],
    ),
]


@pytest.mark.parametrize("check_fn,right,wrongs", CASES, ids=[c[0].__name__ for c in CASES])
def test_check_answers(check_fn, right, wrongs, second_try):
    assert check_fn(right).status == CORRECT
    assert check_fn(_stub).status == NOT_ATTEMPTED
    for wrong, words in wrongs:
        result = second_try(check_fn, wrong)
        assert result.status == WRONG, result
        assert words in result.message, result


def test_library_optimizers_pass_the_step_checks():
    """ftlearn.optim.Adam/AdamW, wrapped as step functions, are accepted by the exercise checks."""
    from ftlearn import optim

    def via(cls, wd=None):
        def step(theta, g, m, v, t, lr, b1, b2, eps, *rest):
            p = torch.nn.Parameter(theta.clone())
            kwargs = dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=rest[0] if rest else 0.0)
            opt = cls([p], **kwargs)
            opt.state[p] = {"step": t - 1, "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
            p.grad = g.clone()
            opt.step()
            st = opt.state[p]
            return p.detach(), st["exp_avg"], st["exp_avg_sq"]

        return step

    assert co.check_adam_step(via(optim.Adam)).status == CORRECT
    assert co.check_adamw_step(via(optim.AdamW)).status == CORRECT


def test_exception_in_learner_code_becomes_a_message():
    result = co.check_adam_step(lambda *args: 1 / 0)
    assert result.status == WRONG and "ZeroDivisionError" in result.message
