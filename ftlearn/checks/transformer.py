"""Checks for the exercises of lesson 06, the transformer by hand.

Attention with its mask, the causal mask, splitting and merging heads, LayerNorm. Every reference is
PyTorch's own function or a one-line tensor expression, in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ftlearn.checks.core import CheckResult, Mistake, check, exercise

_D = torch.float64


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=_D)


def _tensor_answer(fn):
    """Call the learner's function and hand back a tensor (numbers, lists and arrays accepted)."""

    def wrapped(*args):
        out = fn(*args)
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)

    return wrapped


# ---------------------------------------------------------------- attention
# q (B, H, T, d) with T = 4, k and v (B, H, S, d) with S = 5, d = 6: distinct sizes, so a mix-up of
# axes shows up as a wrong shape. No row of any mask is all False: there a correct answer may be NaN or 0.
_ROWS_MIXED = torch.tensor(  # (T, S): every query may see some keys and not others
    [
        [True, False, True, True, False],
        [False, True, True, False, True],
        [True, True, False, False, False],
        [False] * 4 + [True],
    ]
)
_PADDING = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]).bool()[:, None, None, :]  # (B, 1, 1, S)
_CAUSAL = torch.ones(5, 5, dtype=torch.bool).tril()  # (T, T) for the self-attention case, T = S = 5
_ATTENTION_CASES = [
    (_randn(2, 3, 4, 6, seed=1), _randn(2, 3, 5, 6, seed=2), _randn(2, 3, 5, 6, seed=3), None),
    (_randn(2, 3, 4, 6, seed=4), _randn(2, 3, 5, 6, seed=5), _randn(2, 3, 5, 6, seed=6), _ROWS_MIXED),
    (_randn(2, 3, 4, 6, seed=7), _randn(2, 3, 5, 6, seed=8), _randn(2, 3, 5, 6, seed=9), _PADDING),
    (_randn(2, 3, 5, 6, seed=10), _randn(2, 3, 5, 6, seed=11), _randn(2, 3, 5, 6, seed=12), _CAUSAL & _PADDING),
]


def _attention(q, k, v, mask, scale=None, softmax_dim=-1, mask_after=False, fill=float("-inf")):
    """Attention with one thing changed at a time: the models of the learners' mistakes."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale  # (B, H, T, S)
    if mask is not None and not mask_after:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=softmax_dim)
    if mask is not None and mask_after:
        weights = weights * mask  # zeroed but not renormalised: the rows no longer sum to 1
    return weights @ v


def _attention_output(fn):
    """The learner's output (B, H, T, d); a tuple (output, weights) is accepted too."""

    def wrapped(*args):
        out = fn(*args)
        return out[0] if isinstance(out, (tuple, list)) else out

    return wrapped


