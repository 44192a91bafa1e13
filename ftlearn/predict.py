"""Prediction with a saved classifier: reload its folder, label raw reviews or a CSV of them, compare two models.

Introduced in notebook 07; `ftlearn predict` and `ftlearn compare` call these, for any classifier the
course trains (BERT or GPT-2, `ftlearn finetune bert|gpt2-cls|distill`), from the layout `ftlearn.finetune` saves.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ftlearn.adapter import is_adapter_folder
from ftlearn.evaluation import encoded_logits, probabilities
from ftlearn.runfolder import METRICS_FILE, PREPROCESS_FILE, folder_problem, read_json_object, saved_task

if TYPE_CHECKING:  # pragma: no cover
    from ftlearn.runtime import Profile


class FinetunedModelError(ValueError):
    """A model folder or an input file that `ftlearn predict` cannot use; the message says why."""


def read_metrics(folder: str | Path) -> dict:
    """The metrics.json a run saved in `folder`, or {} when there is none or it cannot be read (notebook 12)."""
    return read_json_object(Path(folder).expanduser() / METRICS_FILE)


def trained_profile(folder: str | Path) -> str | None:
    """The profile a run folder was trained in, from its manifest or metrics.json; None when neither records one."""
    from ftlearn.files import read_manifest

    folder = Path(folder).expanduser()
    try:
        manifest = read_manifest(folder) or {}
    except ValueError:  # a damaged manifest: check_finetuned reports it
        manifest = {}
    profile = manifest.get("profile") or read_metrics(folder).get("profile")
    return profile if isinstance(profile, str) else None


def smoke_warning(*folders: str | Path) -> str | None:
    """One line naming the folders trained in the smoke profile, whose answers mean nothing; None if there are none.

    The smoke profile (`ftlearn.runtime`) trains a few steps on a few dozen reviews to check the pipeline runs;
    `ftlearn predict` and `ftlearn compare` print this line so that its answers are not read as a classifier's.
    Folders saved before the profile was recorded say nothing.
    """
    smoke: dict[Path, str] = {}  # one name per folder, as first given (A and B may be the same folder)
    for folder in folders:
        if trained_profile(folder) == "smoke":
            smoke.setdefault(Path(folder).expanduser().resolve(), str(folder))
    if not smoke:
        return None
    names = " and ".join(smoke.values())
    what = "was" if len(smoke) == 1 else "were"
    verdict = "not a usable classifier: its answers" if len(smoke) == 1 else "not usable classifiers: their answers"
    return (
        f"{names} {what} trained in the smoke profile (a pipeline check of a few steps), {verdict} mean nothing. "
        "Train with --profile cpu or gpu."
    )


def rebuild_command(folder: Path, manifest: dict | None = None) -> str:
    """The `ftlearn finetune` command that writes `folder` again, as recorded in its manifest or metrics.json."""
    recorded = {**read_json_object(folder / METRICS_FILE), **(manifest or {})}
    seed = f" --seed {recorded['seed']}" if recorded.get("seed") not in (None, 0) else ""
    profile = recorded.get("profile") or "cpu"
    if recorded.get("task") == "distill":  # a student (notebook 12): it needs its teacher again
        teacher = recorded.get("teacher") or "TEACHER_DIR"
        return f"ftlearn finetune distill --teacher {teacher} --profile {profile}{seed} --out {folder}"
    task = recorded.get("task") if recorded.get("task") in ("bert", "gpt2-cls") else "bert"
    data = recorded.get("data") if isinstance(recorded.get("data"), dict) else {}
    flags = [("--train", data.get("train")), ("--test", data.get("test"))]  # your own data, when it was
    flags += [(f"--{c}-column", data.get(f"{c}_column")) for c in ("text", "label") if data.get(f"{c}_column") != c]
    recipe = recorded.get("recipe") if isinstance(recorded.get("recipe"), dict) else {}
    if task == "bert" and recipe.get("method") in ("lora", "head"):  # lesson 12's methods, and LoRA's save
        flags.append(("--method", recipe["method"]))
        if recipe["method"] == "lora":
            flags += [("--lora-rank", recipe.get("lora_rank")), ("--lora-alpha", recipe.get("lora_alpha"))]
    own = "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in flags if value)
    merge = " --merge" if recorded.get("saved_as") == "merged" else ""
    return f"ftlearn finetune {task} --profile {profile}{seed}{own}{merge} --out {folder}"


def check_finetuned(folder: str | Path, base: str | Path | None = None) -> tuple[Path, dict | None]:
    """Raise FinetunedModelError unless `folder` holds a complete classifier saved by `save_finetuned`.

    A LoRA adapter's folder (notebook 12) also needs its base model here: looked for (`ftlearn.adapter.locate_base`;
    `base` replaces the recorded one), not loaded.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        aside = folder.with_name(f".{folder.name}.old")
        note = f" (a save was interrupted: the previous model is in {aside}; rename it back to use it)"
        raise FinetunedModelError(
            f"No model folder at {folder}{note if aside.is_dir() else ''}. "
            f"Train one first: `ftlearn finetune bert --profile cpu --out {folder}`."
        )
    if not folder.is_dir():
        raise FinetunedModelError(
            f"{folder} is a file, not a model folder: give the folder that `ftlearn finetune` wrote."
        )
    if not (folder / "config.json").exists() or not any(folder.glob("*.safetensors")):
        raise FinetunedModelError(
            f"{folder} is not a saved model: it needs config.json and model.safetensors (or a LoRA adapter's "
            f"adapter_model.safetensors), written by `ftlearn finetune bert --out {folder}` or `save_finetuned`."
        )
    problem, manifest = folder_problem(folder)
    if problem:
        state = "is damaged" if manifest is not None else "is incomplete or damaged"
        raise FinetunedModelError(f"{folder} {state}: {problem}. Rebuild it: `{rebuild_command(folder, manifest)}`.")
    task = saved_task(folder, manifest)
    if task == "gpt2-lm":
        raise FinetunedModelError(
            f"{folder} holds a GPT-2 language model (`ftlearn finetune gpt2-lm`), which writes text rather than "
            "labelling it. Predict with a classifier: `ftlearn finetune bert --out DIR` or "
            "`ftlearn finetune gpt2-cls --out DIR`."
        )
    config = read_json_object(folder / "config.json")
    architectures = config.get("architectures") or []
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise FinetunedModelError(
            f"{folder} holds a {architectures[0]}, not a classifier. Predict with a folder written by "
            "`ftlearn finetune bert --out DIR` or `ftlearn finetune gpt2-cls --out DIR`."
        )
    problem = preprocess_problem(read_json_object(folder / PREPROCESS_FILE), config)
    if problem:
        raise FinetunedModelError(f"{folder}: {problem}. Rebuild it: `{rebuild_command(folder, manifest)}`.")
    if is_adapter_folder(folder):  # a LoRA adapter: its base must be here (looked for only)
        from ftlearn.adapter import AdapterBaseError, locate_base

        try:
            locate_base((manifest or {}).get("base"), base)
        except AdapterBaseError as exc:
            raise FinetunedModelError(f"{folder} holds a LoRA adapter, but {exc}.") from None
    return folder, manifest


