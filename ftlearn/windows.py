"""Whole-review prediction: a review longer than the model reads, as overlapping windows whose logits are combined.

Introduced in notebook 07 (error analysis: most of the BERT's mistakes are reviews longer than the tokens it
reads). Training keeps head+tail truncation (notebook 05); at prediction time a long review can instead be cut
into windows of `max_length` tokens, each read as an input of its own ([CLS] window [SEP]), whose starts are
`stride` text tokens apart (Hugging Face tokenizers' `stride` counts the overlap instead: budget - stride). The
windows' logits then give one answer for the review, in one of two ways:

    mean       the mean of the windows' logits: every passage votes, with the strength of its opinion.
    confident  the logits of the one window whose two classes are furthest apart. A review's verdict often
               sits in one passage ("a 7 out of 10, worth seeing") while the rest retells the plot, which the
               model reads as weakly positive or negative; averaged, many such windows can outvote the one
               that says what the reviewer thought, while the most confident window is that passage.

A review that fits in one window is read exactly as head+tail reads it (nothing is cut), so the two differ only
on long reviews; `window_effect` measures by how much, per length bucket, with a paired verdict and the time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

WINDOW_MODES = ("off", "mean", "confident")  # "off": head+tail truncation, as the model was trained
# `ftlearn predict`'s default, per task of the saved folder: where `window_effect` measured that windows help. For
# the course's BERT (notebook 07, cpu profile, 2026-12-02) the mean of the windows beat head+tail by +0.030 ± 0.013
# on the 468 test reviews, at 5.37x the prediction time. Not measured for GPT-2 or a distilled student: "off".
PREDICT_WINDOWS = {"bert": "mean"}


def default_windows(task: str | None) -> str:
    """How `ftlearn predict` reads long reviews when not told: `PREDICT_WINDOWS` for the task, else "off"."""
    return PREDICT_WINDOWS.get(task or "", "off")


class StrideError(ValueError):
    """A window spacing that cannot work for this model; the message says what range is allowed."""


def window_starts(n_tokens: int, budget: int, stride: int) -> list[int]:
    """Where each window of `budget` tokens starts, `stride` apart; the last ends at the text's end (notebook 07)."""
    if budget < 1:
        raise StrideError(f"a window needs room for at least one token, got budget={budget}.")
    if not 1 <= stride <= budget:
        raise StrideError(
            f"the stride must be between 1 and the {budget} text tokens of one window (or gaps would go unread), "
            f"got {stride}."
        )
    if n_tokens <= budget:
        return [0]
    # starts before the last full window, then the window that ends exactly at the end (no short tail window)
    return [*range(0, n_tokens - budget, stride), n_tokens - budget]


