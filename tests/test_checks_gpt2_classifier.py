"""The checks of solutions/10 (GPT-2 classifier): references agree with transformers, each mistake gets its hint."""

import pytest
import torch

from ftlearn.checks import gpt2_classifier as cg
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args):
    raise NotImplementedError


CASES = [
    (cg.check_add_pad_token, cg._pad_ref, cg._pad_tokenizer_only, "config.pad_token_id = None"),
    (cg.check_add_pad_token, cg._pad_ref, cg._pad_model_only, "cannot pad a batch"),
    (cg.check_add_pad_token, cg._pad_ref, cg._pad_id_zero, "never type the number"),
    (cg.check_add_pad_token, cg._pad_ref, cg._pad_new_token, "past the end of the embedding matrix"),
    (cg.check_add_pad_token, cg._pad_ref, cg._pad_new_token_resized, "untrained embedding row"),
    (cg.check_last_token_pool, cg._pool_ref, lambda s, m: s[:, -1], "final position is padding"),
    (cg.check_last_token_pool, cg._pool_ref, lambda s, m: s[:, 0], "causal"),
    (cg.check_last_token_pool, cg._pool_ref, cg._pool_right_only, "padding is on the right"),
    (cg.check_last_token_pool, cg._pool_ref, cg._pool_count, "count from 0"),
    (cg.check_last_token_pool, cg._pool_ref, cg._pool_first_real, "*first* position"),
    (cg.check_last_token_pool, cg._pool_ref, cg._pool_mean, "mean pooling"),
    (cg.check_last_real_position, cg._eos_ref, cg._eos_by_ids, "stops one token early"),
    (cg.check_last_real_position, cg._eos_ref, cg._eos_first_pad, "first eos need not be padding"),
    (cg.check_last_real_position, cg._eos_ref, lambda ids, m, p: m.sum(-1) - 1, "right padding only"),
]


@pytest.mark.parametrize("checker, right, wrong, hint", CASES, ids=[f"{c[0].__name__}-{c[3]}" for c in CASES])
def test_check_verdicts(checker, right, wrong, hint, second_try):
    assert checker(right).status == CORRECT
    first = checker(wrong)  # the first wrong try: a nudge about the kind of mistake, not the hint
    assert first.status == WRONG and first.message.startswith("Not yet. ") and hint not in first.message, first
    result = second_try(checker, wrong)
    assert result.status == WRONG and hint in result.message, result
    assert checker(stub).status == NOT_ATTEMPTED


def test_tiny_model_really_needs_the_pad_fix_and_has_no_lucky_id():
    tokenizer, model = cg.tiny_gpt2_classifier()
    assert tokenizer.pad_token is None and model.config.pad_token_id is None and tokenizer.eos_token_id != 0
    with pytest.raises(ValueError):
        tokenizer(["a film", "dull"], padding=True)


@pytest.mark.parametrize("side", ["right", "left"])
def test_last_token_pool_reference_is_what_gpt2_for_sequence_classification_reads(side):
    tokenizer, model = cg.tiny_gpt2_classifier()
    cg._pad_ref(tokenizer, model)
    tokenizer.padding_side = side
    batch = tokenizer(["a very good film", "dull", "the plot is bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        scores = model.score(model.transformer(**batch).last_hidden_state)
        logits = model(**batch).logits
    assert torch.allclose(cg._pool_ref(scores, batch["attention_mask"]), logits, atol=1e-6)


def test_transformers_reads_the_token_before_a_final_eos_when_pad_is_eos():
    """The pad = eos problem, on the real model: its rule is the ids rule of the first mistake, not the mask."""
    tokenizer, model = cg.tiny_gpt2_classifier()
    cg._pad_ref(tokenizer, model)
    ids, mask, pad = cg._eos_cases()[1]
    ids = torch.where(ids == cg.PAD, tokenizer.eos_token_id, ids)  # the cases' eos id in the tiny vocabulary
    with torch.no_grad():
        hidden = model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = model(input_ids=ids, attention_mask=mask).logits
    scores = model.score(hidden)
    rows = torch.arange(len(ids))
    by_ids = cg._eos_by_ids(ids, mask, tokenizer.eos_token_id)
    assert torch.allclose(logits, scores[rows, by_ids], atol=1e-6)
    assert not torch.equal(by_ids, cg._eos_ref(ids, mask, pad))
