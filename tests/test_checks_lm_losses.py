"""The checks of lessons 01 and 02: right answers pass, common mistakes get their hint, stubs are 'not attempted'."""

import math
from collections import Counter

import pytest
import torch

from ftlearn import checks
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, STRICT_ENV, WRONG

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args, **kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- learner-style answers, right and wrong
def bigrams(docs, start="<s>", end="</s>", step=1, across=False):
    counts = Counter()
    seqs = [[w for d in docs for w in d]] if across else docs
    for doc in seqs:
        padded = ([start] if start else []) + list(doc) + ([end] if end else [])
        for i in range(len(padded) - step):
            counts[padded[i], padded[i + step]] += 1
    return counts


def add_k(counts, word, k, v, denom_k=True):
    return (counts.get(word, 0) + k) / (sum(counts.values()) + (k * v if denom_k else k))


def seq_logprob(tokens, prob, shift=0, log=math.log):
    return sum(log(prob(w, tuple(tokens[: i + shift]))) for i, w in enumerate(tokens))


def naive_log_softmax(z):
    e = torch.exp(z)
    return torch.log(e / e.sum(dim=-1, keepdim=True))


def stable_log_softmax(z):
    m = z.max(dim=-1, keepdim=True).values
    return z - m - torch.log(torch.exp(z - m).sum(dim=-1, keepdim=True))


def ce(z, y, log_softmax=stable_log_softmax):
    return -log_softmax(z)[torch.arange(len(y)), y].mean()


def ce_ignore(z, y, ignore_index=-100, divide_by_all=False):
    keep = y != ignore_index
    nll = -stable_log_softmax(z)[torch.arange(len(y)), torch.where(keep, y, 0)]
    total = (nll * keep).sum()
    return total / (len(y) if divide_by_all else keep.sum())


def label_smoothing(z, y, eps, spread_over_others=False):
    logp = stable_log_softmax(z)
    nll = -logp[torch.arange(len(y)), y]
    if spread_over_others:
        uniform = (-logp.sum(1) - nll) / (z.shape[1] - 1)
    else:
        uniform = -logp.mean(1)
    return ((1 - eps) * nll + eps * uniform).mean()


def bce(z, y):
    return (z.clamp(min=0) - z * y + torch.log1p(torch.exp(-z.abs()))).mean()


def bce_naive(z, y):
    p = torch.sigmoid(z)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


CASES = {
    "bigram_counts": (
        checks.check_bigram_counts,
        bigrams,
        [
            (lambda d: bigrams(d, start=None), "put `'<s>'` in front"),
            (lambda d: bigrams(d, end=None), "append `'</s>'`"),
            (lambda d: bigrams(d, across=True), "across document boundaries"),
            (lambda d: bigrams(d, step=2), "off by one"),
        ],
    ),
    "add_k": (
        checks.check_add_k,
        add_k,
        [
            (lambda c, w, k, v: add_k(c, w, k, v, denom_k=False), "N + k*V"),
            (lambda c, w, k, v: c.get(w, 0) / sum(c.values()), "unsmoothed"),
        ],
    ),
    "sequence_logprob": (
        checks.check_sequence_logprob,
        seq_logprob,
        [
            (lambda t, p: math.prod(p(w, tuple(t[:i])) for i, w in enumerate(t)), "take the log"),
            (lambda t, p: sum(p(w, tuple(t[:i])) for i, w in enumerate(t)), "missing log"),
            (lambda t, p: seq_logprob(t, p, shift=1), "off by one"),
            (lambda t, p: seq_logprob(t, p, log=math.log10), "natural log"),
        ],
    ),
    "perplexity": (
        checks.check_perplexity,
        lambda lps: math.exp(-sum(lps) / len(lps)),
        [
            (lambda lps: math.exp(-sum(lps)), "*mean*"),
            (lambda lps: -sum(lps) / len(lps), "exp of it"),
            (lambda lps: math.exp(sum(lps) / len(lps)), "inverse"),
        ],
    ),
    "temperature": (
        checks.check_temperature,
        lambda p, t: (torch.tensor(p).log() / t).softmax(0).tolist(),
        [
            (lambda p, t: [x**t / sum(y**t for y in p) for x in p], "inverted"),
            (lambda p, t: [x ** (1 / t) for x in p], "renormalise"),
            (lambda p, t: torch.tensor(p).div(t).softmax(0), "not to the probabilities"),
        ],
    ),
    "log_softmax": (
        checks.check_log_softmax,
        stable_log_softmax,
        [
            (naive_log_softmax, "unstable softmax"),
            (lambda z: torch.log(torch.softmax(z, -1)), "log(0)"),
            (lambda z: torch.softmax(z, -1), "missing log"),
        ],
    ),
    "cross_entropy": (
        checks.check_cross_entropy,
        ce,
        [
            (lambda z, y: ce(z, y, naive_log_softmax), "unstable softmax"),
            (lambda z, y: -ce(z, y), "sign"),
            (lambda z, y: -torch.softmax(z, 1)[torch.arange(len(y)), y].mean(), "missing log"),
            (lambda z, y: ce(z, y) * len(y), "sum"),
        ],
    ),
    "cross_entropy_ignore_index": (
        checks.check_cross_entropy_ignore_index,
        ce_ignore,
        [
            (lambda z, y, ignore_index=-100: ce_ignore(z, y, divide_by_all=True), "divided by all rows"),
            (
                lambda z, y, ignore_index=-100: -stable_log_softmax(z)[torch.arange(len(y)), y].mean(),
                "used as a class index",
            ),
            (lambda z, y, ignore_index=-100: ce(z, torch.where(y == ignore_index, 0, y)), "replaced -100 by class 0"),
        ],
    ),
    "label_smoothing": (
        checks.check_label_smoothing,
        label_smoothing,
        [
            (lambda z, y, eps: label_smoothing(z, y, eps, spread_over_others=True), "*all* C classes"),
            (lambda z, y, eps: label_smoothing(z, y, 0.0), "eps is not used"),
        ],
    ),
    "bce_with_logits": (
        checks.check_bce_with_logits,
        bce,
        [
            (bce_naive, "log(0)"),
            (lambda z, y: -bce(z, y), "sign"),
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_right_answer_is_correct(name):
    check_fn, right, _ = CASES[name]
    result = check_fn(right)
    assert result.status == CORRECT, result


@pytest.mark.parametrize("name", list(CASES))
def test_stub_is_not_attempted(name):
    check_fn, _, _ = CASES[name]
    result = check_fn(stub)
    assert result.status == NOT_ATTEMPTED and "⏳" in repr(result)


@pytest.mark.parametrize(
    "name,wrong,hint", [(name, wrong, hint) for name, (_, _, mistakes) in CASES.items() for wrong, hint in mistakes]
)
def test_common_mistake_gets_its_hint(name, wrong, hint, second_try):
    check_fn = CASES[name][0]
    result = second_try(check_fn, wrong)
    assert result.status == WRONG
    assert hint in result.message, result.message


def test_a_crash_becomes_a_message_not_a_traceback():
    result = checks.check_cross_entropy(lambda z, y: z @ torch.zeros(7))
    assert result.status == WRONG and "RuntimeError" in result.message


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(checks.CheckFailed):
        checks.check_perplexity(lambda lps: 0.0)
