"""The checks of lesson 06: right answers pass (in several correct styles), common mistakes get their hint,
stubs are 'not attempted'."""

import math

import pytest
import torch

from ftlearn import checks
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, STRICT_ENV, WRONG
from ftlearn.checks.transformer import _LLAMA_FLOP_CASES, _LLAMA_PARAM_CASES, _llama_flops_answer, _llama_params_answer
from ftlearn.transformer import (
    causal_mask,
    layer_flops_per_token,
    layer_norm,
    layer_parameters,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- learner-style answers, right and wrong
def attention(q, k, v, mask=None, scale=None, dim=-1, after=None, fill=float("-inf")):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if mask is not None and after is None:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=dim)
    if mask is not None and after == "zero":
        weights = weights * mask
    if mask is not None and after == "renormalise":  # correct: the same answer when no row is fully masked
        weights = weights * mask
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights @ v


def norm(x, w, b, eps, dim=-1, correction=0, eps_outside=False, affine=True):
    mean = x.mean(dim=dim, keepdim=True)
    var = x.var(dim=dim, keepdim=True, correction=correction)
    y = (x - mean) / (var.sqrt() + eps) if eps_outside else (x - mean) / (var + eps).sqrt()
    return y * w + b if affine else y


def split(x, n_heads):
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)


def gpt2_block(x, attn, mlp, ln_1, ln_2):
    h = x + attn(ln_1(x))
    return h + mlp(ln_2(h))


def bert_layer(x, attn, ffn, ln_1, ln_2):
    h = ln_1(x + attn(x))
    return ln_2(h + ffn(h))


def rms(x, w, eps, center=False, total=False, eps_outside=False, affine=True):
    x0 = x - x.mean(-1, keepdim=True) if center else x
    square = (x0**2).sum(-1, keepdim=True) if total else (x0**2).mean(-1, keepdim=True)
    y = x0 / (square.sqrt() + eps) if eps_outside else x0 / (square + eps).sqrt()
    return y * w if affine else y


def llama_layer(x, attn, gate, up, down, norm_1, norm_2, act=None, combine=None):
    act = act or (lambda z: z * torch.sigmoid(z))
    combine = combine or (lambda g, u: act(g) * u)
    h = x + attn(norm_1(x))
    n = norm_2(h)
    return h + down(combine(gate(n), up(n)))


def llama_params(C, F, H, H_kv, bias=False, mlp_matrices=3, norm=1, kv_width=None):
    d = C // H
    kv = H_kv * d if kv_width is None else kv_width
    n = 2 * C * C + 2 * C * kv + mlp_matrices * C * F + 2 * norm * C
    return n + (2 * C + 2 * kv + 2 * F + C if bias else 0)


def llama_flops(C, F, H, H_kv, T, mult=2, attention=4, kv_heads=None, per_sequence=False):
    d = C // H
    matrices = 2 * C * C + 2 * C * H_kv * d + 3 * C * F
    per_token = mult * matrices + attention * T * (H if kv_heads is None else kv_heads) * d
    return per_token * T if per_sequence else per_token


