"""Auto-checks for the exercises: each `check_xxx(fn)` answers correct, wrong with a hint, or not attempted.

Lesson modules add their checks here (one module per concept) and re-export them below.
"""

from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG, CheckFailed, CheckResult, Mistake, check, close, finish
from ftlearn.checks.lm import check_add_k, check_bigram_counts, check_perplexity, check_sequence_logprob, check_temperature
from ftlearn.checks.losses import (
    check_bce_with_logits,
    check_cross_entropy,
    check_cross_entropy_ignore_index,
    check_label_smoothing,
    check_log_softmax,
)
from ftlearn.checks.welcome import check_mean_length, check_positive_fraction

__all__ = [
    "CORRECT",
    "NOT_ATTEMPTED",
    "WRONG",
    "CheckFailed",
    "CheckResult",
    "finish",
    "Mistake",
    "check",
    "close",
    "check_mean_length",
    "check_positive_fraction",
    "check_bigram_counts",
    "check_add_k",
    "check_sequence_logprob",
    "check_perplexity",
    "check_temperature",
    "check_log_softmax",
    "check_cross_entropy",
    "check_cross_entropy_ignore_index",
    "check_label_smoothing",
    "check_bce_with_logits",
]