def preprocess_problem(settings: dict, config: dict) -> str | None:
    """Why a folder's tokenization settings (ftlearn_preprocess.json) cannot be used with its model, or None.

    The recipes' own validators (`ftlearn.recipes.SETTINGS`): max_length in range and within the model's positions
    (from config.json), a known truncation, head_fraction from 0 to 1. No settings file: the defaults, always valid.
    """
    from ftlearn.recipes import max_length_problem, setting_problem
    from ftlearn.tokenization import TRUNCATIONS

    where = f"its {PREPROCESS_FILE}'s"
    for name in ("max_length", "head_fraction"):
        problem = setting_problem(name, settings[name], f"{where} {name}") if name in settings else None
        if problem:
            return problem.rstrip(".")
    if settings.get("truncation", "head") not in TRUNCATIONS:
        return f"{where} truncation is {settings['truncation']!r}, none of {', '.join(TRUNCATIONS)}"
    positions = config.get("n_positions") or config.get("max_position_embeddings")
    if "max_length" in settings and isinstance(positions, int):
        problem = max_length_problem(settings["max_length"], positions, "its config.json", f"{where} max_length")
        return problem.rstrip(".") if problem else None
    return None


def load_finetuned(folder: str | Path, base: str | Path | None = None) -> tuple[Any, Any, dict]:
    """Reload a folder written by `save_finetuned`: model, tokenizer, tokenization settings (notebook 07).

    The folder is checked first (`check_finetuned`): a damaged, incomplete or wrong kind of folder raises
    FinetunedModelError with one line saying what is wrong and the command that rebuilds it. A LoRA run saved as an
    adapter (notebook 12) is loaded on its base model (the one it recorded, or `base`: a folder or hub name),
    checked to be the one it was trained on, and merged: the same plain model, and the same predictions, as a
    merged save gives.
    """
    folder, manifest = check_finetuned(folder, base)
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ftlearn.adapter import AdapterBaseError, load_adapter
    from ftlearn.pooling import saved_class

    hf_logging.disable_progress_bar()  # one bar per reload is noise on the command line
    try:
        if is_adapter_folder(folder):
            model = load_adapter(folder, (manifest or {}).get("base"), base)
        else:
            model = saved_class(folder).from_pretrained(folder)  # a mean-pooling head reloads as one
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except AdapterBaseError as exc:  # the base found is not the adapter's: nothing to rebuild, another base to find
        raise FinetunedModelError(f"{folder} holds a LoRA adapter, but {exc}.") from None
    except Exception as exc:  # noqa: BLE001 - whatever the checks above missed still ends in one line
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        raise FinetunedModelError(
            f"{folder} could not be loaded ({reason}). Rebuild it: `{rebuild_command(folder, manifest)}`."
        ) from None
    finally:
        hf_logging.enable_progress_bar()
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:  # GPT-2 saved without one: pad = eos
        tokenizer.pad_token = tokenizer.eos_token
    settings_path = folder / PREPROCESS_FILE
    settings = read_json_object(settings_path) or {
        "max_length": min(512, getattr(tokenizer, "model_max_length", 512)),
        "truncation": "head",
        "head_fraction": 0.25,
    }
    model.eval()
    return model, tokenizer, settings


