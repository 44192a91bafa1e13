"""Checks for the gradient-descent and Adam exercises (solutions/03_gradient_descent, solutions/04_adam).

Every case uses float64 tensors so a correct answer matches the reference to ~1e-12; each `Mistake`
is a wrong version learners really write, recognised by its output and answered with a hint.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ftlearn.checks.core import CheckResult, Mistake, check, exercise

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=F64) * scale


def _onehot(y: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(y, k).to(F64)


# ---- notebook 03 -------------------------------------------------------------------------------


def _ce_grad(logits, targets):
    p = torch.softmax(logits, dim=1)  # torch's softmax subtracts the row max: safe for large logits
    return (p - _onehot(targets, logits.shape[1])) / logits.shape[0]


_CE_CASES = [
    (_randn(4, 3, seed=0), torch.tensor([0, 2, 1, 2])),
    (_randn(6, 2, seed=1, scale=3.0), torch.tensor([1, 0, 0, 1, 1, 0])),
    (torch.tensor([[1000.0, 0.0, -1000.0], [5.0, 800.0, 2.0]], dtype=F64), torch.tensor([0, 2])),
]


@exercise()
def check_ce_grad_logits(fn: Callable) -> CheckResult:
    """Check `fn(logits, targets)`: d(mean CE)/d(logits) = (softmax(logits) - onehot(y)) / N (notebook 03)."""
    return check(
        "ce_grad_logits",
        fn,
        _ce_grad,
        _CE_CASES,
        mistakes=[
            Mistake(
                lambda z, y: _ce_grad(z, y) * z.shape[0],
                "close: the loss is the *mean* over the N examples, so divide by N.",
                kind="scale",
            ),
            Mistake(
                lambda z, y: -_ce_grad(z, y),
                "the sign is flipped: the gradient is p - y, not y - p.",
                kind="sign",
            ),
            Mistake(
                lambda z, y: (z - _onehot(y, z.shape[1])) / z.shape[0],
                "turn the logits into probabilities with softmax before subtracting y.",
                kind="missing",
            ),
            Mistake(
                lambda z, y: (torch.softmax(z, dim=0) - _onehot(y, z.shape[1])) / z.shape[0],
                "softmax goes across the classes of each row (dim=1), not down the batch.",
                kind="axis",
            ),
        ],
        hint=(
            "Work row by row: turn the logits into probabilities, compare them with the one-hot target, and remember "
            "that the loss is a mean over the N rows."
        ),
    )


def _linear_grads(X, y, W, b):
    delta = _ce_grad(X @ W + b, y)  # (N, K), already divided by N
    return X.T @ delta, delta.sum(0)


def _linear_cases():
    cases = []
    for seed, (n, d, k) in enumerate([(5, 4, 2), (7, 3, 3)]):
        X = _randn(n, d, seed=10 + seed)
        y = torch.randint(0, k, (n,), generator=_gen(20 + seed))
        cases.append((X, y, _randn(d, k, seed=30 + seed), _randn(k, seed=40 + seed)))
    return cases


@exercise()
def check_linear_grads(fn: Callable) -> CheckResult:
    """Check `fn(X, y, W, b)` -> (dW, db) for logits = X @ W + b and mean cross-entropy (notebook 03)."""

    def mean_db(X, y, W, b):
        dW, db = _linear_grads(X, y, W, b)
        return dW, db / X.shape[0]

    def summed(X, y, W, b):
        dW, db = _linear_grads(X, y, W, b)
        return dW * X.shape[0], db * X.shape[0]

    def transposed(X, y, W, b):
        dW, db = _linear_grads(X, y, W, b)
        return dW.T, db

    return check(
        "linear_grads",
        fn,
        _linear_grads,
        _linear_cases(),
        mistakes=[
            Mistake(
                summed,
                "both gradients are N times too big: the loss is a mean, so divide (P - Y) by N once.",
                kind="scale",
            ),
            Mistake(
                mean_db,
                "db is divided by N twice: if (P - Y) is already divided by N, db is its plain sum over rows.",
                kind="scale",
            ),
            Mistake(
                transposed,
                "dW must have W's shape (V, K): that is X.T @ (P - Y), not (P - Y).T @ X.",
                kind="axis",
            ),
            Mistake(
                lambda X, y, W, b: tuple(-g for g in _linear_grads(X, y, W, b)),
                "the sign is flipped: use P - Y, not Y - P.",
                kind="sign",
            ),
        ],
        hint=(
            "dW must have W's shape (V, K) and db b's shape (K,): both come from the gradient at the logits (the "
            "previous exercise), carried back through logits = X @ W + b."
        ),
    )


def _sgd_step(theta, grad, lr, weight_decay):
    return theta - lr * (grad + weight_decay * theta)


_SGD_CASES = [
    (_randn(3, seed=50), _randn(3, seed=51), 0.1, 0.0),
    (_randn(2, 3, seed=52), _randn(2, 3, seed=53), 0.5, 0.01),
    (_randn(4, seed=54), _randn(4, seed=55), 0.03, 0.2),
]


@exercise()
def check_sgd_step(fn: Callable) -> CheckResult:
    """Check `fn(theta, grad, lr, weight_decay)`: one SGD step with an L2 penalty (notebook 03)."""
    return check(
        "sgd_step",
        fn,
        _sgd_step,
        _SGD_CASES,
        mistakes=[
            Mistake(
                lambda t, g, lr, wd: t + lr * (g + wd * t),
                "that climbs the loss: step *against* the gradient (theta - lr * ...).",
                kind="sign",
            ),
            Mistake(
                lambda t, g, lr, wd: t - lr * g,
                "the weight-decay term is missing: the gradient of (wd/2)*||theta||^2 is wd * theta.",
                kind="missing",
            ),
            Mistake(
                lambda t, g, lr, wd: t - lr * g - wd * t,
                "the decay term must be multiplied by lr too: theta - lr * (grad + wd * theta).",
                kind="scale",
            ),
            Mistake(
                lambda t, g, lr, wd: t - (g + wd * t),
                "the step is lr times the whole gradient: theta - lr * (grad + weight_decay * theta).",
                kind="scale",
            ),
        ],
    )


def _central_difference(f, x, h):
    grad = torch.zeros_like(x)
    flat = grad.view(-1)
    for i in range(x.numel()):
        e = torch.zeros(x.numel(), dtype=x.dtype)
        e[i] = h
        e = e.view_as(x)
        flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


def _cubic(x):
    return (x**3).sum() + torch.sin(x).prod()


def _soft(x):
    return torch.logsumexp(x.flatten(), dim=0) * (x**2).mean()


_FD_CASES = [
    (_cubic, torch.tensor([0.5, -1.0, 2.0], dtype=F64), 1e-4),
    (_soft, _randn(2, 3, seed=60), 1e-4),
    (_soft, _randn(4, seed=61), 0.1),  # a large h, so that h-sized mistakes differ from 0 by more than the tolerance
]


@exercise()
def check_central_difference(fn: Callable) -> CheckResult:
    """Check `fn(f, x, h)`: the central-difference estimate of grad f at x, one coordinate at a time (notebook 03)."""

    def forward(f, x, h):
        grad = torch.zeros_like(x)
        for i in range(x.numel()):
            e = torch.zeros(x.numel(), dtype=x.dtype)
            e[i] = h
            grad.view(-1)[i] = (f(x + e.view_as(x)) - f(x)) / h
        return grad

    return check(
        "central_difference",
        fn,
        _central_difference,
        _FD_CASES,
        mistakes=[
            Mistake(
                forward,
                "that is the one-sided difference (f(x+h) - f(x)) / h; use (f(x+h) - f(x-h)) / (2h), whose error is "
                "O(h^2), not O(h).",
                kind="formula",
            ),
            Mistake(
                lambda f, x, h: _central_difference(f, x, h) * 2,
                "the two points are 2h apart: divide by 2 * h.",
                kind="scale",
            ),
            Mistake(
                lambda f, x, h: _central_difference(f, x, h) / 2,
                "divide by 2 * h, not by 4 * h: the points are x + h and x - h.",
                kind="scale",
            ),
            Mistake(
                lambda f, x, h: _central_difference(f, x, h) * h * h,
                "`/ 2 * h` divides by 2 and then *multiplies* by h: write `/ (2 * h)`.",
                kind="order",
            ),
        ],
        hint="Nudge one coordinate at a time by +h and -h (leave the others alone) and return a tensor shaped like x.",
    )


def _train_gd(X, y, num_classes, lr, steps):
    W = torch.zeros(X.shape[1], num_classes, dtype=X.dtype)
    b = torch.zeros(num_classes, dtype=X.dtype)
    for _ in range(steps):
        dW, db = _linear_grads(X, y, W, b)
        W, b = W - lr * dW, b - lr * db
    return W, b


def _gd_cases():
    X = _randn(12, 4, seed=70)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
    return [(X, y, 2, 0.5, 10), (X, y.clone() * 0 + torch.arange(12) % 3, 3, 1.0, 25)]


@exercise()
def check_train_gd(fn: Callable) -> CheckResult:
    """Check `fn(X, y, num_classes, lr, steps)` -> (W, b): full-batch gradient descent from zeros (notebook 03)."""
    return check(
        "train_gd",
        fn,
        _train_gd,
        _gd_cases(),
        mistakes=[
            Mistake(
                lambda X, y, k, lr, s: (_train_gd(X, y, k, lr, s)[0], torch.zeros(k, dtype=X.dtype)),
                "b never moves: update the bias with db too.",
                kind="missing",
            ),
            Mistake(
                lambda X, y, k, lr, s: _train_gd(X, y, k, lr, s - 1),
                "one step short: take exactly `steps` updates.",
                kind="off_by_one",
            ),
            Mistake(
                lambda X, y, k, lr, s: _train_gd(X, y, k, lr, s + 1),
                "one step too many: take exactly `steps` updates.",
                kind="off_by_one",
            ),
            Mistake(
                lambda X, y, k, lr, s: _train_gd(X, y, k, -lr, s),
                "that is gradient *ascent*: subtract lr * gradient.",
                kind="sign",
            ),
        ],
        hint=(
            "Start W and b at zeros; each of the `steps` updates uses the gradients at the *current* W and b, and "
            "moves both."
        ),
    )


# ---- notebook 04 -------------------------------------------------------------------------------


def _momentum_step(theta, grad, buf, lr, mu):
    buf = mu * buf + grad
    return theta - lr * buf, buf


_MOMENTUM_CASES = [
    (_randn(3, seed=80), _randn(3, seed=81), torch.zeros(3, dtype=F64), 0.1, 0.9),
    (_randn(2, 2, seed=82), _randn(2, 2, seed=83), _randn(2, 2, seed=84), 0.05, 0.8),
]


@exercise()
def check_momentum_step(fn: Callable) -> CheckResult:
    """Check `fn(theta, grad, buf, lr, mu)` -> (theta, buf): heavy-ball momentum as in torch.optim.SGD (notebook 04)."""

    def ema(theta, grad, buf, lr, mu):
        buf = mu * buf + (1 - mu) * grad
        return theta - lr * buf, buf

    def stale(theta, grad, buf, lr, mu):
        return theta - lr * buf, mu * buf + grad

    return check(
        "momentum_step",
        fn,
        _momentum_step,
        _MOMENTUM_CASES,
        mistakes=[
            Mistake(
                ema,
                "that is the averaging form b = mu*b + (1-mu)*g; torch (and this lesson) uses the sum b = mu*b + g.",
                kind="formula",
            ),
            Mistake(stale, "update the buffer first, then step with the *new* buffer.", kind="order"),
            Mistake(
                lambda t, g, b, lr, mu: (t - lr * g, mu * b + g),
                "the step should use the buffer (the velocity), not the raw gradient.",
                kind="formula",
            ),
            Mistake(
                lambda t, g, b, lr, mu: (t + lr * (mu * b + g), mu * b + g),
                "step against the velocity: theta - lr * buf.",
                kind="sign",
            ),
        ],
    )


def _rmsprop_step(theta, grad, v, lr, alpha, eps):
    v = alpha * v + (1 - alpha) * grad**2
    return theta - lr * grad / (v.sqrt() + eps), v


_RMS_CASES = [
    (_randn(3, seed=90), _randn(3, seed=91), torch.zeros(3, dtype=F64), 0.01, 0.99, 1e-8),
    (_randn(4, seed=92), _randn(4, seed=93), _randn(4, seed=94).abs(), 0.1, 0.9, 1e-3),
]


@exercise()
def check_rmsprop_step(fn: Callable) -> CheckResult:
    """Check `fn(theta, grad, v, lr, alpha, eps)` -> (theta, v): one RMSProp step (notebook 04)."""
    return check(
        "rmsprop_step",
        fn,
        _rmsprop_step,
        _RMS_CASES,
        mistakes=[
            Mistake(
                lambda t, g, v, lr, a, e: (t - lr * g / (a * v + (1 - a) * g**2 + e), a * v + (1 - a) * g**2),
                "divide by the *square root* of v: v is a mean of squared gradients.",
                kind="formula",
            ),
            Mistake(
                lambda t, g, v, lr, a, e: (t - lr * g / (a * v + (1 - a) * g**2 + e).sqrt(), a * v + (1 - a) * g**2),
                "eps goes outside the square root: sqrt(v) + eps.",
                kind="formula",
            ),
            Mistake(
                lambda t, g, v, lr, a, e: (t - lr * g / (((1 - a) * v + a * g**2).sqrt() + e), (1 - a) * v + a * g**2),
                "alpha weights the old v (keep most of it); (1 - alpha) weights the new g^2.",
                kind="formula",
            ),
            Mistake(
                lambda t, g, v, lr, a, e: (t - lr * g / (v.sqrt() + e), a * v + (1 - a) * g**2),
                "update v with this step's g^2 before using it.",
                kind="order",
            ),
        ],
    )


def _adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v


def _adam_cases():
    return [
        (
            _randn(3, seed=100),
            _randn(3, seed=101),
            torch.zeros(3, dtype=F64),
            torch.zeros(3, dtype=F64),
            1,
            0.1,
            0.9,
            0.999,
            1e-8,
        ),
        (
            _randn(2, 3, seed=102),
            _randn(2, 3, seed=103),
            _randn(2, 3, seed=104, scale=0.1),
            _randn(2, 3, seed=105).abs() * 0.01,
            5,
            0.01,
            0.9,
            0.99,
            1e-6,
        ),
    ]


def _adam_variant(bias=True, eps_inside=False, t_shift=0, swap=False, store_hat=False):
    def step(theta, grad, m, v, t, lr, beta1, beta2, eps):
        b1, b2 = (1 - beta1, 1 - beta2) if swap else (beta1, beta2)
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        m_hat = m / (1 - beta1 ** (t + t_shift)) if bias else m
        v_hat = v / (1 - beta2 ** (t + t_shift)) if bias else v
        denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
        new = theta - lr * m_hat / denom
        return (new, m_hat, v_hat) if store_hat else (new, m, v)

    return step


@exercise()
def check_adam_step(fn: Callable) -> CheckResult:
    """Check `fn(theta, grad, m, v, t, lr, beta1, beta2, eps)` -> (theta, m, v): Adam, t from 1 (notebook 04)."""
    return check(
        "adam_step",
        fn,
        _adam_step,
        _adam_cases(),
        mistakes=[
            Mistake(
                _adam_variant(bias=False),
                "no bias correction: divide m by (1 - beta1**t) and v by (1 - beta2**t) before the update.",
                kind="missing",
            ),
            Mistake(
                _adam_variant(eps_inside=True),
                "eps goes outside the square root: sqrt(v_hat) + eps.",
                kind="formula",
            ),
            Mistake(
                _adam_variant(t_shift=1),
                "t is the number of this step, starting at 1: use beta**t, not beta**(t+1).",
                kind="off_by_one",
            ),
            Mistake(
                _adam_variant(swap=True),
                "beta1 and beta2 weight the *old* averages: m = beta1*m + (1-beta1)*g.",
                kind="formula",
            ),
            Mistake(
                _adam_variant(store_hat=True),
                "return the raw m and v: the bias-corrected m_hat, v_hat are only used for this step's update.",
                kind="convention",
            ),
            Mistake(
                lambda th, g, m, v, t, lr, b1, b2, e: (_adam_step(th, g, m, v, t, lr, b1, b2, e)[0], m, v),
                "return the *updated* m and v, so the next step can continue from them.",
                kind="convention",
            ),
        ],
        hint=(
            "Adam is five lines: two moving averages, two bias corrections, one update. Check each against the "
            "lesson's equations, in that order, on the first step (t = 1) by hand."
        ),
    )


def _adamw_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    theta = theta * (1 - lr * weight_decay)
    return _adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps)


def _adamw_cases():
    return [(*case, wd) for case, wd in zip(_adam_cases(), (0.1, 0.5), strict=True)] + [
        (
            _randn(4, seed=106),
            torch.zeros(4, dtype=F64),
            torch.zeros(4, dtype=F64),
            _randn(4, seed=107).abs(),
            3,
            0.1,
            0.9,
            0.999,
            1e-8,
            0.2,
        )
    ]


@exercise()
def check_adamw_step(fn: Callable) -> CheckResult:
    """Check `fn(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)` -> (theta, m, v): AdamW (notebook 04)."""

    def l2(theta, grad, m, v, t, lr, b1, b2, eps, wd):
        return _adam_step(theta, grad + wd * theta, m, v, t, lr, b1, b2, eps)

    def after(theta, grad, m, v, t, lr, b1, b2, eps, wd):
        new, m, v = _adam_step(theta, grad, m, v, t, lr, b1, b2, eps)
        return new * (1 - lr * wd), m, v

    def no_lr(theta, grad, m, v, t, lr, b1, b2, eps, wd):
        return _adam_step(theta * (1 - wd), grad, m, v, t, lr, b1, b2, eps)

    def forgot(theta, grad, m, v, t, lr, b1, b2, eps, wd):
        return _adam_step(theta, grad, m, v, t, lr, b1, b2, eps)

    return check(
        "adamw_step",
        fn,
        _adamw_step,
        _adamw_cases(),
        mistakes=[
            Mistake(
                l2,
                "that is Adam with L2 (wd*theta added to the gradient, then divided by sqrt(v_hat)); AdamW shrinks "
                "theta directly: theta * (1 - lr*wd).",
                kind="formula",
            ),
            Mistake(
                after,
                "apply the decay to theta *before* this step's Adam update (decay uses the old theta, as in "
                "torch.optim.AdamW).",
                kind="order",
            ),
            Mistake(no_lr, "the decay is scaled by the learning rate: theta * (1 - lr * weight_decay).", kind="scale"),
            Mistake(forgot, "the weight decay is missing: multiply theta by (1 - lr * weight_decay).", kind="missing"),
        ],
    )


def _warmup_linear(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


_SCHEDULE_CASES = [(s, 4, 12) for s in (0, 1, 3, 4, 5, 8, 11, 12, 15)] + [(0, 0, 10), (3, 0, 10)]


@exercise()
def check_warmup_linear(fn: Callable) -> CheckResult:
    """Check `fn(step, warmup_steps, total_steps)`: the warmup + linear-decay LR multiplier (notebook 04)."""
    return check(
        "warmup_linear",
        fn,
        _warmup_linear,
        _SCHEDULE_CASES,
        mistakes=[
            Mistake(
                lambda s, w, n: (s + 1) / w if s < w else _warmup_linear(s, w, n),
                "off by one in the warmup: step 0 gives 0, and 1.0 is reached at step == warmup_steps.",
                kind="off_by_one",
            ),
            Mistake(
                lambda s, w, n: s / w if s < w else max(0.0, 1 - s / n),
                "the decay runs from 1 at warmup_steps to 0 at total_steps: divide by (total_steps - warmup_steps).",
                kind="formula",
            ),
            Mistake(
                lambda s, w, n: s / w if s < w else (n - s) / max(1, n - w),
                "past total_steps the multiplier would go negative: clamp it at 0.",
                kind="edge",
            ),
            Mistake(
                lambda s, w, n: s / w if s < w else 1.0,
                "after warmup the multiplier should decay linearly to 0, not stay at 1.",
                kind="missing",
            ),
        ],
        hint=(
            "Two pieces: a straight rise from 0 to 1 over the warm-up steps, then a straight fall to 0 at total_steps, "
            "never below 0. Work out step = 0, warmup_steps and total_steps by hand."
        ),
    )
