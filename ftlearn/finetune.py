"""The course's fine-tuning runs end to end: one skeleton, `run`, and four tasks.

Introduced in notebook 07 (BERT), used again in 09 (GPT-2 language model), 10 (GPT-2 classifier) and 12
(BERT with LoRA or a frozen body, `BertRecipe.method`; a distilled student, `distill_bert`);
`ftlearn finetune bert|gpt2-lm|gpt2-cls|distill` (`ftlearn distill` is distill's other name) call the same functions.
Every run goes the same way:
    check the output → profile → seed → data and model (the task's) → method → `ftlearn.train.fit` → test → save
A task (`TASKS`) gives only what differs: how its model loads (`ftlearn.bert`, `ftlearn.gpt2`, `ftlearn.distill`),
its data, its loss and its test metrics. Every run saves the one folder layout of `ftlearn.runfolder`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

# ClassifierData, prepare_classifier_data, ... and the run folder (now in ftlearn.bert, ftlearn.runfolder) are
# re-exported: lessons, scripts and tests import them from here
from ftlearn.bert import ClassifierData, prepare_classifier_data, split_train_val  # noqa: F401
from ftlearn.recipes import BertRecipe, DistillRecipe, GPT2ClsRecipe, GPT2LMRecipe, Recipe
from ftlearn.runfolder import (  # noqa: F401
    METRICS_FILE,
    PREPROCESS_FILE,
    SAVED_NAMES,
    InitError,
    check_init,
    check_out,
    folder_problem,
    foreign_files,
    is_run_folder,
    read_json_object,
    save_finetuned,
    saved_bytes,
    saved_task,
)

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from ftlearn.history import History
    from ftlearn.runtime import Profile

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
    test_probs: Any = None  # classifiers: (N, classes) probabilities, in the test set's order


def core_metrics(
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


def _save(out: str | Path | None, model: Any, tokenizer: Any, recipe: Recipe, metrics: dict, base: Any) -> None:
    from ftlearn import distributed

    if out is not None and distributed.is_main_process():  # the ranks hold identical weights: one copy
        save_finetuned(out, model, tokenizer, recipe, metrics, base=base)


def _classifier_metrics(test: dict, data: ClassifierData, history: History) -> dict:
    # two classes: precision, recall and F1 of class 1; more: their macro averages (no class is "the positive")
    scores = ("precision", "recall", "f1") if "f1" in test else ("macro_precision", "macro_recall")
    return {
        "seconds_per_step": test["seconds_per_step"],
        "test_reviews_per_second": test["reviews_per_second"],
        "accuracy": test["accuracy"],
        **{key: test[key] for key in scores},
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


# ---------------------------------------------------------------- the one run skeleton


@dataclass
class RunState:
    """What the steps of one run share: `run` fills it in order, a task's hooks read it and add their part."""

    task: Task
    profile: Profile
    seed: int
    recipe: Recipe | None
    overrides: dict
    model_name: str | None
    init: str
    lm_folder: Path | None  # gpt2-cls --init DIR: the language-model run its weights start from
    device: Any
    progress: bool
    teacher: Any = None  # distillation: the fine-tuned teacher in memory
    teacher_info: dict = field(default_factory=dict)
    merge: bool = True  # a LoRA run: merged before it is tested and saved (False: saved as an adapter)
    files: Any = None  # your own data (`ftlearn.labelled.LabelledFiles`); None: IMDB
    dsd: Any = None  # the DatasetDict: IMDB, or the files' (train, test), its label a ClassLabel of the class names
    model: Any = None
    tokenizer: Any = None
    source: Any = None
    data: Any = None  # what `task.data` made: ClassifierData, or the LM's rows
    measured: dict = field(default_factory=dict)  # figures taken before training (the LM's held-out loss)
    predictions: tuple = (None, None, None)  # classifiers: predicted and true test labels, probabilities, in order

    @property
    def classes(self) -> list[str]:
        """The class names (class i is the i-th), from the data's ClassLabel (IMDB: neg, pos)."""
        return list(self.dsd["train"].features["label"].names)