def check_teacher(folder: str | Path) -> Path:
    """Raise FinetunedModelError unless `folder` holds a BERT classifier to distil from (notebook 12); its path.

    Reads only the folder's manifest, config.json and metrics.json: `ftlearn finetune distill` calls it before
    anything loads. The student shares the teacher's tokenizer, so only a BERT classifier (or student) will do.
    """
    folder, _ = check_finetuned(folder)
    recorded = read_metrics(folder)
    task = recorded.get("task")
    if task not in ("bert", "distill"):
        raise FinetunedModelError(
            f"{folder} holds a {task or 'model of unknown kind'}, not a BERT classifier: the student "
            "shares the teacher's tokenizer, so the teacher must come from `ftlearn finetune bert --out DIR`."
        )
    if recorded.get("data"):  # a teacher of your own classes: the student learns IMDB's two
        raise FinetunedModelError(
            f"{folder} was trained on your own data ({recorded['data'].get('train')}); distillation trains its "
            "student on IMDB, so the teacher must be an IMDB classifier (`ftlearn finetune bert` without --train)."
        )
    return folder


def load_teacher(folder: str | Path) -> tuple[Any, dict]:
    """A BERT classifier to distil from (notebook 12, `ftlearn finetune distill`), checked, and what its run recorded.

    Returns the model and {"teacher": folder, "accuracy": its test accuracy, "checkpoint": the pretrained model it
    was fine-tuned from}; `check_teacher` says which folders will do.
    """
    folder = check_teacher(folder)
    recorded = read_metrics(folder)
    model = load_finetuned(folder)[0]
    return model, {"teacher": str(folder), "accuracy": recorded.get("accuracy"), "checkpoint": recorded.get("model")}


SENTIMENT_NAMES = (["neg", "pos"], ["LABEL_0", "LABEL_1"])  # IMDB's classes, and a config that names none


def class_names(model: Any) -> list[str]:
    """The model's class names, class 0 first, from its config's id2label (your own data's labels, or IMDB's)."""
    config = model.config
    return [str(config.id2label.get(i, config.id2label.get(str(i), i))) for i in range(config.num_labels)]


def is_sentiment_model(names: list[str]) -> bool:
    """True for a two-class IMDB model (or one that names no classes): answered as positive/negative, as before."""
    return names in SENTIMENT_NAMES


