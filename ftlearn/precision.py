"""Mixed precision: which dtype the forward pass runs in, and whether gradients need loss scaling.

Introduced in notebook 07 (the training loop) and measured in notebook 11 (efficiency).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class Precision:
    """How the forward pass runs: autocast dtype (None = full fp32) and whether a GradScaler is needed."""

    dtype: Any  # torch.bfloat16, torch.float16 or None
    use_scaler: bool

    @property
    def name(self) -> str:
        """'bf16', 'fp16' or 'fp32'."""
        import torch

        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")


def choose_precision(device: torch.device, mode: str = "auto", bf16_supported: bool | None = None) -> Precision:
    """bf16 on GPUs that support it, else fp16 with loss scaling; fp32 on CPU unless asked (notebook 07).

    `mode` "bf16" or "fp16" is honoured on any device: PyTorch's CPU autocast and `GradScaler("cpu")` run both,
    which is how the test suite walks a T4's fp16 road and an A100's bf16 road without a GPU. `bf16_supported`
    says what the GPU can do (None: ask torch); tests inject it to cover each kind of GPU.
    """
    import torch

    if mode not in ("auto", "bf16", "fp16", "no"):
        raise ValueError(f"mixed_precision must be 'auto', 'bf16', 'fp16' or 'no', got {mode!r}.")
    if mode == "no" or (mode == "auto" and device.type != "cuda"):
        # On CPU, bf16 autocast exists but is slower than fp32 on most CPUs and changes the numbers:
        # left to choose, the course keeps CPU (and MPS) runs in plain fp32.
        return Precision(None, False)
    if mode == "auto":
        supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
        mode = "bf16" if supported else "fp16"  # a T4 or older: no bf16
    if mode == "bf16":
        return Precision(torch.bfloat16, False)  # bf16 has fp32's exponent range: no loss scaling needed
    return Precision(torch.float16, True)  # fp16 gradients underflow without scaling


def autocast(device: torch.device, precision: Precision) -> Any:
    """torch.autocast for `precision` on `device`, or a no-op context when it is full fp32 (notebook 07)."""
    import torch

    if precision.dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision.dtype)