CASES = {
    "attention": (
        checks.check_attention,
        [
            lambda q, k, v, mask=None: attention(q, k, v, mask),
            scaled_dot_product_attention,  # the library's own: a tuple (output, weights)
            lambda q, k, v, mask=None: attention(q, k, v, mask, after="renormalise"),
            lambda q, k, v, mask=None: attention(q, k, v, mask, fill=-1e9),  # a large finite fill works too
            lambda q, k, v, mask=None: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        ],
        [
            (lambda q, k, v, mask=None: attention(q, k, v, mask, scale=1.0), "missing scale"),
            (lambda q, k, v, mask=None: attention(q, k, v, mask, scale=1 / q.shape[-1]), "divided by d"),
            (lambda q, k, v, mask=None: attention(q, k, v, mask, after="zero"), "after the softmax"),
            (lambda q, k, v, mask=None: attention(q, k, v, mask, dim=-2), "wrong dimension"),
            (lambda q, k, v, mask=None: attention(q, k, v), "mask was ignored"),
            (lambda q, k, v, mask=None: attention(q, k, v, None if mask is None else ~mask), "inverted"),
        ],
    ),
    "causal_mask": (
        checks.check_causal_mask,
        [
            causal_mask,
            lambda t: torch.tril(torch.ones(t, t)).int(),  # 0/1 integers are accepted
            lambda t: torch.arange(t)[None, :] <= torch.arange(t)[:, None],
            lambda t: [[s <= q for s in range(t)] for q in range(t)],  # even nested lists
        ],
        [
            (lambda t: torch.ones(t, t, dtype=torch.bool).tril(-1), "must see itself"),
            (lambda t: torch.ones(t, t, dtype=torch.bool).triu(1), "to *hide*"),
            (lambda t: torch.ones(t, t, dtype=torch.bool).triu(), "upper triangle"),
            (lambda t: torch.ones(t, t, dtype=torch.bool), "all True"),
            (lambda t: torch.full((t, t), float("-inf")).triu(1), "additive float mask"),
        ],
    ),
    "split_heads": (
        checks.check_split_heads,
        [split, split_heads, lambda x, h: x.reshape(*x.shape[:2], h, -1).permute(0, 2, 1, 3)],
        [
            (lambda x, h: x.view(x.shape[0], h, x.shape[1], -1), "mixes positions across heads"),
            (lambda x, h: x.view(*x.shape[:2], h, -1), "stopped at (B, T, H, d)"),
            (lambda x, h: x.view(*x.shape[:2], h, -1).transpose(1, 3), "wrong axes"),
            (lambda x, h: x.view(*x.shape[:2], h, -1).transpose(2, 3), "wrong axes"),
            (lambda x, h: x.view(*x.shape[:2], -1, h).permute(0, 3, 1, 2), "like cards"),
        ],
    ),
    "merge_heads": (
        checks.check_merge_heads,
        [
            merge_heads,
            lambda x: x.transpose(1, 2).contiguous().view(x.shape[0], x.shape[2], -1),
            lambda x: x.permute(0, 2, 1, 3).flatten(2),
        ],
        [
            (lambda x: x.reshape(x.shape[0], x.shape[2], -1), "mixes positions and heads"),
            (lambda x: x.transpose(1, 3).reshape(x.shape[0], x.shape[2], -1), "wrong axes"),
            (lambda x: x.transpose(1, 2).view(x.shape[0], x.shape[2], -1), "contiguous"),  # view after transpose
        ],
    ),
    "layer_norm": (
        checks.check_layer_norm,
        [
            layer_norm,
            norm,
            lambda x, w, b, eps: torch.nn.functional.layer_norm(x, x.shape[-1:], w, b, eps),
        ],
        [
            (lambda x, w, b, eps: norm(x, w, b, eps, dim=0), "wrong dimension"),
            (lambda x, w, b, eps: norm(x, w, b, eps, dim=1), "wrong dimension"),
            (lambda x, w, b, eps: norm(x, w, b, eps, correction=1), "unbiased variance: torch.var"),
            (lambda x, w, b, eps: norm(x, w, b, eps, eps_outside=True), "not / (sqrt(var) + eps)"),
            (
                lambda x, w, b, eps: (
                    (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, correction=0) + eps) * w + b
                ),
                "not by the variance",
            ),
            (lambda x, w, b, eps: norm(x, w, b, 0.0), "eps is missing"),
            (
                lambda x, w, b, eps: (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True) * w + b,
                "x.std() divides by n - 1 (Bessel's correction) and has no eps",
            ),
            (
                lambda x, w, b, eps: (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps) * w + b,
                "correction), and eps goes inside",
            ),
            (lambda x, w, b, eps: norm(x, w, b, eps, affine=False), "weight and bias were not applied"),
            (lambda x, w, b, eps: norm(x, w, b, eps) - b, "bias is missing"),
        ],
    ),
    "gpt2_block_from_parts": (
        checks.check_gpt2_block_from_parts,
        [
            gpt2_block,
            lambda x, attn, mlp, ln_1, ln_2: (lambda h: h + mlp(ln_2(h)))(x + attn(ln_1(x))),
            lambda x, attn, mlp, ln_1, ln_2: torch.stack([gpt2_block(xi[None], attn, mlp, ln_1, ln_2)[0] for xi in x]),
        ],
        [
            (bert_layer, "that is BERT's arrangement, post-LN"),
            (
                lambda x, attn, mlp, ln_1, ln_2: gpt2_block(ln_1(x), attn, mlp, lambda t: t, ln_2),
                "residual stream itself",
            ),
            (lambda x, attn, mlp, ln_1, ln_2: x + attn(ln_1(x)) + mlp(ln_2(x)), "'parallel' block"),
            (lambda x, attn, mlp, ln_1, ln_2: gpt2_block(x, mlp, attn, ln_2, ln_1), "the MLP came first"),
            (lambda x, attn, mlp, ln_1, ln_2: gpt2_block(x, attn, mlp, ln_2, ln_1), "LayerNorms are swapped"),
            (lambda x, attn, mlp, ln_1, ln_2: attn(ln_1(x)) + mlp(ln_2(attn(ln_1(x)))), "first residual"),
            (lambda x, attn, mlp, ln_1, ln_2: mlp(ln_2(x + attn(ln_1(x)))), "second residual"),
            (lambda x, attn, mlp, ln_1, ln_2: ln_2(gpt2_block(x, attn, mlp, ln_1, ln_2)), "ln_f"),
        ],
    ),
    "bert_layer_from_parts": (
        checks.check_bert_layer_from_parts,
        [
            bert_layer,
            lambda x, attn, ffn, ln_1, ln_2: ln_2(ln_1(x + attn(x)) + ffn(ln_1(x + attn(x)))),
        ],
        [
            (gpt2_block, "that is GPT-2's arrangement, pre-LN"),
            (lambda x, attn, ffn, ln_1, ln_2: (lambda h: h + ln_2(ffn(h)))(x + ln_1(attn(x))), "normalises the sum"),
            (lambda x, attn, ffn, ln_1, ln_2: (lambda h: h + ffn(h))(ln_1(x + attn(x))), "has its LayerNorm too"),
            (lambda x, attn, ffn, ln_1, ln_2: x + attn(ln_1(x)) + ffn(ln_2(x)), "both sub-layers read x"),
            (lambda x, attn, ffn, ln_1, ln_2: bert_layer(x, attn, ffn, ln_2, ln_1), "LayerNorms are swapped"),
            (lambda x, attn, ffn, ln_1, ln_2: (lambda h: ln_2(h + ffn(h)))(ln_1(attn(x))), "first residual"),
            (lambda x, attn, ffn, ln_1, ln_2: ln_2(ffn(ln_1(x + attn(x)))), "second residual"),
            (lambda x, attn, ffn, ln_1, ln_2: ln_2(x + ffn(ln_1(x + attn(x)))), "the second addition adds x"),
        ],
    ),
    "rms_norm": (
        checks.check_rms_norm,
        [
            rms,
            lambda x, w, eps: w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps),
            lambda x, w, eps: x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps) * w,
        ],
        [
            (lambda x, w, eps: rms(x, w, eps, center=True), "subtracted the mean"),
            (lambda x, w, eps: rms(x, w, eps, total=True), "vector's length"),
            (lambda x, w, eps: x / x.norm(dim=-1, keepdim=True) * w, "vector's length"),
            (lambda x, w, eps: rms(x, w, eps, eps_outside=True), "eps goes inside"),
            (lambda x, w, eps: rms(x, w, 0.0), "eps is missing"),
            (lambda x, w, eps: x / ((x**2).mean(-1, keepdim=True) + eps) * w, "not by the mean square itself"),
            (lambda x, w, eps: rms(x, w, eps, affine=False), "scale is missing"),
        ],
    ),
    "llama_layer_from_parts": (
        checks.check_llama_layer_from_parts,
        [
            llama_layer,
            lambda x, attn, gate, up, down, norm_1, norm_2: llama_layer(
                x, attn, gate, up, down, norm_1, norm_2, act=torch.nn.functional.silu
            ),
            lambda x, attn, gate, up, down, norm_1, norm_2: (
                lambda h: h + down(torch.nn.SiLU()(gate(norm_2(h))) * up(norm_2(h)))
            )(x + attn(norm_1(x))),
        ],
        [
            (
                lambda x, a, g, u, d, n1, n2: (lambda h: n2(h + d(torch.nn.functional.silu(g(h)) * u(h))))(
                    n1(x + a(x))
                ),
                "BERT's arrangement, post-LN",
            ),
            (
                lambda x, a, g, u, d, n1, n2: x + a(n1(x)) + d(torch.nn.functional.silu(g(n2(x))) * u(n2(x))),
                "'parallel' block",
            ),
            (
                lambda *p: llama_layer(*p, combine=lambda g, u: g * torch.nn.functional.silu(u)),
                "the SiLU belongs to the gate",
            ),
            (lambda *p: llama_layer(*p, combine=lambda g, u: g * u), "the SiLU is missing"),
            (lambda *p: llama_layer(*p, act=torch.sigmoid), "original GLU"),
            (lambda *p: llama_layer(*p, act=torch.nn.functional.gelu), "GeGLU"),
            (lambda *p: llama_layer(*p, combine=lambda g, u: torch.nn.functional.silu(u)), "the gate is missing"),
            (lambda *p: llama_layer(*p, combine=lambda g, u: torch.nn.functional.silu(g)), "up projection is missing"),
            (lambda *p: llama_layer(*p, combine=lambda g, u: torch.nn.functional.silu(g) + u), "not added"),
            (lambda x, a, g, u, d, n1, n2: llama_layer(x, a, g, u, d, n2, n1), "norms are swapped"),
            (lambda x, a, g, u, d, n1, n2: llama_layer(n1(x), a, g, u, d, lambda t: t, n2), "residual stream itself"),
            (
                lambda x, a, g, u, d, n1, n2: (lambda h: h + d(torch.nn.functional.silu(g(n2(h))) * u(n2(h))))(
                    a(n1(x))
                ),
                "first residual",
            ),
            (
                lambda x, a, g, u, d, n1, n2: (lambda h: d(torch.nn.functional.silu(g(n2(h))) * u(n2(h))))(
                    x + a(n1(x))
                ),
                "second residual",
            ),
            (lambda x, a, g, u, d, n1, n2: n2(llama_layer(x, a, g, u, d, n1, n2)), "norm on the layer's output"),
        ],
    ),
    "llama_layer_params": (
        checks.check_llama_layer_params,
        [
            llama_params,
            lambda C, F, H, H_kv: float(llama_params(C, F, H, H_kv)),  # a float is fine
            lambda C, F, H, H_kv: 2 * C * C + 2 * C * C * H_kv // H + 3 * C * F + 2 * C,  # H_kv·d written as C·H_kv/H
        ],
        [
            (lambda C, F, H, H_kv: llama_params(C, F, H, H_kv, kv_width=C), "not C × C"),
            (lambda C, F, H, H_kv: llama_params(C, F, H, H_kv, kv_width=H_kv * C), "is d = C/H wide"),
            (lambda C, F, H, H_kv: llama_params(C, F, H, H_kv, mlp_matrices=2), "three C × F matrices"),
            (lambda C, F, H, H_kv: llama_params(C, F, H, H_kv, norm=2), "RMSNorm has a scale and no shift"),
            (lambda C, F, H, H_kv: llama_params(C, F, H, H_kv, norm=0), "two RMSNorms are missing"),
            (lambda C, F, H, H_kv: llama_params(C, F, H, H_kv, bias=True), "no biases"),
            (lambda C, F, H, H_kv: layer_parameters(C, F), "count of a GPT-2 block"),
        ],
    ),
    "llama_layer_flops": (
        checks.check_llama_layer_flops,
        [llama_flops, lambda C, F, H, H_kv, T: 2 * llama_params(C, F, H, H_kv, norm=0) + 4 * T * C],
        [
            (lambda C, F, H, H_kv, T: llama_flops(C, F, H, H_kv, T, mult=1, attention=2), "a multiply-add is 2 FLOPs"),
            (lambda C, F, H, H_kv, T: llama_flops(C, F, H, H_kv, T, attention=0), "products without weights"),
            (lambda C, F, H, H_kv, T: llama_flops(C, F, H, H_kv, T, attention=2), "only one of attention's two"),
            (lambda C, F, H, H_kv, T: llama_flops(C, F, H, H_kv, T, kv_heads=H_kv), "not the work"),
            (lambda C, F, H, H_kv, T: 2 * (4 * C * C + 3 * C * F) + 4 * T * C, "not C × C"),
            (lambda C, F, H, H_kv, T: llama_flops(C, F, H, H_kv, T) - 2 * C * F, "three C × F matrices"),
            (lambda C, F, H, H_kv, T: llama_flops(C, F, H, H_kv, T, per_sequence=True), "that is the whole sequence"),
            (lambda C, F, H, H_kv, T: 3 * llama_flops(C, F, H, H_kv, T), "forward pass only"),
        ],
    ),
}


