"""The transformer by hand: attention, masks, heads, LayerNorm, GELU, one BERT layer, one GPT-2 block.

Introduced in lesson 06 ("The transformer, by hand"). Each function is plain tensor code, short enough to
read in the notebook (which shows it with `inspect.getsource`), and reads its weights straight from a
transformers model's `state_dict()`, so the lesson and tests/test_transformer.py can check that the same
numbers come out as from PyTorch and from BertModel / GPT2Model.

Shape letters: B batch, T query positions, S key positions (S = T in self-attention), C model width,
H heads, d = C / H the width of one head.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # for the annotations only: importing transformers is slow
    from transformers import BertConfig, GPT2Config

# ---------------------------------------------------------------- attention


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / √d) v for every head at once; returns (output, weights) (lesson 06)."""
    # q (B, H, T, d); k, v (B, H, S, d); mask: bool, broadcastable to (B, H, T, S), True = query t may see key s
    for name, value in (("q", q), ("k", k), ("v", v), ("mask", mask)):
        if not isinstance(value, Tensor) and not (name == "mask" and value is None):
            raise TypeError(f"scaled_dot_product_attention: {name} must be a tensor, got {type(value).__name__}")
    d = q.shape[-1]
    # q·k sums d products, so its spread grows like √d: dividing by √d keeps the softmax from saturating
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, H, T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # before the softmax: exp(-inf) = 0, the rest renormalise
    weights = torch.softmax(scores, dim=-1)  # (B, H, T, S): over the keys, each query's weights sum to 1
    if mask is not None:
        # A no-op for a query that may see some key. A query that may see none has a row of -inf, whose
        # softmax is 0/0 = NaN: we give it weights 0, hence output 0, which is what torch 2.13's own
        # F.scaled_dot_product_attention returns for such a row (and its gradients stay finite).
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights  # (B, H, T, d): each query's weighted mix of the values; (B, H, T, S)


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> Tensor:
    """(T, T) bool, True on and below the diagonal: a token sees itself and the past, never the future (lesson 06)."""
    # row t = query t, column s = key s: allowed when s <= t
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: Tensor) -> Tensor:
    """The tokenizer's (B, S) 0/1 attention_mask as a (B, 1, 1, S) bool key mask, False on padding (lesson 06)."""
    # the two 1s broadcast over heads and queries: every head and every query hides the same keys
    return attention_mask.bool()[:, None, None, :]


# ---------------------------------------------------------------- heads


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, T, C) → (B, H, T, C/H): each head gets its own slice of every token's features (lesson 06)."""
    B, T, C = x.shape
    if C % n_heads:
        raise ValueError(f"width C={C} does not split into n_heads={n_heads} equal heads: C must be a multiple of it")
    # view: features [h*d, (h+1)*d) of a token go to head h; transpose: heads before positions, so that
    # the matmuls in attention run over (T, d) matrices, one per (batch, head)
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)  # (B, H, T, d)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, d) → (B, T, H*d), the inverse of split_heads: the heads side by side again (lesson 06)."""
    B, H, T, d = x.shape
    # transpose back to (B, T, H, d) first; reshape then copies, since the transposed tensor is not contiguous
    return x.transpose(1, 2).reshape(B, T, H * d)


# ---------------------------------------------------------------- LayerNorm and GELU


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Each vector over its last dim to mean 0 and variance 1, then scaled by weight and shifted by bias (lesson 06)."""
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1): one mean per token, over its C features
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased: divide by C, not C - 1, as nn.LayerNorm does
    # eps inside the square root: a constant vector (var 0) gives 0, not 0/0
    return (x - mean) / torch.sqrt(var + eps) * weight + bias  # (..., C)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU, x·Φ(x): exact with erf (BERT's "gelu") or the tanh approximation (GPT-2's "gelu_new") (lesson 06)."""
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))  # Φ(x) = (1 + erf(x / √2)) / 2, the normal CDF
    if approximate == "tanh":
        # Hendrycks & Gimpel's approximation of Φ; GPT-2 was trained with it, so its weights expect it
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(f"approximate must be 'none' (erf) or 'tanh', got {approximate!r}")


