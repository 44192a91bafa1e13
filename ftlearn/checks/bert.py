"""Checks for the exercises of notebooks 05 (tokenization and data) and 07 (BERT fine-tuning loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ftlearn.checks.core import CheckResult, Mistake, check, close, exercise

# ---------------------------------------------------------------- notebook 05


def _features(lengths: list[int], seed: int, labels: bool = True) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        ids = [101] + rng.integers(1000, 5000, n - 2).tolist() + [102]
        f = {"input_ids": ids, "attention_mask": [1] * n}
        if labels:
            f["label"] = int(rng.integers(0, 2))
        out.append(f)
    return out


_PAD_CASES = [(_features([5, 9, 3], 0), 0), (_features([4, 4], 1), 0), (_features([7, 2, 6, 3], 2), 7)]


def _pad_ref(features, pad_id):
    from ftlearn.tokenization import pad_collate

    return pad_collate(features, pad_id)


def _pad_fixed(features, pad_id, length=16):
    import torch

    ids = torch.full((len(features), length), pad_id)
    mask = torch.zeros((len(features), length), dtype=torch.long)
    for i, f in enumerate(features):
        ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
        mask[i, : len(f["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["label"] for f in features])}


def _pad_mask_ones(features, pad_id):
    batch = _pad_ref(features, pad_id)
    batch["attention_mask"] = batch["attention_mask"].clone().fill_(1)
    return batch


def _pad_no_labels(features, pad_id):
    batch = _pad_ref(features, pad_id)
    batch.pop("labels")
    return batch


def _pad_label_key(features, pad_id):
    batch = _pad_ref(features, pad_id)
    batch["label"] = batch.pop("labels")
    return batch


def _pad_zero(features, pad_id):
    return _pad_ref(features, 0)


def _batch_equal(got: Any, want: Any) -> bool:
    return (
        isinstance(got, dict)
        and set(got) == set(want)
        and all(
            hasattr(got[k], "shape") and tuple(got[k].shape) == tuple(want[k].shape) and close(got[k], want[k])
            for k in want
        )
    )


@exercise()
def check_dynamic_pad(fn: Callable) -> CheckResult:
    """Check `fn(features, pad_id)`: pad to the longest example, mask, labels → dict of tensors (notebook 05)."""
    return check(
        "dynamic_pad",
        fn,
        _pad_ref,
        _PAD_CASES,
        compare=_batch_equal,
        mistakes=[
            Mistake(
                _pad_fixed,
                "every row has length 16: pad to the longest example *in this batch*, not to a fixed length.",
            ),
            Mistake(_pad_mask_ones, "the attention mask must be 0 on padding positions, 1 on real tokens."),
            Mistake(
                _pad_no_labels,
                "the batch needs `labels` (a tensor of each example's `label`): the model computes its loss from it.",
                kind="missing",
            ),
            Mistake(
                _pad_label_key,
                "name the key `labels` (plural): that is the argument the model's forward takes.",
                kind="convention",
            ),
            Mistake(_pad_zero, "pad with the `pad_id` you are given, not always 0.", kind="convention"),
        ],
        hint=(
            "Expected a dict with `input_ids` and `attention_mask` of shape (batch, longest) and `labels` of shape "
            "(batch,)."
        ),
    )


_HT_CASES = [
    (list(range(20)), 8, 2),
    (list(range(5)), 8, 2),
    (list(range(30)), 10, 0),
    (list(range(12)), 6, 6),
    (list(range(9)), 9, 3),
]


def _head_tail_ref(ids, budget, n_head):
    ids = list(ids)
    if len(ids) <= budget:
        return ids
    return ids[:n_head] + ids[len(ids) - (budget - n_head) :]


@exercise()
def check_head_tail(fn: Callable) -> CheckResult:
    """Check `fn(ids, budget, n_head)`: keep the first n_head and the last budget - n_head ids (notebook 05)."""
    return check(
        "head_tail",
        fn,
        _head_tail_ref,
        _HT_CASES,
        compare=lambda got, want: list(got) == list(want),
        mistakes=[
            Mistake(
                lambda ids, b, h: list(ids)[:h] + list(ids)[-(b - h) :],
                "`ids[-0:]` is the whole list: when the tail length is 0, `-(budget - n_head)` breaks; use "
                "`ids[len(ids) - n_tail:]`.",
                kind="edge",
            ),
            Mistake(
                lambda ids, b, h: list(ids)[:h] + list(ids)[len(ids) - (b - h) - 1 :],
                "off by one: the tail has one id too many.",
                kind="off_by_one",
            ),
            Mistake(
                lambda ids, b, h: list(ids)[:b],
                "that is head-only truncation; keep the last `budget - n_head` ids too.",
                kind="missing",
            ),
            Mistake(
                lambda ids, b, h: list(ids)[:h] + list(ids)[len(ids) - (b - h) :],
                "a review that already fits must come back unchanged (it was shortened or duplicated).",
                kind="edge",
            ),
        ],
    )


def _waste_ref(lengths, batch_size):
    lengths = list(lengths)
    slots = sum(
        len(lengths[i : i + batch_size]) * max(lengths[i : i + batch_size]) for i in range(0, len(lengths), batch_size)
    )
    return 1 - sum(lengths) / slots


_WASTE_CASES = [([3, 5, 2, 8, 8, 1, 4], 2), ([10, 10, 10], 2), ([1, 9, 2, 8, 3], 3), ([4], 4)]


@exercise()
def check_padding_waste(fn: Callable) -> CheckResult:
    """Check `fn(lengths, batch_size)`: the share of token slots that dynamic padding fills with pads (notebook 05)."""
    return check(
        "padding_waste",
        fn,
        _waste_ref,
        _WASTE_CASES,
        mistakes=[
            Mistake(
                lambda L, b: 1 - sum(L) / (len(L) * max(L)),
                "that pads every example to the longest of *all*: pad each batch to its own longest.",
                kind="formula",
            ),
            Mistake(
                lambda L, b: sum(L) / sum(len(L[i : i + b]) * max(L[i : i + b]) for i in range(0, len(L), b)),
                "that is the fraction of real tokens; the waste is 1 minus it.",
                kind="formula",
            ),
            Mistake(
                lambda L, b: 1 - sum(L) / sum(b * max(L[i : i + b]) for i in range(0, len(L), b)),
                "the last batch may be smaller than batch_size: count the examples it really has.",
                kind="edge",
            ),
        ],
    )


# ---------------------------------------------------------------- notebook 07

_CM_CASES = [
    ([0, 1, 1, 0, 1, 0, 0, 1], [0, 1, 0, 0, 1, 1, 0, 1]),
    ([1, 1, 1, 1], [0, 1, 0, 1]),
    ([0, 0, 1], [1, 1, 1]),
]


def _cm_ref(y_true, y_pred):
    from ftlearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred)


@exercise()
def check_confusion_matrix(fn: Callable) -> CheckResult:
    """Check `fn(y_true, y_pred)`: the 2x2 matrix [[TN, FP], [FN, TP]] (notebook 07)."""
    return check(
        "confusion_matrix",
        fn,
        _cm_ref,
        _CM_CASES,
        mistakes=[
            Mistake(
                lambda t, p: _cm_ref(t, p).T,
                "rows are the *true* class and columns the *predicted* one; yours is transposed.",
                kind="convention",
            ),
            Mistake(
                lambda t, p: _cm_ref(t, p)[::-1, ::-1],
                "class 0 comes first: the top-left cell is TN (true 0, predicted 0).",
                kind="convention",
            ),
        ],
    )


_MFC_CASES = [(np.array([[50, 10], [5, 35]]),), (np.array([[3, 0], [4, 0]]),), (np.array([[0, 2], [1, 7]]),)]


def _mfc_ref(cm):
    from ftlearn.metrics import metrics_from_confusion

    return metrics_from_confusion(cm)


def _mfc_transposed(cm):
    return _mfc_ref(np.asarray(cm).T)


def _mfc_f1_arith(cm):
    out = _mfc_ref(cm)
    out["f1"] = (out["precision"] + out["recall"]) / 2
    return out


@exercise()
def check_metrics_from_confusion(fn: Callable) -> CheckResult:
    """Check `fn(cm)`: dict of accuracy, precision, recall, f1 from [[TN, FP], [FN, TP]], 0 for 0/0 (notebook 07)."""
    return check(
        "metrics_from_confusion",
        fn,
        _mfc_ref,
        _MFC_CASES,
        mistakes=[
            Mistake(
                _mfc_transposed,
                "precision and recall are swapped: precision = TP / (TP + FP) divides by the *predicted* positives "
                "(column 1).",
                kind="formula",
            ),
            Mistake(
                _mfc_f1_arith,
                "F1 is the *harmonic* mean 2PR / (P + R) (= 2TP / (2TP + FP + FN)), not the arithmetic mean.",
                kind="formula",
            ),
        ],
        hint=(
            "When a denominator is 0 (no positive predictions, say), return 0 for that metric, as scikit-learn's "
            "zero_division=0 does."
        ),
    )


def _tiny_setup(seed: int):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertForSequenceClassification(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(seed)
    batches = [
        {
            "input_ids": torch.randint(5, 50, (4, 6), generator=g),
            "attention_mask": torch.ones(4, 6, dtype=torch.long),
            "labels": torch.randint(0, 2, (4,), generator=g),
        }
        for _ in range(3)
    ]
    return model, optimizer, batches


def _run_steps(step_fn: Callable, seed: int, max_norm: float):
    """Three calls of a learner's step on a tiny BERT: the losses returned and the final weights."""
    import torch

    model, optimizer, batches = _tiny_setup(seed)
    losses = [float(step_fn(model, batch, optimizer, max_norm)) for batch in batches]
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    return {"losses": losses, "weights": weights}