def encode_windows(
    tokenizer: Any, texts: Sequence[str], max_length: int, stride: int | None = None, clean: bool = True
) -> dict[str, list]:
    """Every text as windows of at most `max_length` ids with its special tokens; `owner` = the text of each window.

    `stride` defaults to half a window: every token away from a review's ends is read twice, once with the
    context before it and once with the context after it.
    """
    from ftlearn.tokenization import special_tokens, text_ids

    prefix, suffix, budget = special_tokens(tokenizer, max_length)
    stride = stride if stride is not None else max(1, budget // 2)
    input_ids, owner = [], []
    for i, ids in enumerate(text_ids(tokenizer, texts, clean)):
        for start in window_starts(len(ids), budget, stride):
            input_ids.append(prefix + ids[start : start + budget] + suffix)
            owner.append(i)
    return {"input_ids": input_ids, "attention_mask": [[1] * len(ids) for ids in input_ids], "owner": owner}


def aggregate_logits(logits: np.ndarray, owner: Sequence[int], n_texts: int, how: str = "mean") -> np.ndarray:
    """One row of logits (N, C) per text from its windows' logits (W, C): their mean, or the most confident one."""
    if how not in WINDOW_MODES[1:]:
        raise ValueError(f"Unknown aggregation {how!r}; choose one of {', '.join(WINDOW_MODES[1:])}.")
    logits, owner = np.asarray(logits, dtype=np.float64), np.asarray(owner)
    if len(logits) != len(owner):
        raise ValueError(f"{len(logits)} rows of logits but {len(owner)} owners.")
    if n_texts and (len(owner) == 0 or set(np.unique(owner)) != set(range(n_texts))):
        raise ValueError(f"every one of the {n_texts} texts needs at least one window.")
    out = np.zeros((n_texts, logits.shape[1]))
    if how == "mean":
        np.add.at(out, owner, logits)
        return out / np.bincount(owner, minlength=n_texts)[:, None]
    ordered = np.sort(logits, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]  # how far the top class is ahead of the next one
    for i in range(n_texts):
        mine = np.flatnonzero(owner == i)
        out[i] = logits[mine[np.argmax(margin[mine])]]
    return out


def window_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    stride: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The logits (W, C) of every window of every text, and the text each window belongs to (W,) (notebook 07)."""
    from ftlearn.evaluation import encoded_logits

    enc = encode_windows(tokenizer, texts, max_length, stride)
    return encoded_logits(model, tokenizer, enc, batch_size, progress), np.asarray(enc["owner"], dtype=np.int64)


def predict_windows(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    how: str = "mean",
    stride: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> np.ndarray:
    """Logits (N, C) of whole texts: every window read, their logits combined by `how` (notebook 07)."""
    logits, owner = window_logits(model, tokenizer, texts, max_length, stride, batch_size, progress)
    return aggregate_logits(logits, owner, len(texts), how)


@dataclass
class WindowEffect:
    """What reading whole reviews changed: accuracy per length bucket against head+tail, and the time it cost."""

    table: pd.DataFrame  # one row per length bucket, then "all"
    truncation: str  # what the model reads without windows (head+tail for the course's BERT)
    max_length: int
    stride: int
    seconds_head_tail: float  # predicting every text with its truncation (head+tail), tokenizing included
    seconds_windows: float  # predicting every window of every text (both aggregations share them)
    n_windows: int
    n_texts: int

    def __str__(self) -> str:
        """The table, then one line on the time."""
        extra = self.seconds_windows / self.seconds_head_tail if self.seconds_head_tail else float("nan")
        return (
            f"{self.table.to_string(index=False)}\n"
            f"windows of {self.max_length} tokens, starts {self.stride} text tokens apart: {self.n_windows} windows "
            f"for {self.n_texts} reviews ({self.n_windows / max(1, self.n_texts):.2f} per review); prediction took "
            f"{self.seconds_windows:.1f} s against {self.seconds_head_tail:.1f} s for {self.truncation} ({extra:.2f}x)"
        )


def _bucket_names(max_length: int, edges: Sequence[float]) -> list[str]:
    bounds = [0, *[round(e * max_length) for e in edges]]
    names = [f"{lo + 1}-{hi} tokens" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    return [*names, f"over {bounds[-1]} tokens"]


def window_effect(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    labels: Sequence[int],
    settings: dict,
    stride: int | None = None,
    batch_size: int = 32,
    edges: Sequence[float] = (1, 2, 4),
) -> WindowEffect:
    """Accuracy of whole-review windows (mean, confident) against head+tail per length bucket, paired (notebook 07).

    `settings` are the model's tokenization (`recipe.preprocess()`, or `load_finetuned`'s third value). Buckets
    count a review's tokens with its special tokens ([CLS], [SEP]), as lesson 07 does, in multiples `edges` of
    `max_length`, so the first bucket is the reviews read whole either way (identical answers). Each row gives
    head+tail's accuracy, each aggregation's, and the paired difference (aggregation minus head+tail) with its
    standard error and 2-SE verdict (`ftlearn.metrics.paired_accuracy_difference`).
    """
    import pandas as pd

    from ftlearn.evaluation import encoded_logits
    from ftlearn.metrics import paired_accuracy_difference
    from ftlearn.tokenization import encode_texts, special_tokens, text_ids

    texts, labels = list(texts), np.asarray(labels, dtype=np.int64)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels.")
    max_length = settings["max_length"]
    prefix, suffix, budget = special_tokens(tokenizer, max_length)
    stride = stride if stride is not None else max(1, budget // 2)

    base = settings.get("truncation", "head")  # what the model reads when it is not given windows
    start = time.perf_counter()
    enc = encode_texts(tokenizer, texts, max_length, base, settings.get("head_fraction", 0.25))
    head_tail = encoded_logits(model, tokenizer, enc, batch_size).argmax(axis=1)
    seconds_head_tail = time.perf_counter() - start
    start = time.perf_counter()
    logits, owner = window_logits(model, tokenizer, texts, max_length, stride, batch_size)
    seconds_windows = time.perf_counter() - start
    preds = {how: aggregate_logits(logits, owner, len(texts), how).argmax(axis=1) for how in WINDOW_MODES[1:]}

    lengths = np.array([len(prefix) + len(ids) + len(suffix) for ids in text_ids(tokenizer, texts)])
    bucket = np.searchsorted([round(e * max_length) for e in edges], lengths, side="left")  # 0: fits in one input
    names = _bucket_names(max_length, edges)
    rows = []
    for b, name in [*enumerate(names), (None, "all")]:
        mask = np.ones(len(texts), dtype=bool) if b is None else bucket == b
        if not mask.any():
            continue
        right = head_tail[mask] == labels[mask]
        row: dict[str, Any] = {"review length": name, "n": int(mask.sum()), base: right.mean()}
        for how, pred in preds.items():
            row[how] = (pred[mask] == labels[mask]).mean()
            if mask.sum() >= 2:
                paired = paired_accuracy_difference(labels[mask], pred[mask], head_tail[mask])
                row[f"{how} - {base}"] = f"{paired['difference']:+.3f} ± {paired['se']:.3f}"
                verdict = paired["verdict"].replace("A better", f"{how} better")
                row[f"{how} verdict"] = verdict.replace("B better", f"{base} better")
        rows.append(row)
    table = pd.DataFrame(rows).round(3)
    return WindowEffect(table, base, max_length, stride, seconds_head_tail, seconds_windows, len(owner), len(texts))
