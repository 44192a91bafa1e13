"""Checks for the Trainer exercises (solutions/08_bert_trainer): compute_metrics, TrainingArguments, early stopping.

`compute_metrics` is compared with `ftlearn.metrics.classification_report` (what notebook 08 reports);
`TrainingArguments` with the mapping of notebook 08's section 3, field by field; the early-stopping callback
with the rule of `ftlearn.train.fit` (and of transformers' `EarlyStoppingCallback`): stop once `patience`
evaluations in a row have not lowered the best validation loss.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from ftlearn.checks.core import CheckResult, Mistake, check, close, exercise

METRICS = ("accuracy", "precision", "recall", "f1")


# ---- compute_metrics ----------------------------------------------------------------------------


def _eval_preds() -> list[tuple]:
    import numpy as np
    from transformers import EvalPrediction

    g = np.random.default_rng(0)
    cases = []
    for n, scale, shift in ((12, 2.0, 0.0), (9, 1.0, 1.5), (20, 3.0, -0.5)):
        # logits in which both classes often score above 0 (or below), so thresholds and argmax disagree
        logits = (g.normal(size=(n, 2)) * scale + shift).astype(np.float32)
        labels = g.integers(0, 2, size=n)
        cases.append((EvalPrediction(predictions=logits, label_ids=labels),))
    return cases


def _metrics(labels: Any, preds: Any) -> dict:
    from ftlearn.metrics import classification_report

    report = classification_report(labels, preds)
    return {k: report[k] for k in METRICS}


def _cm_ref(eval_pred: Any) -> dict:
    import numpy as np

    return _metrics(eval_pred.label_ids, np.argmax(eval_pred.predictions, axis=-1))


def _has_metrics(got: Any, want: dict) -> bool:
    """Every key of `want` is in `got` with a close value (extra keys are allowed: the Trainer logs them too)."""
    return isinstance(got, dict) and all(k in got and close(got[k], want[k], rtol=1e-6) for k in want)


@exercise()
def check_compute_metrics(fn: Callable) -> CheckResult:
    """Check `fn(eval_pred)` -> {accuracy, precision, recall, f1} from the logits and labels (notebook 08)."""
    import numpy as np

    return check(
        "compute_metrics",
        fn,
        _cm_ref,
        _eval_preds(),
        compare=_has_metrics,
        mistakes=[
            Mistake(
                lambda p: {f"eval_{k}": v for k, v in _cm_ref(p).items()},
                "return plain names (`accuracy`, ...): the Trainer adds the `eval_` prefix itself.",
                kind="convention",
            ),
            Mistake(
                lambda p: _metrics(p.label_ids, (p.predictions[:, 1] > 0.5).astype(int)),
                "a logit is not a probability: with two logits per review the prediction is the larger one, "
                "`np.argmax(logits, axis=-1)`.",
            ),
            Mistake(
                lambda p: _metrics(p.label_ids, (p.predictions[:, 1] > 0).astype(int)),
                "the positive logit alone does not decide: the prediction is the class with the larger logit, "
                "`np.argmax(logits, axis=-1)`.",
            ),
            Mistake(
                lambda p: _metrics(np.argmax(p.predictions, axis=-1), p.label_ids),
                "precision and recall are swapped: pass the true labels first and the predictions second.",
                kind="order",
            ),
            Mistake(
                lambda p: {**_cm_ref(p), "f1": _macro_f1(p)},
                "that F1 averages both classes (macro); the course reports the F1 of the positive class, label 1.",
                kind="convention",
            ),
        ],
        hint="eval_pred.predictions holds one row of logits per review and eval_pred.label_ids the labels: turn "
        "each row into a predicted class first, then compute the four metrics of the positive class (label 1).",
    )


def _macro_f1(eval_pred: Any) -> float:
    import numpy as np

    preds, labels = np.argmax(eval_pred.predictions, axis=-1), eval_pred.label_ids
    f1 = _metrics(labels, preds)["f1"]
    f1_negative = _metrics(1 - labels, 1 - preds)["f1"]
    return (f1 + f1_negative) / 2


# ---- a recipe as TrainingArguments --------------------------------------------------------------

# the settings notebook 08 maps, with how to read each one back from a TrainingArguments
_FIELDS = (
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "warmup_steps",
    "lr_scheduler_type",
    "max_grad_norm",
    "train_sampling_strategy",
    "optim",
    "eval_strategy",
    "save_strategy",
    "load_best_model_at_end",
    "metric_for_best_model",
    "greater_is_better",
)
# keyword arguments that older tutorials use and transformers 5 refuses, with today's name
RENAMED = {
    "evaluation_strategy": "eval_strategy='epoch'",
    "warmup_ratio": "warmup_steps=recipe.warmup_ratio (a float below 1 is a ratio)",
    "group_by_length": "train_sampling_strategy='group_by_length'",
    "logging_dir": "nothing: loggers take their own settings through report_to",
    "tokenizer": "processing_class= (on the Trainer)",
}


def _plain(value: Any) -> Any:
    """An enum's value, a 'loss' metric with its 'eval_' prefix, torch's AdamW under either of its names."""
    value = getattr(value, "value", value)
    if value == "loss":
        return "eval_loss"
    if isinstance(value, str) and value.startswith("adamw_torch"):
        return "adamw_torch"  # the fused kernel is the same algorithm
    return value


def _recipes() -> list[tuple]:
    from ftlearn.recipes import BertRecipe

    return [
        (BertRecipe(),),  # lr 5e-5, 2 epochs, batch 16, warm-up 0.1, decay 0.01, grouped by length
        (
            BertRecipe(
                lr=2e-5,
                epochs=3,
                batch_size=8,
                grad_accum_steps=4,
                warmup_ratio=0.06,
                weight_decay=0.1,
                group_by_length=False,
            ),
        ),  # fmt: skip
        (BertRecipe(lr=1e-4, epochs=1, batch_size=32, grad_accum_steps=2, warmup_ratio=0.2, weight_decay=0.0),),
    ]


def _args_ref(recipe: Any, output_dir: str) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        learning_rate=recipe.lr,
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.grad_accum_steps,
        optim="adamw_torch",
        weight_decay=recipe.weight_decay,
        warmup_steps=recipe.warmup_ratio,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        train_sampling_strategy="group_by_length" if recipe.group_by_length else "random",
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        report_to="none",
    )


def _read_back(make: Callable, recipe: Any) -> dict:
    """The mapped settings of `make(recipe, output_dir)`, or which renamed keyword it used."""
    with tempfile.TemporaryDirectory(prefix="ftlearn-check-") as folder:
        try:
            args = make(recipe, folder)
        except TypeError as exc:  # an argument transformers 5 no longer takes: name it, with today's spelling
            old = next((name for name in RENAMED if f"'{name}'" in str(exc)), None)
            if old is None:
                raise
            return {"renamed": old}
    if args is None:
        return None  # the check's None message
    if not all(hasattr(args, name) for name in _FIELDS):
        return {"type": type(args).__name__}
    return {name: _plain(getattr(args, name)) for name in _FIELDS}


def _args_variant(**changes: Any) -> Callable:
    """The reference's settings with some replaced (values may be functions of the recipe)."""

    def wrong(recipe: Any) -> dict:
        settings = _read_back(_args_ref, recipe)
        settings.update({k: _plain(v(recipe) if callable(v) else v) for k, v in changes.items()})
        return settings

    return wrong


