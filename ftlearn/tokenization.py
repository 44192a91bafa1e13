"""From review text to padded batches: cleaning, head/tail/head+tail truncation, dynamic padding, length grouping.

Introduced in notebook 05 (tokenization and data); notebooks 07-08 and `ftlearn finetune` feed BERT
through here, so the notebook, the Trainer and the command line see exactly the same tokens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    import torch

TRUNCATIONS = ("head", "tail", "head+tail")
_BR = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)


def clean_review(text: str) -> str:
    """Replace the `<br />` tags IMDB reviews carry (any case: `<BR />`, `<br>`) with spaces; squeeze whitespace.

    Introduced in notebook 05; the one cleaner of the course (features, causal_lm and the lessons use it).
    """
    return " ".join(_BR.sub(" ", text).split())


def truncate_ids(
    ids: Sequence[int], budget: int, strategy: str = "head+tail", head_fraction: float = 0.25
) -> list[int]:
    """Keep at most `budget` token ids: the first ones, the last ones, or both ends (notebook 05).

    head+tail keeps `round(head_fraction * budget)` tokens from the start and the rest from the end
    (Sun et al., 2019, found 128 head + 382 tail best for IMDB at 512 tokens, i.e. about a quarter).
    """
    if strategy not in TRUNCATIONS:
        raise ValueError(f"Unknown truncation {strategy!r}; choose one of {', '.join(TRUNCATIONS)}.")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}.")
    ids = list(ids)
    if len(ids) <= budget:
        return ids
    if budget == 0:
        return []
    if strategy == "head":
        return ids[:budget]
    if strategy == "tail":
        return ids[len(ids) - budget :]
    n_head = min(budget, max(0, round(head_fraction * budget)))
    n_tail = budget - n_head
    return ids[:n_head] + (ids[len(ids) - n_tail :] if n_tail else [])


def encode_texts(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    truncation: str = "head+tail",
    head_fraction: float = 0.25,
    clean: bool = True,
) -> dict[str, list[list[int]]]:
    """Tokenize texts without padding: [CLS] + kept tokens + [SEP], at most max_length ids each (notebook 05).

    Returns `input_ids` and `attention_mask` as lists of lists of varying length (padding happens
    per batch, in the collator).
    """
    prefix, suffix, budget = special_tokens(tokenizer, max_length)
    raw = text_ids(tokenizer, texts, clean)
    input_ids = [prefix + truncate_ids(ids, budget, truncation, head_fraction) + suffix for ids in raw]
    return {"input_ids": input_ids, "attention_mask": [[1] * len(ids) for ids in input_ids]}


def special_tokens(tokenizer: Any, max_length: int) -> tuple[list[int], list[int], int]:
    """Ids before and after a text ([CLS], [SEP] for BERT; none for GPT-2) and the text tokens left (notebook 05)."""
    # BERT wraps one text as [CLS] text [SEP]; a tokenizer without those ids (GPT-2) adds nothing.
    prefix = [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None else []
    suffix = [tokenizer.sep_token_id] if tokenizer.sep_token_id is not None else []
    n_special = len(prefix) + len(suffix)
    budget = max_length - n_special
    if budget <= 0:
        raise ValueError(f"max_length={max_length} leaves no room for text after {n_special} special tokens.")
    return prefix, suffix, budget


def text_ids(tokenizer: Any, texts: Sequence[str], clean: bool = True) -> list[list[int]]:
    """Every text's token ids, whole: no special tokens, no truncation (cleaned first unless `clean=False`)."""
    if clean:
        texts = [clean_review(t) for t in texts]
    # verbose=False: callers truncate or cut into windows themselves, so the "longer than 512" warning is noise.
    return tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]


def tokenize_dataset(
    ds: datasets.Dataset | datasets.DatasetDict,
    tokenizer: Any,
    max_length: int,
    truncation: str = "head+tail",
    head_fraction: float = 0.25,
) -> datasets.Dataset | datasets.DatasetDict:
    """`ds.map` of `encode_texts` over a `text` column; keeps `label`, drops `text` (notebook 05)."""

    def encode(batch: dict) -> dict:
        return encode_texts(tokenizer, batch["text"], max_length, truncation, head_fraction)

    columns = ds["train"].column_names if hasattr(ds, "keys") else ds.column_names
    return ds.map(encode, batched=True, remove_columns=[c for c in columns if c != "label"], desc="tokenizing")


