"""Checks for the causal-LM exercises in solutions/09_gpt2_causal_lm.ipynb."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ftlearn.checks.core import CheckResult, Mistake, check, exercise


def _logits_and_labels(seed: int, batch: int = 2, length: int = 5, vocab: int = 7, ignore: bool = False) -> tuple:
    import torch

    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=gen, dtype=torch.float64)
    labels = torch.randint(vocab, (batch, length), generator=gen)
    if ignore:
        labels[0, -2:] = -100  # a padded tail, as in a batch of reviews of different lengths
    return logits, labels


@exercise()
def check_shift_for_causal_lm(fn: Callable[[Any, Any], tuple]) -> CheckResult:
    """Check `fn(logits, labels)` -> (logits (B, T-1, V), labels (B, T-1)): position t predicts t+1 (notebook 09)."""
    from ftlearn.causal_lm import shift_for_causal_lm

    return check(
        "shift_for_causal_lm",
        fn,
        shift_for_causal_lm,
        [_logits_and_labels(0), _logits_and_labels(1, batch=3, length=4)],
        mistakes=[
            Mistake(
                lambda lg, lb: (lg[:, 1:, :], lb[:, :-1]),
                "the shift goes the wrong way: logits at position t predict the token at t+1, so drop the *last* "
                "logits and the *first* label.",
                kind="off_by_one",
            ),
            Mistake(
                lambda lg, lb: (lg, lb),
                "nothing was shifted: without the shift each position is asked to copy its own input token.",
                kind="missing",
            ),
            Mistake(
                lambda lg, lb: (lg[:-1], lb[1:]),
                "you sliced the batch dimension (dim 0); the shift is along time, dim 1: `logits[:, :-1, :]`.",
                kind="axis",
            ),
            Mistake(
                lambda lg, lb: (lg[:, :-1, :], lb[:, :-1]),
                "both were cut at the end: the labels must lose their *first* token (`labels[:, 1:]`).",
                kind="off_by_one",
            ),
        ],
    )


def _loss(logits: Any, labels: Any) -> float:
    from ftlearn.causal_lm import causal_lm_loss

    return float(causal_lm_loss(logits, labels))


def _loss_unshifted(logits: Any, labels: Any) -> float:
    import torch.nn.functional as F

    return float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100))


def _loss_counting_ignored(logits: Any, labels: Any) -> float:
    import torch.nn.functional as F

    lg, lb = logits[:, :-1, :], labels[:, 1:]
    per = F.cross_entropy(lg.reshape(-1, lg.size(-1)), lb.reshape(-1), ignore_index=-100, reduction="none")
    return float(per.sum() / lb.numel())


def _loss_summed(logits: Any, labels: Any) -> float:
    import torch.nn.functional as F

    lg, lb = logits[:, :-1, :], labels[:, 1:]
    return float(F.cross_entropy(lg.reshape(-1, lg.size(-1)), lb.reshape(-1), ignore_index=-100, reduction="sum"))


@exercise()
def check_causal_lm_loss(fn: Callable[[Any, Any], Any]) -> CheckResult:
    """Check `fn(logits, labels)`: the mean next-token cross-entropy, skipping labels equal to -100 (notebook 09)."""
    return check(
        "causal_lm_loss",
        lambda lg, lb: float(fn(lg, lb)),
        _loss,
        [_logits_and_labels(2), _logits_and_labels(3, ignore=True)],
        mistakes=[
            Mistake(
                _loss_unshifted,
                "the logits and labels were not shifted: position t must be scored on token t+1.",
                kind="missing",
            ),
            Mistake(
                _loss_counting_ignored,
                "positions labelled -100 must leave the mean entirely: divide by the number of real labels, not by all "
                "positions.",
                kind="scale",
            ),
            Mistake(
                _loss_summed,
                "that is the sum over tokens; the loss is the mean (the sum depends on the batch size).",
                kind="scale",
            ),
        ],
    )


def _perplexity(batch_losses: list[float], batch_tokens: list[int]) -> float:
    mean = sum(loss * n for loss, n in zip(batch_losses, batch_tokens, strict=True)) / sum(batch_tokens)
    return math.exp(mean)


@exercise()
def check_perplexity_from_batches(fn: Callable[[list[float], list[int]], float]) -> CheckResult:
    """Check `fn(batch_losses, batch_tokens)`: perplexity = exp(token-weighted mean loss) (notebook 09)."""
    return check(
        "perplexity_from_batches",
        fn,
        _perplexity,
        [([2.0, 3.0], [10, 30]), ([4.5, 4.0, 3.2], [128, 128, 17]), ([1.0], [5])],
        mistakes=[
            Mistake(
                lambda ls, ns: math.exp(sum(ls) / len(ls)),
                "each batch's mean loss must count as many times as it has tokens: weight by `batch_tokens` before "
                "averaging.",
                kind="formula",
            ),
            Mistake(
                lambda ls, ns: sum(math.exp(x) for x in ls) / len(ls),
                "average the losses first, then take exp once; the mean of per-batch perplexities is larger (Jensen).",
                kind="order",
            ),
            Mistake(
                lambda ls, ns: 2 ** (sum(x * n for x, n in zip(ls, ns, strict=True)) / sum(ns)),
                "the losses are in nats (natural log), so use `math.exp`, not 2**.",
                kind="convention",
            ),
            Mistake(
                lambda ls, ns: sum(x * n for x, n in zip(ls, ns, strict=True)) / sum(ns),
                "that is the mean loss; perplexity is its exponential.",
                kind="missing",
            ),
        ],
    )


def _score_cases() -> list[tuple]:
    import torch

    gen = torch.Generator().manual_seed(4)
    return [
        (torch.tensor([[1.0, 3.0, -2.0, 0.5, 2.0]]), 2),
        (torch.randn(3, 11, generator=gen, dtype=torch.float64), 4),
        (torch.randn(2, 6, generator=gen, dtype=torch.float64), 1),
    ]


def _compare_filtered(got: Any, want: Any) -> bool:
    """Equal, with -inf matching -inf (allclose alone treats inf carefully but we want exact masks)."""
    import torch

    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return False
    got, want = got.double(), want.double()
    same_mask = torch.equal(torch.isinf(got), torch.isinf(want))
    finite = ~torch.isinf(want)
    return same_mask and torch.allclose(got[finite], want[finite])


@exercise()
def check_top_k_filter(fn: Callable[[Any, int], Any]) -> CheckResult:
    """Check `fn(logits, k)`: the k largest logits in each row stay, all others become -inf (notebook 09)."""
    import torch

    from ftlearn.causal_lm import top_k_filter

    def keep(lg: Any, k: int) -> Any:
        kth = torch.topk(lg, k, dim=-1).values[..., -1:]
        return lg.masked_fill(lg < kth, float("-inf"))

    return check(
        "top_k_filter",
        fn,
        top_k_filter,
        _score_cases(),
        mistakes=[
            Mistake(
                lambda lg, k: keep(lg, min(k + 1, lg.size(-1))),
                "one token too many survives: keep exactly k (the k-th largest is `topk(...).values[..., -1:]`).",
                kind="off_by_one",
            ),
            Mistake(
                lambda lg, k: keep(lg, max(k - 1, 1)),
                "one token too few survives: keep exactly k.",
                kind="off_by_one",
            ),
            Mistake(
                lambda lg, k: lg.masked_fill(lg < torch.topk(lg, k, dim=-1).values[..., -1:], 0.0),
                "filtered logits must be -inf (probability exactly 0 after softmax); 0 is an ordinary logit.",
                kind="convention",
            ),
            Mistake(
                lambda lg, k: lg.masked_fill(
                    lg > torch.topk(lg, k, dim=-1, largest=False).values[..., -1:], float("-inf")
                ),
                "you kept the k *smallest* logits.",
                kind="sign",
            ),
            Mistake(
                lambda lg, k: lg.masked_fill(lg < torch.topk(lg.flatten(), k).values[-1], float("-inf")),
                "the top k are chosen per row (dim=-1), not over the whole batch.",
                kind="axis",
            ),
        ],
        compare=_compare_filtered,
    )


@exercise()
def check_top_p_filter(fn: Callable[[Any, float], Any]) -> CheckResult:
    """Check `fn(logits, p)`: keep the fewest most likely tokens whose probabilities reach p (notebook 09)."""
    import torch

    from ftlearn.causal_lm import top_p_filter

    def cut_after(lg: Any, p: float) -> Any:  # drops the token that crosses p as well
        sorted_lg, order = torch.sort(lg, descending=True, dim=-1)
        cum = sorted_lg.softmax(-1).cumsum(-1)
        drop_sorted = cum > p
        drop_sorted[..., 0] = False
        return lg.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))

    cases = [
        (lg, p) for (lg, _), p in zip(_score_cases(), (0.5, 0.8, 0.3), strict=True)
    ]  # no ties: their order is arbitrary
    return check(
        "top_p_filter",
        fn,
        top_p_filter,
        cases,
        mistakes=[
            Mistake(
                cut_after,
                "the token whose probability makes the running sum reach p must stay (otherwise the kept mass is below "
                "p): drop a token only when the tokens *before* it already sum to p.",
                kind="edge",
            ),
            Mistake(
                lambda lg, p: lg.masked_fill(lg.softmax(-1) < p, float("-inf")),
                "top-p is not a threshold on each probability: sort, take the running sum, and keep the smallest "
                "prefix whose sum reaches p.",
            ),
        ],
        compare=_compare_filtered,
    )