@dataclass(frozen=True)
class Task:
    """One kind of run: where its model and data come from, its loss, its test. `run` does everything else.

    load(state) -> (model, tokenizer, source); data(state) -> the splits; loaders(state) -> (train, val) loaders,
    made once the run is seeded for training; loss(state) -> the loss function `fit` minimises; test(state, history,
    timer) -> the task's own metrics.json figures. `before_fit(state)`, if any, runs just before training.
    """

    kind: str
    recipe_class: type
    load: Callable[[RunState], tuple[Any, Any, Any]]
    data: Callable[[RunState], Any]
    loaders: Callable[[RunState], tuple[Any, Any]]
    loss: Callable[[RunState], Any]
    test: Callable[[RunState, History, Any], dict]
    recipe_from_model: bool = False  # GPT-2's recipe depends on the model's size and context: made after loading
    labelled: bool = True  # training needs both classes (a classifier, a student)
    before_fit: Callable[[RunState], None] | None = None


def run(
    task: str,
    profile: Profile | str = "auto",
    out: str | Path | None = None,
    seed: int = 0,
    recipe: Recipe | None = None,
    resume: Resume | None = None,
    init: str = "pretrained",
    method: str | None = None,
    *,
    model_name: str | None = None,
    progress: bool = True,
    overrides: dict | None = None,
    teacher: Any = None,
    teacher_info: dict | None = None,
    data: Any = None,
    merge: bool = False,
) -> FinetuneResult:
    """Every fine-tuning run, the same way: check the output, resolve the profile, seed, load data and model, apply
    the method, fit, test, save (notebooks 07, 09, 10, 12; `ftlearn finetune TARGET`).

    `task` is a key of `TASKS`. `recipe` replaces the one the profile gives (then `overrides` and `method` are
    ignored); `method` ("full", "lora", "head") is the classifiers' `BertRecipe.method`. `init`: "pretrained", "random",
    or for gpt2-cls the folder of a gpt2-lm run. Under torchrun every rank runs it and only rank 0 writes `out`.
    `data` (`ftlearn.labelled.LabelledFiles`, classifiers only) trains on your own labelled files instead of IMDB,
    with as many classes as they hold. A LoRA run (notebook 12) is saved as an adapter (`ftlearn.adapter`: A, B and
    the head, in peft's format; the model returned keeps its LoRA layers), or with `merge` merged into the weights
    (`ftlearn.lora.merge_lora`) before it is tested and saved, as the whole model. A save choice, not part of the
    recipe: the run trains the same either way. A run whose base cannot be loaded again (a distilled student, random
    weights) is always merged.
    """
    from ftlearn import distributed
    from ftlearn.data import check_training_labels, data_fingerprint, imdb_source, load_imdb
    from ftlearn.history import StepTimer
    from ftlearn.labelled import load_labelled
    from ftlearn.runtime import seed_everything
    from ftlearn.train import fit

    spec = TASKS[task]
    if data is not None and spec.data is not _classifier_data:
        raise ValueError(
            f"the {task} run trains on IMDB only; your own labelled files train a classifier (bert, gpt2-cls)."
        )
    start = time.perf_counter()
    check_out(out)  # a bad --out fails now, not after training
    lm_folder = check_init(task, init)  # and so does a bad --init
    overrides = {**(overrides or {}), **({"method": method} if method else {})}
    profile = _profile(profile)
    state = RunState(
        spec,
        profile,
        seed,
        recipe,
        overrides,
        model_name,
        init,
        lm_folder,
        _device(),
        progress,
        teacher,
        teacher_info or {},
    )  # fmt: skip  (the device first: a GPU's loaders pin their batches)
    with distributed.quiet_other_ranks():  # under torchrun: one copy of these lines and bars, from rank 0
        seed_everything(seed)
        state.files = data
        if data is not None:  # checked as it loads: classes, counts, test labels; the counts printed
            state.dsd = load_labelled(data, profile=profile, seed=seed)
        else:
            state.dsd = load_imdb(profile=profile, seed=seed)
        if spec.labelled and data is None:
            check_training_labels(state.dsd["train"], f"the training data in {imdb_source()}")
        seed_everything(seed)  # a new head's random init depends on this
        if not spec.recipe_from_model:  # BERT's recipe says which pooling the head reads, so it comes first
            state.recipe = state.recipe or spec.recipe_class.for_profile(profile, **overrides)
        state.model, state.tokenizer, state.source = spec.load(state)
        if spec.recipe_from_model:
            state.recipe = state.recipe or spec.recipe_class.for_profile(profile, state.model.config, **overrides)
        check_fits(state.recipe, state.model, state.source)
        state.data = spec.data(state)
    recipe = state.recipe
    if getattr(recipe, "method", "full") != "full":  # notebook 12: LoRA's adapters and the head, or the head alone
        from ftlearn.lora import apply_method

        apply_method(state.model, recipe.method, recipe.lora_rank, recipe.lora_alpha, recipe.lora_targets, seed)
    state.merge = merge or not _adapter_possible(state)
    _check_room(out, state.model)
    if spec.before_fit:
        spec.before_fit(state)
    seed_everything(seed)  # dropout masks (and the LM's batch order) from here on
    train_loader, val_loader = spec.loaders(state)
    resume = resume or Resume()
    cadence = getattr(recipe, "eval_every_steps", None)  # the profile's evaluations per epoch (classifiers)
    every = cadence(len(train_loader)) if cadence and val_loader is not None else None
    config = recipe.train_config(progress=progress, **({"eval_every_steps": every} if every else {}))
    config = replace(config, **resume.train_config())
    timer = StepTimer()
    history = fit(
        state.model, train_loader, val_loader, config, device=state.device, loss_fn=spec.loss(state),
        callbacks=[timer], resume_from=resume.resume_from, eval_fn=getattr(state.data, "eval_fn", None),
    )  # fmt: skip
    core = core_metrics(recipe, profile, seed, state.source, state.model, history, state.device)  # before a merge
    core["data_sha256"] = data_fingerprint(state.dsd)  # which reviews: a lesson reuses a run only on the same ones
    metrics = {**core, **spec.test(state, history, timer), "total_seconds": round(time.perf_counter() - start, 1)}
    adapter = getattr(recipe, "method", "full") == "lora" and not state.merge
    _save(out, state.model, state.tokenizer, recipe, metrics, base=state.source if adapter else None)
    return FinetuneResult(state.model, state.tokenizer, history, metrics, *state.predictions)