@pytest.mark.parametrize("name,right", [(name, right) for name, (_, rights, _) in CASES.items() for right in rights])
def test_right_answers_are_correct(name, right):
    result = CASES[name][0](right)
    assert result.status == CORRECT, result


@pytest.mark.parametrize("name", list(CASES))
def test_stub_is_not_attempted(name):
    result = CASES[name][0](stub)
    assert result.status == NOT_ATTEMPTED and "⏳" in repr(result)


@pytest.mark.parametrize(
    "name,wrong,hint", [(name, wrong, hint) for name, (_, _, mistakes) in CASES.items() for wrong, hint in mistakes]
)
def test_common_mistake_gets_its_hint(name, wrong, hint, second_try):
    result = second_try(CASES[name][0], wrong)
    assert result.status == WRONG
    assert hint in result.message, result.message


def test_masking_after_the_softmax_and_renormalising_agrees_only_while_no_row_is_fully_masked():
    # why check_attention may accept it: its cases have no fully masked row, and there the two agree exactly
    q, k, v = torch.randn(1, 2, 3, 4, dtype=torch.float64), torch.randn(1, 2, 3, 4, dtype=torch.float64), None
    v = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    some = torch.tensor([[True, False, True], [True, True, False], [False, False, True]])
    assert torch.allclose(attention(q, k, v, some, after="renormalise"), attention(q, k, v, some), atol=1e-12)
    none_allowed = some.clone()
    none_allowed[1] = False  # 0/0: NaN here, where torch's attention gives 0
    assert attention(q, k, v, none_allowed, after="renormalise")[0, :, 1].isnan().all()


