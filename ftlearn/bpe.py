"""Byte-pair encoding by hand: learn merges from word counts, then cut words with them (notebook 05).

BPE (Sennrich et al., 2016) starts from single characters and repeatedly fuses the most frequent
adjacent pair of symbols into one new symbol. The ordered list of merges *is* the tokenizer: to
encode a word, start from its characters and apply the merges in the order they were learned.

Words are cut the way the `tokenizers` pipeline `normalizers.Lowercase()` +
`pre_tokenizers.Whitespace()` cuts them, with no continuing-subword prefix (WordPiece's `##`) and no
end-of-word marker, so tests/test_bpe.py and notebook 05 can compare every merge with
`tokenizers.trainers.BpeTrainer` on the same corpus.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice, pairwise

Symbols = tuple[str, ...]  # a word as its current symbols, e.g. ("l", "ow", "er")
Pair = tuple[str, str]
Picker = Callable[[Mapping[Pair, int], Mapping[str, int]], Pair]  # (pair counts, vocabulary ranks) -> merge

# The pattern of tokenizers' Whitespace pre-tokenizer: a run of word characters, or a run of other
# non-space characters ("don't" -> "don", "'", "t"). Python's \w and Rust's agree on letters, digits and
# "_" but not on a few rare characters (a combining accent, "½", "²"): a comparison with `tokenizers`
# must check that both cut its corpus into the same words (tests/test_bpe.py and notebook 05 do).
WORD_PATTERN = re.compile(r"\w+|[^\w\s]+")


def lowercase(text: str) -> str:
    """Lower-case one character at a time, as tokenizers' Lowercase normalizer does (notebook 05)."""
    # str.lower() looks at the context (a word-final Greek "Σ" becomes "ς"); a character-wise mapping does not
    return "".join(ch.lower() for ch in text)


def pre_tokenize(text: str) -> list[str]:
    """Cut text into lower-cased words and punctuation runs: tokenizers' Lowercase + Whitespace (notebook 05)."""
    return WORD_PATTERN.findall(lowercase(text))


def word_counts(texts: Iterable[str]) -> Counter[str]:
    """How often each word occurs in `texts`: BPE learns from these counts alone (notebook 05)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(pre_tokenize(text))
    return counts


def pair_counts(words: Mapping[Symbols, int]) -> Counter[Pair]:
    """Counts of adjacent symbol pairs, each weighted by its word's count (notebook 05)."""
    counts: Counter[Pair] = Counter()
    for symbols, count in words.items():
        # every window counts, overlapping ones too: ("a", "a", "a") holds ("a", "a") twice, as in tokenizers
        for pair in pairwise(symbols):
            counts[pair] += count
    return counts


def merge_symbols(symbols: Sequence[str], pair: Pair) -> Symbols:
    """One word with each occurrence of `pair` fused into one symbol, scanning left to right (notebook 05)."""
    out: list[str] = []
    i = 0
    while i < len(symbols):
        # fuse and jump past both: ("a", "a", "a") with ("a", "a") gives ("aa", "a"), never ("a", "aa")
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def merge_pair(words: Mapping[Symbols, int], pair: Pair) -> dict[Symbols, int]:
    """Apply one merge to every word; words that end up with the same symbols add their counts (notebook 05)."""
    merged: dict[Symbols, int] = {}
    for symbols, count in words.items():
        new = merge_symbols(symbols, pair)
        merged[new] = merged.get(new, 0) + count  # ("a","b","c") and ("ab","c") both become ("ab","c")
    return merged


def pick_merge(pairs: Mapping[Pair, int], rank: Mapping[str, int]) -> Pair:
    """The most frequent pair; among equal counts, the one whose symbols joined the vocabulary first (notebook 05).

    `rank` numbers the vocabulary: the alphabet sorted by code point, then each merge's result in the
    order it was made. Equal counts compare the left symbols' ranks, then the right ones'. This is
    tokenizers' BpeTrainer rule: its heap orders equal counts by ascending pair of token ids.
    """
    top = max(pairs.values())
    return min((p for p, count in pairs.items() if count == top), key=lambda p: (rank[p[0]], rank[p[1]]))


def iter_merges(counts: Mapping[str, int], pick: Picker = pick_merge) -> Iterator[tuple[Pair, int]]:
    """Yield (merge, its pair count) in the order BPE learns them from word counts (notebook 05)."""
    words = [tuple(word) for word in counts]  # each word starts as its characters
    freq = [counts[word] for word in counts]
    rank = {ch: i for i, ch in enumerate(sorted({ch for word in counts for ch in word}))}
    pairs: Counter[Pair] = Counter()
    where: dict[Pair, set[int]] = defaultdict(set)  # which words hold a pair: only those change when it merges
    for i, symbols in enumerate(words):
        for pair in pairwise(symbols):
            pairs[pair] += freq[i]
            where[pair].add(i)
    while pairs:
        best = pick(pairs, rank)
        yield best, pairs[best]
        rank.setdefault(best[0] + best[1], len(rank))  # a string made twice keeps its first rank
        for i in where.pop(best):
            old, new = words[i], merge_symbols(words[i], best)
            # the same sums as pair_counts(merge_pair(...)), but only over the words that changed
            for pair in pairwise(old):
                pairs[pair] -= freq[i]
                if pairs[pair] == 0:
                    del pairs[pair]
            for pair in pairwise(new):
                pairs[pair] += freq[i]
                where[pair].add(i)
            words[i] = new


def train_bpe(counts: Mapping[str, int], num_merges: int, pick: Picker = pick_merge) -> list[Pair]:
    """The first `num_merges` merges learned from word counts, in order; fewer if every word is whole (notebook 05)."""
    return [pair for pair, _ in islice(iter_merges(counts, pick), num_merges)]


def bpe_encode(text: str, merges: Sequence[Pair]) -> list[str]:
    """Cut text into BPE tokens: pre-tokenize, then apply the merges in the order they were learned (notebook 05)."""
    ranks: dict[Pair, int] = {}
    for r, pair in enumerate(merges):
        ranks.setdefault(pair, r)
    cache: dict[str, list[str]] = {}  # a review repeats words: cut each distinct word once
    tokens: list[str] = []
    for word in pre_tokenize(text):
        if word not in cache:
            symbols = tuple(word)
            while len(symbols) > 1:
                # the earliest-learned merge among the adjacent pairs goes first, as it did in training
                pair = min(pairwise(symbols), key=lambda p: ranks.get(p, math.inf))
                if pair not in ranks:
                    break
                symbols = merge_symbols(symbols, pair)
            cache[word] = list(symbols)
        tokens.extend(cache[word])
    return tokens