def pad_collate(features: Sequence[dict], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a list of examples to the longest one in the batch (dynamic padding), as tensors (notebook 05).

    Same output as `DataCollatorWithPadding`: input_ids and attention_mask of shape (B, T_max) with
    T_max the longest example here, and `labels` (B,) when the examples carry `label`.
    """
    import torch

    longest = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), longest), pad_token_id, dtype=torch.long)  # (B, T_max)
    mask = torch.zeros((len(features), longest), dtype=torch.long)  # 1 = real token, 0 = padding
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        ids[row, :n] = torch.as_tensor(f["input_ids"], dtype=torch.long)
        mask[row, :n] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if "label" in features[0]:
        batch["labels"] = torch.tensor([int(f["label"]) for f in features], dtype=torch.long)
    return batch


def make_collator(tokenizer: Any) -> Any:
    """The library's dynamic-padding collator, `DataCollatorWithPadding` (notebook 05)."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer=tokenizer, return_tensors="pt")


def padding_cost(
    lengths: Sequence[int], batches: Sequence[Sequence[int]], pad_to: int | None = None
) -> dict[str, float]:
    """Token slots computed vs. real tokens when `batches` (lists of indices) are padded (notebook 05).

    pad_to=None pads each batch to its longest member (dynamic padding); an int pads every
    example to that length (the old `padding="max_length"`).
    """
    lengths = np.asarray(lengths)
    slots = sum(len(b) * (pad_to if pad_to is not None else int(lengths[list(b)].max())) for b in batches)
    real = int(lengths.sum())
    return {"slots": int(slots), "real": real, "wasted_fraction": 1 - real / slots if slots else 0.0}


class BatchOrder:
    """The batches of one epoch as lists of indices, a pure function of (seed, epoch) (notebook 05).

    Shuffled each epoch; with `group_by_length`, examples of similar length share a batch (less
    padding): shuffle, cut into chunks of `chunk_batches` batches, sort each chunk by length, split
    into batches, shuffle the batches. Being a function of (seed, epoch) is what lets a resumed run
    in `ftlearn.train` see exactly the batches the interrupted one would have seen.
    Use as `DataLoader(ds, batch_sampler=BatchOrder(...), collate_fn=...)`.
    Under DDP (notebook 11) `fit` calls `shard(rank, world_size)`: every rank computes the same
    seeded order, then keeps every world_size-th batch of it, so the ranks' shares never overlap.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        group_by_length: bool = False,
        seed: int = 0,
        chunk_batches: int = 50,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.seed = seed
        self.chunk_batches = chunk_batches
        self.drop_last = drop_last
        self.epoch = 0
        self.rank, self.num_replicas = 0, 1  # which share of the batches to yield (see `shard`)

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's order the next iteration yields (the training loop calls this)."""
        self.epoch = epoch

    def shard(self, rank: int, num_replicas: int) -> None:
        """Yield only rank `rank`'s share of each epoch's batches out of `num_replicas` (DDP, notebook 11)."""
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in 0..{num_replicas - 1}, got {rank}.")
        self.rank, self.num_replicas = rank, num_replicas

    def batches(self) -> list[list[int]]:
        """This epoch's batches."""
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.group_by_length:
            chunk = self.batch_size * self.chunk_batches
            # stable sort keeps the shuffled order among equal lengths; longest first within a chunk
            order = (
                np.concatenate(
                    [
                        c[np.argsort(-self.lengths[c], kind="stable")]
                        for c in np.array_split(order, max(1, math.ceil(n / chunk)))
                    ]
                )
                if n
                else order
            )
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.group_by_length and self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.num_replicas > 1:
            from ftlearn.distributed import shard

            # Shard only now, after the shuffle that every rank computed identically from (seed, epoch).
            # Equal shares: the last len % num_replicas batches of the epoch are left out (a different
            # few each epoch, as the order changes), or one rank would wait forever for the others.
            batches = shard(batches, self.rank, self.num_replicas)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        n_batches = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return n_batches // self.num_replicas


def make_loader(
    ds: datasets.Dataset,
    collate_fn: Any,
    batch_size: int,
    shuffle: bool = False,
    group_by_length: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader over a tokenized dataset with a `BatchOrder` batch sampler (notebook 05).

    `num_workers` processes collate batches ahead (kept alive across epochs); `pin_memory` puts them in
    page-locked memory, from which copies to a GPU are faster and can overlap its work (notebook 11).
    The order stays `BatchOrder`'s: workers only prepare the batches it names.
    """
    from torch.utils.data import DataLoader

    lengths = [len(ids) for ids in ds["input_ids"]]
    order = BatchOrder(lengths, batch_size, shuffle=shuffle, group_by_length=group_by_length, seed=seed)
    return DataLoader(
        ds,
        batch_sampler=order,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )
