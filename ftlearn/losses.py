"""Cross-entropy and MSE written out: log-sum-exp, log-softmax, categorical and binary CE, MSE.

Introduced in notebook 02 (cross-entropy). `cross_entropy` follows `torch.nn.functional.cross_entropy`
for class-index targets (ignore_index, label_smoothing, reduction) and for class-probability targets;
tests/test_losses.py holds it to PyTorch's values and gradients in float64.
"""

from __future__ import annotations

import torch

REDUCTIONS = ("mean", "sum", "none")


def _shift(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, x - m) with m = max x along `dim` (kept), so exp(x - m) <= 1 never overflows."""
    m = x.amax(dim=dim, keepdim=True)
    # a row of all -inf would give (-inf) - (-inf) = nan; shifting by 0 there keeps the answer -inf
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()  # the shift cancels: no gradient needed
    return m, x - m


def logsumexp(x: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """log sum_i exp(x_i), computed as m + log sum exp(x_i - m) with m = max x so exp never overflows (notebook 02)."""
    m, shifted = _shift(x, dim)
    out = m + torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def log_softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log softmax(z)_i = z_i - logsumexp(z): finite for any finite logits (notebook 02)."""
    # (z - m) - log sum exp(z - m): subtracting m first keeps log p of the top class exact near 0
    _, shifted = _shift(logits, dim)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """softmax(z)_i = exp(z_i - max z) / sum_j exp(z_j - max z) (notebook 02)."""
    return torch.exp(log_softmax(logits, dim=dim))


def _reduce(loss: torch.Tensor, reduction: str, denominator: torch.Tensor | float | None = None) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / (loss.numel() if denominator is None else denominator)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy from logits, with the semantics of `torch.nn.functional.cross_entropy` (notebook 02).

    logits: (N, C) or (C,). target: class ids (N,) / () or class probabilities of logits' shape.
    With class ids, rows whose target is `ignore_index` add nothing, and 'mean' divides by the number
    of the other rows. Label smoothing mixes the one-hot target with the uniform distribution:
    t = (1 - eps) onehot + eps / C, so loss = (1 - eps) (-log p_y) + eps * mean_c(-log p_c).
    `weight` (C,) scales each class's term, as torch's does: with class ids, row i counts w[y_i] times and 'mean'
    divides by the sum of the rows' w[y_i] (class weights for imbalanced data, `--class-weights balanced`).
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must be (N, C) or (C,), got shape {tuple(logits.shape)}")
    unbatched = logits.dim() == 1
    if unbatched:  # (C,) -> (1, C)
        logits, target = logits.unsqueeze(0), target.unsqueeze(0)
    n_classes = logits.shape[1]
    logp = log_softmax(logits, dim=1)  # (N, C)
    if weight is not None:
        if weight.shape != (n_classes,):
            raise ValueError(f"weight must hold one number per class, shape ({n_classes},), got {tuple(weight.shape)}")
        weight = weight.to(logp)  # the logits' device and dtype

    if target.is_floating_point():  # class probabilities, shape (N, C)
        if target.shape != logits.shape:
            raise ValueError(f"probability targets need logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}")
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        if weight is not None:
            target = target * weight  # (N, C) * (C,)
        loss = -(target * logp).sum(dim=1)  # (N,)
        out = _reduce(loss, reduction)
        return out.squeeze(0) if unbatched and reduction == "none" else out

    if target.dim() != 1 or target.shape[0] != logits.shape[0]:  # as torch raises, in a learner's words
        raise ValueError(_class_id_shape_problem(logits, target, unbatched))
    keep = target != ignore_index  # (N,) bool
    if bool(((target[keep] < 0) | (target[keep] >= n_classes)).any()):
        raise IndexError(f"target ids must be in [0, {n_classes}) or equal ignore_index={ignore_index}")
    safe = torch.where(keep, target, torch.zeros_like(target))  # any valid id; those rows are zeroed below
    nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)  # (N,) = -log p(correct class)
    row_weight = torch.ones_like(nll) if weight is None else weight[safe]  # (N,) = w[y_i]
    if label_smoothing > 0:
        # (N,) = cross-entropy against the uniform distribution, each class's term weighted
        uniform = -logp.mean(dim=1) if weight is None else -(logp * weight).mean(dim=1)
        loss = (1 - label_smoothing) * row_weight * nll + label_smoothing * uniform
    else:
        loss = row_weight * nll
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    counted = keep.sum() if weight is None else torch.where(keep, row_weight, torch.zeros_like(row_weight)).sum()
    out = _reduce(loss, reduction, denominator=counted)  # 0/0 = nan when every row is ignored, as in PyTorch
    return out.squeeze(0) if unbatched and reduction == "none" else out


def _class_id_shape_problem(logits: torch.Tensor, target: torch.Tensor, unbatched: bool) -> str:
    """Why class-id targets do not fit the logits, and the fix (torch: "Expected input batch_size ... to match")."""
    n, got = logits.shape[0], tuple(target.shape[1:] if unbatched else target.shape)  # as the caller gave it
    if unbatched:
        return f"logits of shape ({logits.shape[1]},) are one example: its target is one class id, shape (), got {got}"
    if target.dim() == 2 and target.shape == (n, 1):
        return f"targets have shape {got}, logits ({n}, C): class ids must be ({n},); use target.squeeze(1)"
    if target.dim() != 1:
        return f"targets have shape {got}; class ids must be one per row of logits, shape ({n},)"
    return f"targets have {target.shape[0]} rows, logits {n}: cross_entropy needs one class id per row of logits"


def binary_cross_entropy_with_logits(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))], stably: max(z, 0) - z y + log(1 + exp(-|z|)) (notebook 02)."""
    if logits.shape != target.shape:  # broadcasting (N, 1) against (N,) would compare every logit with every target
        z_shape, y_shape = tuple(logits.shape), tuple(target.shape)
        fix = ""
        if logits.dim() == target.dim() + 1 and logits.shape[-1] == 1 and logits.shape[:-1] == target.shape:
            fix = f"; it would broadcast to {z_shape[:-1] + y_shape}: use logits.squeeze(-1)"
        elif target.dim() == logits.dim() + 1 and target.shape[-1] == 1 and target.shape[:-1] == logits.shape:
            fix = f"; it would broadcast to {y_shape[:-1] + z_shape}: use target.squeeze(-1)"
        raise ValueError(f"logits have shape {z_shape} and targets {y_shape}: they must be the same{fix}")
    z, y = logits, target
    # Two smooth branches instead of max(z, 0) and |z|, whose kinks at z = 0 would give autograd a
    # wrong gradient there. Each branch only ever exponentiates a number <= 0, so nothing overflows
    # (the clamps keep the branch torch.where discards finite too, or its gradient would be nan).
    positive = z * (1 - y) + torch.log1p(torch.exp(-z.clamp(min=0)))  # used where z > 0
    negative = -z * y + torch.log1p(torch.exp(z.clamp(max=0)))  # used where z <= 0
    loss = torch.where(z > 0, positive, negative)
    return _reduce(loss, reduction)


def mse(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error (1/N) sum (pred - target)^2, like `torch.nn.functional.mse_loss` (notebook 02)."""
    return _reduce((pred - target) ** 2, reduction)
