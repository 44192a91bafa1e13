"""Evaluation and prediction: logits of a loader, metrics on a labelled one, outputs back in dataset order.

Introduced in notebook 07; `fit` evaluates with `evaluate`, and `ftlearn predict` goes through `predict_logits`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ftlearn.metrics import classification_report
from ftlearn.precision import autocast, choose_precision

if TYPE_CHECKING:  # pragma: no cover
    import torch


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors moved to `device` (without waiting, from pinned memory to a GPU)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def predict_logits(
    model: torch.nn.Module, loader: Iterable[dict], device: torch.device | None = None, shard: bool | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (N, C) of every batch in order, and the labels (N,) when batches carry `labels` (notebook 07).

    Under DDP (notebook 11; `shard=None` means "when a process group is running") each rank predicts
    every N-th batch and the pieces are gathered back into the loader's order, so every rank gets
    the whole result: all ranks must call it together. `shard=False` predicts everything here.
    """
    import torch

    from ftlearn import distributed

    if device is not None:
        device = torch.device(device)
        model.to(device)  # a model fresh from from_pretrained is on the CPU; predict where asked
    else:
        device = next(model.parameters()).device
    precision = choose_precision(device)
    split = distributed.is_distributed() if shard is None else shard
    was_training = model.training
    model.eval()  # dropout off: predictions are deterministic
    logits, labels = [], []
    with torch.no_grad(), autocast(device, precision):
        for batch in distributed.shard_iter(loader) if split else loader:
            batch = to_device(batch, device)
            y = batch.pop("labels", None)
            logits.append(model(**batch).logits.float().cpu())
            if y is not None:
                labels.append(y.cpu())
    model.train(was_training)
    if split:
        # every rank receives every rank's list of per-batch tensors; interleave restores the batch order
        logits = distributed.interleave(distributed.all_gather_objects(logits))
        labels = distributed.interleave(distributed.all_gather_objects(labels))
    return torch.cat(logits).numpy(), (torch.cat(labels).numpy() if labels else None)


def encoded_logits(
    model: torch.nn.Module, tokenizer: Any, enc: dict, batch_size: int = 32, progress: bool = False
) -> np.ndarray:
    """Logits (N, C) of encoded texts (`input_ids`, `attention_mask` lists), in their order (notebook 07).

    Batches are padded to their longest member by the tokenizer's collator; `progress` shows a bar.
    """
    from torch.utils.data import DataLoader

    from ftlearn.tokenization import make_collator

    pairs = zip(enc["input_ids"], enc["attention_mask"], strict=True)
    features = [{"input_ids": i, "attention_mask": m} for i, m in pairs]
    # unshuffled: the outputs come back in the input order
    loader: Any = DataLoader(features, batch_size=batch_size, collate_fn=make_collator(tokenizer))
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="predicting", unit="batch")
    logits, _ = predict_logits(model, loader)
    return logits


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (N, C) in float64 from logits (N, C), with lesson 02's stable softmax (notebook 07)."""
    import torch

    from ftlearn.losses import softmax

    return softmax(torch.from_numpy(np.asarray(logits, dtype=np.float64)), dim=-1).numpy()


def loader_order(loader: Any) -> np.ndarray | None:
    """The dataset index of each example in the order `loader` yields them, or None if unknown (notebook 07).

    A length-grouped loader (`BatchOrder`) yields its examples sorted by length, not in dataset order:
    output row i is then *not* review i, which is what this undoes.
    """
    from torch.utils.data import SequentialSampler

    batch_sampler = getattr(loader, "batch_sampler", None)
    if hasattr(batch_sampler, "batches"):  # ftlearn.tokenization.BatchOrder
        batches = batch_sampler.batches()
        return (
            np.concatenate([np.asarray(b, dtype=np.int64) for b in batches]) if batches else np.zeros(0, dtype=np.int64)
        )
    if isinstance(getattr(loader, "sampler", None), SequentialSampler):  # DataLoader(ds, batch_size=..., shuffle=False)
        return np.arange(len(loader.sampler), dtype=np.int64)
    return None


def evaluate(
    model: torch.nn.Module,
    loader: Iterable[dict],
    device: torch.device | None = None,
    return_outputs: bool = False,
    shard: bool | None = None,
) -> dict:
    """Mean cross-entropy, accuracy, precision, recall, F1 and confusion matrix on a labelled loader (notebook 07).

    With `return_outputs`, also `probs` (N, C) and `labels` (N,) for error analysis, put back in
    dataset order (row i is the dataset's example i) when the loader's order is known
    (`loader_order`); `in_dataset_order` says whether it was. Under DDP the ranks share the batches
    and gather the predictions (see `predict_logits`), so every rank computes the same numbers from
    the same arrays (notebook 11).
    """
    logits, labels = predict_logits(model, loader, device, shard)
    if labels is None:
        raise ValueError("evaluate needs batches with `labels`; use predict_logits for unlabelled data.")
    probs = probabilities(logits)
    # cross-entropy = mean over examples of -log p(true class)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    report = {"loss": loss, **classification_report(labels, probs.argmax(axis=-1), num_classes=probs.shape[1])}
    if return_outputs:
        order = loader_order(loader)
        known = (
            order is not None and len(order) == len(labels) and np.array_equal(np.sort(order), np.arange(len(labels)))
        )
        if known:  # row k of the outputs is example order[k]: scatter it back to its place
            probs_ds, labels_ds = np.empty_like(probs), np.empty_like(labels)
            probs_ds[order], labels_ds[order] = probs, labels
            probs, labels = probs_ds, labels_ds
        report["probs"], report["labels"], report["in_dataset_order"] = probs, labels, bool(known)
    return report