def test_an_unknown_wrong_answer_gets_the_general_hint(second_try):
    result = second_try(checks.check_attention, lambda q, k, v, mask=None: attention(q, k, v, mask) + 0.1)
    assert result.status == WRONG and "a softmax over the keys" in result.message


def test_a_crash_becomes_a_message_not_a_traceback():
    result = checks.check_attention(lambda q, k, v, mask=None: q @ k @ v)  # k not transposed: shapes do not fit
    assert result.status == WRONG and "RuntimeError" in result.message


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(checks.CheckFailed):
        checks.check_causal_mask(lambda t: torch.ones(t, t, dtype=torch.bool))


# ---------------------------------------------------------------- the worked-out exercises, against the real models


def test_the_llama_formulas_equal_transformers_counts_and_flop_counter():
    # the checks' references are measured (LlamaDecoderLayer's parameters, FlopCounterMode on LlamaModel); the answers
    # that `reveal` shows are formulas: they must agree on every case
    from ftlearn.checks.transformer import _llama_flops_counted, _llama_layer_counted

    for case in _LLAMA_PARAM_CASES:
        assert _llama_params_answer(*case) == _llama_layer_counted(*case), case
    for case in _LLAMA_FLOP_CASES:
        assert _llama_flops_answer(*case) == _llama_flops_counted(*case), case
    assert _llama_layer_counted(4096, 11008, 32, 32) == 202_383_360  # Llama-2-7B's layer: 32 of them, 6.5B in all


