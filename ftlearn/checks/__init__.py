"""Auto-checks for the exercises: each `check_xxx(fn)` answers correct, wrong with a hint, or not attempted.

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
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG, CheckFailed, CheckResult, Mistake, check, close, finish
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
from ftlearn.checks.tokenization import check_merge_pair
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
    "NOT_ATTEMPTED",
    "WRONG",
    "CheckFailed",
    "CheckResult",
    "Mistake",
    "check",
    "close",
    "finish",
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
    # lora (lesson 12: LoRA and distillation)
    "check_lora_init",
    "check_lora_forward",
    "check_lora_merge",
    "check_distillation_loss",
]
