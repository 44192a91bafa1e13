"""Checks for lesson 05's BPE exercises: one merge step applied to a table of word counts (notebook 05)."""

from __future__ import annotations

from collections.abc import Callable

from ftlearn.checks.core import CheckResult, Mistake, check, exercise

# Each case is (words, pair): words maps a tuple of symbols to its count. Their order matters: each known
# mistake first goes wrong on a different case, so the hint names the mistake that was made.
_MERGE_CASES = [
    # Sennrich et al.'s example and its first merge: "es" is fused in newest and widest, the other words stay
    (
        {
            ("l", "o", "w"): 5,
            ("l", "o", "w", "e", "r"): 2,
            ("n", "e", "w", "e", "s", "t"): 6,
            ("w", "i", "d", "e", "s", "t"): 3,
        },
        ("e", "s"),
    ),
    # overlapping occurrences: left to right, each symbol fused at most once
    ({("a", "a", "a"): 3, ("b", "a", "a", "a", "a"): 2, ("a",): 4}, ("a", "a")),
    # symbols longer than one letter: "b" ends the symbol "ab", so ("b", "c") is not in ("x", "ab", "c")
    ({("x", "ab", "c"): 2, ("b", "c"): 1, ("b", "c", "b"): 7}, ("b", "c")),
    # two words that become the same symbols: their counts add up
    ({("a", "b", "c"): 2, ("ab", "c"): 3, ("c", "a", "b"): 1}, ("a", "b")),
    # a pair that occurs nowhere: nothing changes
    ({("l", "o", "w"): 5, ("o",): 1}, ("w", "o")),
]


def _fuse(symbols, pair, step: int = 2, from_right: bool = False) -> tuple:
    """Fuse `pair` in one word, left to right (or right to left); step=1 forgets to skip the fused symbol."""
    symbols = list(reversed(symbols)) if from_right else list(symbols)
    first, second = (pair[1], pair[0]) if from_right else pair
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
            out.append(pair[0] + pair[1])
            i += step
        else:
            out.append(symbols[i])
            i += 1
    return tuple(reversed(out)) if from_right else tuple(out)


def _merge_ref(words, pair):
    from ftlearn.bpe import merge_pair

    return merge_pair(words, pair)


def _merge_joined_string(words, pair):
    """The classic slip: join the symbols with spaces and str.replace "b c" by "bc" (it also matches "ab c")."""
    merged: dict = {}
    for symbols, count in words.items():
        new = tuple(" ".join(symbols).replace(" ".join(pair), "".join(pair)).split(" "))
        merged[new] = merged.get(new, 0) + count
    return merged


def _merge_overwrite(words, pair):
    return {_fuse(symbols, pair): count for symbols, count in words.items()}  # the last word wins


def _merge_keep_first(words, pair):
    merged: dict = {}
    for symbols, count in words.items():
        merged.setdefault(_fuse(symbols, pair), count)  # the first word wins
    return merged


def _merge_count_one(words, pair):
    return {_fuse(symbols, pair): 1 for symbols in words}


def _merge_list(words, pair):
    return [_fuse(symbols, pair) for symbols in words]


def _merge_set(words, pair):
    return {_fuse(symbols, pair) for symbols in words}


def _merge_from_right(words, pair):
    merged: dict = {}
    for symbols, count in words.items():
        new = _fuse(symbols, pair, from_right=True)
        merged[new] = merged.get(new, 0) + count
    return merged


def _merge_no_skip(words, pair):
    merged: dict = {}
    for symbols, count in words.items():
        new = _fuse(symbols, pair, step=1)
        merged[new] = merged.get(new, 0) + count
    return merged


@exercise()
def check_merge_pair(fn: Callable) -> CheckResult:
    """Check `fn(words, pair)`: fuse every occurrence of `pair`, left to right, keeping the counts (notebook 05)."""
    counts_hint = (
        "keep each word's count: return a dict mapping the new tuple of symbols to the count the word had, "
        "because the next pair count weighs every word by it."
    )
    same_words_hint = (
        "two words can end up with the same symbols (('a', 'b', 'c') and ('ab', 'c') both become ('ab', 'c')): "
        "add their counts instead of keeping only one of them."
    )
    return check(
        "merge_pair",
        fn,
        _merge_ref,
        _MERGE_CASES,
        mistakes=[
            Mistake(_merge_list, counts_hint, kind="convention"),
            Mistake(_merge_set, counts_hint, kind="convention"),
            Mistake(_merge_count_one, counts_hint, kind="convention"),
            Mistake(
                _merge_no_skip,
                "after fusing a pair at position i, go on at i + 2: the second symbol is now part of the new one "
                "(you kept it, so it appears twice).",
                kind="off_by_one",
            ),
            Mistake(
                _merge_from_right,
                "fuse from left to right: ('a', 'a', 'a') with the pair ('a', 'a') becomes ('aa', 'a'), "
                "not ('a', 'aa').",
                kind="order",
            ),
            Mistake(
                _merge_joined_string,
                "work on the tuple of symbols, not a joined string: in 'x ab c', replacing 'b c' by 'bc' also "
                "fuses the end of the symbol 'ab' with 'c', and ('b', 'c') is not a pair of that word.",
            ),
            Mistake(_merge_overwrite, same_words_hint, kind="edge"),
            Mistake(_merge_keep_first, same_words_hint, kind="edge"),
        ],
        hint="Expected a dict {tuple of symbols: count}.",
    )
