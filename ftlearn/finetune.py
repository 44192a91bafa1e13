"""The course's fine-tuning runs end to end, and the one folder layout they save.

Introduced in notebook 07 (BERT), used again in 09 (GPT-2 language model), 10 (GPT-2 classifier) and 12
(BERT with LoRA or a frozen body, `BertRecipe.method`; a distilled student, `distill_bert`);
`ftlearn finetune bert|gpt2-lm|gpt2-cls` and `ftlearn distill` call the same functions. Every run goes the same way:
    recipe for the profile → data → model → `ftlearn.train.fit` → test → `save_finetuned`
and every run writes the same layout into its folder (`--out`):
    config.json, model.safetensors   the weights (`save_pretrained`, safetensors)
    tokenizer files                  the tokenizer, with a pad token when the model needs one
    ftlearn_preprocess.json          classifiers: how `ftlearn predict` must tokenize new reviews
    metrics.json                     task, model, profile, seed, recipe, train_seconds, history, and the task's metrics
The folder is written next to its destination and renamed into place, so a run killed while saving
leaves the previous folder (or none), never half of one.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftlearn.recipes import BertRecipe, ClassifierRecipe, DistillRecipe, GPT2ClsRecipe, GPT2LMRecipe, Recipe

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from ftlearn.history import History
    from ftlearn.runtime import Profile

PREPROCESS_FILE = "ftlearn_preprocess.json"  # how texts must be tokenized for this model
METRICS_FILE = "metrics.json"


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
    from ftlearn.tokenization import make_collator, make_loader, tokenize_dataset

    train_text, val_text = split_train_val(dsd["train"], recipe.val_fraction, seed)
    encode = {"tokenizer": tokenizer, **recipe.preprocess()}
    train, val, test = (tokenize_dataset(d, **encode) for d in (train_text, val_text, dsd["test"]))
    collator = make_collator(tokenizer)
    eval_size = 2 * recipe.batch_size  # no gradients at evaluation: bigger batches fit
    feeding = {"num_workers": recipe.num_workers, "pin_memory": recipe.loader_pinning(device)}
    shuffled = make_loader(
        train, collator, recipe.batch_size, shuffle=True, group_by_length=recipe.group_by_length, seed=seed, **feeding
    )
    return ClassifierData(
        train=train,
        val=val,
        test=test,
        train_loader=shuffled,
        # evaluation order does not matter for the metrics, so sort by length to waste no padding
        val_loader=make_loader(val, collator, eval_size, group_by_length=True, **feeding),
        test_loader=make_loader(test, collator, eval_size, group_by_length=True, **feeding),
        collator=collator,
    )


# ---------------------------------------------------------------- the one save layout


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
     "chat_template.jinja", PREPROCESS_FILE, METRICS_FILE}
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


def save_finetuned(folder: str | Path, model: Any, tokenizer: Any, recipe: Recipe, metrics: dict | None = None) -> Path:
    """Write model, tokenizer, tokenization settings and metrics.json into `folder`, atomically (notebook 07).

    Everything goes into a temporary sibling, then a manifest (every file's size and sha256, see
    `ftlearn.files`), written last; only then does the folder take the place of a previous one.
    `ftlearn.predict.load_finetuned` checks the manifest before it loads anything.
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
            model.save_pretrained(tmp)  # config.json + model.safetensors
            tokenizer.save_pretrained(tmp)
            if isinstance(recipe, ClassifierRecipe):
                write_json_atomic(tmp / PREPROCESS_FILE, recipe.preprocess())
            if metrics is not None:
                write_json_atomic(tmp / METRICS_FILE, metrics)
            recorded = {key: (metrics or {}).get(key) for key in ("profile", "seed")}
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


# ---------------------------------------------------------------- the runs


@dataclass
class Resume:
    """Checkpoints of a run, and where to resume it from (`ftlearn finetune --checkpoint-every N --resume`).

    `checkpoint_every` optimizer steps, `fit` saves a checkpoint into `checkpoint_dir` (see
    `ftlearn.checkpoints`); `resume_from` is a checkpoint, or a folder of them (the newest is taken), that
    `fit` continues from to exactly the losses of an uninterrupted run.
    """

    checkpoint_every: int | None = None
    checkpoint_dir: str | Path | None = None
    resume_from: str | Path | None = None

    def train_config(self) -> dict:
        """The TrainConfig fields these settings fill."""
        if not self.checkpoint_every:
            return {}
        return {"checkpoint_every": self.checkpoint_every, "checkpoint_dir": str(self.checkpoint_dir)}


