"""The one run folder: what every fine-tuning run saves, and reading a saved folder back, verified.

Introduced in notebook 07, where a fine-tuned model is saved and reloaded; every run (`ftlearn.finetune`) saves
through `save_finetuned`, and `ftlearn.predict` reads through `folder_problem` before it loads anything. A folder:
    config.json, model.safetensors   the weights (`save_pretrained`, safetensors); a LoRA run saved as an adapter
                                     (the default) has adapter_config.json and adapter_model.safetensors instead of
                                     model.safetensors: peft's format, the base it needs named in the manifest
                                     (`ftlearn.adapter`)
    tokenizer files                  the tokenizer, with a pad token when the model needs one
    ftlearn_preprocess.json          classifiers: how `ftlearn predict` must tokenize new reviews
    metrics.json                     task, model, profile, seed, recipe, train_seconds, history, the task's metrics,
                                     and how the run was saved: saved_as, saved_weights_bytes, saved_files
    ftlearn_manifest.json            written last: the task, and every file's size and sha256
The folder is written next to its destination and renamed into place, so a run killed while saving
leaves the previous folder (or none), never half of one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ftlearn.recipes import Recipe

PREPROCESS_FILE = "ftlearn_preprocess.json"  # how texts must be tokenized for this model
METRICS_FILE = "metrics.json"


# ---------------------------------------------------------------- writing


def is_run_folder(folder: str | Path) -> bool:
    """True when `folder` looks like one `save_finetuned` wrote (now or before manifests): it may be replaced."""
    from ftlearn.files import MANIFEST_FILE

    folder = Path(folder)
    return any((folder / name).is_file() for name in (MANIFEST_FILE, METRICS_FILE, PREPROCESS_FILE, "config.json"))


# What `save_finetuned` writes, for a folder saved before manifests listed it: save_pretrained's files for BERT and
# GPT-2 (weights, config, tokenizer) and ftlearn's own.
SAVED_NAMES = frozenset(
    {"config.json", "generation_config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json",
     "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt",
     "chat_template.jinja", "adapter_config.json", "adapter_model.safetensors", PREPROCESS_FILE, METRICS_FILE}
)  # fmt: skip


def foreign_files(folder: str | Path) -> list[str]:
    """What a run folder holds that ftlearn did not write: anything its manifest does not list ("name/" for a folder).

    A folder saved before manifests: anything that is not one of `SAVED_NAMES`. ftlearn never writes subfolders.
    """
    from ftlearn.files import MANIFEST_FILE, read_manifest

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return []
    try:
        manifest = read_manifest(folder)
    except ValueError:  # a damaged manifest: judge by name
        manifest = None
    ours = {*manifest["files"], MANIFEST_FILE} if manifest else SAVED_NAMES | {MANIFEST_FILE}
    return sorted(f"{p.name}/" if p.is_dir() else p.name for p in folder.iterdir() if p.is_dir() or p.name not in ours)


def check_out(out: str | Path | None) -> None:
    """Fail now, before any data or model is loaded, if `out` cannot receive a run folder (`OutputPathError`).

    A folder of a previous run is replaced whole, by a rename (a run killed while saving leaves the previous folder
    or the new one, never a mix); so if it holds files ftlearn did not write, the run is refused, naming them,
    rather than moving them across the rename, where a kill at the wrong moment would strand them in a temporary.
    """
    from ftlearn.files import check_output_folder

    if out is not None:
        folder = Path(out).expanduser()
        ours = is_run_folder(folder)
        check_output_folder(folder, is_ours=ours, foreign=foreign_files(folder) if ours else ())


def saved_bytes(model: Any) -> int:
    """About how many bytes `save_finetuned` writes for `model`: its weights as stored, plus 20 MB for the rest."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) + 20_000_000


