"""Lesson 06's transformer by hand, compared with PyTorch and transformers: values and gradients, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification, BertModel, GPT2Config, GPT2LMHeadModel, GPT2Model
from transformers.activations import ACT2FN

from ftlearn import memory, models
from ftlearn.transformer import (
    bert_encoder,
    bert_layer,
    causal_mask,
    gelu,
    gpt2_block,
    gpt2_forward,
    layer_flops_per_token,
    layer_norm,
    layer_parameters,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)

D = torch.float64
TOL = 1e-12  # float64 values
GRAD_TOL = 1e-10  # float64 gradients through a whole layer or model


def rand(*shape, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=D).requires_grad_(requires_grad)


def grads(out, inputs, seed=99):
    """d(sum(out * P))/d inputs for a fixed random P: a random projection tests every output's gradient at once."""
    proj = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad((out * proj).sum(), inputs)


def assert_close(got, want, tol=TOL):
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= tol, (got - want).abs().max().item()


def assert_grads_close(got, want, tol=GRAD_TOL):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, tol)


def bert_config(**kwargs):
    base = dict(
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        num_hidden_layers=2,
        vocab_size=100,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    return BertConfig(**{**base, **kwargs})


def gpt2_config(**kwargs):
    base = dict(n_embd=32, n_head=4, n_layer=2, vocab_size=100, n_positions=64, attn_implementation="eager")
    base.update(kwargs)  # bos/eos default to 50256, outside this vocabulary: harmless here, silenced
    return GPT2Config(**base, bos_token_id=0, eos_token_id=0)


def scrambled(model, seed=0):
    """The model in float64 eval mode with every parameter redrawn at a scale where attention is far from uniform."""
    torch.manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_scale = name.endswith(("LayerNorm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight"))
            p.normal_(1.0 if is_scale else 0.0, 0.3)  # LayerNorm scales around 1, the rest around 0
    return model


def additive(allowed):
    """A bool mask (True = allowed) as the additive float mask transformers' eager attention adds to the scores."""
    return torch.zeros(allowed.shape, dtype=D).masked_fill(~allowed, torch.finfo(D).min)


ATTENTION_MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])  # the second row has two pad tokens


# ---------------------------------------------------------------- attention


def _masks():
    pad = padding_mask(ATTENTION_MASK)  # (2, 1, 1, 6)
    causal = causal_mask(6)  # (6, 6)
    return {"none": None, "padding": pad, "causal": causal, "causal+padding": causal & pad}


@pytest.mark.parametrize("name", list(_masks()))
def test_attention_equals_torch_values_and_gradients(name):
    mask = _masks()[name]
    q, k, v = rand(2, 3, 6, 8, seed=1), rand(2, 3, 6, 8, seed=2), rand(2, 3, 6, 8, seed=3)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(out, want)
    assert_grads_close(grads(out, (q, k, v)), grads(want, (q, k, v)), TOL)
    # the weights: rows of probabilities over the keys, exactly 0 where a key is not allowed
    assert weights.shape == (2, 3, 6, 6)
    assert_close(weights.sum(-1), torch.ones(2, 3, 6, dtype=D))
    if mask is not None:
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_attention_with_fewer_keys_than_queries():
    q, k, v = rand(1, 2, 3, 4, seed=1), rand(1, 2, 5, 4, seed=2), rand(1, 2, 5, 4, seed=3)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (1, 2, 3, 4) and weights.shape == (1, 2, 3, 5)
    assert_close(out, F.scaled_dot_product_attention(q, k, v))


def test_a_query_with_no_allowed_key_gets_zeros_as_in_torch():
    # torch 2.13's F.scaled_dot_product_attention returns 0 for such a row (not NaN); so do we, gradients included
    q, k, v = rand(1, 1, 3, 4, seed=1), rand(1, 1, 3, 4, seed=2), rand(1, 1, 3, 4, seed=3)
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (want[0, 0, 1] == 0).all(), "torch changed what a fully masked row gives: update the comment and this test"
    assert_close(out, want)
    assert (out[0, 0, 1] == 0).all() and (weights[0, 0, 1] == 0).all()
    mine, theirs = grads(out, (q, k, v)), grads(want, (q, k, v))
    assert all(torch.isfinite(g).all() for g in mine)
    assert_grads_close(mine, theirs, TOL)


