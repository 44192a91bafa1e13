"""What full fine-tuning costs: bytes per parameter, activation memory, FLOPs per token, MFU.

Introduced in notebook 10. The predictions here are compared in that notebook (and in
tests/test_memory.py) with what PyTorch actually allocates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Bytes per parameter for each piece of training state, by precision recipe.
#   fp32:       weights 4 + gradients 4 + AdamW m 4 + v 4                          = 16
#   amp (torch.autocast, the course's GPU recipe): the same fp32 state (16); only
#               activations and matmuls run in bf16/fp16, so the saving is in activations.
#   half-master (classic mixed precision: half weights and grads, an fp32 master copy):
#               weights 2 + gradients 2 + master 4 + m 4 + v 4                      = 16
#   pure-bf16:  weights 2 + gradients 2 + m 2 + v 2 (no master copy; loses small updates) = 8
RECIPES: dict[str, dict[str, int]] = {
    "fp32": {"weights": 4, "gradients": 4, "master": 0, "adam_m": 4, "adam_v": 4},
    "amp": {"weights": 4, "gradients": 4, "master": 0, "adam_m": 4, "adam_v": 4},
    "half-master": {"weights": 2, "gradients": 2, "master": 4, "adam_m": 4, "adam_v": 4},
    "pure-bf16": {"weights": 2, "gradients": 2, "master": 0, "adam_m": 2, "adam_v": 2},
}


@dataclass(frozen=True)
class StateMemory:
    """Bytes of training state (not activations) for a model of `params` parameters."""

    params: int
    recipe: str
    parts: dict[str, int]  # bytes per component

    @property
    def total(self) -> int:
        """All state bytes together."""
        return sum(self.parts.values())

    @property
    def bytes_per_param(self) -> float:
        """Total state bytes divided by the parameter count (16 for fp32 AdamW)."""
        return self.total / self.params


def predict_state_memory(params: int, recipe: str = "fp32") -> StateMemory:
    """Predicted weights + gradients + (master) + AdamW m and v, in bytes, for `params` parameters (notebook 10)."""
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    return StateMemory(params, recipe, {k: v * params for k, v in RECIPES[recipe].items()})


def measure_state_memory(model: Any, optimizer: Any) -> dict[str, int]:
    """Bytes actually held by a model's parameters, their gradients and the optimizer's state tensors (notebook 10)."""
    import torch

    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    state = {}
    for per_param in optimizer.state.values():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:  # skip scalar step counters
                state[key] = state.get(key, 0) + value.numel() * value.element_size()
    return {"weights": weights, "gradients": grads, **{f"optimizer_{k}": v for k, v in sorted(state.items())}}


def activation_bytes_per_layer(batch: int, seq: int, hidden: int, heads: int, bytes_per_value: int = 2) -> int:
    """Activation memory one transformer layer keeps for backward, without recomputation (notebook 10).

    Follows the count of Korthikanti et al. (2022), "Reducing Activation Recomputation in Large
    Transformer Models": s*b*h*(34 + 5*a*s/h) bytes in 16-bit, i.e. 17 values per token and hidden
    unit from the linear layers, norms and GELU, plus 2.5 values per attention score (scores,
    softmax, dropout mask). Scaled here by bytes_per_value/2 for other precisions.
    """
    per_layer_16bit = seq * batch * hidden * 34 + 5 * heads * seq * seq * batch
    return per_layer_16bit * bytes_per_value // 2


def flops_per_token(params: int, layers: int, hidden: int, seq: int, training: bool = True) -> float:
    """FLOPs per token: 2N forward (6N with backward) plus attention's 4*L*s*h forward (notebook 10).

    The attention term counts QK^T and attention-times-V, which the parameter count misses;
    it is small for short sequences and grows with length.
    """
    forward = 2 * params + 4 * layers * seq * hidden  # 2 matmuls of s x h per layer, 2 FLOPs per MAC
    return 3 * forward if training else forward


def mfu(tokens_per_second: float, flops_per_tok: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the hardware's peak (notebook 10)."""
    return tokens_per_second * flops_per_tok / peak_flops
