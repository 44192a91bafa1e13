"""Checks for the exercises of lesson 06, the transformer by hand.

Recall: attention with its mask, the causal mask, splitting and merging heads, LayerNorm, every reference
PyTorch's own function or a one-line tensor expression, in float64; GPT-2's block and BERT's layer assembled from
given parts (the lesson shows both arrangements), checked against the hidden states of small GPT2Model / BertModel
instances with random weights. Worked out: the parameters and forward FLOPs of a LLaMA-style layer, checked against
transformers' LlamaDecoderLayer and FlopCounterMode; RMSNorm against F.rms_norm; and that layer assembled from its
parts (the lesson prints no such layer), against a small LlamaModel's hidden state. transformers is imported only when
one of those checks runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ftlearn.checks.core import CheckResult, Mistake, check, close, exercise

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


# ---------------------------------------------------------------- a block from its parts
# The parts come from small models with random weights (float64, redrawn at a scale where every mistake shows), and
# the reference is the model's own hidden state after its first layer: the learner's arrangement is checked against
# transformers' GPT2Model and BertModel, not against a formula of ours.
_C, _H, _FFN = 12, 3, 24  # hidden size, heads, feed-forward size of the small models


def _redraw(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """The model in float64 eval mode, every parameter redrawn: LayerNorm scales around 1, the rest around 0."""
    gen = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_scale = "LayerNorm.weight" in name or name.endswith(
                ("ln_1.weight", "ln_2.weight", "ln_f.weight", "norm.weight")
            )
            p.copy_((1.0 if is_scale else 0.0) + 0.3 * torch.randn(p.shape, generator=gen, dtype=_D))
    return model


class _Part:
    """One part handed to the learner's block: a function of a (B, T, ·) tensor that a hint names by its name."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str) -> None:
        self.fn, self.name = fn, name

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return self.fn(t)

    def __repr__(self) -> str:
        return self.name

    def __deepcopy__(self, memo: dict) -> _Part:
        return self  # stateless: the check's copies of a case share it


def _gpt2_parts(w: dict, eps: float) -> tuple:
    """attn, mlp, ln_1, ln_2 of one GPT-2 block, from its state dict (Conv1D weights are (in, out))."""
    from ftlearn.transformer import (
        causal_mask,
        gelu,
        layer_norm,
        merge_heads,
        scaled_dot_product_attention,
        split_heads,
    )

    def linear(t, name):
        return t @ w[f"{name}.weight"] + w[f"{name}.bias"]

    def attn(t):  # causal self-attention with its output projection: (B, T, C) -> (B, T, C)
        q, k, v = (split_heads(u, _H) for u in linear(t, "attn.c_attn").split(t.shape[-1], dim=-1))
        return linear(merge_heads(scaled_dot_product_attention(q, k, v, causal_mask(t.shape[1]))[0]), "attn.c_proj")

    def mlp(t):
        return linear(gelu(linear(t, "mlp.c_fc"), "tanh"), "mlp.c_proj")

    def ln_1(t):
        return layer_norm(t, w["ln_1.weight"], w["ln_1.bias"], eps)

    def ln_2(t):
        return layer_norm(t, w["ln_2.weight"], w["ln_2.bias"], eps)

    return _Part(attn, "attn"), _Part(mlp, "mlp"), _Part(ln_1, "ln_1"), _Part(ln_2, "ln_2")


def _bert_parts(w: dict, eps: float) -> tuple:
    """attn, ffn, ln_1, ln_2 of one BERT layer, from its state dict (nn.Linear weights are (out, in))."""
    from ftlearn.transformer import gelu, layer_norm, merge_heads, scaled_dot_product_attention, split_heads

    def linear(t, name):
        return t @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def attn(t):  # self-attention over every position, with its output projection: (B, T, C) -> (B, T, C)
        q, k, v = (split_heads(linear(t, f"attention.self.{n}"), _H) for n in ("query", "key", "value"))
        return linear(merge_heads(scaled_dot_product_attention(q, k, v)[0]), "attention.output.dense")

    def ffn(t):
        return linear(gelu(linear(t, "intermediate.dense")), "output.dense")

    def ln_1(t):
        return layer_norm(t, w["attention.output.LayerNorm.weight"], w["attention.output.LayerNorm.bias"], eps)

    def ln_2(t):
        return layer_norm(t, w["output.LayerNorm.weight"], w["output.LayerNorm.bias"], eps)

    return _Part(attn, "attn"), _Part(ffn, "ffn"), _Part(ln_1, "ln_1"), _Part(ln_2, "ln_2")