def class_probabilities(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    settings: dict,
    batch_size: int = 32,
    progress: bool = False,
    windows: str = "off",
    stride: int | None = None,
) -> np.ndarray:
    """Each text's probability of each class (N, C), in their order; arguments as `predict_texts`."""
    from ftlearn.tokenization import encode_texts
    from ftlearn.windows import WINDOW_MODES, predict_windows

    if windows not in WINDOW_MODES:
        raise ValueError(f"windows must be one of {', '.join(WINDOW_MODES)}, got {windows!r}.")
    if not texts:
        return np.zeros((0, model.config.num_labels))
    if windows != "off":
        logits = predict_windows(model, tokenizer, texts, settings["max_length"], windows, stride, batch_size, progress)
    else:
        enc = encode_texts(
            tokenizer,
            list(texts),
            settings["max_length"],
            settings.get("truncation", "head"),
            settings.get("head_fraction", 0.25),
        )
        logits = encoded_logits(model, tokenizer, enc, batch_size, progress)
    return probabilities(logits)


def top_classes(probs: np.ndarray, names: list[str], k: int = 1) -> list[tuple[str, float]]:
    """One text's `k` most probable classes and their probabilities, most probable first."""
    order = np.argsort(-np.asarray(probs), kind="stable")[:k]
    return [(names[i], float(probs[i])) for i in order]


