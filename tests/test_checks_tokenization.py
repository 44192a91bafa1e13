"""Lesson 05's BPE exercise check: the right answer passes, known mistakes get their hint, a stub is not attempted."""

import pytest

from ftlearn.bpe import merge_pair
from ftlearn.checks import check_merge_pair
from ftlearn.checks import tokenization as ct
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args):
    raise NotImplementedError


MISTAKES = [
    (ct._merge_list, "keep each word's count"),
    (ct._merge_set, "keep each word's count"),
    (ct._merge_count_one, "keep each word's count"),
    (ct._merge_no_skip, "i + 2"),
    (ct._merge_from_right, "left to right"),
    (ct._merge_joined_string, "work on the tuple of symbols, not a joined string"),
    (ct._merge_overwrite, "add their counts"),
    (ct._merge_keep_first, "add their counts"),
]


@pytest.mark.parametrize("wrong, hint", MISTAKES, ids=[m[0].__name__ for m in MISTAKES])
def test_check_merge_pair_verdicts(wrong, hint, second_try):
    assert check_merge_pair(merge_pair).status == CORRECT
    result = second_try(check_merge_pair, wrong)
    assert result.status == WRONG and hint in result.message, result
    assert check_merge_pair(stub).status == NOT_ATTEMPTED


def test_each_mistake_is_caught_by_its_own_case():
    """Every case is needed: dropping the case a mistake first fails on lets that mistake through (or mislabels it)."""
    firsts = {}
    for wrong, _ in MISTAKES:
        firsts[wrong.__name__] = next(
            i for i, (words, pair) in enumerate(ct._MERGE_CASES) if wrong(dict(words), pair) != merge_pair(words, pair)
        )
    assert firsts["_merge_no_skip"] == 0
    assert firsts["_merge_from_right"] == 1
    assert firsts["_merge_joined_string"] == 2
    assert firsts["_merge_overwrite"] == firsts["_merge_keep_first"] == 3


def test_check_merge_pair_accepts_a_counter_and_explains_an_unknown_error():
    from collections import Counter

    def with_counter(words, pair):
        out = Counter()
        for symbols, count in words.items():
            out[ct._fuse(symbols, pair)] += count
        return out

    assert check_merge_pair(with_counter).status == CORRECT
    result = check_merge_pair(lambda words, pair: {k: v + 1 for k, v in merge_pair(words, pair).items()})
    assert result.status == WRONG and "you returned" in result.message and "expected" in result.message