def test_with_one_kv_head_per_query_head_and_a_plain_mlp_the_llama_count_is_gpt2s_less_its_biases():
    # the two formulas are one idea: set H_kv = H, two MLP matrices, LayerNorm (scale and shift) and biases
    C, F, H = 64, 256, 4
    biases = 4 * C + F + C
    assert llama_params(C, F, H, H, mlp_matrices=2, norm=2) + biases == layer_parameters(C, F)
    assert llama_flops(C, F, H, H, 10) - 2 * C * F == layer_flops_per_token(C, F, 10)


@pytest.mark.parametrize("check_fn", [checks.check_gpt2_block_from_parts, checks.check_bert_layer_from_parts])
def test_a_block_that_changes_its_input_in_place_is_told_so(check_fn):
    def in_place(x, attn, mlp, ln_1, ln_2):
        x += attn(ln_1(x))
        return x + mlp(ln_2(x))

    result = check_fn(in_place)
    assert result.status == WRONG and "in place" in result.message


def test_the_block_checks_name_the_parts_not_their_addresses(second_try):
    result = second_try(checks.check_gpt2_block_from_parts, lambda x, attn, mlp, ln_1, ln_2: x * 2)
    assert result.status == WRONG and "attn, mlp, ln_1, ln_2" in result.message and "0x" not in result.message
