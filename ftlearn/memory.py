"""What full fine-tuning costs: bytes per parameter, activation memory, FLOPs per token, MFU, time per epoch.

Introduced in notebook 11. The predictions here are compared in that notebook (and in
tests/test_memory.py) with what PyTorch actually allocates; `SavedTensors` measures what autograd
keeps for the backward pass.
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


def predict_state_memory(params: int, recipe: str = "fp32", trainable: int | None = None) -> StateMemory:
    """Predicted weights + gradients + (master) + AdamW m and v, in bytes, for `params` parameters (notebook 11).

    `trainable` (notebook 12: LoRA, a frozen body) is how many of them are trained: every weight is held,
    but only trained ones have a gradient, a master copy and AdamW's m and v. None: all of them.
    """
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    trained = params if trainable is None else trainable
    if not 0 <= trained <= params:
        raise ValueError(f"trainable must be between 0 and params={params:,}, got {trained:,}.")
    return StateMemory(
        params, recipe, {k: v * (params if k == "weights" else trained) for k, v in RECIPES[recipe].items()}
    )


def measure_state_memory(model: Any, optimizer: Any) -> dict[str, int]:
    """Bytes actually held by a model's parameters, their gradients and the optimizer's state tensors (notebook 11)."""
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
    """Activation memory one transformer layer keeps for backward, without recomputation (notebook 11).

    Follows the count of Korthikanti et al. (2022), "Reducing Activation Recomputation in Large
    Transformer Models", in the course's letters (T tokens, B batch, C hidden, H heads): T*B*C*(34 + 5*H*T/C) bytes
    in 16-bit, i.e. 17 values per token and hidden
    unit from the linear layers, norms and GELU, plus 5 bytes per attention score (the softmax
    output and the dropped-out probabilities, 2 bytes each, and a 1-byte dropout mask). Scaled
    here by bytes_per_value/2 for other precisions.
    """
    per_layer_16bit = seq * batch * hidden * 34 + 5 * heads * seq * seq * batch
    return per_layer_16bit * bytes_per_value // 2


def flops_per_token(params: int, layers: int, hidden: int, seq: int, training: bool = True) -> float:
    """FLOPs per token: 2N forward (6N with backward) plus attention's 4*L*T*C forward (notebook 11).

    The attention term counts QK^T and attention-times-V, which the parameter count misses;
    it is small for short sequences and grows with length.
    """
    forward = 2 * params + 4 * layers * seq * hidden  # 2 matmuls of T x C per layer, 2 FLOPs per MAC
    return 3 * forward if training else forward


def mfu(tokens_per_second: float, flops_per_tok: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the hardware's peak (notebook 11)."""
    return tokens_per_second * flops_per_tok / peak_flops


# ---------------------------------------------------------------- measuring activations


# grad_fn types that only view or cast their single input: a tensor reached from a parameter through
# these alone is a copy of that parameter (e.g. autocast's bf16 weight), not an activation.
_VIEW_OR_CAST = {
    "ToCopyBackward0",
    "TBackward0",
    "ViewBackward0",
    "UnsafeViewBackward0",
    "TransposeBackward0",
    "PermuteBackward0",
    "ExpandBackward0",
    "AliasBackward0",
}


def _is_parameter_copy(tensor: Any) -> bool:
    fn = tensor.grad_fn
    if fn is None:
        return False
    while type(fn).__name__ in _VIEW_OR_CAST and fn.next_functions and fn.next_functions[0][0] is not None:
        fn = fn.next_functions[0][0]
    return type(fn).__name__ == "AccumulateGrad"


class SavedTensors:
    """Bytes autograd saves for the backward pass inside a `with` block: activations and parameter copies (notebook 11).

    Every tensor an operation saves for its backward passes through the `pack` hook of
    `torch.autograd.graph.saved_tensors_hooks`. We count each underlying storage once (a transpose or
    a view shares its base's storage) and skip the model's own parameters, which are in memory whether
    or not we train. Under autocast the 16-bit copies of the weight matrices are saved too; they are
    counted apart, as `weight_copies`, since they do not grow with batch size or sequence length.

        with SavedTensors(model) as saved:
            loss = model(**batch).loss
        saved.activations, saved.weight_copies  # bytes
    """

    def __init__(self, model: Any = None) -> None:
        params = model.parameters() if model is not None else ()
        self._skip = {p.untyped_storage().data_ptr() for p in params}
        self._kept: dict[int, Any] = {}  # pointer -> storage, held while counting so no address is reused
        self._hooks: Any = None
        self.activations = 0
        self.weight_copies = 0
        self.tensors = 0  # how many distinct storages were saved
        self.activations_by_dtype: dict[str, int] = {}  # e.g. {"float32": ..., "bfloat16": ...}

    @property
    def total(self) -> int:
        """Activations plus parameter copies, in bytes."""
        return self.activations + self.weight_copies

    def _pack(self, tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        pointer, nbytes = storage.data_ptr(), storage.nbytes()
        if nbytes == 0 or pointer in self._skip or pointer in self._kept:
            return tensor
        self._kept[pointer] = storage
        self.tensors += 1
        if _is_parameter_copy(tensor):
            self.weight_copies += nbytes
        else:
            self.activations += nbytes
            dtype = str(tensor.dtype).removeprefix("torch.")
            self.activations_by_dtype[dtype] = self.activations_by_dtype.get(dtype, 0) + nbytes
        return tensor

    def __enter__(self) -> SavedTensors:
        import torch

        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)
        self._kept.clear()  # the graph itself keeps what backward needs; we hold nothing after the block


# ---------------------------------------------------------------- FLOPs and time


def matmul_parameters(model: Any) -> int:
    """Weights that take part in a matrix product for every token: nn.Linear and GPT-2's Conv1D (notebook 11).

    This is the N of "6N FLOPs per token". Embedding tables are looked up, not multiplied, so they
    are left out, unless a layer reuses one as a matrix (GPT-2's LM head is tied to its token
    embedding and is counted here through the head's Linear module).
    """
    import torch

    total = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
            total += module.weight.numel()
    return total


# Dense (no 2:4 sparsity) 16-bit tensor-core peaks in FLOP/s, from NVIDIA's product datasheets.
GPU_PEAK_FLOPS: dict[str, float] = {
    "T4": 65e12,  # T4 datasheet: 65 TFLOPS mixed-precision FP16/FP32 (Turing has no bf16)
    "A100": 312e12,  # A100 datasheet: 312 TFLOPS BF16 tensor core (624 with sparsity)
    "H100 SXM": 989e12,  # H100 datasheet: 1,979 TFLOPS BF16 tensor core with sparsity, half of it dense
}


def epoch_seconds(
    n_examples: int, tokens_per_example: float, flops_per_tok: float, peak_flops: float, mfu: float
) -> float:
    """Predicted seconds for one training epoch: examples x tokens x FLOPs per token / (peak x MFU) (notebook 11)."""
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu is a fraction of the peak, 0 < mfu <= 1; got {mfu}.")
    if peak_flops <= 0:
        raise ValueError(f"peak_flops must be positive, got {peak_flops}.")
    return n_examples * tokens_per_example * flops_per_tok / (peak_flops * mfu)
