"""Checks for the warm-up exercises in solutions/00_welcome.ipynb (they show how checking works)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ftlearn.checks.core import CheckResult, Mistake, check, exercise

_CASES = [
    (["a good film", "bad", "not bad at all, really"],),
    (["one", "two words", "  spaces   around  "],),
]


def _mean_length(texts: Sequence[str]) -> float:
    return sum(len(t.split()) for t in texts) / len(texts)


@exercise()
def check_mean_length(fn: Callable[[Sequence[str]], float]) -> CheckResult:
    """Check `fn(texts)`: the mean number of whitespace-separated words per text (notebook 00)."""
    return check(
        "mean_length",
        fn,
        _mean_length,
        _CASES,
        mistakes=[
            Mistake(
                lambda texts: sum(len(t) for t in texts) / len(texts),
                "you counted characters; count words with `text.split()`.",
            ),
            Mistake(
                lambda texts: sum(len(t.split()) for t in texts),
                "that is the total; divide by the number of texts.",
                kind="missing",
            ),
            Mistake(
                lambda texts: sum(len(t.split(" ")) for t in texts) / len(texts),
                "`split(' ')` counts empty strings between repeated spaces; plain `split()` does not.",
                kind="edge",
            ),
            Mistake(
                lambda texts: sum(len(t.split()) for t in texts) // len(texts),
                "`//` rounds down; use `/` for the mean.",
            ),
        ],
    )


def _positive_fraction(labels: Sequence[int]) -> float:
    return sum(1 for y in labels if y == 1) / len(labels)


@exercise()
def check_positive_fraction(fn: Callable[[Sequence[int]], float]) -> CheckResult:
    """Check `fn(labels)`: the fraction of labels that are 1 (positive), between 0 and 1 (notebook 00)."""
    return check(
        "positive_fraction",
        fn,
        _positive_fraction,
        [([1, 0, 1, 1],), ([0, 0, 0, 1, 1],), ([1],)],
        mistakes=[
            Mistake(
                lambda labels: sum(labels),
                "that is the count of positives; divide by the number of labels.",
                kind="missing",
            ),
            Mistake(
                lambda labels: 100 * sum(labels) / len(labels),
                "return a fraction between 0 and 1, not a percentage.",
                kind="scale",
            ),
            Mistake(
                lambda labels: sum(1 for y in labels if y == 0) / len(labels),
                "that is the fraction of negatives (label 0).",
            ),
        ],
    )