@exercise(answer="ftlearn.transformer:scaled_dot_product_attention")
def check_attention(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(q, k, v, mask=None)` -> softmax(q kᵀ / √d + mask) v, mask bool with True = allowed (lesson 06)."""
    return check(
        "attention",
        _attention_output(fn),
        lambda q, k, v, mask: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        _ATTENTION_CASES,
        mistakes=[
            Mistake(
                lambda q, k, v, m: _attention(q, k, v, m, scale=1.0),
                "missing scale: divide the scores q kᵀ by √d (d = q.shape[-1]) before the softmax, or it saturates.",
                kind="missing",
            ),
            Mistake(
                lambda q, k, v, m: _attention(q, k, v, m, scale=1 / q.shape[-1]),
                "you divided by d; the scale is 1/√d (math.sqrt(d)): a dot product of d terms spreads like √d.",
                kind="formula",
            ),
            Mistake(
                lambda q, k, v, m: _attention(q, k, v, m, mask_after=True),
                "the mask came after the softmax: zeroed weights leave rows that no longer sum to 1. Fill the "
                "forbidden scores with -inf *before* the softmax (scores.masked_fill(~mask, float('-inf'))).",
                kind="order",
            ),
            Mistake(
                lambda q, k, v, m: _attention(q, k, v, m, softmax_dim=-2),
                "softmax over the wrong dimension: each query's weights run over the keys, the last dim (dim=-1), "
                "not over the queries.",
                kind="axis",
            ),
            Mistake(
                lambda q, k, v, m: _attention(q, k, v, None),
                "the mask was ignored: fill the scores where mask is False with -inf before the softmax.",
                kind="missing",
            ),
            Mistake(
                lambda q, k, v, m: _attention(q, k, v, None if m is None else ~m),
                "the mask is inverted: here True means *allowed*, so fill with -inf where mask is False "
                "(masked_fill(~mask, ...)). (nn.MultiheadAttention's bool masks use the opposite convention.)",
                kind="sign",
            ),
        ],
        hint=(
            "Four steps: every query's scores against every key, scaled; forbidden scores set to -inf; a softmax over "
            "the keys; the weighted sum of the values."
        ),
    )


# ---------------------------------------------------------------- causal mask
_CAUSAL_CASES = [(4,), (1,), (7,)]


def _ones(t: int) -> torch.Tensor:
    return torch.ones(t, t, dtype=torch.bool)


@exercise(answer="ftlearn.transformer:causal_mask")
def check_causal_mask(fn: Callable[[int], torch.Tensor]) -> CheckResult:
    """Check `fn(T)` -> (T, T) bool (or 0/1), True on and below the diagonal: itself and the past (lesson 06)."""
    return check(
        "causal_mask",
        _tensor_answer(fn),
        lambda t: _ones(t).tril(),
        _CAUSAL_CASES,
        mistakes=[
            Mistake(
                lambda t: _ones(t).tril(diagonal=-1),
                "off by one: a token must see itself. Keep the diagonal: torch.tril(..., diagonal=0).",
                kind="off_by_one",
            ),
            Mistake(
                lambda t: _ones(t).triu(diagonal=1),
                "you returned the positions to *hide* (above the diagonal); this mask is True where attention is "
                "allowed: the diagonal and below, torch.tril.",
                kind="sign",
            ),
            Mistake(
                lambda t: _ones(t).triu(),
                "upper triangle: row t (the query) would see columns s >= t, the future. It must see s <= t, the "
                "past: torch.tril, not triu.",
                kind="formula",
            ),
            Mistake(
                lambda t: _ones(t),
                "all True: every token would see the whole sequence, the future included. Keep only the diagonal and "
                "below (torch.tril).",
                kind="missing",
            ),
            Mistake(
                lambda t: torch.zeros(t, t, dtype=_D).masked_fill(~_ones(t).tril(), float("-inf")),
                "that is the additive float mask (0 and -inf) added to the scores; here return True/False, True "
                "where query t may look at key s.",
                kind="convention",
            ),
        ],
        hint="Row t is the query, column s the key: query t may look at key s when s is t itself or comes before it.",
    )


# ---------------------------------------------------------------- heads
# B, T, H, d all different, so a transpose of the wrong axes gives a wrong shape or wrong numbers
_SPLIT_CASES = [(_randn(2, 5, 12, seed=20), 3), (_randn(3, 2, 8, seed=21), 4), (_randn(1, 6, 10, seed=22), 2)]


def _split(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)


@exercise()
def check_split_heads(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> CheckResult:
    """Check `fn(x, n_heads)`: (B, T, C) -> (B, H, T, C/H), head h holding features h*d .. (h+1)*d - 1 (lesson 06)."""

    def shape(x, h):
        B, T, C = x.shape
        return B, T, h, C // h

    wrong_axes = (
        "you transposed the wrong axes: in the (B, T, H, d) view, swap positions and heads, transpose(1, 2), to get "
        "(B, H, T, d)."
    )
    return check(
        "split_heads",
        _tensor_answer(fn),
        _split,
        _SPLIT_CASES,
        mistakes=[
            Mistake(
                lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h),
                "reshaping (B, T, C) straight to (B, H, T, d) mixes positions across heads: view as (B, T, H, d) "
                "first (each token's features split into H pieces), then transpose(1, 2).",
                kind="axis",
            ),
            Mistake(
                lambda x, h: x.view(*shape(x, h)),
                "you stopped at (B, T, H, d): transpose(1, 2) to put the heads before the positions.",
                kind="missing",
            ),
            Mistake(lambda x, h: x.view(*shape(x, h)).transpose(1, 3), wrong_axes, kind="axis"),
            Mistake(lambda x, h: x.view(*shape(x, h)).transpose(2, 3), wrong_axes, kind="axis"),
            Mistake(
                lambda x, h: x.view(x.shape[0], x.shape[1], x.shape[2] // h, h).permute(0, 3, 1, 2),
                "the features were dealt out to the heads like cards (feature c to head c % H); head h takes the "
                "consecutive features h*d .. (h+1)*d - 1, so view as (B, T, H, d), not (B, T, d, H).",
                kind="axis",
            ),
        ],
    )


_MERGE_CASES = [(_randn(2, 3, 5, 4, seed=23),), (_randn(3, 4, 2, 2, seed=24),), (_randn(1, 2, 6, 5, seed=25),)]


@exercise(answer="ftlearn.transformer:merge_heads")
def check_merge_heads(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check `fn(x)`: (B, H, T, d) -> (B, T, H*d), the inverse of split_heads (lesson 06)."""

    def explained(x):
        try:
            return _tensor_answer(fn)(x)
        except RuntimeError as exc:
            if "view size is not compatible" in str(exc):  # .view after .transpose: say why
                raise RuntimeError(
                    "view() needs a contiguous tensor and a transposed one is not: use .reshape(B, T, H * d), "
                    "or .contiguous().view(...)"
                ) from None
            raise

    return check(
        "merge_heads",
        explained,
        lambda x: x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1),
        _MERGE_CASES,
        mistakes=[
            Mistake(
                lambda x: x.reshape(x.shape[0], x.shape[2], -1),
                "reshaping (B, H, T, d) straight to (B, T, H*d) mixes positions and heads: transpose(1, 2) back to "
                "(B, T, H, d) first, then reshape.",
                kind="order",
            ),
            Mistake(
                lambda x: x.transpose(1, 3).reshape(x.shape[0], x.shape[2], -1),
                "you transposed the wrong axes: swap heads and positions, transpose(1, 2), then reshape.",
                kind="axis",
            ),
        ],
    )


# ---------------------------------------------------------------- LayerNorm
# x with a mean and spread far from 0 and 1, so that skipping a step shows; eps = 0.1 in one case so
# that where eps goes shows too. Shapes (B, T, C) with T != C, and one (N, C).
_LN_CASES = [
    (3.0 + 2.0 * _randn(2, 3, 5, seed=30), _randn(5, seed=31), _randn(5, seed=32), 1e-5),
    (-1.0 + 0.5 * _randn(4, 6, seed=33), _randn(6, seed=34), _randn(6, seed=35), 0.1),
    (5.0 * _randn(3, 2, 4, seed=36), 1.0 + 0.1 * _randn(4, seed=37), _randn(4, seed=38), 1e-3),
]


def _ln(x, w, b, eps, dim=-1, unbiased=False, eps_outside=False, sqrt=True, affine=True):
    """LayerNorm with one thing changed at a time: the models of the learners' mistakes."""
    mean = x.mean(dim=dim, keepdim=True)
    var = x.var(dim=dim, keepdim=True, unbiased=unbiased)
    if not sqrt:
        y = (x - mean) / (var + eps)
    elif eps_outside:
        y = (x - mean) / (torch.sqrt(var) + eps)
    else:
        y = (x - mean) / torch.sqrt(var + eps)
    return y * w + b if affine else y


@exercise(answer="ftlearn.transformer:layer_norm")
def check_layer_norm(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(x, weight, bias, eps)`: normalise over the last dim, biased variance, eps in the sqrt (lesson 06)."""
    wrong_dim = (
        "wrong dimension: LayerNorm normalises each token's vector over its features, the last dim "
        "(mean(dim=-1, keepdim=True)), not over the batch or the positions."
    )
    return check(
        "layer_norm",
        _tensor_answer(fn),
        lambda x, w, b, eps: F.layer_norm(x, x.shape[-1:], w, b, eps),
        _LN_CASES,
        mistakes=[
            Mistake(lambda x, w, b, eps: _ln(x, w, b, eps, dim=0), wrong_dim, kind="axis"),
            Mistake(lambda x, w, b, eps: _ln(x, w, b, eps, dim=1), wrong_dim, kind="axis"),
            Mistake(
                lambda x, w, b, eps: _ln(x, w, b, eps, unbiased=True),
                "unbiased variance: torch.var divides by n - 1 by default (Bessel's correction); LayerNorm divides "
                "by n. Use x.var(dim=-1, keepdim=True, unbiased=False) or ((x - mean) ** 2).mean(dim=-1, "
                "keepdim=True).",
                kind="formula",
            ),
            Mistake(
                lambda x, w, b, eps: _ln(x, w, b, eps, eps_outside=True),
                "eps goes inside the square root: (x - mean) / sqrt(var + eps), not / (sqrt(var) + eps).",
                kind="formula",
            ),
            Mistake(
                lambda x, w, b, eps: _ln(x, w, b, 0.0),
                "eps is missing: divide by sqrt(var + eps); eps keeps a constant vector (var = 0) from giving 0/0.",
                kind="missing",
            ),
            Mistake(
                lambda x, w, b, eps: _ln(x, w, b, 0.0, unbiased=True),
                "x.std() divides by n - 1 (Bessel's correction) and has no eps: LayerNorm uses sqrt(var + eps) with "
                "the biased variance, ((x - mean) ** 2).mean(dim=-1, keepdim=True).",
                kind="formula",
            ),
            Mistake(
                lambda x, w, b, eps: _ln(x, w, b, eps, unbiased=True, eps_outside=True),
                "x.std() divides by n - 1 (Bessel's correction), and eps goes inside the square root: "
                "(x - mean) / sqrt(var + eps) with the biased variance.",
                kind="formula",
            ),
            Mistake(
                lambda x, w, b, eps: _ln(x, w, b, eps, sqrt=False),
                "divide by the standard deviation, sqrt(var + eps), not by the variance.",
                kind="formula",
            ),
            Mistake(
                lambda x, w, b, eps: _ln(x, w, b, eps, affine=False),
                "weight and bias were not applied: after normalising, multiply by weight and add bias "
                "(y * weight + bias), so the layer can learn any scale and shift.",
                kind="missing",
            ),
            Mistake(
                lambda x, w, b, eps: _ln(x, w, b, eps) - b,
                "the bias is missing: y * weight + bias.",
                kind="missing",
            ),
        ],
        hint=(
            "Per token: subtract the mean of its features, divide by their standard deviation (biased variance, eps "
            "inside the square root), then scale by weight and shift by bias."
        ),
    )
