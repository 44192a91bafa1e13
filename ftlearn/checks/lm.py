"""Checks for the exercises of solutions/01_language_model_probability.ipynb (counting LMs, chain rule, perplexity)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

from ftlearn.checks.core import CheckResult, Mistake, check, exercise
from ftlearn.lm import BOS, EOS

# ---------------------------------------------------------------- bigram counts
_DOCS_CASES = [
    ([["the", "film", "was", "good"], ["the", "end"]],),
    ([["a", "a", "a"], ["b"], ["a", "b", "a"]],),
]


def _bigrams(docs, start=True, end=True, across=False, step=1):
    counts: Counter = Counter()
    seqs = [[w for d in docs for w in d]] if across else docs
    for doc in seqs:
        padded = ([BOS] if start else []) + list(doc) + ([EOS] if end else [])
        for a, b in zip(padded, padded[step:], strict=False):  # pairs (w_i, w_{i+step})
            counts[(a, b)] += 1
    return dict(counts)


def _as_dict(value):
    return dict(value) if isinstance(value, (dict, Counter)) else value


@exercise()
def check_bigram_counts(fn: Callable[[Sequence[Sequence[str]]], dict]) -> CheckResult:
    """Check `fn(docs)`: {(previous, next): count} over documents framed by <s> ... </s> (notebook 01)."""
    return check(
        "bigram_counts",
        lambda docs: _as_dict(fn(docs)),
        _bigrams,
        _DOCS_CASES,
        mistakes=[
            Mistake(
                lambda d: _bigrams(d, start=False),
                f"the first word of each document also has a context: put `{BOS!r}` in front.",
                kind="missing",
            ),
            Mistake(
                lambda d: _bigrams(d, end=False),
                f"a model must also learn when a document ends: append `{EOS!r}` and count (last word, {EOS!r}).",
                kind="missing",
            ),
            Mistake(
                lambda d: _bigrams(d, start=False, end=False),
                f"frame each document as [{BOS!r}, *doc, {EOS!r}] before counting pairs.",
                kind="missing",
            ),
            Mistake(
                lambda d: _bigrams(d, across=True),
                "you counted pairs across document boundaries: frame and count each document separately.",
                kind="edge",
            ),
            Mistake(
                lambda d: _bigrams(d, step=2),
                "off by one: a bigram is (w[i], w[i+1]), neighbours, not (w[i], w[i+2]).",
                kind="off_by_one",
            ),
        ],
        hint=f"Expected a dict {{(previous, next): count}} with documents framed as [{BOS!r}, *doc, {EOS!r}].",
    )


# ---------------------------------------------------------------- add-k smoothing
_ADD_K_CASES = [
    ({"film": 3, "movie": 1}, "film", 1.0, 10),
    ({"film": 3, "movie": 1}, "plot", 0.5, 10),
    ({"a": 7}, "a", 0.01, 1000),
    ({}, "a", 1.0, 4),
]


def _add_k(counts, word, k, vocab_size):
    return (counts.get(word, 0) + k) / (sum(counts.values()) + k * vocab_size)


@exercise()
def check_add_k(fn: Callable[[dict, str, float, int], float]) -> CheckResult:
    """Check `fn(next_counts, word, k, vocab_size)`: the add-k probability of `word` after one context (notebook 01)."""
    return check(
        "add_k",
        fn,
        _add_k,
        _ADD_K_CASES,
        mistakes=[
            Mistake(
                lambda c, w, k, v: (c.get(w, 0) + k) / (sum(c.values()) + k),
                "the denominator needs k for every one of the V possible next words: N + k*V.",
                kind="missing",
            ),
            Mistake(
                lambda c, w, k, v: (c.get(w, 0) + k) / (sum(c.values()) + v),
                "the V pretend words each get k counts, so add k*V to the denominator (not V).",
                kind="scale",
            ),
            Mistake(
                lambda c, w, k, v: c.get(w, 0) / (sum(c.values()) + k * v),
                "add k to the numerator too, or unseen words still get probability 0.",
                kind="missing",
            ),
            Mistake(
                lambda c, w, k, v: c.get(w, 0) / sum(c.values()),
                "that is the unsmoothed estimate c/N: add k to the count and k*V to the total.",
                kind="missing",
            ),
        ],
    )


# ---------------------------------------------------------------- chain rule
_TABLE = {  # P(next | previous) of a toy bigram model; every history's last token picks a row
    BOS: {"i": 0.6, "you": 0.3, "liked": 0.1},
    "i": {"liked": 0.7, "i": 0.1, "you": 0.2},
    "you": {"liked": 0.5, "you": 0.25, "i": 0.25},
    "liked": {"it": 0.8, "you": 0.2},
    "it": {"liked": 0.5, "it": 0.5},
}


def toy_prob(word: str, history: tuple) -> float:
    """P(word | history) of the toy model used by `check_sequence_logprob` (only the last word matters)."""
    previous = history[-1] if history else BOS
    return _TABLE[previous].get(word, 0.01)


_SEQ_CASES = [(("i", "liked", "it"),), (("you", "you", "liked", "it"),), (("liked",),)]


def _seq_logprob(tokens, prob=toy_prob):
    return sum(math.log(prob(w, tuple(tokens[:i]))) for i, w in enumerate(tokens))


@exercise()
def check_sequence_logprob(fn: Callable[[Sequence[str], Callable], float]) -> CheckResult:
    """Check `fn(tokens, prob)`: log P(w_1..w_n) = sum_i log prob(w_i, w_<i) by the chain rule (notebook 01)."""
    return check(
        "sequence_logprob",
        lambda tokens: fn(tokens, toy_prob),
        _seq_logprob,
        _SEQ_CASES,
        mistakes=[
            Mistake(
                lambda t: math.prod(toy_prob(w, tuple(t[:i])) for i, w in enumerate(t)),
                "you returned the probability itself: take the log of each factor and add them up.",
                kind="missing",
            ),
            Mistake(
                lambda t: sum(toy_prob(w, tuple(t[:i])) for i, w in enumerate(t)),
                "missing log: the chain rule multiplies probabilities, so it is the *logs* that add.",
                kind="missing",
            ),
            Mistake(
                lambda t: sum(math.log(toy_prob(w, tuple(t[: i + 1]))) for i, w in enumerate(t)),
                "off by one: the history of w_i is w_1..w_(i-1), i.e. tokens[:i], not including w_i itself.",
                kind="off_by_one",
            ),
            Mistake(
                lambda t: sum(math.log(toy_prob(w, tuple(t[: max(i - 1, 0)]))) for i, w in enumerate(t)),
                "off by one: the history of w_i is tokens[:i]; you dropped its last word.",
                kind="off_by_one",
            ),
            Mistake(
                lambda t: sum(math.log(toy_prob(w, tuple(t[:i]))) for i, w in enumerate(t) if i > 0),
                "the first word counts too: its history is empty, P(w_1) = prob(w_1, ()).",
                kind="edge",
            ),
            Mistake(
                lambda t: sum(math.log10(toy_prob(w, tuple(t[:i]))) for i, w in enumerate(t)),
                "use the natural log (`math.log`), not log10.",
                kind="convention",
            ),
            Mistake(
                lambda t: sum(math.log2(toy_prob(w, tuple(t[:i]))) for i, w in enumerate(t)),
                "use the natural log (`math.log`), not log2.",
                kind="convention",
            ),
            Mistake(
                lambda t: -_seq_logprob(t),
                "sign: a log-probability is <= 0; you returned its negative.",
                kind="sign",
            ),
        ],
    )


# ---------------------------------------------------------------- perplexity
_PPL_CASES = [
    ([math.log(0.25)] * 4,),
    ([math.log(0.5), math.log(0.1), math.log(0.02)],),
    ([-0.1, -2.3, -5.0, -0.7, -1.2],),
]


def _ppl(logprobs):
    return math.exp(-sum(logprobs) / len(logprobs))


@exercise()
def check_perplexity(fn: Callable[[Sequence[float]], float]) -> CheckResult:
    """Check `fn(token_logprobs)`: perplexity = exp(-mean log p) from natural-log token probabilities (notebook 01)."""
    return check(
        "perplexity",
        lambda lps: fn(list(lps)),
        _ppl,
        _PPL_CASES,
        mistakes=[
            Mistake(
                lambda lps: math.exp(-sum(lps)),
                "you used the total: perplexity uses the *mean* log-probability per token.",
                kind="scale",
            ),
            Mistake(
                lambda lps: math.exp(sum(lps) / len(lps)),
                "sign: exp(mean log p) is the geometric-mean probability; perplexity is its inverse, exp(-mean log p).",
                kind="sign",
            ),
            Mistake(
                lambda lps: -sum(lps) / len(lps),
                "that is the cross-entropy in nats; perplexity is exp of it.",
                kind="missing",
            ),
            Mistake(
                lambda lps: 2 ** (-sum(lps) / len(lps)),
                "the logs are natural logs, so use exp, not 2**.",
                kind="convention",
            ),
            Mistake(
                lambda lps: sum(math.exp(-x) for x in lps) / len(lps),
                "average the log-probabilities first, then exponentiate (mean of 1/p is not the perplexity).",
                kind="order",
            ),
        ],
    )


# ---------------------------------------------------------------- temperature
_TEMP_CASES = [([0.5, 0.3, 0.2], 0.5), ([0.5, 0.3, 0.2], 2.0), ([0.7, 0.2, 0.05, 0.05], 1.0), ([0.9, 0.1], 0.25)]


def _temp(probs, t):
    w = [p ** (1 / t) for p in probs]
    return [x / sum(w) for x in w]


def _softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def _to_list(value):
    try:
        return [float(x) for x in value]
    except TypeError:
        return value


@exercise()
def check_temperature(fn: Callable[[Sequence[float], float], Sequence[float]]) -> CheckResult:
    """Check `fn(probs, temperature)`: the distribution softmax(log p / T), i.e. p^(1/T) renormalised (notebook 01)."""
    return check(
        "temperature",
        lambda p, t: _to_list(fn(list(p), t)),
        _temp,
        _TEMP_CASES,
        mistakes=[
            Mistake(
                lambda p, t: _temp(p, 1 / t),
                "inverted: divide the log-probabilities by T (p ** (1/T)); you multiplied them.",
                kind="formula",
            ),
            Mistake(lambda p, t: [x ** (1 / t) for x in p], "renormalise so the result sums to 1.", kind="missing"),
            Mistake(
                lambda p, t: _softmax([x / t for x in p]),
                "apply the temperature to log-probabilities (or logits), not to the probabilities themselves.",
                kind="formula",
            ),
            Mistake(
                lambda p, t: [x / sum(p) for x in p],
                "dividing probabilities by T and renormalising changes nothing: divide the *logs* by T.",
                kind="formula",
            ),
        ],
    )
