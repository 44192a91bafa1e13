"""Checks for the cost exercises of solutions/11_efficient_full_finetuning: bytes, activations, accumulation, time.

Each reference is the library's own function (`ftlearn.memory`, `ftlearn.train.count_targets`), so the
exercise and the lesson compute the same numbers; each `Mistake` is a slip of the kind the lesson warns about.
"""

from __future__ import annotations

from collections.abc import Callable

from ftlearn.checks.core import CheckResult, Mistake, check, close, exercise

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
MOMENTS = {"sgd": 0, "momentum": 1, "adamw": 2}  # running averages per parameter each optimizer keeps


# ---- bytes per parameter ------------------------------------------------------------------------


def _bytes_ref(weights: str, master: bool, optimizer: str, state: str) -> int:
    # weights + gradients (in the weights' dtype) + an fp32 master copy + the optimizer's averages
    w = DTYPE_BYTES[weights]
    return w + w + (4 if master else 0) + MOMENTS[optimizer] * DTYPE_BYTES[state]


# the four recipes of ftlearn.memory.RECIPES, then other optimizers and dtypes
_BYTES_CASES = [
    ("fp32", False, "adamw", "fp32"),
    ("bf16", True, "adamw", "fp32"),
    ("bf16", False, "adamw", "bf16"),
    ("fp32", False, "momentum", "fp32"),
    ("fp16", True, "sgd", "fp32"),
    ("bf16", False, "momentum", "bf16"),
]


_BYTES_KINDS = {
    "weights only": "missing",
    "gradients": "missing",
    "one moment": "missing",
    "master in weights dtype": "scale",
    "fp32 gradients": "scale",
    "state in weights dtype": "convention",
}


def _on_every_case(fn: Callable) -> Callable[[], list]:
    """fn's answers on all cases at once: a mistake is recognised only when it explains every one of them."""
    return lambda: [fn(*case) for case in _BYTES_CASES]


def _bytes_mistake(part: str) -> Callable:
    def wrong(w: str, master: bool, opt: str, state: str) -> int:
        total = _bytes_ref(w, master, opt, state)
        if part == "gradients":
            return total - DTYPE_BYTES[w]
        if part == "one moment":
            return total - (DTYPE_BYTES[state] if opt == "adamw" else 0)
        if part == "master in weights dtype":
            return total - 4 + DTYPE_BYTES[w] if master else total
        if part == "fp32 gradients":
            return total - DTYPE_BYTES[w] + 4
        if part == "state in weights dtype":
            return total + MOMENTS[opt] * (DTYPE_BYTES[w] - DTYPE_BYTES[state])
        return DTYPE_BYTES[w]  # "weights only"

    return wrong


@exercise(answer=_bytes_ref)
def check_bytes_per_param(fn: Callable) -> CheckResult:
    """Check `fn(weights, master, optimizer, state)` -> training-state bytes per parameter (notebook 11, section 1)."""
    hints = {  # the known slip -> its hint (its kind is in _BYTES_KINDS)
        "weights only": "that is inference: training also keeps a gradient per weight and the optimizer's running "
        "averages.",
        "gradients": "the gradients are missing: `backward` writes one value per parameter, in the weights' dtype.",
        "one moment": "AdamW keeps *two* running averages per parameter, m and v (lesson 04).",
        "master in weights dtype": "the master copy exists to keep full precision: it is fp32, 4 bytes.",
        "fp32 gradients": "the gradients have the weights' dtype (2 bytes for bf16/fp16 weights).",
        "state in weights dtype": "the optimizer's averages are stored in `state`'s dtype, which need not be the "
        "weights' dtype.",
    }
    return check(
        "bytes_per_param",
        _on_every_case(fn),
        _on_every_case(_bytes_ref),
        [()],
        mistakes=[
            Mistake(_on_every_case(_bytes_mistake(part)), hint, kind=_BYTES_KINDS[part]) for part, hint in hints.items()
        ],
        hint="List everything training keeps for each parameter besides the weight itself, with the dtype of each "
        "piece, then add up their bytes. The four recipes of notebook 11 are cases to try by hand.",
    )


# ---- activation memory --------------------------------------------------------------------------