def checkpoint_dir_for(out: str | Path) -> Path:
    """Where `ftlearn finetune --out OUT --checkpoint-every N` keeps its checkpoints: OUT.checkpoints, beside OUT."""
    out = Path(out).expanduser()
    return out.with_name(f"{out.name}.checkpoints")


@dataclass
class FinetuneResult:
    """What a run produced: the trained model, its tokenizer, the History, and the metrics it saved.

    Classifiers also return their predicted labels for the test set, in its order, and the true labels,
    for paired comparisons between runs (`ftlearn.metrics.paired_accuracy_difference`, notebook 12).
    """

    model: Any
    tokenizer: Any
    history: History
    metrics: dict
    test_predictions: Any = None
    test_labels: Any = None


def _core_metrics(
    recipe: Recipe, profile: Profile, seed: int, source: Any, model: Any, history: History, device: Any
) -> dict:
    """The metrics.json keys every run writes: what ran, where, and how training went."""
    from ftlearn import distributed
    from ftlearn.models import count_parameters
    from ftlearn.runtime import hardware_summary

    return {
        "task": recipe.kind,
        "model": source.location if source.kind != "hub" else source.requested,
        "model_note": source.note,
        "parameters": count_parameters(model),
        "trainable_parameters": count_parameters(model, trainable_only=True),  # fewer with LoRA or a frozen body
        "profile": profile.name,
        "seed": seed,
        "recipe": recipe.as_dict(),
        "train_seconds": round(history.train_seconds, 1),
        "optimizer_steps": len(history.step),
        "history": history.to_dict(),
        "device": str(device),
        "world_size": distributed.world_size(),  # processes that trained together; global batch = batch_size x this
        "hardware": hardware_summary(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def model_positions_of(model: Any) -> int | None:
    """How many token positions a loaded model reads: GPT-2's n_positions, BERT's max_position_embeddings."""
    config = getattr(model, "config", None)
    positions = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    return positions if isinstance(positions, int) else None


def check_fits(recipe: Recipe, model: Any, source: Any) -> None:
    """Raise SettingError when the recipe's max_length is longer than the loaded model reads (before training).

    The command checks this from config.json before anything loads; a run started from Python is checked here.
    """
    from ftlearn.recipes import SettingError, max_length_problem

    problem = max_length_problem(recipe.max_length, model_positions_of(model), source.location, label="max_length")
    if problem:
        raise SettingError(problem)


def _check_room(out: str | Path | None, model: Any) -> None:
    """Before training: DiskFullError when `out`'s disk cannot hold the saved model (minutes of training lost)."""
    from ftlearn import distributed
    from ftlearn.files import check_free_space

    if out is not None and distributed.is_main_process():
        check_free_space(out, saved_bytes(model))


def _device() -> Any:
    """This process's device: the auto-detected one, this rank's own GPU under DDP."""
    from ftlearn import distributed
    from ftlearn.runtime import pick_device

    device = pick_device()
    distributed.setup(device)  # join the other ranks when launched with several (fit would do it too)
    return distributed.rank_device(device)


def _save(out: str | Path | None, model: Any, tokenizer: Any, recipe: Recipe, metrics: dict) -> None:
    from ftlearn import distributed

    if out is not None and distributed.is_main_process():  # the ranks hold identical weights: one copy
        save_finetuned(out, model, tokenizer, recipe, metrics)


def _classifier_metrics(test: dict, data: ClassifierData, history: History) -> dict:
    return {
        "seconds_per_step": test["seconds_per_step"],
        "test_reviews_per_second": test["reviews_per_second"],
        "accuracy": test["accuracy"],
        "precision": test["precision"],
        "recall": test["recall"],
        "f1": test["f1"],
        "test_loss": test["loss"],
        "confusion_matrix": test["confusion_matrix"],
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "stopped_early": history.stopped_early,
        "best_step": history.best_step,
    }


def _profile(profile: Profile | str) -> Profile:
    from ftlearn.runtime import get_profile

    return get_profile(profile) if isinstance(profile, str) else profile


# ---------------------------------------------------------------- reading a saved folder back, verified


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
    from ftlearn.files import json_problem, manifest_problem, read_manifest, safetensors_problem

    try:
        manifest = read_manifest(folder)
    except ValueError as exc:
        return f"{exc}", None
    if manifest is not None:
        return manifest_problem(folder, manifest), manifest
    for problem in (
        json_problem(folder / "config.json"),
        safetensors_problem(folder / "model.safetensors"),
        _tokenizer_problem(folder),
        json_problem(folder / PREPROCESS_FILE) if (folder / PREPROCESS_FILE).exists() else None,
    ):
        if problem:
            return f"{problem}, as after an interrupted save or a partial copy", None
    return None, None


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


def _finetune_classifier(
    kind: str,
    profile: Profile | str,
    out: str | Path | None,
    seed: int,
    recipe: ClassifierRecipe | None,
    model_name: str | None,
    progress: bool,
    overrides: dict | None,
    resume: Resume | None,
    init: str = "pretrained",
) -> FinetuneResult:
    """BERT or GPT-2 as a sentiment classifier: data, model, `fit` with lesson 02's loss, test, save.

    `init`: "pretrained" (the checkpoint), "random" (its shape, fresh weights), or for GPT-2 the folder of a
    `ftlearn finetune gpt2-lm` run (its review-adapted weights: the ULMFiT chain).
    """
    from ftlearn import distributed
    from ftlearn.data import check_training_labels, imdb_source, load_imdb
    from ftlearn.gpt2_finetune import load_gpt2_classifier
    from ftlearn.models import load_classifier
    from ftlearn.runtime import seed_everything

    start = time.perf_counter()
    check_out(out)  # a bad --out fails now, not after training
    lm_folder = check_init(kind, init)  # and so does a bad --init
    profile = _profile(profile)
    device = _device()  # first: a GPU's loaders pin their batches
    with distributed.quiet_other_ranks():  # under torchrun: one copy of these lines and bars, from rank 0
        seed_everything(seed)
        dsd = load_imdb(profile=profile, seed=seed)
        check_training_labels(dsd["train"], f"the training data in {imdb_source()}")
        seed_everything(seed)  # the new head's random init depends on this
        if kind == "bert":  # BERT's recipe says which pooling the head reads, so it comes first
            recipe = recipe or BertRecipe.for_profile(profile, **(overrides or {}))
            model, tokenizer, source = load_classifier(
                model_name or profile.bert_model, pooling=recipe.pooling, init=init
            )
        else:  # GPT-2's recipe depends on the model's size and context, so it comes after
            name = str(lm_folder) if lm_folder else model_name
            start_from = "pretrained" if lm_folder else init  # an adapted LM folder is a pretrained checkpoint
            model, tokenizer, source = load_gpt2_classifier(profile, name=name, init=start_from)
            recipe = recipe or GPT2ClsRecipe.for_profile(profile, model.config, **(overrides or {}))
        check_fits(recipe, model, source)
        data = prepare_classifier_data(dsd, tokenizer, recipe, seed, device)
    method = getattr(recipe, "method", "full")
    if method != "full":  # notebook 12: LoRA's adapters and the head, or the head alone, are trained
        from ftlearn.lora import apply_method

        apply_method(model, method, recipe.lora_rank, recipe.lora_alpha, recipe.lora_targets, seed)
    init_record = {"init": str(lm_folder) if lm_folder else init}
    return _train_and_save(
        model, tokenizer, recipe, data, profile, seed, source, out, progress, resume, start, extra_metrics=init_record
    )


def _train_and_save(
    model: Any,
    tokenizer: Any,
    recipe: ClassifierRecipe,
    data: ClassifierData,
    profile: Profile,
    seed: int,
    source: Any,
    out: str | Path | None,
    progress: bool,
    resume: Resume | None,
    start: float,
    loss_fn: Any = None,
    extra_metrics: dict | None = None,
) -> FinetuneResult:
    """`fit` a classifier (lesson 02's loss unless `loss_fn`), merge LoRA if any, test, save: every classifier run."""
    from ftlearn.evaluation import evaluate
    from ftlearn.history import StepTimer
    from ftlearn.losses import cross_entropy
    from ftlearn.models import count_parameters
    from ftlearn.pooling import model_pooling
    from ftlearn.runtime import seed_everything
    from ftlearn.train import fit

    device = _device()
    _check_room(out, model)
    seed_everything(seed)  # dropout masks from here on
    resume = resume or Resume()
    cadence = recipe.eval_every_steps(len(data.train_loader))  # the profile's evaluations per epoch
    config = recipe.train_config(progress=progress, eval_every_steps=cadence, **resume.train_config())
    timer = StepTimer()
    history = fit(
        model, data.train_loader, data.val_loader, config, device=device, loss_fn=loss_fn or cross_entropy,
        callbacks=[timer], resume_from=resume.resume_from,
    )  # fmt: skip
    core = _core_metrics(recipe, profile, seed, source, model, history, device)  # counted before any merge
    if getattr(recipe, "method", "full") == "lora":
        from ftlearn.lora import merge_lora

        # merged: a plain model of the base's shape, so the save is the one layout `ftlearn predict` reads
        core["lora_layers_merged"] = merge_lora(model)
        core["saved_parameters"] = count_parameters(model)
    tested = time.perf_counter()
    test = evaluate(model, data.test_loader, device, return_outputs=True)
    tested = time.perf_counter() - tested
    test["seconds_per_step"] = timer.seconds_per_step
    test["reviews_per_second"] = round(len(data.test) / tested, 1)
    metrics = {
        **core,
        **_classifier_metrics(test, data, history),
        **({"pooling": model_pooling(model)} if recipe.kind in ("bert", "distill") else {}),
        **(extra_metrics or {}),
        "precision_mode": history.precision,
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    _save(out, model, tokenizer, recipe, metrics)
    predictions = test["probs"].argmax(axis=-1) if test["in_dataset_order"] else None
    return FinetuneResult(model, tokenizer, history, metrics, predictions, test["labels"])


def finetune_bert(
    profile: Profile | str = "auto",
    out: str | Path | None = None,
    seed: int = 0,
    recipe: BertRecipe | None = None,
    model_name: str | None = None,
    progress: bool = True,
    overrides: dict | None = None,
    resume: Resume | None = None,
    init: str = "pretrained",
) -> FinetuneResult:
    """Notebook 07 in one call (`ftlearn finetune bert`): BERT trained with lessons 02-04's loss and AdamW.

    Under torchrun / accelerate launch every rank runs it, `fit` trains with DDP (notebook 11), and
    only rank 0 writes `out`; `recipe.batch_size` is then per rank.
    """
    return _finetune_classifier("bert", profile, out, seed, recipe, model_name, progress, overrides, resume, init)


def finetune_gpt2_lm(
    profile: Profile | str = "auto",
    out: str | Path | None = None,
    seed: int = 0,
    recipe: GPT2LMRecipe | None = None,
    model_name: str | None = None,
    progress: bool = True,
    overrides: dict | None = None,
    resume: Resume | None = None,
) -> FinetuneResult:
    """Notebook 09 in one call (`ftlearn finetune gpt2-lm`): held-out perplexity, fine-tune on review text, again."""
    from ftlearn import distributed
    from ftlearn.causal_lm import causal_lm_loss, mean_lm_loss, perplexity
    from ftlearn.data import IMDBDataError, imdb_source, load_imdb
    from ftlearn.gpt2_finetune import lm_blocks, lm_loader, load_causal_lm
    from ftlearn.runtime import seed_everything
    from ftlearn.train import fit

    start = time.perf_counter()
    check_out(out)  # a bad --out fails now, not after training
    profile = _profile(profile)
    show = print if distributed.is_main_process() else (lambda *_: None)
    with distributed.quiet_other_ranks():
        seed_everything(seed)
        dsd = load_imdb(profile=profile, seed=seed)
        model, tokenizer, source = load_causal_lm(profile, name=model_name)
    recipe = recipe or GPT2LMRecipe.for_profile(profile, model.config, **(overrides or {}))
    check_fits(recipe, model, source)
    _check_room(out, model)
    train = lm_blocks(dsd["train"], tokenizer, recipe.max_length, recipe.max_train_rows, recipe.sentiment_prefix)
    test = lm_blocks(dsd["test"], tokenizer, recipe.max_length, recipe.max_eval_rows, recipe.sentiment_prefix)
    for split, rows in (("training", train), ("test", test)):
        if len(rows) == 0:  # too little text for one row: refused here rather than by fit's empty loader
            raise IMDBDataError(
                f"the {split} data in {imdb_source()} ({len(dsd['train' if split == 'training' else 'test']):,} "
                f"review(s)) is too short for one row of {recipe.max_length} tokens; add reviews or lower --max-length."
            )
    device = _device()
    model.to(device)
    before = mean_lm_loss(model, test, recipe.batch_size, device)
    show(f"held-out perplexity before fine-tuning: {perplexity(before):.1f}")
    seed_everything(seed)
    loader = lm_loader(train, recipe.batch_size, seed)
    resume = resume or Resume()
    config = recipe.train_config(progress=progress, **resume.train_config())
    history = fit(model, loader, config=config, device=device, loss_fn=causal_lm_loss, resume_from=resume.resume_from)
    after = mean_lm_loss(model, test, recipe.batch_size, device)
    show(
        f"held-out perplexity after fine-tuning:  {perplexity(after):.1f}  ({history.train_seconds:.0f} s of training)"
    )
    metrics = {
        **_core_metrics(recipe, profile, seed, source, model, history, device),
        "train_tokens": int(train.numel()),
        "eval_tokens": int(test.numel()),
        "loss_before": before,
        "loss_after": after,
        "perplexity_before": perplexity(before),
        "perplexity_after": perplexity(after),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    _save(out, model, tokenizer, recipe, metrics)
    return FinetuneResult(model, tokenizer, history, metrics)


def finetune_gpt2_cls(
    profile: Profile | str = "auto",
    out: str | Path | None = None,
    seed: int = 0,
    recipe: GPT2ClsRecipe | None = None,
    model_name: str | None = None,
    progress: bool = True,
    overrides: dict | None = None,
    resume: Resume | None = None,
    init: str = "pretrained",
) -> FinetuneResult:
    """Notebook 10 in one call (`ftlearn finetune gpt2-cls`): GPT-2 with a classification head, fully fine-tuned."""
    return _finetune_classifier("gpt2-cls", profile, out, seed, recipe, model_name, progress, overrides, resume, init)


def distill_bert(
    teacher: Any,
    profile: Profile | str = "auto",
    out: str | Path | None = None,
    seed: int = 0,
    recipe: DistillRecipe | None = None,
    model_name: str | None = None,
    progress: bool = True,
    overrides: dict | None = None,
    teacher_info: dict | None = None,
) -> FinetuneResult:
    """Notebook 12 in one call (`ftlearn distill`): a BERT student of a few layers, taught by a fine-tuned teacher.

    `teacher` is a fine-tuned BERT classifier in memory; `ftlearn.predict.load_teacher` loads one from a folder,
    with `teacher_info` (its folder, accuracy and pretrained checkpoint, recorded in metrics.json). The student is
    the first `recipe.student_layers` layers of `model_name` (default: the teacher's checkpoint, else the profile's
    BERT), trained through `fit` with `ftlearn.distill.distillation_loss`; with soft_weight 0 it learns from the
    labels alone and the teacher is not consulted.
    """
    from functools import partial

    from ftlearn import distributed
    from ftlearn.data import check_training_labels, imdb_source, load_imdb
    from ftlearn.distill import distillation_loss, make_student, with_teacher_logits
    from ftlearn.models import count_parameters
    from ftlearn.runtime import seed_everything
    from ftlearn.tokenization import make_loader

    start = time.perf_counter()
    check_out(out)
    profile = _profile(profile)
    recipe = recipe or DistillRecipe.for_profile(profile, **(overrides or {}))
    info = teacher_info or {}
    with distributed.quiet_other_ranks():
        seed_everything(seed)
        dsd = load_imdb(profile=profile, seed=seed)
        check_training_labels(dsd["train"], f"the training data in {imdb_source()}")
        seed_everything(seed)  # the student's new head
        name = model_name or info.get("checkpoint") or profile.bert_model
        model, tokenizer, source = make_student(name, recipe.student_layers, recipe.pooling)
        check_fits(recipe, model, source)
        if teacher.config.vocab_size != model.config.vocab_size:
            raise ValueError(
                f"the teacher's vocabulary ({teacher.config.vocab_size:,} tokens) is not the student's "
                f"({model.config.vocab_size:,}): give the student the teacher's checkpoint (--model)."
            )
        data = prepare_classifier_data(dsd, tokenizer, recipe, seed)
    device = _device()
    if recipe.soft_weight > 0:
        train = with_teacher_logits(teacher, data.train, data.collator, 2 * recipe.batch_size, device)
        data.train_loader = make_loader(
            train, data.collator, recipe.batch_size, shuffle=True, group_by_length=recipe.group_by_length, seed=seed
        )
    loss_fn = partial(distillation_loss, temperature=recipe.temperature, soft_weight=recipe.soft_weight)
    extra = {
        "teacher": info.get("teacher"),  # its folder, when it was loaded from one
        "teacher_parameters": count_parameters(teacher),
        "teacher_accuracy": info.get("accuracy"),
    }
    return _train_and_save(
        model, tokenizer, recipe, data, profile, seed, source, out, progress, None, start, loss_fn, extra
    )


# `ftlearn finetune TARGET` calls RUNS[TARGET](profile, out=, seed=, model_name=, overrides=, resume=): the same
# signature for every run; `overrides` change the recipe that the profile (and, for GPT-2, the model) gives.
RUNS = {"bert": finetune_bert, "gpt2-lm": finetune_gpt2_lm, "gpt2-cls": finetune_gpt2_cls}