def test_the_sqrt_d_scale_matters():
    q, k, v = rand(1, 2, 5, 16, seed=1), rand(1, 2, 5, 16, seed=2), rand(1, 2, 5, 16, seed=3)
    out, weights = scaled_dot_product_attention(q, k, v)
    unscaled = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    assert (weights - unscaled).abs().max() > 0.1  # without 1/√d the softmax is much peakier
    assert (out - unscaled @ v).abs().max() > 0.1
    # and the scale is 1/√d, not 1/d: the same as dividing q by √d and using no scale at all
    assert_close(out, torch.softmax((q / 4.0) @ k.transpose(-2, -1), dim=-1) @ v)


def test_masks():
    assert causal_mask(4).dtype == torch.bool
    assert causal_mask(4).int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert causal_mask(1).tolist() == [[True]]
    assert causal_mask(3, device="cpu").device.type == "cpu"
    pad = padding_mask(ATTENTION_MASK)
    assert pad.shape == (2, 1, 1, 6) and pad.dtype == torch.bool
    assert pad[1, 0, 0].tolist() == [True, True, True, True, False, False]
    assert (causal_mask(6) & pad).shape == (2, 1, 6, 6)


def test_the_causal_mask_blocks_the_future():
    q, k, v = rand(1, 2, 6, 4, seed=1), rand(1, 2, 6, 4, seed=2), rand(1, 2, 6, 4, seed=3)
    before, _ = scaled_dot_product_attention(q, k, v, causal_mask(6))
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[:, :, 4:] += 5.0  # change the keys and values of positions 4 and 5 only
    v2[:, :, 4:] -= 3.0
    after, _ = scaled_dot_product_attention(q, k2, v2, causal_mask(6))
    assert torch.equal(before[:, :, :4], after[:, :, :4])  # positions 0-3 cannot see them: bit for bit the same
    assert (before[:, :, 4:] - after[:, :, 4:]).abs().max() > 0.1


# ---------------------------------------------------------------- heads


def test_split_and_merge_heads():
    x = rand(2, 5, 12, requires_grad=False)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    assert torch.equal(heads[1, 2, 3], x[1, 3, 8:12])  # head h of token t holds features h*d .. (h+1)*d - 1
    assert torch.equal(heads, x.view(2, 5, 3, 4).permute(0, 2, 1, 3))  # what transformers' attention does
    assert torch.equal(merge_heads(heads), x)  # the exact inverse
    assert merge_heads(rand(2, 3, 5, 4, requires_grad=False)).shape == (2, 5, 12)
    with pytest.raises(ValueError, match="multiple"):
        split_heads(x, 5)


# ---------------------------------------------------------------- LayerNorm and GELU


def test_layer_norm_equals_torch():
    x, weight, bias = rand(2, 3, 8, seed=1), rand(8, seed=2), rand(8, seed=3)
    for eps in (1e-5, 1e-12, 0.1):
        mine = layer_norm(x, weight, bias, eps)
        want = F.layer_norm(x, (8,), weight, bias, eps)
        assert_close(mine, want)
        assert_grads_close(grads(mine, (x, weight, bias)), grads(want, (x, weight, bias)), TOL)
    constant = torch.full((1, 8), 3.0, dtype=D)  # variance 0: eps inside the sqrt gives the bias, not NaN
    assert_close(layer_norm(constant, weight.detach(), bias.detach()), bias.detach().expand(1, 8))


