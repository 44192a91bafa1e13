"""ftlearn.bpe: the hand-written BPE learns exactly the merges of tokenizers' BpeTrainer and encodes the same tokens."""

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from ftlearn.bpe import (
    bpe_encode,
    iter_merges,
    lowercase,
    merge_pair,
    merge_symbols,
    pair_counts,
    pick_merge,
    pre_tokenize,
    train_bpe,
    word_counts,
)

SAMPLE = Path(os.environ.get("FTLEARN_IMDB_DIR", ""))
needs_sample = pytest.mark.skipif(not (SAMPLE / "train.csv").is_file(), reason="IMDB sample folder not found")

# Sennrich et al.'s example: low x5, lower x2, newest x6, widest x3
TOY = ["low " * 5 + "lower " * 2 + "newest " * 6 + "widest " * 3]


def hf_tokenizer(texts, num_merges):
    """tokenizers' BPE set up as ftlearn.bpe: lower-case, Whitespace words, no specials, markers or frequency floor."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    alphabet = sorted({ch for word in word_counts(texts) for ch in word})
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + num_merges,  # the trainer stops at a vocabulary size: alphabet + merges
        min_frequency=0,
        special_tokens=[],
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def hf_merges(tokenizer):
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]  # "a b" in older versions


def hf_words(tokenizer, texts):
    counts = Counter()
    for text in texts:
        normalized = tokenizer.normalizer.normalize_str(text)
        counts.update(word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized))
    return counts


def merges_by_recounting(counts, num_merges):
    """The textbook loop: recount every pair after every merge (train_bpe only updates the words that changed)."""
    words = {tuple(word): count for word, count in counts.items()}
    rank = {ch: i for i, ch in enumerate(sorted({ch for word in counts for ch in word}))}
    merges = []
    while len(merges) < num_merges and (pairs := pair_counts(words)):
        best = pick_merge(pairs, rank)
        merges.append(best)
        rank.setdefault(best[0] + best[1], len(rank))
        words = merge_pair(words, best)
    return merges


def by_string_order(pairs, rank):
    """A plausible but wrong tie rule: equal counts broken by the symbols' alphabetical order."""
    top = max(pairs.values())
    return min(p for p, count in pairs.items() if count == top)


def test_merge_pair_edge_cases():
    assert merge_symbols(("a", "a", "a"), ("a", "a")) == ("aa", "a")  # left to right, no overlap
    assert merge_symbols(("a", "a", "a", "a"), ("a", "a")) == ("aa", "aa")
    assert merge_symbols(("l", "o", "w"), ("x", "y")) == ("l", "o", "w")  # a pair not present
    assert merge_symbols(("a",), ("a", "a")) == ("a",)  # a word of one symbol
    assert merge_symbols((), ("a", "b")) == ()
    # symbols, not a string: "xabc".replace("bc", ...) would fuse across the boundary of "ab" and "c"
    assert merge_symbols(("x", "ab", "c"), ("b", "c")) == ("x", "ab", "c")
    words = {("a", "b", "c"): 2, ("ab", "c"): 3, ("b", "a", "b"): 1}
    assert merge_pair(words, ("a", "b")) == {("ab", "c"): 5, ("b", "ab"): 1}  # counts add when words meet
    assert merge_pair(words, ("c", "d")) == words
    assert words == {("a", "b", "c"): 2, ("ab", "c"): 3, ("b", "a", "b"): 1}  # the input is left alone


def test_pair_counts_weights_by_word_count_and_counts_overlaps():
    assert pair_counts({("a", "a", "a"): 2, ("a", "b"): 3}) == {("a", "a"): 4, ("a", "b"): 3}
    assert pair_counts({("a",): 7}) == {}


