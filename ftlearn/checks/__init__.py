"""Auto-checks for the exercises: each `check_xxx(fn)` answers correct, wrong with a hint, or not attempted.

Hints are staged (a nudge first, the specific hint on the second wrong try); the reference answer only on
request: `check_xxx(fn, reveal=True)` or `show_solution("check_xxx")`.

Lesson modules add their checks here (one module per concept) and re-export them below.
"""

from ftlearn.checks.bert import (
    check_confusion_matrix,
    check_dynamic_pad,
    check_head_tail,
    check_mean_pool,
    check_metrics_from_confusion,
    check_padding_waste,
    check_train_step,
)
from ftlearn.checks.causal_lm import (
    check_causal_lm_loss,
    check_perplexity_from_batches,
    check_shift_for_causal_lm,
    check_top_k_filter,
    check_top_p_filter,
)
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
from ftlearn.checks.efficiency import (
    check_accumulation_weights,
    check_activation_bytes,
    check_bytes_per_param,
    check_epoch_seconds,
)
from ftlearn.checks.gpt2_classifier import check_add_pad_token, check_last_real_position, check_last_token_pool
from ftlearn.checks.judgement import check_divergence, check_epoch_choice, check_lr_choice, check_paired_comparison
from ftlearn.checks.lm import (
    check_add_k,
    check_bigram_counts,
    check_perplexity,
    check_sequence_logprob,
    check_temperature,
)
from ftlearn.checks.lora import check_distillation_loss, check_lora_forward, check_lora_init, check_lora_merge
from ftlearn.checks.losses import (
    check_bce_with_logits,
    check_cross_entropy,
    check_cross_entropy_ignore_index,
    check_label_smoothing,
    check_log_softmax,
)
from ftlearn.checks.optim import (
    check_adam_step,
    check_adamw_step,
    check_ce_grad_logits,
    check_central_difference,
    check_linear_grads,
    check_momentum_step,
    check_rmsprop_step,
    check_sgd_step,
    check_train_gd,
    check_warmup_linear,
)
from ftlearn.checks.quiz import check_quiz
from ftlearn.checks.tokenization import check_merge_pair
from ftlearn.checks.trainer import check_compute_metrics, check_early_stopping, check_training_arguments
from ftlearn.checks.transformer import (
    check_attention,
    check_causal_mask,
    check_layer_norm,
    check_merge_heads,
    check_split_heads,
)
from ftlearn.checks.welcome import check_mean_length, check_positive_fraction

# the machinery, then one block per lesson module
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
    # welcome
    "check_mean_length",
    "check_positive_fraction",
    # lm
    "check_add_k",
    "check_bigram_counts",
    "check_perplexity",
    "check_sequence_logprob",
    "check_temperature",
    # losses
    "check_bce_with_logits",
    "check_cross_entropy",
    "check_cross_entropy_ignore_index",
    "check_label_smoothing",
    "check_log_softmax",
    # optim
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
    # quiz (every lesson)
    "check_quiz",
    # tokenization
    "check_merge_pair",
    # bert
    "check_confusion_matrix",
    "check_dynamic_pad",
    "check_head_tail",
    "check_mean_pool",
    "check_metrics_from_confusion",
    "check_padding_waste",
    "check_train_step",
    # causal_lm
    "check_shift_for_causal_lm",
    "check_causal_lm_loss",
    "check_perplexity_from_batches",
    "check_top_k_filter",
    "check_top_p_filter",
    # transformer
    "check_attention",
    "check_causal_mask",
    "check_layer_norm",
    "check_merge_heads",
    "check_split_heads",
    # trainer
    "check_compute_metrics",
    "check_early_stopping",
    "check_training_arguments",
    # gpt2_classifier
    "check_add_pad_token",
    "check_last_real_position",
    "check_last_token_pool",
    # efficiency
    "check_accumulation_weights",
    "check_activation_bytes",
    "check_bytes_per_param",
    "check_epoch_seconds",
    # judgement
    "check_divergence",
    "check_epoch_choice",
    "check_lr_choice",
    "check_paired_comparison",
    # lora (lesson 12: LoRA and distillation)
    "check_lora_init",
    "check_lora_forward",
    "check_lora_merge",
    "check_distillation_loss",
]