@exercise(answer=_args_ref)
def check_training_arguments(fn: Callable) -> CheckResult:
    """Check `fn(recipe, output_dir)` -> TrainingArguments holding a BertRecipe's settings (notebook 08, section 3)."""
    renamed = [
        Mistake(
            lambda recipe, old=old: {"renamed": old},
            f"transformers 5 has no `{old}`; today it is {new}.",
            kind="convention",
        )
        for old, new in RENAMED.items()
    ]
    return check(
        "training_arguments",
        lambda recipe: _read_back(fn, recipe),
        lambda recipe: _read_back(_args_ref, recipe),
        _recipes(),
        mistakes=[
            *renamed,
            Mistake(
                lambda recipe: {"type": "dict"},
                "return a `transformers.TrainingArguments` object, built with keyword arguments.",
                kind="convention",
            ),
            Mistake(
                _args_variant(per_device_train_batch_size=lambda r: r.batch_size * r.grad_accum_steps),
                "per_device_train_batch_size is one micro-batch (recipe.batch_size); the Trainer multiplies it by "
                "gradient_accumulation_steps itself.",
                kind="scale",
            ),
            Mistake(
                _args_variant(greater_is_better=True),
                "a *lower* validation loss is better: greater_is_better=False (or leave it out: the Trainer "
                "infers it from a metric whose name ends in 'loss').",
                kind="sign",
            ),
            Mistake(
                _args_variant(metric_for_best_model="eval_accuracy"),
                "notebook 07 keeps the weights of the lowest validation *loss*, a smoother signal than accuracy "
                "on a small validation set: metric_for_best_model='eval_loss'.",
                kind="convention",
            ),
            Mistake(
                _args_variant(load_best_model_at_end=False),
                "to end with the best epoch's weights, as `fit` restores them, set load_best_model_at_end=True "
                "(it needs matching eval and save strategies).",
                kind="missing",
            ),
            Mistake(
                _args_variant(warmup_steps=0),
                "the warm-up is missing: warmup_steps=recipe.warmup_ratio (a float below 1 is read as a ratio).",
                kind="missing",
            ),
            Mistake(
                _args_variant(train_sampling_strategy="random"),
                "recipe.group_by_length asks for length-grouped batches: "
                "train_sampling_strategy='group_by_length' when it is True.",
                kind="missing",
            ),
            Mistake(
                _args_variant(train_sampling_strategy="group_by_length"),
                "group batches by length only when recipe.group_by_length is True; otherwise 'random'.",
                kind="edge",
            ),
            Mistake(
                _args_variant(weight_decay=0.0),
                "the recipe's weight_decay is missing (the default is 0).",
                kind="missing",
            ),
            Mistake(
                _args_variant(lr_scheduler_type="cosine"),
                "fit's default schedule decays linearly after the warm-up: lr_scheduler_type='linear'.",
            ),
        ],
        hint="Read each row of the table in notebook 08, section 3: one recipe field, one TrainingArguments keyword. "
        "Then check how often it evaluates and saves, and which weights it keeps at the end.",
    )