def test_gelu_equals_torch_and_transformers():
    x = torch.linspace(-6, 6, 101, dtype=D).requires_grad_()
    for approximate, hf_name in (("none", "gelu"), ("tanh", "gelu_new")):
        mine = gelu(x, approximate)
        want = F.gelu(x, approximate=approximate)
        assert_close(mine, want)
        assert_close(mine, ACT2FN[hf_name](x))
        assert_grads_close(grads(mine, (x,)), grads(want, (x,)), TOL)
    assert (gelu(x, "none") - gelu(x, "tanh")).abs().max() > 1e-5  # two different functions, close but not equal
    with pytest.raises(ValueError, match="tanh"):
        gelu(x, "fast")


# ---------------------------------------------------------------- one BERT layer, one GPT-2 block


@pytest.mark.parametrize("padded", [False, True])
def test_bert_layer_equals_transformers(padded):
    layer = scrambled(BertModel(bert_config())).encoder.layer[0]
    weights = layer.state_dict(keep_vars=True)  # the parameters themselves, so gradients reach them
    params = list(layer.parameters())
    x = rand(2, 6, 32)
    mask = padding_mask(ATTENTION_MASK) if padded else None
    mine = bert_layer(x, weights, n_heads=4, mask=mask)
    want = layer(x, attention_mask=None if mask is None else additive(mask))
    assert_close(mine, want)  # all positions: BERT's mask hides padded keys only, padded queries are computed too
    assert_grads_close(grads(mine, [x, *params]), grads(want, [x, *params]))


@pytest.mark.parametrize("padded", [False, True])
def test_gpt2_block_equals_transformers(padded):
    block = scrambled(GPT2Model(gpt2_config())).h[0]
    weights = block.state_dict(keep_vars=True)
    params = list(block.parameters())
    x = rand(2, 6, 32)
    allowed = causal_mask(6) & padding_mask(ATTENTION_MASK) if padded else causal_mask(6)
    mine = gpt2_block(x, weights, n_heads=4, mask=padding_mask(ATTENTION_MASK) if padded else None)
    # transformers 5.x: an eager GPT2Block adds the mask it is given and nothing else (GPT2Model builds the
    # causal mask); called alone with attention_mask=None it would let every token see the future
    want = block(x, attention_mask=additive(allowed))
    assert_close(mine, want)
    assert_grads_close(grads(mine, [x, *params]), grads(want, [x, *params]))


def test_gpt2_block_sees_no_future_and_equals_sdpa_block():
    block = scrambled(GPT2Model(gpt2_config(attn_implementation="sdpa"))).h[0]
    weights = block.state_dict()
    x = rand(1, 6, 32, requires_grad=False)
    out = gpt2_block(x, weights, n_heads=4)
    assert_close(out, block(x))  # the sdpa block alone is causal (is_causal=True when no mask is given)
    x2 = x.clone()
    x2[0, 5] = torch.randn(32, dtype=D)  # a different last token (not a shift: LayerNorm would undo it)
    out2 = gpt2_block(x2, weights, n_heads=4)
    assert torch.equal(out[0, :5], out2[0, :5]) and (out[0, 5] - out2[0, 5]).abs().max() > 0.1


# ---------------------------------------------------------------- whole models


def _ids(vocab=100, seed=0):
    ids = torch.randint(1, vocab, (2, 6), generator=torch.Generator().manual_seed(seed))
    return ids.masked_fill(ATTENTION_MASK == 0, 0)  # pad id 0 on the second row's last two positions