# ---------------------------------------------------------------- one layer of BERT, one block of GPT-2


def bert_layer(
    x: Tensor, weights: Mapping[str, Tensor], n_heads: int, mask: Tensor | None = None, eps: float = 1e-12
) -> Tensor:
    """One BERT encoder layer, post-LN: h = LN(x + Attn(x)); out = LN(h + FFN(h)) (lesson 06)."""
    # x (B, T, C); weights = hf_bert.encoder.layer[i].state_dict(); mask (B, 1, 1, T) from padding_mask, or None
    w = weights

    def linear(t: Tensor, name: str) -> Tensor:  # nn.Linear stores W as (out, in): y = t Wᵀ + b
        return t @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    # attention: each token's query is compared with every token's key; it takes that mix of their values
    q = split_heads(linear(x, "attention.self.query"), n_heads)  # (B, H, T, d)
    k = split_heads(linear(x, "attention.self.key"), n_heads)  # (B, H, T, d)
    v = split_heads(linear(x, "attention.self.value"), n_heads)  # (B, H, T, d)
    heads, _ = scaled_dot_product_attention(q, k, v, mask)  # (B, H, T, d)
    attn = linear(merge_heads(heads), "attention.output.dense")  # (B, T, C): mixes what the heads found
    # post-LN (as in the 2017 Transformer): LayerNorm after adding the residual; dropout is off in eval
    h = layer_norm(x + attn, w["attention.output.LayerNorm.weight"], w["attention.output.LayerNorm.bias"], eps)
    # feed-forward, each token on its own: up to the intermediate width (4C in BERT), exact GELU, back to C
    ffn = linear(gelu(linear(h, "intermediate.dense")), "output.dense")  # (B, T, C)
    return layer_norm(h + ffn, w["output.LayerNorm.weight"], w["output.LayerNorm.bias"], eps)  # (B, T, C)


def gpt2_block(
    x: Tensor, weights: Mapping[str, Tensor], n_heads: int, eps: float = 1e-5, mask: Tensor | None = None
) -> Tensor:
    """One GPT-2 block, pre-LN and causal: h = x + Attn(LN1(x)); out = h + MLP(LN2(h)) (lesson 06)."""
    # x (B, T, C); weights = hf_gpt2.transformer.h[i].state_dict(); mask: an optional (B, 1, 1, T) padding mask
    w = weights  # (buffers such as "attn.bias", kept by some transformers versions, are simply not read)

    def linear(t: Tensor, name: str) -> Tensor:  # GPT-2's Conv1D stores W as (in, out): y = t W + b
        return t @ w[f"{name}.weight"] + w[f"{name}.bias"]

    B, T, C = x.shape
    allowed = causal_mask(T, device=x.device)  # (T, T): a token never sees a later one
    if mask is not None:
        allowed = allowed & mask  # (B, 1, T, T): the past, less the padding
    # pre-LN: normalise each sublayer's input and leave the residual stream x itself untouched
    qkv = linear(layer_norm(x, w["ln_1.weight"], w["ln_1.bias"], eps), "attn.c_attn")  # (B, T, 3C): q | k | v
    q, k, v = (split_heads(t, n_heads) for t in qkv.split(C, dim=-1))  # each (B, H, T, d)
    heads, _ = scaled_dot_product_attention(q, k, v, allowed)  # (B, H, T, d)
    h = x + linear(merge_heads(heads), "attn.c_proj")  # (B, T, C)
    # MLP, each token on its own: up to 4C, GELU with the tanh approximation GPT-2 was trained with, back to C
    up = linear(layer_norm(h, w["ln_2.weight"], w["ln_2.bias"], eps), "mlp.c_fc")  # (B, T, 4C)
    return h + linear(gelu(up, approximate="tanh"), "mlp.c_proj")  # (B, T, C)


# ---------------------------------------------------------------- whole models from their state dicts