def _adapter_possible(state: RunState) -> bool:
    """True when a LoRA run can be saved as an adapter: a BERT classifier on the pretrained checkpoint it loaded.

    An adapter is applied to a base loaded again later; a student (layers cut from a checkpoint) or random weights
    cannot be, so those runs are merged, saying so.
    """
    if getattr(state.recipe, "method", "full") != "lora":
        return True  # nothing to merge either way
    if state.task.kind == "bert" and state.init == "pretrained":
        return True
    from ftlearn import distributed

    if distributed.is_main_process():
        why = "random weights" if state.init == "random" else "a student cut from a checkpoint"
        print(f"LoRA on {why}: saved merged, since an adapter needs a pretrained base it can be loaded on again.")
    return False


# ---------------------------------------------------------------- the classifiers: BERT, GPT-2, a distilled student


def _load_bert(state: RunState) -> tuple[Any, Any, Any]:
    from ftlearn.bert import load_bert_classifier

    return load_bert_classifier(
        state.profile, state.model_name, pooling=state.recipe.pooling, init=state.init, label_names=state.classes
    )


def _load_gpt2_classifier(state: RunState) -> tuple[Any, Any, Any]:
    from ftlearn.gpt2 import load_gpt2_classifier

    name = str(state.lm_folder) if state.lm_folder else state.model_name
    start_from = "pretrained" if state.lm_folder else state.init  # an adapted LM folder is a pretrained checkpoint
    return load_gpt2_classifier(state.profile, name=name, init=start_from, label_names=state.classes)


def _load_student(state: RunState) -> tuple[Any, Any, Any]:
    from ftlearn.distill import make_student

    name = state.model_name or state.teacher_info.get("checkpoint") or state.profile.bert_model
    from ftlearn.recipes import SettingError

    model, tokenizer, source = make_student(name, state.recipe.student_layers, state.recipe.pooling, init=state.init)
    if state.teacher.config.vocab_size != model.config.vocab_size:
        raise SettingError(
            f"the teacher's vocabulary ({state.teacher.config.vocab_size:,} tokens) is not the student's "
            f"({model.config.vocab_size:,}): give the student the teacher's checkpoint (--model)."
        )
    return model, tokenizer, source