def _activation_ref(batch: int, seq: int, hidden: int, heads: int, bytes_per_value: int) -> int:
    from ftlearn.memory import activation_bytes_per_layer

    return activation_bytes_per_layer(batch, seq, hidden, heads, bytes_per_value)


_ACT_CASES = [(2, 128, 384, 12, 2), (4, 64, 768, 12, 4), (1, 512, 256, 4, 4), (8, 32, 64, 2, 2)]


@exercise()
def check_activation_bytes(fn: Callable) -> CheckResult:
    """Check `fn(batch, seq, hidden, heads, bytes_per_value)` -> bytes one layer saves (notebook 11, section 2)."""

    def scaled(per_16bit: Callable) -> Callable:
        return lambda b, s, h, a, v: per_16bit(b, s, h, a) * v // 2

    return check(
        "activation_bytes",
        fn,
        _activation_ref,
        _ACT_CASES,
        compare=lambda got, want: close(got, want, rtol=1e-9),
        mistakes=[
            Mistake(
                scaled(lambda b, s, h, a: 34 * s * b * h),
                "only the 34·TBC part: the attention scores add 5·H·T²·B, which grows with the *square* of the length.",
                kind="missing",
            ),
            Mistake(
                scaled(lambda b, s, h, a: 34 * s * b * h + 5 * a * s * b),
                "the attention term has one score per (head, query, key) pair: H·T·T per example, so T², not T.",
                kind="formula",
            ),
            Mistake(
                scaled(lambda b, s, h, a: 34 * s * b * h + 5 * s * s * b),
                "every head has its own T × T matrix of scores: multiply the attention term by the number of heads H.",
                kind="missing",
            ),
            Mistake(
                scaled(lambda b, s, h, a: 34 * s * b * h + 5 * h * s * s * b),
                "the score matrices come one per *head* (H), not one per hidden unit (C).",
                kind="formula",
            ),
            Mistake(
                lambda b, s, h, a, v: 34 * s * b * h + 5 * a * s * s * b,
                "the formula counts 16-bit values (2 bytes): scale it by bytes_per_value / 2 for other precisions.",
                kind="scale",
            ),
            Mistake(
                lambda b, s, h, a, v: (34 * s * b * h + 5 * a * s * s * b) * v,
                "the 34 and 5 already include the 2 bytes of a 16-bit value: scale by bytes_per_value / 2, not by "
                "bytes_per_value.",
                kind="scale",
            ),
        ],
        hint="Notebook 11's per-layer count has two parts: one that grows with the sequence length s and one, from "
        "attention, that grows faster. It counts 16-bit values: convert to bytes_per_value at the end.",
    )


# ---- token-weighted gradient accumulation -------------------------------------------------------


def _weights_ref(labels_list: list) -> list[float]:
    from ftlearn.train import count_targets

    counts = [count_targets({"labels": labels}) for labels in labels_list]
    return [c / sum(counts) for c in counts]


