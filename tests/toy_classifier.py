"""A tiny random BERT classifier and a toy data set for the training-loop tests (test_train, the DDP worker)."""

from __future__ import annotations

import datasets
import numpy as np
import torch


def tiny_bert(seed: int = 0, dropout: float = 0.1) -> torch.nn.Module:
    """A 2-layer, 16-wide BERT classifier whose random weights depend on `seed` only."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        num_labels=2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertForSequenceClassification(config)


def toy_data(n: int = 40, seed: int = 0, flip: bool = False) -> datasets.Dataset:
    """Token sequences of varying length; the label says whether token 7 appears (inverted with `flip`)."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "label": []}
    for _ in range(n):
        ids = rng.integers(10, 60, rng.integers(4, 20)).tolist()
        label = int(rng.random() < 0.5)
        if label:
            ids[rng.integers(len(ids))] = 7
        rows["input_ids"].append([1] + ids + [2])
        rows["attention_mask"].append([1] * (len(ids) + 2))
        rows["label"].append(1 - label if flip else label)
    return datasets.Dataset.from_dict(rows)


def save_tiny_bert_with_tokenizer(folder, max_positions: int = 512, seed: int = 0):
    """A 2-layer, 32-wide random BERT classifier saved with the offline MiniLM's real tokenizer; None without it."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from ftlearn.models import offline_bert_dir

    source = offline_bert_dir()
    if source is None:
        return None
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