def _classifier_data(state: RunState) -> ClassifierData:
    if state.files is not None:  # your own text: how much of it the model will read, before any training
        from ftlearn import distributed
        from ftlearn.labelled import describe_reading, reading_report

        report = reading_report(state.dsd["train"]["text"], state.tokenizer, state.recipe.max_length)
        state.measured["reading"] = report
        if distributed.is_main_process():
            print(describe_reading(report))
    return prepare_classifier_data(state.dsd, state.tokenizer, state.recipe, state.seed, state.device)


def _classifier_loaders(state: RunState) -> tuple[Any, Any]:
    return state.data.train_loader, state.data.val_loader


def _cross_entropy(state: RunState) -> Any:
    from ftlearn.losses import cross_entropy

    if getattr(state.recipe, "class_weights", "none") == "balanced":
        from functools import partial

        import torch

        from ftlearn import distributed
        from ftlearn.labelled import class_weights

        weights = class_weights(state.data.train["label"], len(state.classes))
        state.measured["class_weights"] = dict(zip(state.classes, weights, strict=True))
        if distributed.is_main_process():
            shown = ", ".join(f"{name} {w:.2f}" for name, w in state.measured["class_weights"].items())
            print(f"class weights (balanced): {shown}")
        return partial(cross_entropy, weight=torch.tensor(weights))
    return cross_entropy  # lesson 02's


def _with_teacher_logits(state: RunState) -> None:
    """The teacher's logits for the training set, computed once, travel in the batches (notebook 12)."""
    from ftlearn.bert import train_loader
    from ftlearn.distill import with_teacher_logits

    recipe, data = state.recipe, state.data
    if recipe.soft_weight > 0:  # with labels alone the teacher is not consulted
        train = with_teacher_logits(state.teacher, data.train, data.collator, 2 * recipe.batch_size, state.device)
        data.train_loader = train_loader(train, data.collator, recipe, state.seed, state.device)


def _distillation_loss(state: RunState) -> Any:
    from functools import partial

    from ftlearn.distill import distillation_loss

    return partial(distillation_loss, temperature=state.recipe.temperature, soft_weight=state.recipe.soft_weight)


def _classifier_test(state: RunState, history: History, timer: Any) -> dict:
    """Merge LoRA if the run says so, then accuracy, F1, the confusion matrix and speed on the test set."""
    from ftlearn.evaluation import evaluate
    from ftlearn.models import count_parameters
    from ftlearn.pooling import model_pooling

    model, data, recipe = state.model, state.data, state.recipe
    merged = {}
    if getattr(recipe, "method", "full") == "lora" and state.merge:
        from ftlearn.lora import merge_lora

        # merged: a plain model of the base's shape, saved whole (an adapter is saved from the LoRA layers instead)
        merged = {"lora_layers_merged": merge_lora(model), "saved_parameters": count_parameters(model)}
    tested = time.perf_counter()
    test = evaluate(model, data.test_loader, state.device, return_outputs=True)
    tested = time.perf_counter() - tested
    test["seconds_per_step"] = timer.seconds_per_step
    test["reviews_per_second"] = round(len(data.test) / tested, 1)
    ordered = test["in_dataset_order"]
    state.predictions = (
        test["probs"].argmax(axis=-1) if ordered else None,
        test["labels"],
        test["probs"] if ordered else None,
    )
    classes = _class_figures(state, test)
    if recipe.kind == "distill":
        extra = {
            "teacher": state.teacher_info.get("teacher"),  # its folder, when it was loaded from one
            "teacher_parameters": count_parameters(state.teacher),
            "teacher_accuracy": state.teacher_info.get("accuracy"),
            "init": state.init,  # the student's layers: cut from the pretrained checkpoint, or drawn afresh
        }
    else:
        extra = {"init": str(state.lm_folder) if state.lm_folder else state.init}
    return {
        **merged,
        **_classifier_metrics(test, data, history),
        **({"pooling": model_pooling(model)} if recipe.kind in ("bert", "distill") else {}),
        **extra,
        **classes,
        "precision_mode": history.precision,
    }