def test_bert_encoder_equals_bert_model():
    model = scrambled(BertModel(bert_config()))
    weights = model.state_dict(keep_vars=True)
    ids, types = _ids(), torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]])
    mine = bert_encoder(ids, ATTENTION_MASK, weights, model.config, token_type_ids=types)
    want = model(input_ids=ids, attention_mask=ATTENTION_MASK, token_type_ids=types).last_hidden_state
    assert_close(mine, want, 1e-11)
    params = [p for name, p in model.named_parameters() if not name.startswith("pooler.")]  # pooler: not used
    (mine_words, *mine_rest), (want_words, *want_rest) = grads(mine, params), grads(want, params)
    assert_grads_close(mine_rest, want_rest)
    # the word embeddings differ in one row: nn.Embedding(padding_idx=pad_token_id) never gives the [PAD] row a
    # gradient, a plain lookup does. Only the gradient: the pad row's values are used the same way by both.
    pad = model.config.pad_token_id
    assert (want_words[pad] == 0).all() and (mine_words[pad] != 0).any()
    keep = torch.arange(len(want_words)) != pad
    assert_close(mine_words[keep], want_words[keep], GRAD_TOL)
    # no token_type_ids means segment 0 everywhere, as in transformers; no mask means every key is allowed
    assert_close(bert_encoder(ids, None, weights, model.config), model(input_ids=ids).last_hidden_state, 1e-11)


def test_bert_encoder_reads_a_classifier_state_dict():
    classifier = scrambled(BertForSequenceClassification(bert_config(num_labels=2)))
    weights = classifier.state_dict()
    assert "bert.embeddings.word_embeddings.weight" in weights and "classifier.weight" in weights
    mine = bert_encoder(_ids(), ATTENTION_MASK, weights, classifier.config)
    assert_close(mine, classifier.bert(input_ids=_ids(), attention_mask=ATTENTION_MASK).last_hidden_state, 1e-11)


def test_gpt2_forward_equals_gpt2_model():
    model = scrambled(GPT2Model(gpt2_config()))
    weights = model.state_dict(keep_vars=True)
    assert not any(key.endswith((".attn.bias", ".attn.masked_bias")) for key in weights)  # 5.x: no mask buffers
    ids = _ids()
    mine = gpt2_forward(ids, weights, model.config)
    want = model(input_ids=ids, attention_mask=ATTENTION_MASK).last_hidden_state
    real = ATTENTION_MASK.bool()  # right padding: the real tokens match; padded positions are not compared
    assert_close(mine[real], want[real], 1e-11)
    params = list(model.parameters())
    assert_grads_close(grads(mine[real], params), grads(want[real], params))
    assert_close(mine, model(input_ids=ids).last_hidden_state, 1e-11)  # no mask: every position


def test_gpt2_forward_with_the_attention_mask_matches_gpt2_model_padded_on_either_side():
    # lesson 06 checks both: on the right the mask changes no real token, on the left it is needed
    model = scrambled(GPT2Model(gpt2_config()))
    weights = model.state_dict(keep_vars=True)
    for mask, ids in ((ATTENTION_MASK, _ids()), (ATTENTION_MASK.flip(-1), _ids().flip(-1))):
        real = mask.bool()
        want = model(input_ids=ids, attention_mask=mask).last_hidden_state
        mine = gpt2_forward(ids, weights, model.config, attention_mask=mask)
        assert_close(mine[real], want[real], 1e-11)
        params = list(model.parameters())
        assert_grads_close(grads(mine[real], params), grads(want[real], params))
    left_without_mask = gpt2_forward(ids, weights, model.config)  # left padding, the mask left out
    assert (left_without_mask[real] - want[real]).abs().max() > 0.1  # the real tokens read the padding before them


def test_gpt2_forward_reads_an_lm_head_state_dict():
    lm = scrambled(GPT2LMHeadModel(gpt2_config()))
    weights = lm.state_dict()
    assert "transformer.wte.weight" in weights
    assert_close(gpt2_forward(_ids(), weights, lm.config), lm.transformer(input_ids=_ids()).last_hidden_state, 1e-11)


# ---------------------------------------------------------------- what a layer costs