def test_pre_tokenize_is_tokenizers_lowercase_and_whitespace():
    from tokenizers import normalizers, pre_tokenizers

    text = "Don't!! It's 10/10 -- ÉTÉ, naïve café... ΟΔΟΣ"
    normalized = normalizers.Lowercase().normalize_str(text)
    assert lowercase(text) == normalized  # character by character: "Σ" -> "σ" even at the end of a word
    assert pre_tokenize(text) == [w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(normalized)]
    assert pre_tokenize(text)[:5] == ["don", "'", "t", "!!", "it"]


def test_toy_corpus_matches_tokenizers_and_breaks_the_first_tie_by_rank():
    counts = word_counts(TOY)
    assert counts == {"low": 5, "lower": 2, "newest": 6, "widest": 3}
    merges = train_bpe(counts, 100)  # until every word is one symbol
    assert merges[:3] == [("e", "s"), ("es", "t"), ("l", "o")]  # ("e","s") and ("s","t") both 9: "e" ranks first
    assert merges == merges_by_recounting(counts, 100)
    tokenizer = hf_tokenizer(TOY, 100)
    assert hf_merges(tokenizer) == merges
    assert [count for _, count in iter_merges(counts)][:3] == [9, 9, 7]


def test_equal_counts_go_to_the_older_symbols_not_the_alphabetically_first():
    texts = ["abx abx abx by by by ab ab"]
    merges = train_bpe(word_counts(texts), 10)
    # after ("a","b"), ("ab","x") and ("b","y") both count 3; "b" joined the vocabulary before "ab"
    assert merges == [("a", "b"), ("b", "y"), ("ab", "x")]
    assert train_bpe(word_counts(texts), 10, pick=by_string_order)[1] == ("ab", "x")
    assert hf_merges(hf_tokenizer(texts, 10)) == merges


def test_training_stops_when_every_word_is_one_symbol():
    assert train_bpe({"ab": 1, "c": 4}, 10) == [("a", "b")]
    assert train_bpe({}, 3) == []


def test_bpe_encode():
    merges = [("e", "s"), ("es", "t"), ("l", "o"), ("lo", "w")]
    assert bpe_encode("Lowest newest", merges) == ["low", "est", "n", "e", "w", "est"]
    assert bpe_encode("low", []) == ["l", "o", "w"]
    assert bpe_encode("z!", merges) == ["z", "!"]  # a character never seen stays itself


@pytest.fixture(scope="module")
def reviews():
    from ftlearn.data import load_imdb
    from ftlearn.tokenization import clean_review

    dsd = load_imdb(SAMPLE, n_train=300, n_test=1, seed=0, verbose=False)
    return [clean_review(text) for text in dsd["train"]["text"]]


@needs_sample
def test_imdb_merges_equal_tokenizers_bpe_trainer(reviews):
    num_merges = 300
    tokenizer = hf_tokenizer(reviews, num_merges)
    counts = word_counts(reviews)
    assert counts == hf_words(tokenizer, reviews)  # the same words, so the same training data
    theirs = hf_merges(tokenizer)
    assert len(theirs) == num_merges  # no merge made a token twice: the vocabulary grew by one each time
    ties = []

    def recording(pairs, rank):
        top = max(pairs.values())
        ties.append(sum(count == top for count in pairs.values()) > 1)
        return pick_merge(pairs, rank)

    assert train_bpe(counts, num_merges, pick=recording) == theirs
    assert sum(ties) > 20  # the tie rule decided many of them, so this is a test of the tie rule too
    wrong = train_bpe(counts, num_merges, pick=by_string_order)
    assert wrong != theirs and wrong[: ties.index(True)] == theirs[: ties.index(True)]


@needs_sample
def test_imdb_recount_loop_equals_train_bpe(reviews):
    counts = word_counts(reviews[:40])
    assert train_bpe(counts, 120) == merges_by_recounting(counts, 120)


@needs_sample
def test_imdb_reviews_encode_to_the_same_tokens(reviews):
    tokenizer = hf_tokenizer(reviews, 300)
    merges = hf_merges(tokenizer)
    for text in reviews:
        assert bpe_encode(text, merges) == tokenizer.encode(text).tokens