def _class_figures(state: RunState, test: dict) -> dict:
    """Per-class precision, recall and F1, the macro F1, the class names and counts; the data, when it is your own."""
    import numpy as np

    from ftlearn.metrics import class_report

    names = state.classes
    report = class_report(test["labels"], np.asarray(test["probs"]).argmax(axis=-1), names)
    train_labels = list(state.data.train["label"])
    figures = {
        "classes": names,
        "macro_f1": report["macro_f1"],
        "per_class": report["per_class"],
        "train_class_counts": {name: train_labels.count(i) for i, name in enumerate(names)},
    }
    if state.files is not None:
        figures["data"] = state.files.as_dict()
        figures.update({key: state.measured[key] for key in ("reading", "class_weights") if key in state.measured})
    elif "class_weights" in state.measured:
        figures["class_weights"] = state.measured["class_weights"]
    return figures


# ---------------------------------------------------------------- GPT-2 as a language model


@dataclass
class LMRows:
    """The language-model run's rows (N, T): training, validation (only when `val_rows` asks) and test."""

    train: Any
    val: Any
    test: Any
    batch_size: int

    def eval_fn(self, model: Any, loader: Any, device: Any, shard: bool = False) -> dict:
        """`fit`'s evaluation of a language model: the mean per-token loss on the validation rows."""
        from ftlearn.causal_lm import mean_lm_loss

        training = model.training  # mean_lm_loss turns dropout off; fit goes on training after it
        try:
            return {"loss": mean_lm_loss(model, self.val, self.batch_size, device)}
        finally:
            model.train(training)


def _load_causal_lm(state: RunState) -> tuple[Any, Any, Any]:
    from ftlearn.gpt2 import load_causal_lm

    return load_causal_lm(state.profile, name=state.model_name, init=state.init)


def _lm_data(state: RunState) -> LMRows:
    """Review text as rows of max_length tokens. Validation rows, when asked for, come after the training rows
    in the same stream of training text, so the training rows are the same with or without them."""
    from ftlearn.data import IMDBDataError, imdb_source
    from ftlearn.gpt2 import lm_blocks

    recipe, dsd, tokenizer = state.recipe, state.dsd, state.tokenizer
    n_val = recipe.val_rows or 0
    wanted = None if recipe.max_train_rows is None else recipe.max_train_rows + n_val
    rows = lm_blocks(dsd["train"], tokenizer, recipe.max_length, wanted, recipe.sentiment_prefix)
    n_train = len(rows) - n_val if recipe.max_train_rows is None else min(recipe.max_train_rows, len(rows) - n_val)
    train, val = rows[: max(n_train, 0)], (rows[n_train : n_train + n_val] if n_val else None)
    test = lm_blocks(dsd["test"], tokenizer, recipe.max_length, recipe.max_eval_rows, recipe.sentiment_prefix)
    for split, part, source in (("training", train, "train"), ("validation", val, "train"), ("test", test, "test")):
        if part is not None and len(part) == 0:  # too little text for one row: refused here, not by fit's empty loader
            raise IMDBDataError(
                f"the {split} data in {imdb_source()} ({len(dsd[source]):,} review(s)) is too short for "
                f"{'--val-rows ' + str(n_val) + ' and ' if split != 'test' and n_val else ''}one row of "
                f"{recipe.max_length} tokens; add reviews or lower --max-length."
            )
    return LMRows(train, val, test, recipe.batch_size)


def _lm_before(state: RunState) -> None:
    """The held-out loss before fine-tuning, the baseline the lesson compares with."""
    from ftlearn import distributed
    from ftlearn.causal_lm import mean_lm_loss, perplexity

    state.model.to(state.device)
    before = mean_lm_loss(state.model, state.data.test, state.recipe.batch_size, state.device)
    if distributed.is_main_process():
        print(f"held-out perplexity before fine-tuning: {perplexity(before):.1f}")
    state.measured["loss_before"] = before


def _lm_loaders(state: RunState) -> tuple[Any, Any]:
    from ftlearn.gpt2 import lm_loader

    rows = state.data
    val = None if rows.val is None else lm_loader(rows.val, state.recipe.batch_size, state.seed, shuffle=False)
    return lm_loader(rows.train, state.recipe.batch_size, state.seed), val


def _causal_lm_loss(state: RunState) -> Any:
    from ftlearn.causal_lm import causal_lm_loss

    return causal_lm_loss  # lesson 09's