@pytest.mark.parametrize("hidden,heads,ffn", [(32, 4, 64), (48, 6, 192), (768, 12, 3072)])
def test_layer_parameters_count_bert_layer_and_gpt2_block(hidden, heads, ffn):
    bert = BertModel(
        bert_config(hidden_size=hidden, num_attention_heads=heads, intermediate_size=ffn, num_hidden_layers=1)
    )
    gpt2 = GPT2Model(gpt2_config(n_embd=hidden, n_head=heads, n_inner=ffn, n_layer=1))
    for layer in (bert.encoder.layer[0], gpt2.h[0]):
        params = dict(layer.named_parameters())
        assert layer_parameters(hidden, ffn) == sum(p.numel() for p in params.values())
        biases = sum(p.numel() for name, p in params.items() if name.endswith("bias"))
        assert layer_parameters(hidden, ffn) - layer_parameters(hidden, ffn, bias=False) == biases
    assert layer_parameters(768, 3072) == 7_087_872  # BERT-base: 12 of these plus 23.8 M of embeddings = 110 M


def _counted_flops(layer, x, **kwargs):
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        layer(x, **kwargs)
    return counter.get_total_flops()


@pytest.mark.parametrize("seq", [1, 7, 16])
def test_layer_flops_equal_flop_counter(seq):
    # FlopCounterMode counts matrix products only (addmm for the Linear / Conv1D layers, bmm for q kᵀ and
    # weights·v), 2 per multiply-add: what layer_flops_per_token counts. It needs the eager attention: on CPU
    # the sdpa kernel has no FLOP formula registered, so its q kᵀ and weights·v would not be counted at all.
    batch = 2
    bert = BertModel(bert_config(hidden_size=48, num_attention_heads=6, intermediate_size=96)).eval()
    gpt2 = GPT2Model(gpt2_config(n_embd=48, n_head=6, n_inner=96)).eval()
    x = torch.randn(batch, seq, 48)
    want = batch * seq * layer_flops_per_token(48, 96, seq)
    assert _counted_flops(bert.encoder.layer[0], x) == want
    assert _counted_flops(gpt2.h[0], x) == want  # the causal mask is applied to the full seq x seq product


def test_layer_flops_agree_with_memory_flops_per_token():
    layers, hidden, ffn, seq = 12, 768, 3072, 128
    layer = BertModel(bert_config(hidden_size=hidden, intermediate_size=ffn, num_attention_heads=12)).encoder.layer[0]
    matmul_params = 4 * hidden * hidden + 2 * hidden * ffn  # the weight matrices, no biases or norms
    assert memory.matmul_parameters(layer) == matmul_params
    predicted = memory.flops_per_token(
        params=layers * matmul_params, layers=layers, hidden=hidden, seq=seq, training=False
    )
    assert predicted == layers * layer_flops_per_token(hidden, ffn, seq)


# ---------------------------------------------------------------- the real pretrained MiniLM


@pytest.fixture(scope="module")
def minilm():
    folder = models.offline_bert_dir()
    if folder is None:
        pytest.skip(f"the pretrained MiniLM needs the {models.BERT_FALLBACK_PACKAGE} package")
    from transformers import AutoTokenizer

    model = BertModel.from_pretrained(str(folder)).eval()  # float32, the attention transformers picks by default
    batch = AutoTokenizer.from_pretrained(str(folder))(
        ["A wonderful film.", "The plot made no sense at all, and the acting was worse."],
        padding=True,
        return_tensors="pt",
    )
    assert (batch["attention_mask"][0] == 0).any()  # the first, shorter text is padded
    return model, batch


def test_minilm_layer_0_and_whole_encoder_match_bert_model(minilm):
    model, batch = minilm
    with torch.no_grad():
        want = model(**batch, output_hidden_states=True)
        embedded = want.hidden_states[0]  # (B, T, 384): after the embeddings' LayerNorm
        layer0 = bert_layer(
            embedded,
            model.encoder.layer[0].state_dict(),
            model.config.num_attention_heads,
            padding_mask(batch["attention_mask"]),
            model.config.layer_norm_eps,
        )
        mine = bert_encoder(
            batch["input_ids"], batch["attention_mask"], model.state_dict(), model.config, batch["token_type_ids"]
        )
    assert (layer0 - want.hidden_states[1]).abs().max().item() <= 1e-5
    assert (mine - want.last_hidden_state).abs().max().item() <= 1e-5
