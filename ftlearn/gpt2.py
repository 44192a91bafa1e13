"""GPT-2 for the course: loading it (hub, cache or the offline build) and turning IMDB into its training rows.

Introduced in notebooks 09 (GPT-2 as a language model) and 10 (GPT-2 as a classifier); BERT's counterpart is
`ftlearn.bert`. The runs themselves are `ftlearn.finetune.run`'s gpt2-lm and gpt2-cls tasks; they train through
the course's one loop, `ftlearn.train.fit`, like BERT. (`ftlearn.gpt2_finetune`, its old name, re-exports it.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from ftlearn.runtime import Profile


# ---------------------------------------------------------------- loading


def load_causal_lm(
    profile: Profile, name: str | None = None, verbose: bool = True, init: str = "pretrained"
) -> tuple[Any, Any, Any]:
    """GPT-2 with its LM head (hub, cache, or the profile's offline build), tokenizer, source (notebook 09).

    `init="random"`: the checkpoint's shape with fresh weights (what pretraining buys, as for the classifiers).
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    from ftlearn.models import INITS

    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}.")
    from ftlearn.models import count_parameters, load_tokenizer, resolve_model
    from ftlearn.offline_gpt2 import build_for_profile

    source = resolve_model("gpt2", name or profile.gpt2_model, build=build_for_profile(profile.name))
    tokenizer = load_tokenizer("gpt2", source=source)
    if init == "random":
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source.location))
    else:
        model = AutoModelForCausalLM.from_pretrained(source.location)
    if verbose:
        from ftlearn.files import display_path  # `<cache>/offline-gpt2/…`: outputs name no machine's folders

        params = count_parameters(model) / 1e6
        print(f"Model: {display_path(source.location)} ({params:.1f}M parameters); {source.note}.")
    return model, tokenizer, source


def load_gpt2_classifier(
    profile: Profile,
    num_labels: int = 2,
    name: str | None = None,
    verbose: bool = True,
    init: str = "pretrained",
    label_names: Sequence[str] | None = None,
) -> tuple[Any, Any, Any]:
    """GPT2ForSequenceClassification with pad = eos, from the same source as `load_causal_lm` (notebook 10).

    `label_names`, when given, set the number of classes and their names in the config (`load_classifier`).
    """
    from ftlearn.models import load_classifier
    from ftlearn.offline_gpt2 import build_for_profile

    build = build_for_profile(profile.name)
    name = name or profile.gpt2_model
    return load_classifier(
        name, num_labels=num_labels, family="gpt2", verbose=verbose, build=build, init=init, label_names=label_names
    )


# ---------------------------------------------------------------- lesson 09: review text as training rows


def lm_texts(ds: Any, prefix: bool = True) -> list[str]:
    """Cleaned reviews of a split, each with its 'Review (positive):' prefix when `prefix` (notebook 09)."""
    from ftlearn.causal_lm import with_sentiment_prefix
    from ftlearn.tokenization import clean_review

    return [
        with_sentiment_prefix(clean_review(t), y) if prefix else clean_review(t)
        for t, y in zip(ds["text"], ds["label"], strict=True)
    ]


def lm_blocks(ds: Any, tokenizer: Any, block_size: int, max_blocks: int | None = None, prefix: bool = True) -> Any:
    """A split as (N, block_size) rows of token ids: reviews concatenated with eos, then chunked (notebook 09)."""
    from ftlearn.causal_lm import chunk_into_blocks

    ids = tokenizer(lm_texts(ds, prefix), add_special_tokens=False)["input_ids"]
    blocks = chunk_into_blocks(ids, block_size, tokenizer.eos_token_id)
    return blocks[:max_blocks] if max_blocks is not None else blocks


def _rows_as_lm_batch(rows: list[Any]) -> dict:
    import torch

    ids = torch.stack(rows)  # (B, T)
    return {"input_ids": ids, "labels": ids}  # the loss shifts them: position t predicts token t + 1


def lm_loader(blocks: Any, batch_size: int, seed: int = 0, shuffle: bool = True) -> Any:
    """A DataLoader of `{"input_ids", "labels"}` batches over `blocks` (N, T), shuffled per epoch (notebook 09).

    Its `BatchOrder` makes every epoch's order a pure function of (seed, epoch), as for BERT, so `fit`
    resumes it exactly and shards it under DDP.
    """
    from torch.utils.data import DataLoader

    from ftlearn.tokenization import BatchOrder

    order = BatchOrder([blocks.shape[1]] * len(blocks), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(list(blocks), batch_sampler=order, collate_fn=_rows_as_lm_batch)