def _step_ref(model, batch, optimizer, max_norm):
    import torch

    loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _step_no_zero(model, batch, optimizer, max_norm):
    import torch

    loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


def _step_no_clip(model, batch, optimizer, max_norm):
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _step_clip_after(model, batch, optimizer, max_norm):
    import torch

    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.zero_grad()
    return loss.item()


def _step_zero_before_step(model, batch, optimizer, max_norm):
    loss = model(**batch).loss
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


@exercise(answer=_step_ref)
def check_train_step(fn: Callable) -> CheckResult:
    """Check `fn(model, batch, optimizer, max_norm)`: forward, backward, clip, step, zero_grad, loss (notebook 07)."""

    def runner(step_fn):
        return lambda seed, max_norm: _run_steps(step_fn, seed, max_norm)

    return check(
        "train_step",
        runner(fn),
        runner(_step_ref),
        [(0, 0.05), (1, 0.05), (2, 100.0)],
        compare=lambda got, want: (
            close(got["losses"], want["losses"], rtol=1e-5)
            and close(got["weights"], want["weights"], rtol=1e-5, atol=1e-7)
        ),
        mistakes=[
            Mistake(
                runner(_step_no_zero),
                "gradients pile up from one call to the next: call `optimizer.zero_grad()` after the step.",
                kind="missing",
            ),
            Mistake(
                runner(_step_zero_before_step),
                "`zero_grad()` before `step()` throws the gradient away: the step then changes nothing.",
                kind="order",
            ),
            Mistake(
                runner(_step_clip_after),
                "clip *before* `optimizer.step()`: clipping afterwards changes nothing that step used.",
                kind="order",
            ),
            Mistake(
                runner(_step_no_clip),
                "clip the gradient norm with `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)` before "
                "stepping.",
                kind="missing",
            ),
        ],
        hint=(
            "Five steps, in the lesson's order: forward (a batch with labels gives the loss), backward, clip, step, "
            "clear the gradients; return the loss as a Python number."
        ),
    )


