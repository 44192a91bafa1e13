"""Prediction with a saved classifier: reload its folder, label raw reviews or a CSV of them, compare two models.

Introduced in notebook 07; `ftlearn predict` and `ftlearn compare` call these, for any classifier the
course trains (BERT or GPT-2, `ftlearn finetune bert|gpt2-cls`), from the layout `ftlearn.finetune` saves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ftlearn.evaluation import predict_logits, probabilities
from ftlearn.finetune import METRICS_FILE, PREPROCESS_FILE

if TYPE_CHECKING:  # pragma: no cover
    from ftlearn.runtime import Profile


class FinetunedModelError(ValueError):
    """A model folder or an input file that `ftlearn predict` cannot use; the message says why."""


def _saved_task(folder: Path) -> str | None:
    """The task recorded in the folder's metrics.json, or guessed from config.json's architectures."""
    metrics = folder / METRICS_FILE
    if metrics.is_file():
        try:
            task = json.loads(metrics.read_text(encoding="utf-8")).get("task")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            task = None
        if task:
            return task
    try:
        architectures = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return "gpt2-lm" if any(a.endswith("LMHeadModel") or a.endswith("ForCausalLM") for a in architectures) else None


def load_finetuned(folder: str | Path) -> tuple[Any, Any, dict]:
    """Reload a folder written by `save_finetuned`: model, tokenizer, tokenization settings (notebook 07)."""
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
    task = _saved_task(folder)
    if task == "gpt2-lm":
        raise FinetunedModelError(
            f"{folder} holds a GPT-2 language model (`ftlearn finetune gpt2-lm`), which writes text rather than "
            "labelling it. Predict with a classifier: `ftlearn finetune bert --out DIR` or "
            "`ftlearn finetune gpt2-cls --out DIR`."
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
    """Predicted labels (0/1) and p(positive) for raw texts, in their order (notebook 07)."""
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
    pairs = zip(enc["input_ids"], enc["attention_mask"], strict=True)
    features = [{"input_ids": i, "attention_mask": m} for i, m in pairs]
    # unshuffled: the outputs come back in the input order
    logits, _ = predict_logits(model, DataLoader(features, batch_size=batch_size, collate_fn=make_collator(tokenizer)))
    probs = probabilities(logits)
    return probs.argmax(axis=-1), probs[:, 1]


def predict_file(folder: str | Path, csv_in: str | Path, csv_out: str | Path, batch_size: int = 32) -> int:
    """Read a CSV with a `text` column; write it back with `pred` and `p_positive` added, in order (notebook 07)."""
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
            f"{csv_in} already has {' and '.join(f'`{c}`' for c in replaced)}; "
            "writing this model's predictions in their place."
        )
    frame["pred"] = preds
    frame["p_positive"] = np.round(p_pos, 6)
    Path(csv_out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv_out, index=False)
    return len(frame)


def compare_finetuned(
    folder_a: str | Path, folder_b: str | Path, profile: Profile | str | None = None, seed: int = 0
) -> dict:
    """Test accuracy of two saved models on the same test reviews, and their paired difference (notebook 07).

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