@functools.cache
def _block_cases(kind: str) -> tuple:
    """((x, attn, sublayer, ln_1, ln_2), the model's output) of two small random models of `kind`, "gpt2" or "bert"."""
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    cases = []
    for seed, (batch, seq) in enumerate(((2, 5), (1, 7))):
        ids = torch.randint(0, 50, (batch, seq), generator=torch.Generator().manual_seed(40 + seed))
        if kind == "gpt2":  # two blocks, so that hidden_states[1] is block 0's output (the last one has ln_f)
            config = GPT2Config(
                n_embd=_C,
                n_head=_H,
                n_inner=_FFN,
                n_layer=2,
                vocab_size=50,
                n_positions=16,
                bos_token_id=0,
                eos_token_id=0,
                attn_implementation="eager",
            )
            model = _redraw(GPT2Model(config), seed=50 + seed)
            layer, eps, parts = model.h[0], config.layer_norm_epsilon, _gpt2_parts
        else:
            config = BertConfig(
                hidden_size=_C,
                num_attention_heads=_H,
                intermediate_size=_FFN,
                num_hidden_layers=1,
                vocab_size=50,
                max_position_embeddings=16,
                attn_implementation="eager",
            )
            model = _redraw(BertModel(config), seed=60 + seed)
            layer, eps, parts = model.encoder.layer[0], config.layer_norm_eps, _bert_parts
        with torch.no_grad():
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
        cases.append(((hidden[0], *parts(layer.state_dict(), eps)), hidden[1]))
    return tuple(cases)


def _pre_ln(x, attn, mlp, ln_1, ln_2):
    """GPT-2's block, pre-LN: each sub-layer reads a normalised copy; the residual stream is never normalised."""
    h = x + attn(ln_1(x))  # (B, T, C)
    return h + mlp(ln_2(h))


def _post_ln(x, attn, ffn, ln_1, ln_2):
    """BERT's layer, post-LN: add the sub-layer's output to its input, then normalise the sum."""
    h = ln_1(x + attn(x))  # (B, T, C)
    return ln_2(h + ffn(h))


class _ModelOutput:
    """The reference of a block check: the model's own output for the case whose input is x."""

    def __init__(self, cases: tuple) -> None:
        self.cases = cases

    def __call__(self, x, *parts):
        return next(want for args, want in self.cases if torch.equal(args[0], x))


def _block_check(name: str, fn: Callable, kind: str, mistakes: list[Mistake], hint: str) -> CheckResult:
    cases = _block_cases(kind)
    inputs = [args for args, _ in cases]
    return check(name, _tensor_answer(fn), _ModelOutput(cases), inputs, mistakes=mistakes, hint=hint)


_PRE_LN_HINT = (
    "that is BERT's arrangement, post-LN: a LayerNorm after each addition. GPT-2 is pre-LN: each sub-layer reads a "
    "normalised copy of the stream, x + attn(ln_1(x)), and the sum itself is never normalised."
)
_POST_LN_HINT = (
    "that is GPT-2's arrangement, pre-LN: each sub-layer reading a normalised copy. BERT is post-LN: add the "
    "sub-layer's output to its input, then normalise the sum, ln_1(x + attn(x))."
)