def _accum_cases() -> list[tuple]:
    import torch

    def padded(lengths: list[int], width: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        labels = torch.randint(5, 50, (len(lengths), width), generator=g)
        for row, n in enumerate(lengths):
            labels[row, n:] = -100  # right padding, left out of the loss
        return labels

    return [
        ([padded([12, 10, 9], 12, 0), padded([4, 3], 4, 1)],),  # three long reviews, two short ones
        ([padded([6, 6, 2], 6, 2), padded([5], 5, 3), padded([3, 3], 3, 4)],),  # unequal micro-batches
    ]


@exercise()
def check_accumulation_weights(fn: Callable) -> CheckResult:
    """Check `fn(labels_list)` -> each micro-batch's weight n_j / n, n counting predicted tokens (notebook 11)."""

    def counts(labels_list: list, count: Callable) -> list[float]:
        n = [float(count(labels)) for labels in labels_list]
        return [c / sum(n) for c in n]

    return check(
        "accumulation_weights",
        fn,
        _weights_ref,
        _accum_cases(),
        mistakes=[
            Mistake(
                lambda ls: [1 / len(ls)] * len(ls),
                "1/k gives every micro-batch the same weight, so a token of a short micro-batch counts for more than "
                "a token of a long one: the token-mean trap. Weight each by its share of the predicted tokens.",
                kind="formula",
            ),
            Mistake(
                lambda ls: counts(ls, lambda lb: (lb != -100).sum()),
                "position 0 is never predicted (nothing comes before it): count the labels after the shift, "
                "labels[:, 1:].",
                kind="off_by_one",
            ),
            Mistake(
                lambda ls: counts(ls, lambda lb: lb[:, 1:].numel()),
                "the -100 positions are padding, left out of the loss: count only the labels that are not -100.",
                kind="missing",
            ),
            Mistake(
                lambda ls: counts(ls, lambda lb: lb.shape[0]),
                "that counts reviews; a causal LM's loss is a mean over *tokens*, so count predicted tokens.",
                kind="formula",
            ),
            Mistake(
                lambda ls: [float((lb[:, 1:] != -100).sum()) for lb in ls],
                "those are the counts n_j; the weights are n_j / n, which add up to 1.",
                kind="scale",
            ),
        ],
        hint="Weight each micro-batch by its share of the tokens the loss really predicts: which positions have no "
        "target, and which has no token before it?",
    )


# ---- the epoch-time estimator -------------------------------------------------------------------


def _epoch_ref(n_examples, tokens_per_example, n_matmul, layers, hidden, seq, peak_flops, mfu) -> float:
    from ftlearn.memory import epoch_seconds, flops_per_token

    return epoch_seconds(
        n_examples, tokens_per_example, flops_per_token(n_matmul, layers, hidden, seq), peak_flops, mfu
    )


# bert-base-like on an A100 at 40%, a small model on a CPU's measured peak, a long-sequence case
_EPOCH_CASES = [
    (25_000, 261.0, 85_000_000, 12, 768, 261, 312e12, 0.4),
    (2_000, 128.0, 10_765_056, 6, 384, 128, 1.8e11, 0.6),
    (1_000, 2048.0, 1_000_000, 4, 256, 2048, 65e12, 0.25),
]


@exercise()
def check_epoch_seconds(fn: Callable) -> CheckResult:
    """Check `fn(n_examples, tokens_per_example, n_matmul, layers, hidden, seq, peak_flops, mfu)` -> s (notebook 11)."""

    def with_flops(per_token: Callable) -> Callable:
        return lambda n, t, N, L, h, s, peak, u: n * t * per_token(N, L, h, s) / (peak * u)

    return check(
        "epoch_seconds",
        fn,
        _epoch_ref,
        _EPOCH_CASES,
        compare=lambda got, want: close(got, want, rtol=1e-6),
        mistakes=[
            Mistake(
                with_flops(lambda N, L, h, s: 2 * N + 4 * L * s * h),
                "that is the forward pass only: training adds a backward pass of twice its cost, 3 × (2N + 4Lsh).",
                kind="missing",
            ),
            Mistake(
                with_flops(lambda N, L, h, s: 6 * N),
                "6N leaves out attention's two weightless products, 4·L·s·h per token forward (× 3 for training): "
                "small for short sequences, not for long ones.",
                kind="missing",
            ),
            Mistake(
                lambda n, t, N, L, h, s, peak, u: _epoch_ref(n, t, N, L, h, s, peak, u) * u * u,
                "the hardware delivers peak × MFU FLOP/s: divide by MFU (the time grows when MFU is low), do not "
                "multiply.",
                kind="scale",
            ),
            Mistake(
                lambda n, t, N, L, h, s, peak, u: _epoch_ref(n, t, N, L, h, s, peak, u) * u,
                "the MFU is missing: real runs reach only a fraction of the peak, so divide by peak × MFU.",
                kind="missing",
            ),
            Mistake(
                lambda n, t, N, L, h, s, peak, u: _epoch_ref(n, t, N, L, h, s, peak, u) / 60,
                "that is minutes; return seconds.",
                kind="convention",
            ),
            Mistake(
                with_flops(lambda N, L, h, s: 3 * (2 * N + 4 * L * s * s * h)),
                "attention costs 4·s·h FLOPs per token and layer (each token's query meets s keys of width h), not "
                "4·s²·h: the s² appears once you multiply by the s tokens of a sequence.",
                kind="formula",
            ),
        ],
        hint="Count the FLOPs of one training token (forward and backward; the weights' products and attention's), "
        "multiply by the tokens of an epoch, and divide by the FLOP/s the hardware really delivers.",
    )