# ---- an early-stopping callback -----------------------------------------------------------------


def _stop_ref(losses: list[float], patience: int) -> int | None:
    """The 1-based evaluation after which training stops, or None: fit's rule."""
    best, bad = float("inf"), 0
    for i, loss in enumerate(losses, start=1):
        if loss < best:
            best, bad = loss, 0
        else:
            bad += 1
        if bad >= patience:
            return i
    return None


def _drive(callback_cls: Any, losses: list[float], patience: int) -> int | None:
    """Feed `losses` to a fresh callback as the Trainer would; the evaluation after which it asked to stop."""
    from transformers import TrainerControl, TrainerState

    callback = callback_cls(patience)
    args = SimpleNamespace(metric_for_best_model="eval_loss", greater_is_better=False)
    state, control = TrainerState(), TrainerControl()
    for i, loss in enumerate(losses, start=1):
        state.global_step = 10 * i
        returned = callback.on_evaluate(args, state, control, metrics={"eval_loss": loss, "eval_accuracy": 0.5})
        control = returned if returned is not None else control
        if control.should_training_stop:
            return i
    return None


def _stop_vs_previous(losses: list[float], patience: int) -> int | None:
    previous, bad = float("inf"), 0
    for i, loss in enumerate(losses, start=1):
        bad = 0 if loss < previous else bad + 1
        previous = loss
        if bad >= patience:
            return i
    return None


def _stop_never_reset(losses: list[float], patience: int) -> int | None:
    best, bad = float("inf"), 0
    for i, loss in enumerate(losses, start=1):
        if loss < best:
            best = loss
        else:
            bad += 1
        if bad >= patience:
            return i
    return None


def _stop_late(losses: list[float], patience: int) -> int | None:
    return _stop_ref(losses, patience + 1)


def _stop_ties_improve(losses: list[float], patience: int) -> int | None:
    best, bad = float("inf"), 0
    for i, loss in enumerate(losses, start=1):
        if loss <= best:
            best, bad = loss, 0
        else:
            bad += 1
        if bad >= patience:
            return i
    return None


def _stop_on_rise(losses: list[float], patience: int) -> int | None:
    return _stop_ref([-x for x in losses], patience)


# (validation losses, patience): each case tells some of the mistakes apart
_STOP_CASES = [
    ([0.7, 0.6, 0.65, 0.62, 0.55, 0.58, 0.59], 2),
    ([0.7, 0.8, 0.6, 0.7, 0.5], 2),
    ([0.9, 0.8, 0.85, 0.7, 0.75, 0.8, 0.9], 1),
    ([0.5, 0.5, 0.5], 2),
    ([1.0, 0.9, 0.8, 0.7], 1),
]


class _EarlyStopping:
    """A TrainerCallback-shaped early stop: patience evaluations in a row without a lower validation loss."""

    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.bad = patience, float("inf"), 0

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict, **kwargs: Any) -> Any:
        loss = metrics["eval_loss"]
        if loss < self.best:  # strictly lower: an equal loss is no improvement
            self.best, self.bad = loss, 0
        else:
            self.bad += 1  # compared with the best so far, not with the previous evaluation
        if self.bad >= self.patience:
            control.should_training_stop = True
        return control


@exercise(answer=_EarlyStopping)
def check_early_stopping(callback_cls: Any) -> CheckResult:
    """Check a TrainerCallback class `callback_cls(patience)` whose on_evaluate stops training (notebook 08)."""

    def runner(rule: Callable) -> Callable[[], list]:
        return lambda: [rule(losses, patience) for losses, patience in _STOP_CASES]

    return check(
        "early_stopping",
        runner(lambda losses, patience: _drive(callback_cls, losses, patience)),
        runner(_stop_ref),
        [()],
        compare=lambda got, want: got == want,
        mistakes=[
            Mistake(
                runner(_stop_vs_previous),
                "compare each loss with the *best* so far, not with the previous one: a loss that falls back "
                "a little is still worse than the best.",
            ),
            Mistake(
                runner(_stop_never_reset),
                "reset the counter to 0 whenever the best loss improves: patience counts evaluations *in a row* "
                "without improvement.",
                kind="missing",
            ),
            Mistake(
                runner(_stop_late),
                "one evaluation too late: stop as soon as the counter reaches `patience`.",
                kind="off_by_one",
            ),
            Mistake(
                runner(_stop_ties_improve),
                "a loss equal to the best is not an improvement: use a strict `<`.",
                kind="edge",
            ),
            Mistake(runner(_stop_on_rise), "the other way round: a *falling* loss is the improvement.", kind="sign"),
        ],
        hint="Keep the best validation loss so far and a counter on the callback; at each evaluation update them "
        "from the metrics, and ask the Trainer to stop through `control` once the counter reaches patience.",
    )
