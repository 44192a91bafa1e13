"""ftlearn.causal_lm and its checks: the hand-written pieces agree with PyTorch and transformers."""

import math

import pytest
import torch
import torch.nn.functional as F

from ftlearn import causal_lm as lm
from ftlearn.checks import (
    CheckFailed,
    check_causal_lm_loss,
    check_perplexity_from_batches,
    check_shift_for_causal_lm,
    check_top_k_filter,
    check_top_p_filter,
)


@pytest.fixture
def tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


def test_hand_loss_matches_the_models_own_shifted_loss(tiny_gpt2):
    ids = torch.randint(1, 50, (3, 12), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[1, 8:] = lm.IGNORE_INDEX  # a padded tail
    out = tiny_gpt2(input_ids=ids, labels=labels)
    assert torch.allclose(lm.causal_lm_loss(out.logits, labels), out.loss, atol=1e-6)


def test_loss_equals_mean_negative_log_probability_in_float64():
    logits = torch.randn(2, 6, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    labels = torch.randint(9, (2, 6), generator=torch.Generator().manual_seed(3))
    logp = logits.log_softmax(-1)
    nll = [-logp[b, t, labels[b, t + 1]] for b in range(2) for t in range(5)]
    assert torch.allclose(lm.causal_lm_loss(logits, labels).double(), torch.stack(nll).mean())


def test_blocks_concatenate_with_eos_and_drop_the_partial_tail():
    blocks = lm.chunk_into_blocks([[1, 2, 3], [4, 5], [6, 7, 8, 9]], block_size=4, eos_id=0)
    assert blocks.tolist() == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]]


def test_mean_lm_loss_weights_batches_by_tokens(tiny_gpt2):
    blocks = torch.randint(50, (5, 8), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        whole = tiny_gpt2(input_ids=blocks, labels=blocks).loss.item()
    assert math.isclose(lm.mean_lm_loss(tiny_gpt2, blocks, batch_size=2), whole, rel_tol=1e-5)
    assert lm.perplexity(math.log(7.0)) == pytest.approx(7.0)


def test_filters_match_transformers_logits_warpers():
    from transformers.generation import TopKLogitsWarper, TopPLogitsWarper

    scores = torch.randn(4, 30, generator=torch.Generator().manual_seed(5))
    ids = torch.zeros(4, 1, dtype=torch.long)
    assert torch.equal(lm.top_k_filter(scores, 5), TopKLogitsWarper(top_k=5)(ids, scores.clone()))
    for p in (0.3, 0.9):
        assert torch.equal(
            torch.isinf(lm.top_p_filter(scores, p)), torch.isinf(TopPLogitsWarper(top_p=p)(ids, scores.clone()))
        )


def test_greedy_hand_sampling_equals_generate(tiny_gpt2):
    class Tok:  # the few tokenizer methods sample_text uses, on integer "words"
        eos_token_id = 0

        def __call__(self, text, return_tensors=None):
            return {"input_ids": torch.tensor([[int(w) for w in text.split()]])}

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(str(int(i)) for i in ids)

    text = lm.sample_text(tiny_gpt2, Tok(), "5 7 9", max_new_tokens=6, temperature=0)
    want = tiny_gpt2.generate(
        torch.tensor([[5, 7, 9]]), max_new_tokens=6, do_sample=False, eos_token_id=0, pad_token_id=0
    )
    assert text.split() == [str(int(i)) for i in want[0]]


def test_min_new_tokens_holds_back_the_end_token_as_generate_does(tiny_gpt2):
    prompt = torch.tensor([[5, 7, 9]])
    first = int(tiny_gpt2.generate(prompt, max_new_tokens=1, do_sample=False, pad_token_id=0)[0, -1])

    class Tok:  # the greedy first token plays end-of-text, so without a minimum the sample would be empty
        eos_token_id = first

        def __call__(self, text, return_tensors=None):
            return {"input_ids": torch.tensor([[int(w) for w in text.split()]])}

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(str(int(i)) for i in ids)

    assert lm.sample_text(tiny_gpt2, Tok(), "5 7 9", max_new_tokens=6, temperature=0).split() == [
        "5",
        "7",
        "9",
        str(first),
    ]
    text = lm.sample_text(tiny_gpt2, Tok(), "5 7 9", max_new_tokens=6, temperature=0, min_new_tokens=3)
    want = tiny_gpt2.generate(
        prompt, max_new_tokens=6, min_new_tokens=3, do_sample=False, eos_token_id=first, pad_token_id=first
    )
    assert text.split() == [str(int(i)) for i in want[0]]
    assert len(text.split()) >= 3 + 3


def test_sampling_with_top_k_1_is_greedy():
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(6))
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(lm.sample_next_token(logits, temperature=0.7, top_k=1, generator=gen), logits.argmax(-1))


def test_checks_accept_the_reference_and_reject_a_classic_mistake(monkeypatch, second_try):
    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "0")
    assert check_shift_for_causal_lm(lm.shift_for_causal_lm)
    assert check_causal_lm_loss(lm.causal_lm_loss)
    assert check_top_k_filter(lm.top_k_filter)
    assert check_top_p_filter(lm.top_p_filter)
    assert check_perplexity_from_batches(
        lambda ls, ns: math.exp(sum(x * n for x, n in zip(ls, ns, strict=True)) / sum(ns))
    )
    wrong = second_try(check_shift_for_causal_lm, lambda lg, lb: (lg[:, 1:, :], lb[:, :-1]))
    assert not wrong and "wrong way" in wrong.message
    unweighted = second_try(check_perplexity_from_batches, lambda ls, ns: math.exp(sum(ls) / len(ls)))
    assert "weight" in unweighted.message
    zero_fill = second_try(
        check_top_k_filter, lambda lg, k: lg.masked_fill(lg < torch.topk(lg, k).values[..., -1:], 0.0)
    )
    assert "-inf" in zero_fill.message
    unshifted = second_try(
        check_causal_lm_loss,
        lambda lg, lb: F.cross_entropy(lg.reshape(-1, lg.size(-1)), lb.reshape(-1), ignore_index=-100),
    )
    assert "shifted" in unshifted.message


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv("FTLEARN_CHECKS_STRICT", "1")
    with pytest.raises(CheckFailed):
        check_top_p_filter(lambda lg, p: lg)
