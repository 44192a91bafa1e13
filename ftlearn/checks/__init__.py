"""Auto-checks for the exercises: each `check_xxx(fn)` answers correct, wrong with a hint, or not attempted.

Hints are staged (a nudge first, the specific hint on the second wrong try); the reference answer only on
request: `check_xxx(fn, reveal=True)` or `show_solution("check_xxx")`.

Lesson modules add their checks here (one module per concept) and list them in `_EXPORTS` below. A lesson's
module is imported the first time one of its checks is used, so `import ftlearn.checks` loads no torch: lesson
00's checks never pay for it (tests/test_architecture.py checks it).
"""

import importlib

from ftlearn.checks.core import (
    CORRECT,
    KINDS,
    NOT_ATTEMPTED,
    WRONG,
    CheckFailed,
    CheckResult,
    Mistake,
    check,
    close,
    finish,
    outcomes,
    reset_session,
    show_solution,
)

# each lesson module and the checks it re-exports, in course order; imported on first use (PEP 562)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "welcome": (
        "check_mean_length",
        "check_positive_fraction",
    ),
    "lm": (
        "check_add_k",
        "check_bigram_counts",
        "check_perplexity",
        "check_sequence_logprob",
        "check_temperature",
    ),
    "losses": (
        "check_bce_with_logits",
        "check_cross_entropy",
        "check_cross_entropy_ignore_index",
        "check_label_smoothing",
        "check_log_softmax",
    ),
    "optim": (
        "check_adam_step",
        "check_adamw_step",
        "check_ce_grad_logits",
        "check_central_difference",
        "check_linear_grads",
        "check_momentum_step",
        "check_rmsprop_step",
        "check_sgd_step",
        "check_train_gd",
        "check_warmup_linear",
    ),
    "quiz": ("check_quiz",),
    "tokenization": ("check_merge_pair",),
    "bert": (
        "check_confusion_matrix",
        "check_dynamic_pad",
        "check_head_tail",
        "check_mean_pool",
        "check_metrics_from_confusion",
        "check_padding_waste",
        "check_train_step",
    ),
    "causal_lm": (
        "check_shift_for_causal_lm",
        "check_causal_lm_loss",
        "check_perplexity_from_batches",
        "check_top_k_filter",
        "check_top_p_filter",
    ),
    "transformer": (
        "check_attention",
        "check_causal_mask",
        "check_layer_norm",
        "check_merge_heads",
        "check_split_heads",
        "check_gpt2_block_from_parts",
        "check_bert_layer_from_parts",
        "check_llama_layer_params",
        "check_llama_layer_flops",
        "check_rms_norm",
        "check_llama_layer_from_parts",
    ),
    "trainer": (
        "check_compute_metrics",
        "check_early_stopping",
        "check_training_arguments",
    ),
    "gpt2_classifier": (
        "check_add_pad_token",
        "check_last_real_position",
        "check_last_token_pool",
    ),
    "efficiency": (
        "check_accumulation_weights",
        "check_activation_bytes",
        "check_bytes_per_param",
        "check_epoch_seconds",
    ),
    "judgement": (
        "check_divergence",
        "check_epoch_choice",
        "check_lr_choice",
        "check_paired_comparison",
    ),
    "lora": (
        "check_lora_init",
        "check_lora_forward",
        "check_lora_merge",
        "check_distillation_loss",
    ),
    "own_data": (
        "check_macro_f1",
        "check_balanced_class_weights",
        "check_per_class_recall",
        "check_most_confused",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

# the machinery, then every lesson's checks
__all__ = [
    "CORRECT",
    "KINDS",
    "NOT_ATTEMPTED",
    "WRONG",
    "CheckFailed",
    "CheckResult",
    "Mistake",
    "check",
    "close",
    "finish",
    "outcomes",
    "reset_session",
    "show_solution",
    *_MODULE_OF,
]


def __getattr__(name: str):
    """Import the lesson module that defines check `name` the first time it is asked for."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
