"""ftlearn.lm: tokenizer, vocabulary, counted n-gram model, log-probability, perplexity, sampling."""

import math
import random

import pytest
import torch

from ftlearn import lm

DOCS = [
    ["the", "film", "was", "good", "."],
    ["the", "film", "was", "bad", "."],
    ["a", "good", "film", "."],
]


def test_tokenize_lowercases_splits_punctuation_and_drops_html_breaks():
    text = "A GREAT film!<br /><br />Don't miss it... 10/10"
    assert lm.tokenize(text) == ["a", "great", "film", "!", "don't", "miss", "it", ".", ".", ".", "10", "/", "10"]


def test_vocab_orders_specials_then_frequency_and_maps_unknowns():
    vocab = lm.Vocab.build(DOCS, min_count=2)
    assert vocab.itos[:3] == [lm.BOS, lm.EOS, lm.UNK]
    assert vocab.itos[3:] == [".", "film", "good", "the", "was"]  # counts 3, 3, 2, 2, 2; ties alphabetical
    assert vocab.encode(["film", "zebra"]) == [vocab.stoi["film"], vocab.stoi[lm.UNK]]
    assert vocab.decode(vocab.encode(["the", "film"])) == ["the", "film"]
    assert len(lm.Vocab.build(DOCS, max_size=5)) == 5


def test_ngrams_pad_with_start_and_end_symbols():
    assert lm.ngrams(["a", "b"], 2) == [(lm.BOS, "a"), ("a", "b"), ("b", lm.EOS)]
    assert lm.ngrams(["a"], 3) == [(lm.BOS, lm.BOS, "a"), (lm.BOS, "a", lm.EOS)]
    assert lm.ngrams(["a", "b"], 1) == [("a",), ("b",), (lm.EOS,)]


def test_bigram_probability_by_hand():
    vocab = lm.Vocab.build(DOCS)
    model = lm.NGramLM(vocab, n=2, k=0.0).fit(DOCS)
    assert model.prob("was", ["the", "film"]) == pytest.approx(2 / 3)  # "film" is followed by was, was, "."
    assert model.prob("the", []) == pytest.approx(2 / 3)  # two of three reviews start with "the"
    k = 0.5
    smoothed = lm.NGramLM(vocab, n=2, k=k).fit(DOCS)
    assert smoothed.V == len(vocab) - 1  # <s> is never predicted
    assert smoothed.prob("bad", ["film"]) == pytest.approx((0 + k) / (3 + k * smoothed.V))


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("k", [0.0, 0.01, 1.0])
def test_distributions_sum_to_one(n, k):
    vocab = lm.Vocab.build(DOCS)
    model = lm.NGramLM(vocab, n=n, k=k).fit(DOCS)
    for history in ([], ["the"], ["the", "film"], ["a", "good"]):
        assert math.fsum(model.distribution(history)) == pytest.approx(1.0, abs=1e-12)


def test_logprob_is_the_chain_rule_sum_and_perplexity_its_exponent():
    vocab = lm.Vocab.build(DOCS)
    model = lm.NGramLM(vocab, n=2, k=0.1).fit(DOCS)
    tokens = ["the", "film", "was", "good", "."]
    by_hand = sum(math.log(model.prob(w, tokens[:i])) for i, w in enumerate([*tokens, lm.EOS]))
    assert model.logprob(tokens) == pytest.approx(by_hand, rel=1e-12)
    assert model.perplexity([tokens]) == pytest.approx(math.exp(-by_hand / 6), rel=1e-12)


def test_uniform_model_has_perplexity_equal_to_the_vocabulary_size():
    vocab = lm.Vocab.build(DOCS)
    model = lm.NGramLM(vocab, n=2, k=1e12).fit(DOCS)  # k -> infinity: counts no longer matter
    assert model.perplexity(DOCS) == pytest.approx(model.V, rel=1e-6)


def test_unseen_bigram_without_smoothing_has_zero_probability_and_infinite_perplexity():
    vocab = lm.Vocab.build(DOCS)
    model = lm.NGramLM(vocab, n=2, k=0.0).fit(DOCS)
    assert model.prob("bad", ["good"]) == 0.0
    assert model.perplexity([["good", "bad"]]) == math.inf


def test_unknown_words_become_unk():
    vocab = lm.Vocab.build(DOCS, min_count=2)
    model = lm.NGramLM(vocab, n=2, k=1.0).fit(DOCS)
    assert model.prob("zebra", ["the"]) == model.prob(lm.UNK, ["the"])
    assert model.counts[("was",)][lm.UNK] == 1  # "bad" (seen once) was counted as <unk>


def test_apply_temperature():
    probs = [0.5, 0.3, 0.2]
    assert lm.apply_temperature(probs, 1.0) == pytest.approx(probs)
    cold = lm.apply_temperature(probs, 0.5)
    assert cold == pytest.approx([p**2 / sum(q**2 for q in probs) for p in probs])
    assert lm.apply_temperature(probs, 1e-3)[0] == pytest.approx(1.0)
    assert lm.apply_temperature(probs, 1e3) == pytest.approx([1 / 3] * 3, rel=1e-3)
    assert lm.apply_temperature([0.0, 1.0], 2.0) == [0.0, 1.0]
    with pytest.raises(ValueError):
        lm.apply_temperature(probs, 0.0)


def test_sampling_is_reproducible_and_stays_in_vocabulary():
    vocab = lm.Vocab.build(DOCS)
    model = lm.NGramLM(vocab, n=2, k=0.0).fit(DOCS)
    a = model.sample(max_tokens=20, rng=random.Random(3))
    b = model.sample(max_tokens=20, rng=random.Random(3))
    assert a == b and 1 <= len(a) <= 20
    assert all(w in vocab and w not in (lm.BOS, lm.EOS) for w in a)
    greedy = model.sample(["the"], temperature=1e-6, max_tokens=2, rng=random.Random(0))
    assert greedy == ["the", "film", "was"]  # the most frequent continuations: 2/2, then 2/3


def test_bigram_ids_and_count_matrix_agree_with_the_counted_model():
    vocab = lm.Vocab.build(DOCS)
    model = lm.NGramLM(vocab, n=2, k=0.0).fit(DOCS)
    xs, ys = lm.bigram_ids(DOCS, vocab)
    assert len(xs) == sum(len(d) + 1 for d in DOCS)
    counts = lm.bigram_count_matrix(xs, ys, len(vocab))
    assert counts.dtype == torch.float64 and counts.sum() == len(xs)
    for context, nexts in model.counts.items():
        for word, c in nexts.items():
            assert counts[vocab.stoi[context[0]], vocab.stoi[word]] == c


def test_perplexity_from_logprob():
    assert lm.perplexity_from_logprob(4 * math.log(0.25), 4) == pytest.approx(4.0)