def save_finetuned(
    folder: str | Path, model: Any, tokenizer: Any, recipe: Recipe, metrics: dict | None = None, base: Any = None
) -> Path:
    """Write model, tokenizer, tokenization settings and metrics.json into `folder`, atomically (notebook 07).

    Everything goes into a temporary sibling, then a manifest (every file's size and sha256, see
    `ftlearn.files`), written last; only then does the folder take the place of a previous one.
    `ftlearn.predict.load_finetuned` checks the manifest before it loads anything.
    `base` (a `ftlearn.models.ModelSource`: where the pretrained model came from), for a model holding LoRA layers,
    saves the adapter instead of the whole model (`ftlearn.adapter`, notebook 12); the manifest and metrics.json
    record the base it needs (`base_model`). metrics.json also records how the run was saved (`saved_as`: "adapter",
    "merged" for a LoRA run saved whole, else "model"), the size of the weights file (`saved_weights_bytes`: what
    must be saved) and of every file written before it (`saved_files`), measured on disk; `metrics` gets the same
    keys, so a run's result says what its folder holds.
    """
    from ftlearn.files import (
        DiskFullError,
        check_free_space,
        is_disk_full,
        megabytes,
        remove_stale_temporaries,
        replace_folder,
        temporary_sibling,
        write_json_atomic,
        write_manifest,
        writer_lock,
    )

    folder = Path(folder).expanduser()
    check_out(folder)  # never replace a folder ftlearn did not write, nor one holding a user's files
    with writer_lock(folder):  # one writer at a time: another process saving here is refused, not mixed with
        check_out(folder)  # again, now that no other process can change it before the rename
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder)  # a killed save's; no other writer can be using them while we hold the lock
        needed = saved_bytes(model)
        check_free_space(folder, needed)
        tmp = temporary_sibling(folder)  # this process's own name
        tmp.mkdir()
        try:
            saved: dict[str, Any] = {}
            if base is not None:  # a LoRA run's adapter, in peft's format, and the base it needs
                from ftlearn.adapter import ADAPTER_WEIGHTS, base_record, save_adapter

                record = base_record(base, model)
                saved["saved_parameters"] = save_adapter(model, tmp, record["name_or_path"])
                saved["saved_as"], weights = "adapter", ADAPTER_WEIGHTS
            else:
                model.save_pretrained(tmp)  # config.json + model.safetensors
                record = None
                saved["saved_as"] = "merged" if getattr(recipe, "method", "full") == "lora" else "model"
                weights = "model.safetensors"
            tokenizer.save_pretrained(tmp)
            if hasattr(recipe, "preprocess"):  # a classifier's recipe: how `ftlearn predict` must tokenize
                write_json_atomic(tmp / PREPROCESS_FILE, recipe.preprocess())
            saved["saved_weights_bytes"] = (tmp / weights).stat().st_size  # what must be saved, measured
            saved["saved_files"] = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
            if record is not None:
                saved["base_model"] = record
            if metrics is not None:
                metrics.update(saved)  # the caller's result says what the folder holds
                write_json_atomic(tmp / METRICS_FILE, metrics)
            recorded = {key: (metrics or {}).get(key) for key in ("profile", "seed")}
            if record is not None:
                recorded.update(saved_as="adapter", base=record)  # what `load_finetuned` needs to find the base
            write_manifest(tmp, task=recipe.kind, **recorded)  # last: its presence says the rest is complete
            replace_folder(tmp, folder)  # the previous run stays whole until the new one is in place
        except BaseException as exc:  # a failure or Ctrl-C while saving: no half folder left behind
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, Exception) and is_disk_full(exc):
                kept = "its previous contents are untouched" if folder.exists() else "nothing was written"
                raise DiskFullError(
                    f"the disk filled up while saving to {folder}: the model needs about {megabytes(needed)} free "
                    f"there; {kept}. Free some space or choose another --out."
                ) from None
            raise
    return folder


# ---------------------------------------------------------------- reading back, verified


def read_json_object(path: Path) -> dict:
    """A JSON object from `path`, or {} when it is missing or unreadable (callers check files separately)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def saved_task(folder: Path, manifest: dict | None = None) -> str | None:
    """The task the folder was trained for: from its manifest, its metrics.json, or guessed from config.json."""
    task = (manifest or {}).get("task") or read_json_object(folder / METRICS_FILE).get("task")
    if task:
        return task
    architectures = read_json_object(folder / "config.json").get("architectures") or []
    return "gpt2-lm" if any(a.endswith("LMHeadModel") or a.endswith("ForCausalLM") for a in architectures) else None


def _tokenizer_problem(folder: Path) -> str | None:
    """Why the folder's tokenizer files cannot be used, or None (checked without loading them)."""
    from ftlearn.files import json_problem

    if not (folder / "tokenizer_config.json").exists():
        return "it has no tokenizer files (tokenizer_config.json is missing)"
    problem = json_problem(folder / "tokenizer_config.json")
    if problem is None and (folder / "tokenizer.json").exists():
        problem = json_problem(folder / "tokenizer.json")
    if problem is None and not any((folder / name).exists() for name in ("tokenizer.json", "vocab.txt", "vocab.json")):
        problem = "it has no vocabulary (tokenizer.json, vocab.txt or vocab.json)"
    return problem


def folder_problem(folder: Path) -> tuple[str | None, dict | None]:
    """What is wrong with a saved model folder, checked before anything is loaded, and its manifest.

    A folder saved by this version carries a manifest (`ftlearn.files`): every file is checked for its size and
    sha256. A folder saved before manifests existed is accepted when it is complete: readable config.json and
    tokenizer files, and weights whose length matches their header.
    """
    from ftlearn.files import MANIFEST_FILE, json_problem, manifest_problem, read_manifest, safetensors_problem

    try:
        manifest = read_manifest(folder)
    except ValueError as exc:
        return f"{exc}", None
    if manifest is not None:
        return manifest_problem(folder, manifest), manifest
    if (folder / "adapter_config.json").exists():  # adapters are saved with a manifest, which names their base
        return f"it holds a LoRA adapter but no {MANIFEST_FILE}, which says which base model it needs", None
    for problem in (
        json_problem(folder / "config.json"),
        safetensors_problem(folder / "model.safetensors"),
        _tokenizer_problem(folder),
        json_problem(folder / PREPROCESS_FILE) if (folder / PREPROCESS_FILE).exists() else None,
    ):
        if problem:
            return f"{problem}, as after an interrupted save or a partial copy", None
    return None, None