def _under(weights: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries whose key starts with `prefix`, with the prefix taken off ("encoder.layer.0.", "bert.")."""
    return {key[len(prefix) :]: value for key, value in weights.items() if key.startswith(prefix)}


def bert_encoder(
    input_ids: Tensor,
    attention_mask: Tensor | None,
    weights: Mapping[str, Tensor],
    config: BertConfig,
    token_type_ids: Tensor | None = None,
) -> Tensor:
    """BERT from a BertModel state dict: embeddings, LayerNorm, the layers; returns last_hidden_state (lesson 06)."""
    # input_ids, attention_mask, token_type_ids (B, T); config: a BertConfig (hidden_act "gelu", absolute positions)
    w = _under(weights, "bert.") or weights  # BertForSequenceClassification & co. keep the body under "bert."
    T = input_ids.shape[1]
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)  # one segment: every token belongs to sentence A
    # an embedding is a lookup: token id i reads row i of a (vocab, C) table; positions and segments alike
    x = (
        w["embeddings.word_embeddings.weight"][input_ids]  # (B, T, C)
        + w["embeddings.position_embeddings.weight"][torch.arange(T, device=input_ids.device)]  # (T, C), broadcast
        + w["embeddings.token_type_embeddings.weight"][token_type_ids]  # (B, T, C)
    )
    eps = config.layer_norm_eps
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)  # dropout off
    mask = None if attention_mask is None else padding_mask(attention_mask)  # (B, 1, 1, T)
    for i in range(config.num_hidden_layers):
        x = bert_layer(x, _under(w, f"encoder.layer.{i}."), config.num_attention_heads, mask, eps)
    return x  # (B, T, C); BertModel's pooler (dense + tanh on [CLS]) is not part of it


def gpt2_forward(
    input_ids: Tensor, weights: Mapping[str, Tensor], config: GPT2Config, attention_mask: Tensor | None = None
) -> Tensor:
    """GPT-2 from a GPT2Model state dict: token + position embeddings, the blocks, ln_f; (B, T, C) (lesson 06)."""
    # input_ids (B, T); config: a GPT2Config; attention_mask: the tokenizer's (B, T) 0/1, optional. With right
    # padding it changes no real token (the causal mask already hides the padding after them); with left
    # padding it is what keeps the real tokens from reading the padding before them.
    w = _under(weights, "transformer.") or weights  # GPT2LMHeadModel keeps the body under "transformer."
    T = input_ids.shape[1]
    x = w["wte.weight"][input_ids] + w["wpe.weight"][torch.arange(T, device=input_ids.device)]  # (B, T, C)
    mask = None if attention_mask is None else padding_mask(attention_mask)  # (B, 1, 1, T)
    for i in range(config.n_layer):
        x = gpt2_block(x, _under(w, f"h.{i}."), config.n_head, config.layer_norm_epsilon, mask)
    # pre-LN leaves the residual stream unnormalised, so GPT-2 adds one last LayerNorm (GPT2Model's output)
    return layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], config.layer_norm_epsilon)  # (B, T, C)


# ---------------------------------------------------------------- what a layer costs


def layer_parameters(hidden: int, ffn: int, bias: bool = True) -> int:
    """Parameters of one BERT layer or GPT-2 block (the same count for both), by formula (lesson 06)."""
    # bias=False drops every bias, the LayerNorms' shifts included (as nanoGPT's bias=False does)
    h = hidden
    attention = 4 * h * h + (4 * h if bias else 0)  # W_q, W_k, W_v, W_o, each (h, h), and their biases
    feed_forward = 2 * h * ffn + (ffn + h if bias else 0)  # (h, ffn) up, (ffn, h) down, and their biases
    norms = 2 * (2 * h if bias else h)  # two LayerNorms, a scale (and a shift) per feature each
    return attention + feed_forward + norms


def layer_flops_per_token(hidden: int, ffn: int, seq: int) -> int:
    """Forward FLOPs per token of one layer, matrix products only, 2 FLOPs per multiply-add (lesson 06)."""
    # softmax, LayerNorm, GELU and the additions are left out: O(h + H·seq) per token, against O(h²) here
    h = hidden
    weights = 2 * (4 * h * h + 2 * h * ffn)  # every weight matrix entry: one multiply-add per token
    attention = 2 * (2 * seq * h)  # q·k for seq keys, then seq values mixed; d per head × H heads = h each
    return weights + attention
