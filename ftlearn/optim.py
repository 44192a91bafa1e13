"""Optimizers written out: SGD, momentum, RMSProp, Adam and AdamW; the weight-decay rule and the lr schedules.

Introduced in notebooks 03 (SGD) and 04 (momentum, RMSProp, Adam, AdamW, schedules). Each class
is a `torch.optim.Optimizer` with the constructor arguments of its torch counterpart, so it is a
drop-in replacement: param groups, `zero_grad`, `state_dict`, LR schedulers and `GradScaler` all
work unchanged (notebook 07 fine-tunes BERT with `AdamW` from here).

Every `step` is a plain loop over parameters, written for reading, not speed: torch's own
versions fuse the same arithmetic across tensors (`foreach` / `fused`) and give the same numbers
(tests/test_optim.py checks Adam and AdamW against torch to 1e-10 in float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def _params_with_grad(group: dict) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """(parameter, gradient) pairs of a param group, skipping parameters that got no gradient."""
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError("ftlearn.optim: sparse gradients are not supported; use a dense embedding.")
        yield p, p.grad


class _Base(Optimizer):
    """Shared `step(closure)` plumbing: evaluate the closure, then update every group with `_update`."""

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        """Update every parameter that has a gradient; return the closure's loss if one was given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():  # the closure recomputes the loss and calls backward()
                loss = closure()
        for group in self.param_groups:
            for p, g in _params_with_grad(group):
                self._update(p, g, self.state[p], group)
        return loss

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError


class SGD(_Base):
    """Plain gradient descent, theta <- theta - lr * (g + weight_decay * theta) (notebook 03).

    Same numbers as `torch.optim.SGD(params, lr, weight_decay=...)` without momentum.
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0):
        if lr < 0 or weight_decay < 0:
            raise ValueError(f"lr and weight_decay must be >= 0, got lr={lr}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g.add(p, alpha=group["weight_decay"])  # L2 penalty (wd/2)*||theta||^2 added to the loss
        p.add_(g, alpha=-group["lr"])


class Momentum(_Base):
    """Heavy-ball momentum, b <- mu * b + g; theta <- theta - lr * b (notebook 04).

    Same numbers as `torch.optim.SGD(params, lr, momentum=mu, weight_decay=...)` (no dampening,
    no Nesterov): torch starts the buffer at g, which is what mu * 0 + g gives.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0):
        if lr < 0 or weight_decay < 0 or not 0.0 <= momentum < 1.0:
            raise ValueError(
                f"need lr >= 0, weight_decay >= 0, 0 <= momentum < 1; got {lr}, {weight_decay}, {momentum}"
            )
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g.add(p, alpha=group["weight_decay"])
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        b = state["momentum_buffer"]  # a running sum of past gradients, each older one shrunk by mu
        b.mul_(group["momentum"]).add_(g)
        p.add_(b, alpha=-group["lr"])