def _lm_test(state: RunState, history: History, timer: Any) -> dict:
    """The held-out perplexity after fine-tuning, beside the one before."""
    from ftlearn import distributed
    from ftlearn.causal_lm import mean_lm_loss, perplexity

    rows, before = state.data, state.measured["loss_before"]
    after = mean_lm_loss(state.model, rows.test, state.recipe.batch_size, state.device)
    if distributed.is_main_process():
        print(
            f"held-out perplexity after fine-tuning:  {perplexity(after):.1f}  "
            f"({history.train_seconds:.0f} s of training)"
        )
    validation = {}
    if rows.val is not None:
        validation = {
            "val_tokens": int(rows.val.numel()),
            "stopped_early": history.stopped_early,
            "best_step": history.best_step,
        }
    return {
        "train_tokens": int(rows.train.numel()),
        "eval_tokens": int(rows.test.numel()),
        **validation,
        "loss_before": before,
        "loss_after": after,
        "perplexity_before": perplexity(before),
        "perplexity_after": perplexity(after),
        "init": state.init,
    }


TASKS = {
    "bert": Task(
        "bert", BertRecipe, _load_bert, _classifier_data, _classifier_loaders, _cross_entropy, _classifier_test,
    ),
    "gpt2-lm": Task(
        "gpt2-lm", GPT2LMRecipe, _load_causal_lm, _lm_data, _lm_loaders, _causal_lm_loss, _lm_test,
        recipe_from_model=True, labelled=False, before_fit=_lm_before,
    ),
    "gpt2-cls": Task(
        "gpt2-cls", GPT2ClsRecipe, _load_gpt2_classifier, _classifier_data, _classifier_loaders, _cross_entropy,
        _classifier_test, recipe_from_model=True,
    ),
    "distill": Task(
        "distill", DistillRecipe, _load_student, _classifier_data, _classifier_loaders, _distillation_loss,
        _classifier_test, before_fit=_with_teacher_logits,
    ),
}  # fmt: skip


# ---------------------------------------------------------------- the lessons' entry points (and the command's)


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
    data: Any = None,
    merge: bool = False,
) -> FinetuneResult:
    """Notebook 07 in one call (`ftlearn finetune bert`): BERT trained with lessons 02-04's loss and AdamW.

    Under torchrun / accelerate launch every rank runs it, `fit` trains with DDP (notebook 11), and
    only rank 0 writes `out`; `recipe.batch_size` is then per rank. `data`: your own labelled files
    (`ftlearn.labelled.LabelledFiles`, `ftlearn finetune bert --train FILE`) instead of IMDB. A LoRA run (notebook
    12, `recipe.method == "lora"`) saves its adapter in peft's format; `merge=True` (`--merge`) saves it merged.
    """
    return run("bert", profile, out, seed, recipe, resume, init, None, model_name=model_name, progress=progress,
               overrides=overrides, data=data, merge=merge)  # fmt: skip


def finetune_gpt2_lm(
    profile: Profile | str = "auto",
    out: str | Path | None = None,
    seed: int = 0,
    recipe: GPT2LMRecipe | None = None,
    model_name: str | None = None,
    progress: bool = True,
    overrides: dict | None = None,
    resume: Resume | None = None,
    init: str = "pretrained",
) -> FinetuneResult:
    """Notebook 09 in one call (`ftlearn finetune gpt2-lm`): held-out perplexity, fine-tune on review text, again.

    With `val_rows` in the recipe (`--val-rows N`), N rows after the training rows are held out for validation:
    the best weights are kept and `patience` stops early; the training rows stay the same.
    """
    return run("gpt2-lm", profile, out, seed, recipe, resume, init, None, model_name=model_name, progress=progress,
               overrides=overrides)  # fmt: skip


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
    data: Any = None,
) -> FinetuneResult:
    """Notebook 10 in one call (`ftlearn finetune gpt2-cls`): GPT-2 with a classification head, fully fine-tuned.

    `data`: your own labelled files (`ftlearn.labelled.LabelledFiles`, `--train FILE`) instead of IMDB.
    """
    return run("gpt2-cls", profile, out, seed, recipe, resume, init, None, model_name=model_name, progress=progress,
               overrides=overrides, data=data)  # fmt: skip


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
    resume: Resume | None = None,
    init: str = "pretrained",
) -> FinetuneResult:
    """Notebook 12 in one call (`ftlearn finetune distill`): a BERT student of a few layers, taught by a teacher.

    `teacher` is a fine-tuned BERT classifier in memory; `ftlearn.predict.load_teacher` loads one from a folder,
    with `teacher_info` (its folder, accuracy and pretrained checkpoint, recorded in metrics.json). The student is
    the first `recipe.student_layers` layers of `model_name` (default: the teacher's checkpoint, else the profile's
    BERT), trained through `fit` with `ftlearn.distill.distillation_loss`; with soft_weight 0 it learns from the
    labels alone and the teacher is not consulted. `init="random"`: the student's layers start from fresh weights.
    """
    return run("distill", profile, out, seed, recipe, resume, init, None, model_name=model_name, progress=progress,
               overrides=overrides, teacher=teacher, teacher_info=teacher_info)  # fmt: skip