@exercise(answer=_pre_ln)
def check_gpt2_block_from_parts(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(x, attn, mlp, ln_1, ln_2)` -> GPT-2's block, pre-LN, against a small GPT2Model's output (lesson 06)."""
    return _block_check(
        "gpt2_block_from_parts",
        fn,
        "gpt2",
        mistakes=[
            Mistake(_post_ln, _PRE_LN_HINT, kind="order"),
            Mistake(
                lambda x, attn, mlp, ln_1, ln_2: _pre_ln(ln_1(x), attn, mlp, lambda t: t, ln_2),
                "you normalised the residual stream itself (x = ln_1(x), then x + attn(x)): the addition must carry "
                "the un-normalised x, and only the sub-layer's input is normalised: x + attn(ln_1(x)).",
                kind="logic",
            ),
            Mistake(
                lambda x, attn, mlp, ln_1, ln_2: x + attn(ln_1(x)) + mlp(ln_2(x)),
                "both sub-layers read x: that is the 'parallel' block of GPT-J, GPT-NeoX and PaLM. In GPT-2 the MLP "
                "reads the stream after the attention's addition, h = x + attn(ln_1(x)).",
                kind="order",
            ),
            Mistake(
                lambda x, attn, mlp, ln_1, ln_2: _pre_ln(x, mlp, attn, ln_2, ln_1),
                "the MLP came first: in a GPT-2 block attention comes first (tokens exchange information), then the "
                "MLP works on each token alone.",
                kind="order",
            ),
            Mistake(
                lambda x, attn, mlp, ln_1, ln_2: _pre_ln(x, attn, mlp, ln_2, ln_1),
                "the LayerNorms are swapped: ln_1 belongs to the attention sub-layer, ln_2 to the MLP.",
                kind="logic",
            ),
            Mistake(
                lambda x, attn, mlp, ln_1, ln_2: attn(ln_1(x)) + mlp(ln_2(attn(ln_1(x)))),
                "the first residual connection is missing: h = x + attn(ln_1(x)), so that x itself goes on.",
                kind="missing",
            ),
            Mistake(
                lambda x, attn, mlp, ln_1, ln_2: mlp(ln_2(x + attn(ln_1(x)))),
                "the second residual connection is missing: the block returns h + mlp(ln_2(h)), not mlp(ln_2(h)).",
                kind="missing",
            ),
            Mistake(
                lambda x, attn, mlp, ln_1, ln_2: ln_2(_pre_ln(x, attn, mlp, ln_1, ln_2)),
                "a LayerNorm on the block's output: pre-LN leaves the stream unnormalised inside the stack (GPT-2 "
                "normalises once, after the last block, with ln_f, which is not part of a block).",
                kind="logic",
            ),
        ],
        hint="Two sub-layers in turn, attention then MLP; each adds its output to the stream it read. Decide which "
        "tensor each LayerNorm is applied to: the sub-layer's input, or the sum.",
    )


@exercise(answer=_post_ln)
def check_bert_layer_from_parts(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(x, attn, ffn, ln_1, ln_2)` -> BERT's layer, post-LN, against a small BertModel's output (lesson 06)."""
    return _block_check(
        "bert_layer_from_parts",
        fn,
        "bert",
        mistakes=[
            Mistake(_pre_ln, _POST_LN_HINT, kind="order"),
            Mistake(
                lambda x, attn, ffn, ln_1, ln_2: (lambda h: h + ln_2(ffn(h)))(x + ln_1(attn(x))),
                "you normalised the sub-layer's output and then added x; BERT normalises the sum: ln_1(x + attn(x)).",
                kind="order",
            ),
            Mistake(
                lambda x, attn, ffn, ln_1, ln_2: ln_1(x + attn(x)) + ffn(ln_1(x + attn(x))),
                "the feed-forward sub-layer has its LayerNorm too: out = ln_2(h + ffn(h)).",
                kind="missing",
            ),
            Mistake(
                lambda x, attn, ffn, ln_1, ln_2: x + attn(ln_1(x)) + ffn(ln_2(x)),
                "both sub-layers read x, and the LayerNorms went before them. In BERT the feed-forward network reads "
                "h = ln_1(x + attn(x)), and each LayerNorm normalises a sum.",
                kind="order",
            ),
            Mistake(
                lambda x, attn, ffn, ln_1, ln_2: _post_ln(x, attn, ffn, ln_2, ln_1),
                "the LayerNorms are swapped: ln_1 belongs to the attention sub-layer, ln_2 to the feed-forward one.",
                kind="logic",
            ),
            Mistake(
                lambda x, attn, ffn, ln_1, ln_2: ln_2(ln_1(attn(x)) + ffn(ln_1(attn(x)))),
                "the first residual connection is missing: h = ln_1(x + attn(x)), with x added before normalising.",
                kind="missing",
            ),
            Mistake(
                lambda x, attn, ffn, ln_1, ln_2: ln_2(ffn(ln_1(x + attn(x)))),
                "the second residual connection is missing: out = ln_2(h + ffn(h)).",
                kind="missing",
            ),
            Mistake(
                lambda x, attn, ffn, ln_1, ln_2: ln_2(x + ffn(ln_1(x + attn(x)))),
                "the second addition adds x, the layer's input; it adds h = ln_1(x + attn(x)), the input of the "
                "feed-forward sub-layer.",
                kind="logic",
            ),
        ],
        hint="Two sub-layers in turn, attention then feed-forward; each adds its output to its own input. Decide "
        "which tensor each LayerNorm is applied to: the sub-layer's input, or the sum.",
    )


# ---------------------------------------------------------------- a LLaMA-style layer: parameters and FLOPs
# (C, F, H, H_kv): small layers, then the layers of Llama-2-7B (no grouping) and Llama-3-8B (8 key/value heads)
_LLAMA_PARAM_CASES = [(64, 172, 4, 2), (96, 256, 6, 6), (48, 128, 8, 1), (4096, 11008, 32, 32), (4096, 14336, 32, 8)]
# (C, F, H, H_kv, T): small enough to run; the first with H/H_kv = 8, so that no two mistakes give the same number;
# the last with T > C, where the attention term is large
_LLAMA_FLOP_CASES = [(48, 128, 8, 1, 5), (64, 172, 4, 2, 10), (96, 256, 6, 6, 7), (32, 64, 4, 1, 40)]


def _llama_config(C: int, F: int, H: int, H_kv: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=C,
        intermediate_size=F,
        num_attention_heads=H,
        num_key_value_heads=H_kv,
        num_hidden_layers=1,
        vocab_size=64,
        attn_implementation="eager",
    )


@functools.cache
def _llama_layer_counted(C: int, F: int, H: int, H_kv: int) -> int:
    """The parameters of transformers' LlamaDecoderLayer, built on the meta device (shapes only, no memory)."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    with torch.device("meta"):
        layer = LlamaDecoderLayer(_llama_config(C, F, H, H_kv), layer_idx=0)
    return sum(p.numel() for p in layer.parameters())


@functools.cache
def _llama_flops_counted(C: int, F: int, H: int, H_kv: int, T: int) -> float:
    """Forward FLOPs per token of a one-layer LlamaModel on T tokens, as FlopCounterMode counts them."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import LlamaModel

    torch.manual_seed(0)  # the weights' values do not change the count; seeded all the same
    model = LlamaModel(_llama_config(C, F, H, H_kv)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=torch.zeros(1, T, dtype=torch.long))
    return counter.get_total_flops() / T


def _llama_params_answer(C: int, F: int, H: int, H_kv: int) -> int:
    """A LLaMA-style layer: no biases, two RMSNorms (a scale each), SwiGLU (3 matrices), H_kv key/value heads."""
    d = C // H  # head size
    attention = C * C + 2 * C * (H_kv * d) + C * C  # W_Q (C -> C), W_K and W_V (C -> H_kv d), W_O (C -> C)
    feed_forward = 3 * C * F  # gate and up (C -> F), down (F -> C)
    norms = 2 * C  # two RMSNorms, a scale per feature, no shift
    return attention + feed_forward + norms


def _llama_flops_answer(C: int, F: int, H: int, H_kv: int, T: int) -> int:
    """Forward FLOPs per token: 2 per weight of the matrix products, plus attention's two products over T keys."""
    d = C // H
    weights = 2 * (2 * C * C + 2 * C * H_kv * d + 3 * C * F)  # a multiply-add per weight per token
    attention = 2 * (2 * T * H * d)  # every one of the H query heads scores T keys, then mixes T values
    return weights + attention


@exercise(answer=_llama_params_answer)
def check_llama_layer_params(fn: Callable[..., int]) -> CheckResult:
    """Check `fn(C, F, H, H_kv)` -> parameters of a LLaMA-style layer, against transformers' LlamaDecoderLayer."""

    def wrong(extra: Callable[..., int]) -> Callable[..., int]:
        return lambda C, F, H, K: _llama_params_answer(C, F, H, K) + extra(C, F, H, K)

    return check(
        "llama_layer_params",
        fn,
        _llama_layer_counted,
        _LLAMA_PARAM_CASES,
        mistakes=[
            Mistake(
                wrong(lambda C, F, H, K: 2 * C * C - 2 * C * K * (C // H)),
                "W_K and W_V map C to H_kv heads of size d = C/H: each is C × (H_kv·d), not C × C.",
                kind="formula",
            ),
            Mistake(
                wrong(lambda C, F, H, K: 2 * C * K * C - 2 * C * K * (C // H)),
                "a key/value head is d = C/H wide, not C: W_K and W_V are C × (H_kv·d).",
                kind="formula",
            ),
            Mistake(
                wrong(lambda C, F, H, K: -C * F),
                "the gated MLP has three C × F matrices: W_gate and W_up (C -> F), then W_down (F -> C).",
                kind="formula",
            ),
            Mistake(
                wrong(lambda C, F, H, K: 2 * C),
                "RMSNorm has a scale and no shift: C parameters per norm, 2C for the layer's two.",
                kind="formula",
            ),
            Mistake(
                wrong(lambda C, F, H, K: -2 * C),
                "the two RMSNorms are missing: each has a scale of C parameters.",
                kind="missing",
            ),
            Mistake(
                wrong(lambda C, F, H, K: 2 * C + 2 * K * (C // H) + 2 * F + C),
                "LLaMA's linear layers have no biases: count the weight matrices only.",
                kind="logic",
            ),
            Mistake(
                lambda C, F, H, K: 4 * C * C + 4 * C + 2 * C * F + F + C + 4 * C,
                "that is the count of a GPT-2 block, the lesson's formula. Change each of its terms for the four "
                "differences: no biases, RMSNorm, three MLP matrices, H_kv key/value heads.",
                kind="formula",
            ),
        ],
        hint="Go through the layer's weight matrices one by one and write each one's shape (input size × output size) "
        "from the description, then add the norms' scales.",
    )


@exercise(answer=_llama_flops_answer)
def check_llama_layer_flops(fn: Callable[..., float]) -> CheckResult:
    """Check `fn(C, F, H, H_kv, T)` -> forward FLOPs per token of a LLaMA-style layer, against FlopCounterMode."""

    def weights(C, F, H, K):
        return 2 * C * C + 2 * C * K * (C // H) + 3 * C * F

    return check(
        "llama_layer_flops",
        fn,
        _llama_flops_counted,
        _LLAMA_FLOP_CASES,
        compare=lambda got, want: close(got, want, rtol=1e-9),
        mistakes=[
            Mistake(
                lambda C, F, H, K, T: weights(C, F, H, K) + 2 * T * C,
                "a multiply-add is 2 FLOPs: every weight costs 2 FLOPs per token, and each of attention's two "
                "products 2TC.",
                kind="scale",
            ),
            Mistake(
                lambda C, F, H, K, T: 2 * weights(C, F, H, K),
                "attention's two products without weights are missing: q·k against T keys, then the weights times T "
                "values, 2TC FLOPs each per token.",
                kind="missing",
            ),
            Mistake(
                lambda C, F, H, K, T: 2 * weights(C, F, H, K) + 2 * T * C,
                "only one of attention's two products: q·k against T keys is 2TC, the weights times T values another "
                "2TC.",
                kind="missing",
            ),
            Mistake(
                lambda C, F, H, K, T: 2 * weights(C, F, H, K) + 4 * T * K * (C // H),
                "grouped-query attention shares the keys and values between query heads, not the work: each of the H "
                "query heads still scores T keys and mixes T values, 4·T·H·d = 4TC per token.",
                kind="formula",
            ),
            Mistake(
                lambda C, F, H, K, T: 2 * (4 * C * C + 3 * C * F) + 4 * T * C,
                "W_K and W_V are C × (H_kv·d), not C × C: grouped-query attention makes them smaller.",
                kind="formula",
            ),
            Mistake(
                lambda C, F, H, K, T: 2 * (weights(C, F, H, K) - C * F) + 4 * T * C,
                "the gated MLP has three C × F matrices (gate, up, down): 2·3CF FLOPs per token.",
                kind="formula",
            ),
            Mistake(
                lambda C, F, H, K, T: T * (2 * weights(C, F, H, K) + 4 * T * C),
                "that is the whole sequence; the exercise asks per token: divide by the T tokens.",
                kind="scale",
            ),
            Mistake(
                lambda C, F, H, K, T: 3 * (2 * weights(C, F, H, K) + 4 * T * C),
                "that is a training step (forward and backward, about 3x the forward); the exercise asks for the "
                "forward pass only.",
                kind="scale",
            ),
        ],
        hint="Two parts: 2 FLOPs per weight of every matrix product (the weights of exercise 8, norms left out), and "
        "attention's two products that have no weights. For the second, count per query head how many keys and "
        "values it works with.",
    )


# ---------------------------------------------------------------- RMSNorm
# x with a mean far from 0, so that subtracting it (LayerNorm's first step, which RMSNorm drops) shows; eps = 0.1 in
# one case so that where eps goes shows too. Shapes (B, T, C) with T != C, and one (N, C).
_RMS_CASES = [
    (3.0 + 2.0 * _randn(2, 3, 5, seed=70), _randn(5, seed=71), 1e-6),
    (-1.0 + 0.5 * _randn(4, 6, seed=72), 1.0 + 0.1 * _randn(6, seed=73), 0.1),
    (5.0 * _randn(3, 2, 4, seed=74), _randn(4, seed=75), 1e-3),
]


def _rms(x, w, eps, dim=-1, center=False, eps_outside=False, sqrt=True, total=False, affine=True):
    """RMSNorm with one thing changed at a time: the models of the learners' mistakes."""
    x0 = x - x.mean(dim=dim, keepdim=True) if center else x
    square = (x0**2).sum(dim=dim, keepdim=True) if total else (x0**2).mean(dim=dim, keepdim=True)
    if not sqrt:
        y = x0 / (square + eps)
    elif eps_outside:
        y = x0 / (torch.sqrt(square) + eps)
    else:
        y = x0 / torch.sqrt(square + eps)
    return y * w if affine else y


def _rms_answer(x, weight, eps):
    """RMSNorm: divide each vector by the root of its mean square (eps inside the root), then scale."""
    return weight * x / torch.sqrt((x**2).mean(dim=-1, keepdim=True) + eps)


@exercise(answer=_rms_answer)
def check_rms_norm(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(x, weight, eps)` -> weight * x / sqrt(mean(x²) + eps) over the last dim, against F.rms_norm."""
    return check(
        "rms_norm",
        _tensor_answer(fn),
        lambda x, w, eps: F.rms_norm(x, x.shape[-1:], w, eps),
        _RMS_CASES,
        mistakes=[
            Mistake(
                lambda x, w, eps: _rms(x, w, eps, center=True),
                "you subtracted the mean first: that is LayerNorm's step, and RMSNorm drops it. Divide x itself by "
                "the root of its mean square, sqrt(mean(x²) + eps).",
                kind="formula",
            ),
            Mistake(
                lambda x, w, eps: _rms(x, w, eps, dim=0),
                "wrong dimension: RMSNorm normalises each token's vector over its features, the last dim.",
                kind="axis",
            ),
            Mistake(
                lambda x, w, eps: _rms(x, w, eps, total=True),
                "that divides by the vector's length, sqrt(sum(x²)): RMSNorm takes the *mean* of the squares, so "
                "the result has a root mean square of 1 (a length of √C), whatever C is.",
                kind="formula",
            ),
            Mistake(
                lambda x, w, eps: _rms(x, w, eps, eps_outside=True),
                "eps goes inside the square root: x / sqrt(mean(x²) + eps), not x / (sqrt(mean(x²)) + eps).",
                kind="formula",
            ),
            Mistake(
                lambda x, w, eps: _rms(x, w, 0.0),
                "eps is missing: x / sqrt(mean(x²) + eps); it keeps an all-zero vector from giving 0/0.",
                kind="missing",
            ),
            Mistake(
                lambda x, w, eps: _rms(x, w, eps, sqrt=False),
                "divide by the root of the mean square, sqrt(mean(x²) + eps), not by the mean square itself.",
                kind="formula",
            ),
            Mistake(
                lambda x, w, eps: _rms(x, w, eps, affine=False),
                "the scale is missing: multiply the normalised vector by weight (γ), feature by feature.",
                kind="missing",
            ),
        ],
        hint="Per token: the mean of the squares of its features, plus eps, square-rooted; divide the vector by that, "
        "then multiply by weight. No mean is subtracted and there is no bias.",
    )


# ---------------------------------------------------------------- a LLaMA-style layer from its parts
# A two-layer LlamaModel with random weights, grouped-query attention (3 query heads share 1 key/value head) and the
# rotary position embedding; the reference is its hidden state after its first layer, so the learner's arrangement
# is checked against transformers' LlamaDecoderLayer, not against a formula of ours. transformers' RMSNorm computes in
# float32 even in a float64 model, hence the looser tolerance; every mistake below moves the output by far more.
_LLAMA_KV_HEADS = 1


def _rotary(t: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """The rotary position embedding (LLaMA's layout: the two halves of each head rotate together) of (B, H, T, d)."""
    d, positions = t.shape[-1], torch.arange(t.shape[-2], dtype=t.dtype)
    angles = positions[:, None] / theta ** (torch.arange(0, d, 2, dtype=t.dtype) / d)  # (T, d/2)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()  # (T, d)
    first, second = t[..., : d // 2], t[..., d // 2 :]
    return t * cos + torch.cat([-second, first], -1) * sin


def _llama_parts(w: dict, eps: float) -> tuple:
    """attn, gate, up, down, norm_1, norm_2 of one LLaMA layer, from its state dict (no biases anywhere)."""
    from ftlearn.transformer import causal_mask, merge_heads, scaled_dot_product_attention, split_heads

    def linear(t, name):
        return t @ w[f"{name}.weight"].T

    def attn(t):  # causal grouped-query attention with rotary positions and its output projection
        q = _rotary(split_heads(linear(t, "self_attn.q_proj"), _H))  # (B, H, T, d)
        k = _rotary(split_heads(linear(t, "self_attn.k_proj"), _LLAMA_KV_HEADS))  # (B, H_kv, T, d)
        v = split_heads(linear(t, "self_attn.v_proj"), _LLAMA_KV_HEADS)
        k, v = (u.repeat_interleave(_H // _LLAMA_KV_HEADS, dim=1) for u in (k, v))  # each query head its group's
        return linear(
            merge_heads(scaled_dot_product_attention(q, k, v, causal_mask(t.shape[1]))[0]), "self_attn.o_proj"
        )

    def rms(name):
        return lambda t: _rms_answer(t, w[f"{name}.weight"], eps)

    parts = {
        "attn": attn,
        "gate": lambda t: linear(t, "mlp.gate_proj"),
        "up": lambda t: linear(t, "mlp.up_proj"),
        "down": lambda t: linear(t, "mlp.down_proj"),
        "norm_1": rms("input_layernorm"),
        "norm_2": rms("post_attention_layernorm"),
    }
    return tuple(_Part(fn, name) for name, fn in parts.items())


@functools.cache
def _llama_block_cases() -> tuple:
    """((x, attn, gate, up, down, norm_1, norm_2), the model's output) of two small random LlamaModels."""
    from transformers import LlamaConfig, LlamaModel

    cases = []
    for seed, (batch, seq) in enumerate(((2, 5), (1, 7))):
        ids = torch.randint(0, 50, (batch, seq), generator=torch.Generator().manual_seed(80 + seed))
        config = LlamaConfig(
            hidden_size=_C,
            num_attention_heads=_H,
            num_key_value_heads=_LLAMA_KV_HEADS,
            intermediate_size=_FFN,
            num_hidden_layers=2,  # so that hidden_states[1] is layer 0's output (the last one has the final norm)
            vocab_size=50,
            max_position_embeddings=16,
            rms_norm_eps=1e-3,
            attn_implementation="eager",
        )
        model = _redraw(LlamaModel(config), seed=90 + seed)
        with torch.no_grad():
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
        cases.append(((hidden[0], *_llama_parts(model.layers[0].state_dict(), config.rms_norm_eps)), hidden[1]))
    return tuple(cases)


def _swiglu(t, gate, up, down, act=F.silu):
    """The gated feed-forward network: down(act(gate(t)) ⊙ up(t))."""
    return down(act(gate(t)) * up(t))


def _llama_layer(x, attn, gate, up, down, norm_1, norm_2):
    """A LLaMA layer: pre-norm like GPT-2, RMSNorm, and the SwiGLU feed-forward network."""
    h = x + attn(norm_1(x))  # (B, T, C)
    return h + _swiglu(norm_2(h), gate, up, down)


@exercise(answer=_llama_layer)
def check_llama_layer_from_parts(fn: Callable[..., torch.Tensor]) -> CheckResult:
    """Check `fn(x, attn, gate, up, down, norm_1, norm_2)` -> a LLaMA layer, against a small LlamaModel's output."""
    cases = _llama_block_cases()

    def ffn(act=F.silu):  # the learner's arrangement with a right feed-forward network
        return lambda t, gate, up, down: _swiglu(t, gate, up, down, act)

    def layer(mlp):  # the right arrangement around a feed-forward network `mlp(t, gate, up, down)`
        return lambda x, a, g, u, d, n1, n2: (lambda h: h + mlp(n2(h), g, u, d))(x + a(n1(x)))

    return check(
        "llama_layer_from_parts",
        _tensor_answer(fn),
        _ModelOutput(cases),
        [args for args, _ in cases],
        compare=lambda got, want: close(got, want, rtol=1e-5, atol=1e-5),
        mistakes=[
            Mistake(
                lambda x, a, g, u, d, n1, n2: (lambda h: n2(h + _swiglu(h, g, u, d)))(n1(x + a(x))),
                "that is BERT's arrangement, post-LN: a norm after each addition. LLaMA is pre-norm, like GPT-2: "
                "each sub-layer reads a normalised copy of the stream, x + attn(norm_1(x)), and the sum itself is "
                "never normalised.",
                kind="order",
            ),
            Mistake(
                lambda x, a, g, u, d, n1, n2: x + a(n1(x)) + _swiglu(n2(x), g, u, d),
                "both sub-layers read x: that is the 'parallel' block of GPT-J, GPT-NeoX and PaLM. In LLaMA, as in "
                "GPT-2, the feed-forward network reads the stream after attention's addition, h = x + attn(norm_1(x)).",
                kind="order",
            ),
            Mistake(
                layer(lambda t, g, u, d: d(g(t) * F.silu(u(t)))),
                "the SiLU belongs to the gate: down(SiLU(gate(t)) ⊙ up(t)). The up projection stays linear.",
                kind="logic",
            ),
            Mistake(
                layer(lambda t, g, u, d: d(g(t) * u(t))),
                "the SiLU is missing: down(SiLU(gate(t)) ⊙ up(t)), with SiLU(z) = z · sigmoid(z).",
                kind="missing",
            ),
            Mistake(
                layer(ffn(torch.sigmoid)),
                "sigmoid alone is the gate of the original GLU; LLaMA's SiLU multiplies it by its input, "
                "SiLU(z) = z · sigmoid(z).",
                kind="formula",
            ),
            Mistake(
                layer(ffn(lambda z: F.gelu(z, approximate="tanh"))),
                "GELU is GPT-2's and BERT's activation (with a gate it would be GeGLU); LLaMA's gate uses SiLU, "
                "z · sigmoid(z).",
                kind="formula",
            ),
            Mistake(
                layer(ffn(F.gelu)),
                "GELU is GPT-2's and BERT's activation (with a gate it would be GeGLU); LLaMA's gate uses SiLU, "
                "z · sigmoid(z).",
                kind="formula",
            ),
            Mistake(
                layer(lambda t, g, u, d: d(F.silu(u(t)))),
                "the gate is missing: SwiGLU multiplies two projections of the same input element by element, "
                "SiLU(gate(t)) ⊙ up(t), before down.",
                kind="missing",
            ),
            Mistake(
                layer(lambda t, g, u, d: d(F.silu(g(t)))),
                "the up projection is missing: SwiGLU multiplies SiLU(gate(t)) element by element by up(t), "
                "before down.",
                kind="missing",
            ),
            Mistake(
                layer(lambda t, g, u, d: d(F.silu(g(t)) + u(t))),
                "the two projections are multiplied element by element, SiLU(gate(t)) * up(t), not added: the gate "
                "scales each of the F features of up(t).",
                kind="formula",
            ),
            Mistake(
                lambda x, a, g, u, d, n1, n2: _llama_layer(x, a, g, u, d, n2, n1),
                "the norms are swapped: norm_1 belongs to the attention sub-layer, norm_2 to the feed-forward one.",
                kind="logic",
            ),
            Mistake(
                lambda x, a, g, u, d, n1, n2: _llama_layer(n1(x), a, g, u, d, lambda t: t, n2),
                "you normalised the residual stream itself (x = norm_1(x), then x + attn(x)): the addition carries "
                "the un-normalised x, and only the sub-layer's input is normalised: x + attn(norm_1(x)).",
                kind="logic",
            ),
            Mistake(
                lambda x, a, g, u, d, n1, n2: a(n1(x)) + _swiglu(n2(a(n1(x))), g, u, d),
                "the first residual connection is missing: h = x + attn(norm_1(x)), so that x itself goes on.",
                kind="missing",
            ),
            Mistake(
                lambda x, a, g, u, d, n1, n2: _swiglu(n2(x + a(n1(x))), g, u, d),
                "the second residual connection is missing: the layer returns h + ffn(norm_2(h)), not ffn(norm_2(h)).",
                kind="missing",
            ),
            Mistake(
                lambda x, a, g, u, d, n1, n2: n2(_llama_layer(x, a, g, u, d, n1, n2)),
                "a norm on the layer's output: pre-norm leaves the stream unnormalised inside the stack (LLaMA "
                "normalises once, after the last layer, as GPT-2 does with ln_f).",
                kind="logic",
            ),
        ],
        hint="Two sub-layers in turn, attention then the gated feed-forward network; each reads a normalised copy of "
        "the stream and adds its output to it. The feed-forward network is the formula of exercise 8: which "
        "projection goes through SiLU, and how the two are combined, is written there.",
    )