class RMSProp(_Base):
    """RMSProp, v <- alpha * v + (1 - alpha) * g^2; theta <- theta - lr * g / (sqrt(v) + eps) (notebook 04).

    Same numbers as `torch.optim.RMSprop(params, lr, alpha, eps, weight_decay)` (not centered, no momentum).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not 0.0 <= alpha < 1.0:
            raise ValueError(
                f"need lr, eps, weight_decay >= 0 and 0 <= alpha < 1; got {lr}, {eps}, {weight_decay}, {alpha}"
            )
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g.add(p, alpha=group["weight_decay"])
        if "square_avg" not in state:
            state["square_avg"] = torch.zeros_like(p)
        v = state["square_avg"]  # running mean of g^2: how big this coordinate's gradients usually are
        v.mul_(group["alpha"]).addcmul_(g, g, value=1 - group["alpha"])
        p.addcdiv_(g, v.sqrt().add_(group["eps"]), value=-group["lr"])


class Adam(_Base):
    """Adam (Kingma & Ba, 2015) with its five equations; weight_decay is an L2 term added to g (notebook 04).

    m_t = b1 m + (1 - b1) g        v_t = b2 v + (1 - b2) g^2
    m_hat = m_t / (1 - b1^t)       v_hat = v_t / (1 - b2^t)
    theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)
    Same numbers as `torch.optim.Adam` with the same arguments (amsgrad off).
    """

    decoupled = False  # AdamW flips this: decay the weights directly instead of through g

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(
                f"need lr, eps, weight_decay >= 0 and betas in [0, 1); got {lr}, {eps}, {weight_decay}, {betas}"
            )
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd and self.decoupled:
            p.mul_(1 - lr * wd)  # AdamW: shrink theta itself, whatever the gradient's size
        elif wd:
            g = g.add(p, alpha=wd)  # Adam's L2: the decay term then gets divided by sqrt(v_hat) like the rest of g
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)  # m: running mean of g
            state["exp_avg_sq"] = torch.zeros_like(p)  # v: running mean of g^2
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(g, alpha=1 - beta1)  # (1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # (2)
        bias1 = 1 - beta1**t  # (3) m started at 0, so m_t underestimates E[g] by this factor
        bias2 = 1 - beta2**t  # (4) ... and v_t underestimates E[g^2] by this one
        denom = (v / bias2).sqrt_().add_(eps)  # sqrt(v_hat) + eps
        p.addcdiv_(m, denom, value=-lr / bias1)  # (5) theta -= lr * m_hat / (sqrt(v_hat) + eps)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam plus decoupled decay theta <- theta * (1 - lr * wd) (notebook 04).

    Same numbers as `torch.optim.AdamW` with the same arguments, including its default weight_decay=0.01.
    """

    decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def no_decay_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that get no weight decay: every bias and every LayerNorm weight (notebooks 04, 07)."""
    names = set()
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            # Decay pulls weights towards 0; for a bias or a LayerNorm gain that is a pull towards
            # "off" (gain 0) rather than towards "simple", so they are left alone.
            if param_name == "bias" or isinstance(module, torch.nn.LayerNorm):
                names.add(full)
    return names


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer groups: weight matrices with decay, biases and LayerNorm without (notebooks 04, 07).

    The one weight-decay rule of the course: every run (BERT, GPT-2, the offline GPT-2's pretraining)
    builds its optimizer from these groups.
    """
    skip = no_decay_names(model)
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name in skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


DECAYS = ("linear", "cosine")


def warmup_decay(
    step: int, warmup_steps: int, total_steps: int, decay: str = "linear", final_ratio: float = 0.0
) -> float:
    """LR multiplier of the course's one schedule family: warm-up 0 -> 1, then decay to `final_ratio` (notebook 04).

    `decay="linear"` falls in a straight line, `"cosine"` along half a cosine; both reach `final_ratio`
    at `total_steps` and stay there. Warm-up starts at 0 at step 0 and peaks at 1.0 at `warmup_steps`.
    """
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {', '.join(DECAYS)}, got {decay!r}.")
    if step < warmup_steps:
        return step / warmup_steps
    if decay == "linear":  # written as (T - t) / (T - w) so that final_ratio=0 gives exactly transformers' values
        fall = max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    else:
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        fall = 0.5 * (1.0 + math.cos(math.pi * progress))
    return final_ratio + (1.0 - final_ratio) * fall


def warmup_linear(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier: 0 -> 1 linearly over warmup_steps, then 1 -> 0 linearly at total_steps (notebook 04).

    The linear member of `warmup_decay`, with the same values as transformers'
    `get_linear_schedule_with_warmup`: step 0 gives 0 when there is a warm-up, the peak 1.0 is at
    step == warmup_steps, and steps past total_steps give 0.
    """
    return warmup_decay(step, warmup_steps, total_steps, "linear", 0.0)


def warmup_scheduler(
    optimizer: Optimizer, warmup_steps: int, total_steps: int, decay: str = "linear", final_ratio: float = 0.0
) -> LambdaLR:
    """A torch LambdaLR applying `warmup_decay`; call `.step()` once after each `optimizer.step()` (notebook 04)."""
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"need 0 <= warmup_steps <= total_steps and total_steps > 0; got {warmup_steps}, {total_steps}"
        )
    if not 0.0 <= final_ratio <= 1.0:
        raise ValueError(f"final_ratio must be in [0, 1], got {final_ratio}")
    return LambdaLR(
        optimizer,
        partial(warmup_decay, warmup_steps=warmup_steps, total_steps=total_steps, decay=decay, final_ratio=final_ratio),
    )