# `ftlearn finetune TARGET` calls RUNS[TARGET](profile=, out=, seed=, model_name=, overrides=, resume=, init=), by
# keyword: the same signature for every target, and distill's teacher= and teacher_info= besides (the classifiers
# also take data=, your own files, `--train FILE`; bert merge=, a LoRA run saved merged, `--merge`); `overrides` change
# the recipe that the profile (and, for GPT-2, the model) gives.
RUNS = {"bert": finetune_bert, "gpt2-lm": finetune_gpt2_lm, "gpt2-cls": finetune_gpt2_cls, "distill": distill_bert}


def expected_model(task: str, profile: Profile | str) -> str:
    """The pretrained model a run of `task` in `profile` would start from, as its metrics.json names it; loads nothing.

    A saved run or a run record made from another model (offline MiniLM vs `bert-base-uncased` from the hub) is not
    this run, whatever its recipe.
    """
    from ftlearn.files import display_path
    from ftlearn.models import locate_model
    from ftlearn.offline_gpt2 import build_for_profile

    profile = _profile(profile)
    family = "gpt2" if task.startswith("gpt2") else "bert"
    name = profile.gpt2_model if family == "gpt2" else profile.bert_model
    source = locate_model(family, name, build=build_for_profile(profile.name) if family == "gpt2" else None)
    return display_path(source.location if source.kind != "hub" else source.requested)


def reuse_or_run(
    task: str,
    profile: Profile | str,
    out: str | Path,
    seed: int = 0,
    overrides: dict | None = None,
    progress: bool = True,
) -> tuple[Path, dict]:
    """The run folder `out`, holding this run: reused when it already does, else trained now by `run` and saved there.

    A later lesson's way to an earlier lesson's model (lesson 12's teacher is lesson 07's BERT): the folder is reused
    when it is intact and was trained with the same task, profile, seed, recipe and reviews
    (`runfolder.reuse_problem`); otherwise the run is made with that recipe. Prints which; returns the folder and its
    metrics.json.
    """
    from ftlearn.data import data_fingerprint, load_imdb
    from ftlearn.files import display_path
    from ftlearn.runfolder import reuse_problem

    spec, profile, out = TASKS[task], _profile(profile), Path(out).expanduser()
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    problem = f"no saved run in {display_path(out)}"
    if (out / METRICS_FILE).is_file():
        recipe = spec.recipe_class.for_profile(profile, **overrides)
        if spec.recipe_from_model:  # GPT-2's recipe depends on the model's size: the saved one has the base's shape
            from transformers import AutoConfig

            recipe = spec.recipe_class.for_profile(profile, AutoConfig.from_pretrained(out), **overrides)
        dsd = load_imdb(profile=profile, seed=seed, verbose=False)
        problem = reuse_problem(out, task=task, profile=profile.name, seed=seed, recipe=recipe,
                                data_sha256=data_fingerprint(dsd), model=expected_model(task, profile))  # fmt: skip
    if problem is None:
        print(f"Reusing the {task} run saved in {display_path(out)}: the same recipe, seed and reviews as this run.")
        metrics = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
        if "n_train" not in metrics and hasattr(recipe, "val_fraction"):  # a lesson's own save: count as the run does
            from ftlearn.bert import split_train_val

            train_text, val_text = split_train_val(dsd["train"], recipe.val_fraction, seed)
            metrics.update(n_train=len(train_text), n_val=len(val_text))
        return out, metrics
    print(f"Training the {task} run ({problem}); it is saved in {display_path(out)} for the next time.")
    result = run(task, profile, out, seed, overrides=overrides, progress=progress)
    return out, result.metrics
