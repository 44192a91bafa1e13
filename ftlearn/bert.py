"""BERT for the course: loading it as a classifier, and IMDB as tokenized splits and loaders.

Introduced in notebook 07. The classifier data is the same for every classifier run (BERT, the GPT-2
classifier of notebook 10, the distilled student of notebook 12): a stratified validation set carved out of
the training reviews, the recipe's truncation, dynamic padding, length-grouped batches. GPT-2's loading and
language-model rows are in `ftlearn.gpt2`; the runs themselves in `ftlearn.finetune`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    import datasets

    from ftlearn.recipes import ClassifierRecipe
    from ftlearn.runtime import Profile


# ---------------------------------------------------------------- loading


def load_bert_classifier(
    profile: Profile,
    name: str | None = None,
    pooling: str = "auto",
    init: str = "pretrained",
    verbose: bool = True,
    label_names: Sequence[str] | None = None,
) -> tuple[Any, Any, Any]:
    """BERT with a classification head (the profile's checkpoint unless `name`), tokenizer, source (notebook 07).

    `label_names` (default: two unnamed classes) give the head one output per class and the config their names.
    """
    from ftlearn.models import load_classifier

    return load_classifier(
        name or profile.bert_model, pooling=pooling, init=init, verbose=verbose, label_names=label_names
    )


# ---------------------------------------------------------------- classifier data


@dataclass
class ClassifierData:
    """Tokenized train/validation/test sets and their loaders (notebooks 07, 10)."""

    train: datasets.Dataset
    val: datasets.Dataset
    test: datasets.Dataset
    train_loader: Any
    val_loader: Any
    test_loader: Any
    collator: Any


def split_train_val(
    ds: datasets.Dataset, val_fraction: float, seed: int = 0
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """A stratified, seeded validation set carved out of the training set (notebook 07)."""
    import math

    from ftlearn.data import stratified_split

    n_val = math.ceil(val_fraction * len(ds))  # rounded up, as datasets' train_test_split counts a test_size
    val, train = stratified_split(ds, n_val, seed)
    return train, val


def prepare_classifier_data(
    dsd: datasets.DatasetDict, tokenizer: Any, recipe: ClassifierRecipe, seed: int = 0, device: Any = None
) -> ClassifierData:
    """Split off validation, tokenize with the recipe's truncation, build dynamic-padding loaders (notebook 07).

    The loaders use the recipe's worker processes, and pin their batches when it says so or `device` is a GPU.
    """
    from ftlearn.tokenization import make_collator

    train_text, val_text = split_train_val(dsd["train"], recipe.val_fraction, seed)
    train, val, test = tokenize_splits(tokenizer, recipe, train_text, val_text, dsd["test"])
    collator = make_collator(tokenizer)
    return ClassifierData(
        train=train,
        val=val,
        test=test,
        train_loader=train_loader(train, collator, recipe, seed, device),
        val_loader=eval_loader(val, collator, recipe, device),
        test_loader=eval_loader(test, collator, recipe, device),
        collator=collator,
    )


def tokenize_splits(tokenizer: Any, recipe: ClassifierRecipe, *splits: datasets.Dataset) -> list[datasets.Dataset]:
    """Each split tokenized with the recipe's truncation and length (`recipe.preprocess()`), as `predict` will."""
    from ftlearn.tokenization import tokenize_dataset

    encode = {"tokenizer": tokenizer, **recipe.preprocess()}
    return [tokenize_dataset(d, **encode) for d in splits]


def _feeding(recipe: ClassifierRecipe, device: Any) -> dict:
    """The loaders' worker processes, and whether they pin batches (the recipe says so, or `device` is a GPU)."""
    return {"num_workers": recipe.num_workers, "pin_memory": recipe.loader_pinning(device)}


def train_loader(
    ds: datasets.Dataset, collator: Any, recipe: ClassifierRecipe, seed: int = 0, device: Any = None
) -> Any:
    """Shuffled training batches of `recipe.batch_size`, grouped by length when the recipe says so (seeded)."""
    from ftlearn.tokenization import make_loader

    return make_loader(
        ds, collator, recipe.batch_size, shuffle=True, group_by_length=recipe.group_by_length, seed=seed,
        **_feeding(recipe, device),
    )  # fmt: skip


def eval_loader(ds: datasets.Dataset, collator: Any, recipe: ClassifierRecipe, device: Any = None) -> Any:
    """Evaluation batches, twice the training size (no gradients), sorted by length to waste no padding.

    Evaluation order does not matter for the metrics (`evaluate` puts outputs back in dataset order).
    """
    from ftlearn.tokenization import make_loader

    return make_loader(ds, collator, 2 * recipe.batch_size, group_by_length=True, **_feeding(recipe, device))