# ---------------------------------------------------------------- a run started from a saved folder (--init)


def check_init(kind: str, init: str) -> Path | None:
    """Validate a classifier run's `init` before anything loads; the gpt2-lm run folder it names, if any."""
    from ftlearn.models import INITS

    if init in INITS:
        return None
    if kind != "gpt2-cls":
        raise InitError(f"--init {init!r}: choose one of {', '.join(INITS)}.")
    folder = Path(init).expanduser()
    if not folder.is_dir():
        raise InitError(
            f"--init {init}: choose pretrained, random, or the folder of a language-model run "
            f"(`ftlearn finetune gpt2-lm --out {init}` writes one)."
        )
    problem, manifest = folder_problem(folder)
    if problem:
        raise InitError(f"--init {folder}: {problem}. Run `ftlearn finetune gpt2-lm --out {folder}` again.")
    task = saved_task(folder, manifest)
    if task != "gpt2-lm":
        raise InitError(
            f"--init {folder}: that folder holds a {task or 'non-ftlearn'} run, not a GPT-2 language model; "
            f"give the folder of `ftlearn finetune gpt2-lm`."
        )
    return folder


class InitError(ValueError):
    """A classifier run's --init names no usable starting point."""


# ---------------------------------------------------------------- reuse by a later lesson


def run_differences(
    saved: dict,
    *,
    task: str,
    profile: str,
    seed: int,
    init: str,
    recipe: Recipe,
    data_sha256: str,
    model: str | None = None,
) -> list[str]:
    """What makes a saved run (a metrics.json, a run record) another run than this one: [] when it is this run.

    Compared: task, profile, seed, start, recipe (the keys that differ are named) and data (`data.data_fingerprint`);
    given `model` (as `files.display_path` writes it), the pretrained model too: offline MiniLM is not the hub's BERT.
    A run saved before `init` was recorded started from the pretrained weights; one saved before a recipe field
    existed ran with that field's default (a field is added with the default that keeps the old behaviour).
    """
    from dataclasses import MISSING, fields

    from ftlearn.files import display_path

    wanted = {
        "task": task,
        "profile": profile,
        "seed": seed,
        "init": init,
        "data_sha256": data_sha256,
        "recipe": json.loads(json.dumps(recipe.as_dict())),
    }  # fmt: skip  (tuples as lists, as JSON holds them)
    differ = []
    for key, value in wanted.items():
        theirs = saved.get(key, "pretrained" if key == "init" else None)
        if theirs != value and key == "recipe":
            defaults = {f.name: f.default for f in fields(recipe) if f.default is not MISSING}
            theirs = {**json.loads(json.dumps(defaults)), **(theirs or {})}  # fields added since: their defaults
            if theirs == value:
                continue
            keys = sorted(k for k in {*theirs, *value} if theirs.get(k) != value.get(k))
            differ.append(
                "recipe (" + ", ".join(f"{k}: {theirs.get(k)!r} there, {value.get(k)!r} here" for k in keys) + ")"
            )
        elif theirs != value:
            differ.append(key)
    if model is not None and display_path(str(saved.get("model"))) != model:
        differ.append(f"pretrained model ({display_path(str(saved.get('model')))} there, {model} here)")
    return differ


def reuse_problem(
    folder: str | Path,
    *,
    task: str,
    profile: str,
    seed: int,
    recipe: Recipe,
    data_sha256: str,
    model: str | None = None,
) -> str | None:
    """Why a saved run cannot stand in for training `recipe` again (None: it can), e.g. lesson 12's teacher.

    It can when the folder is intact (its manifest checks) and its metrics.json names the same task, profile, seed,
    recipe and data (`ftlearn.data.data_fingerprint`), a pretrained start and, given `model` (as `files.display_path`
    writes it), the same pretrained model: then training again would only repeat the same run.
    """
    folder = Path(folder).expanduser()
    if not (folder / METRICS_FILE).is_file():
        return f"no saved run in {folder.name}/"
    problem, _ = folder_problem(folder)
    if problem:
        return problem
    try:
        metrics = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{METRICS_FILE} cannot be read: {exc}"
    differ = run_differences(metrics, task=task, profile=profile, seed=seed, init="pretrained", recipe=recipe,
                             data_sha256=data_sha256, model=model)  # fmt: skip
    return f"it was trained with another {', '.join(differ)}" if differ else None
