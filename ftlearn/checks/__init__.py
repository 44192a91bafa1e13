"""Auto-checks for the exercises: each `check_xxx(fn)` answers correct, wrong with a hint, or not attempted.

Lesson modules add their checks here (one module per concept) and re-export them below.
"""

from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG, CheckFailed, CheckResult, Mistake, check, close, finish
from ftlearn.checks.causal_lm import (
    check_causal_lm_loss,
    check_perplexity,
    check_shift_for_causal_lm,
    check_top_k_filter,
    check_top_p_filter,
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
    "check_shift_for_causal_lm",
    "check_causal_lm_loss",
    "check_perplexity",
    "check_top_k_filter",
    "check_top_p_filter",
]