def predict_texts(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    settings: dict,
    batch_size: int = 32,
    progress: bool = False,
    windows: str = "off",
    stride: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels (0/1) and p(positive) for raw texts, in their order (notebook 07).

    Any number of classes: `class_probabilities` gives every class's probability.
    `windows="off"` reads each text as the model was trained (the saved truncation, e.g. head+tail); "mean" or
    "confident" reads a long text whole, as overlapping windows whose logits are combined (`ftlearn.windows`).
    `progress` shows a bar over the batches (`ftlearn predict --file` does, for long files).
    """
    probs = class_probabilities(model, tokenizer, texts, settings, batch_size, progress, windows, stride)
    return probs.argmax(axis=-1), probs[:, 1]


def empty_text_problem(texts: list[str], where: str) -> str | None:
    """The course's one policy for empty reviews: refused, with a count, by both forms of `ftlearn predict`.

    A model given an empty text still answers (usually with its bias), which reads as a real prediction;
    refusing says that the input needs fixing. Data rows are counted from 1 after the header.
    """
    empty = [i for i, text in enumerate(texts) if not str(text).strip()]
    if not empty:
        return None
    return (
        f"{where}: data row {empty[0] + 1} has no review text ({len(empty)} such row(s) of {len(texts)}); "
        "fill them in or remove them. Nothing was written."
    )


def predict_file(
    folder: str | Path,
    csv_in: str | Path,
    csv_out: str | Path,
    batch_size: int = 32,
    progress: bool = False,
    windows: str = "off",
    stride: int | None = None,
) -> int:
    """Read a CSV with a `text` column; write it back with `pred` and `p_positive` added, in order (notebook 07).

    A model of your own classes (`ftlearn finetune --train FILE`) writes `pred`, the class name, and one column
    `p_NAME` per class instead.

    `windows` and `stride` are `predict_texts`'s: "mean" or "confident" read long reviews whole.

    Everything that can be checked is checked before the model is loaded: the output path, the input
    file, empty texts (refused, see `empty_text_problem`), the model folder. The output is written
    atomically: a run killed half-way leaves the previous file (or none), never half of one.
    """
    import pandas as pd

    from ftlearn.files import atomic_path, check_output_file

    csv_out = check_output_file(csv_out)
    csv_in = Path(csv_in)
    if not csv_in.is_file():
        raise FinetunedModelError(
            f"No such file: {csv_in}." if not csv_in.is_dir() else f"{csv_in} is a folder, not a CSV file."
        )
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
    texts = frame["text"].astype(str).tolist()
    problem = empty_text_problem(texts, str(csv_in))
    if problem:
        raise FinetunedModelError(problem)
    model, tokenizer, settings = load_finetuned(folder)
    probs = class_probabilities(model, tokenizer, texts, settings, batch_size, progress, windows, stride)
    names = class_names(model)
    if is_sentiment_model(names):
        columns = {"pred": probs.argmax(axis=-1), "p_positive": np.round(probs[:, 1], 6)}
    else:
        columns = {"pred": [names[i] for i in probs.argmax(axis=-1)]}
        columns.update({f"p_{name}": np.round(probs[:, i], 6) for i, name in enumerate(names)})
    replaced = [c for c in columns if c in frame.columns]
    if replaced:  # e.g. a file that went through `ftlearn predict` before: say so rather than overwrite silently
        print(
            f"{csv_in} already has {' and '.join(f'`{c}`' for c in replaced)}; "
            "writing this model's predictions in their place."
        )
    for column, values in columns.items():
        frame[column] = values
    csv_out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(csv_out) as tmp:
        frame.to_csv(tmp, index=False)
    return len(frame)


def compare_finetuned(
    folder_a: str | Path,
    folder_b: str | Path,
    profile: Profile | str | None = None,
    seed: int = 0,
    windows: str = "off",
) -> dict:
    """Test accuracy of two saved models on the same test texts, their paired difference and confusion matrices
    (notebook 07).

    The test set is IMDB's for `profile`, by default the profile recorded in A's metrics.json; for models trained
    on your own files (`--train FILE`), the test set A was tested on (its --test file, or the same held-out split,
    so both models must come from the same file and seed). Both models read the texts as `windows` says (see
    `predict_texts`) and must have the same classes.
    """
    from ftlearn.data import load_imdb
    from ftlearn.metrics import class_report, paired_accuracy_difference
    from ftlearn.runtime import get_profile

    for folder in (folder_a, folder_b):  # both checked before either is loaded or the data is read
        check_finetuned(folder)
    recorded = [read_metrics(folder) for folder in (folder_a, folder_b)]
    if profile is None:
        profile = recorded[0].get("profile", "auto")
    profile = get_profile(profile) if isinstance(profile, str) else profile
    data = recorded[0].get("data")
    if data:
        test = _own_test_set(folder_a, folder_b, recorded, profile)
    elif recorded[1].get("data"):
        raise FinetunedModelError(
            f"{folder_b} was trained on your own data ({recorded[1]['data'].get('train')}), {folder_a} on IMDB: "
            "compare models trained on the same data."
        )
    else:
        test = None
    loaded = [load_finetuned(folder) for folder in (folder_a, folder_b)]
    names = [class_names(model) for model, _, _ in loaded]
    if names[0] != names[1]:
        raise FinetunedModelError(
            f"{folder_a} has classes {', '.join(names[0])}; {folder_b} has {', '.join(names[1])}: compare models "
            "of the same classes."
        )
    if test is None:
        test = load_imdb(profile=profile, seed=seed)["test"]
    elif list(test.features["label"].names) != names[0]:
        raise FinetunedModelError(
            f"the data {data['train']} now has classes {', '.join(test.features['label'].names)}, but {folder_a} "
            f"was trained on {', '.join(names[0])}: the file has changed since."
        )
    texts, labels = list(test["text"]), np.array(test["label"])
    preds = [predict_texts(m, tok, texts, settings, windows=windows)[0] for m, tok, settings in loaded]
    return {
        "profile": profile.name,
        **paired_accuracy_difference(labels, preds[0], preds[1]),
        "classes": names[0],
        "confusion_a": class_report(labels, preds[0], names[0])["confusion_matrix"],
        "confusion_b": class_report(labels, preds[1], names[0])["confusion_matrix"],
        "data": (data["test"] or data["train"]) if data else None,
    }


def _own_test_set(folder_a: str | Path, folder_b: str | Path, recorded: list[dict], profile: Profile) -> Any:
    """The test set of A's own data (`--train`/`--test`), checked to be what A was tested on and unseen by B."""
    from ftlearn.labelled import LabelledDataError, LabelledFiles, data_changes, load_labelled

    data = recorded[0]["data"]
    changed = data_changes(data)
    if changed:
        raise FinetunedModelError(f"{changed}; {folder_a} was tested on it as it was, so its test set is gone.")
    if data["test"] is None:  # a held-out split: B must have been trained on the same file with the same seed
        same = recorded[1].get("data") == data and recorded[1].get("seed") == recorded[0].get("seed")
        if not same:
            raise FinetunedModelError(
                f"{folder_a} was tested on texts held out of {data['train']} with seed {recorded[0].get('seed')}; "
                f"{folder_b} was trained on other data or with another seed, so it may have trained on those texts. "
                "Compare runs of the same --train and --seed, or train both with a --test file."
            )
    files = LabelledFiles(data["train"], data["test"], data["text_column"], data["label_column"])
    try:
        return load_labelled(files, profile=profile, seed=int(recorded[0].get("seed") or 0), verbose=False)["test"]
    except LabelledDataError as exc:
        raise FinetunedModelError(f"{folder_a}'s data: {exc}") from None