def _mean_pool_cases() -> list[tuple]:
    import torch

    g = torch.Generator().manual_seed(0)
    # (mask, H): in the first case B == H, so dividing by mask.sum(dim=1) without keepdim runs (and is wrong)
    # instead of failing to broadcast, and its hint can be shown
    cases = [
        (torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]]), 3),  # padded, full, mostly padding
        (torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]]), 5),
    ]
    return [(torch.randn(m.shape[0], m.shape[1], h, generator=g), m) for m, h in cases]


def _mean_pool_ref(hidden, mask):
    from ftlearn.pooling import mean_pool

    return mean_pool(hidden, mask)


def _mean_pool_with_padding(hidden, mask):
    return hidden.mean(dim=1)


def _mean_pool_over_length(hidden, mask):
    return (hidden * mask.unsqueeze(-1)).sum(dim=1) / hidden.shape[1]


def _mean_pool_sum(hidden, mask):
    return (hidden * mask.unsqueeze(-1)).sum(dim=1)


def _mean_pool_count_without_keepdim(hidden, mask):
    return (hidden * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1)  # (B, H) / (B,): lines up with H, not B


def _mean_pool_over_batch_total(hidden, mask):
    return (hidden * mask.unsqueeze(-1)).sum(dim=1) / mask.sum()


@exercise()
def check_mean_pool(fn: Callable) -> CheckResult:
    """Check `fn(hidden, mask)`: the mean of each row's real-token vectors, (B, T, H) → (B, H) (notebook 07)."""
    return check(
        "mean_pool",
        fn,
        _mean_pool_ref,
        _mean_pool_cases(),
        compare=lambda got, want: close(got, want, rtol=1e-5, atol=1e-6),
        mistakes=[
            Mistake(
                _mean_pool_with_padding,
                "padding vectors are in your average: multiply by the mask before summing, and divide by the number of "
                "real tokens.",
                kind="missing",
            ),
            Mistake(
                _mean_pool_over_length,
                "divide by each row's number of real tokens, mask.sum(dim=1, keepdim=True) (shape (B, 1)), not by the "
                "padded length T.",
                kind="scale",
            ),
            Mistake(
                _mean_pool_sum,
                "that is the masked sum; divide it by each row's number of real tokens to get the mean.",
                kind="missing",
            ),
            Mistake(
                _mean_pool_count_without_keepdim,
                "mask.sum(dim=1) has shape (B,): against a (B, H) sum it lines up with H, not with the rows. Use "
                "mask.sum(dim=1, keepdim=True), shape (B, 1).",
                kind="axis",
            ),
            Mistake(
                _mean_pool_over_batch_total,
                "mask.sum() counts the real tokens of the whole batch: divide each row by its own count, "
                "mask.sum(dim=1, keepdim=True).",
                kind="axis",
            ),
        ],
        hint=(
            "mask is (B, T) and hidden (B, T, H): give the mask a trailing axis so it broadcasts over H, sum the "
            "masked vectors over the tokens, and divide each row by its own count of real tokens, kept as (B, 1)."
        ),
    )
