"""LoRA written out, and the frozen body: fine-tuning methods that train a few weights instead of all of them.

Introduced in notebook 12. A `LoRALinear` wraps a frozen `nn.Linear` (weight W of shape (out, in)) and adds
a rank-r update: y = x W^T + b + (alpha / r) * x A^T B^T, with A (r, in) random and B (out, r) zero, so the
wrapped model starts as exactly the base model. `apply_method` turns a classifier into what one method
trains ("full": everything; "lora": A and B of the target layers plus the head; "head": the head alone);
`merge_lora` folds every update into its base weight (W + (alpha / r) B A), which leaves a plain model that
`ftlearn.runfolder.save_finetuned` saves whole (`--merge`); by default a LoRA run saves only its adapter, in peft's
format (`ftlearn.adapter`, which hands peft the model `unwrap_lora` leaves: the base, the update dropped).
Importing this module imports torch (it *is* about torch modules); `ftlearn.finetune` imports it lazily.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ftlearn.recipes import LORA_TARGETS, METHODS

HEAD_NAMES = ("classifier", "score")  # a classifier's new head: BERT's `classifier`, GPT-2's `score`


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` plus a trainable low-rank update (alpha / r) * B A (notebook 12)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA's rank r must be at least 1, got {r}.")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)  # the pretrained weight and bias stay as they are
        self.r, self.alpha = r, alpha
        # the LoRA paper's scale, meant to spare retuning the learning rate when r changes with alpha fixed; rsLoRA
        # (Kalajdzievski 2023) argues the trained update then shrinks as r grows and uses alpha / sqrt(r). At
        # initialisation B = 0, so the update is zero whatever the scale.
        self.scaling = alpha / r
        # A: (r, in), random as nn.Linear initialises its weight (Kaiming uniform, a = sqrt(5)); B: (out, r), zero
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype))
        bound = 1 / math.sqrt(base.in_features)  # what kaiming_uniform_(a=sqrt(5)) gives for a fan-in of `in`
        with torch.no_grad():
            self.lora_A.uniform_(-bound, bound, generator=generator)

    def delta_weight(self) -> torch.Tensor:
        """The update to the base weight, (alpha / r) * B A, of shape (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x W^T + b + (alpha / r) * (x A^T) B^T: the rank-r path never builds the (out, in) update."""
        return self.base(x) + self.scaling * (
            (x @ self.lora_A.T) @ self.lora_B.T
        )  # (..., in) -> (..., r) -> (..., out)

    def merged(self) -> nn.Linear:
        """A plain nn.Linear whose weight is W + (alpha / r) B A: the same outputs, no extra matmul."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        out = out.to(device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def freeze_all_but_head(model: nn.Module, head_names: Sequence[str] = HEAD_NAMES) -> list[str]:
    """Freeze every parameter except the classification head's; returns the names left trainable (notebook 12)."""
    trainable = []
    for name, p in model.named_parameters():
        keep = name.split(".")[0] in head_names
        p.requires_grad_(keep)
        if keep:
            trainable.append(name)
    if not trainable:
        raise ValueError(f"no head found: the model has no top-level module named {' or '.join(head_names)}.")
    return trainable


def apply_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float = 16.0,
    targets: Sequence[str] = LORA_TARGETS,
    seed: int = 0,
    head_names: Sequence[str] = HEAD_NAMES,
) -> list[str]:
    """Freeze the model but its head, wrap every nn.Linear whose name ends in a target with `LoRALinear` (notebook 12).

    Returns the wrapped modules' names. A's random values come from a generator seeded with `seed`,
    in the order of `model.named_modules()`, so the same call gives the same A every time.
    """
    freeze_all_but_head(model, head_names)
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.split(".")[-1] in targets and name.split(".")[0] not in head_names
    ]
    if not names:
        raise ValueError(f"no nn.Linear named {', '.join(targets)} in the model: nothing for LoRA to adapt.")
    generator = torch.Generator().manual_seed(seed)
    for name in names:
        _set_module(model, name, LoRALinear(model.get_submodule(name), r, alpha, generator))
    return names


def merge_lora(model: nn.Module) -> int:
    """Replace every `LoRALinear` by its merged nn.Linear, in place; returns how many were merged (notebook 12)."""
    names = [name for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    for name in names:
        _set_module(model, name, model.get_submodule(name).merged())
    return len(names)


def lora_parameter_count(model: nn.Module) -> int:
    """r (in + out) for every LoRALinear: the parameters LoRA adds, derived from the shapes (notebook 12)."""
    return sum(m.r * (m.base.in_features + m.base.out_features) for m in model.modules() if isinstance(m, LoRALinear))


def apply_method(
    model: nn.Module, method: str, r: int = 8, alpha: float = 16.0, targets: Sequence[str] = LORA_TARGETS, seed: int = 0
) -> nn.Module:
    """Make `model` train what `method` trains: "full" (all), "lora" (A, B and the head), "head" (notebook 12)."""
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if method == "lora":
        apply_lora(model, r, alpha, targets, seed)
    elif method == "head":
        freeze_all_but_head(model)
    return model


def unwrap_lora(model: nn.Module) -> int:
    """Replace every `LoRALinear` by its frozen base nn.Linear, the update dropped (not merged); how many (notebook 12).

    What `ftlearn.adapter.save_adapter` hands to peft: the pretrained model, for peft to wrap with its own layers.
    """
    names = [name for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    for name in names:
        _set_module(model, name, model.get_submodule(name).base)
    return len(names)
