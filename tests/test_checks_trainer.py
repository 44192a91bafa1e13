"""The checks of solutions/08 (Trainer): the reference passes, each named mistake gets its hint, stubs wait."""

import numpy as np
import pytest

from ftlearn.checks import trainer as ct
from ftlearn.checks.core import CORRECT, KINDS, NOT_ATTEMPTED, WRONG

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args):
    raise NotImplementedError


def _macro(p):
    return {**ct._cm_ref(p), "f1": ct._macro_f1(p)}


METRICS_MISTAKES = [
    (lambda p: {f"eval_{k}": v for k, v in ct._cm_ref(p).items()}, "prefix itself"),
    (lambda p: ct._metrics(p.label_ids, (p.predictions[:, 1] > 0.5).astype(int)), "not a probability"),
    (lambda p: ct._metrics(p.label_ids, (p.predictions[:, 1] > 0).astype(int)), "positive logit alone"),
    (lambda p: ct._metrics(np.argmax(p.predictions, axis=-1), p.label_ids), "swapped"),
    (_macro, "macro"),
]


@pytest.mark.parametrize("wrong, hint", METRICS_MISTAKES, ids=[m[1] for m in METRICS_MISTAKES])
def test_compute_metrics_verdicts(wrong, hint, second_try):
    assert ct.check_compute_metrics(ct._cm_ref).status == CORRECT
    result = second_try(ct.check_compute_metrics, wrong)
    assert result.status == WRONG and hint in result.message, result


def test_a_first_wrong_answer_gets_the_nudge_of_its_kind_then_the_hint():
    swapped = METRICS_MISTAKES[3][0]
    first, second = ct.check_compute_metrics(swapped), ct.check_compute_metrics(swapped)
    assert first.message.startswith("Not yet. " + KINDS["order"]) and "swapped" not in first.message, first
    assert "swapped" in second.message, second


def test_compute_metrics_reference_is_the_librarys_and_sklearns():
    from sklearn.metrics import f1_score, precision_score

    (eval_pred,) = ct._eval_preds()[0]
    preds = eval_pred.predictions.argmax(-1)
    got = ct._cm_ref(eval_pred)
    assert np.isclose(got["f1"], f1_score(eval_pred.label_ids, preds))
    assert np.isclose(got["precision"], precision_score(eval_pred.label_ids, preds))
    # the thresholds of the mistakes really disagree with argmax somewhere in the cases
    assert any(((p.predictions[:, 1] > 0) != p.predictions.argmax(-1)).any() for (p,) in ct._eval_preds())


def test_compute_metrics_accepts_extra_keys_and_explains_a_wrong_axis():
    def with_cm(p):
        return {**ct._cm_ref(p), "n": len(p.label_ids)}

    assert ct.check_compute_metrics(with_cm).status == CORRECT
    result = ct.check_compute_metrics(lambda p: ct._metrics(p.label_ids, np.argmax(p.predictions, axis=0)))
    assert result.status == WRONG and "ValueError" in result.message


def _old_names(recipe, output_dir):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=output_dir, learning_rate=recipe.lr, warmup_ratio=recipe.warmup_ratio)


def _with(**changes):
    def make(recipe, output_dir):
        args = ct._args_ref(recipe, output_dir)
        for key, value in changes.items():
            setattr(args, key, value(recipe) if callable(value) else value)
        return args

    return make


ARGS_MISTAKES = [
    (_old_names, "no `warmup_ratio`"),
    (lambda recipe, out: {"learning_rate": recipe.lr}, "TrainingArguments` object"),
    (_with(per_device_train_batch_size=lambda r: r.batch_size * r.grad_accum_steps), "one micro-batch"),
    (_with(greater_is_better=True), "lower* validation loss"),
    (_with(metric_for_best_model="eval_accuracy"), "metric_for_best_model='eval_loss'"),
    (_with(load_best_model_at_end=False), "load_best_model_at_end=True"),
    (_with(warmup_steps=0), "warm-up is missing"),
    (_with(train_sampling_strategy="random"), "group_by_length' when it is True"),
    (_with(weight_decay=0.0), "weight_decay is missing"),
]


@pytest.mark.parametrize("wrong, hint", ARGS_MISTAKES, ids=[m[1] for m in ARGS_MISTAKES])
def test_training_arguments_verdicts(wrong, hint, second_try):
    result = second_try(ct.check_training_arguments, wrong)
    assert result.status == WRONG and hint in result.message, result


def test_training_arguments_reference_and_defaults_pass_and_stub_is_not_attempted():
    from transformers import TrainingArguments

    assert ct.check_training_arguments(ct._args_ref).status == CORRECT

    def relying_on_defaults(recipe, output_dir):  # linear schedule, clipping at 1, torch's AdamW, inferred direction
        return TrainingArguments(
            output_dir=output_dir, learning_rate=recipe.lr, num_train_epochs=recipe.epochs,
            per_device_train_batch_size=recipe.batch_size, gradient_accumulation_steps=recipe.grad_accum_steps,
            weight_decay=recipe.weight_decay, warmup_steps=recipe.warmup_ratio, eval_strategy="epoch",
            train_sampling_strategy="group_by_length" if recipe.group_by_length else "random",
            save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="loss", report_to="none",
        )  # fmt: skip

    assert ct.check_training_arguments(relying_on_defaults).status == CORRECT
    assert ct.check_training_arguments(stub).status == NOT_ATTEMPTED


class Reference:
    """The early-stopping callback of the solution notebook."""

    def __init__(self, patience):
        self.patience, self.best, self.bad = patience, float("inf"), 0

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        loss = metrics["eval_loss"]
        if loss < self.best:
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        if self.bad >= self.patience:
            control.should_training_stop = True
        return control


def _callback_from_rule(rule):
    """A callback class that stops where `rule(losses, patience)` says, for the mistakes' own rules."""

    class FromRule:
        def __init__(self, patience):
            self.patience, self.losses = patience, []

        def on_evaluate(self, args, state, control, metrics, **kwargs):
            self.losses.append(metrics["eval_loss"])
            if rule(self.losses, self.patience) == len(self.losses):
                control.should_training_stop = True
            return None  # the check reads the control it passed in

    return FromRule


STOP_MISTAKES = [
    (_callback_from_rule(ct._stop_vs_previous), "best* so far"),
    (_callback_from_rule(ct._stop_never_reset), "in a row"),
    (_callback_from_rule(ct._stop_late), "too late"),
    (_callback_from_rule(ct._stop_ties_improve), "strict"),
    (_callback_from_rule(ct._stop_on_rise), "falling"),
]


@pytest.mark.parametrize("callback_cls, hint", STOP_MISTAKES, ids=[m[1] for m in STOP_MISTAKES])
def test_early_stopping_verdicts(callback_cls, hint, second_try):
    result = second_try(ct.check_early_stopping, callback_cls)
    assert result.status == WRONG and hint in result.message, result


def test_early_stopping_reference_matches_fit_and_transformers_rule():
    assert ct.check_early_stopping(Reference).status == CORRECT
    assert ct.check_early_stopping(ct._EarlyStopping).status == CORRECT  # the answer `reveal=True` shows
    assert ct.check_early_stopping(_callback_from_rule(ct._stop_ref)).status == CORRECT
    assert ct.check_early_stopping(stub).status == NOT_ATTEMPTED
    # transformers' own EarlyStoppingCallback, given the best metric as the Trainer keeps it, stops at the same place
    from transformers import EarlyStoppingCallback, TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(
        output_dir="unused", eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
        metric_for_best_model="eval_loss", report_to="none",
    )  # fmt: skip
    for losses, patience in ct._STOP_CASES:
        callback, state, control, stopped = EarlyStoppingCallback(patience), TrainerState(), TrainerControl(), None
        for i, loss in enumerate(losses, start=1):
            callback.on_evaluate(args, state, control, metrics={"eval_loss": loss})
            state.best_metric = loss if state.best_metric is None or loss < state.best_metric else state.best_metric
            if control.should_training_stop:
                stopped = i
                break
        assert stopped == ct._stop_ref(losses, patience), (losses, patience)


# every (check, wrong answer, words of its hint) above, for tests/test_checks_reveal.py
TABLE = (
    [(ct.check_compute_metrics, wrong, hint) for wrong, hint in METRICS_MISTAKES]
    + [(ct.check_training_arguments, wrong, hint) for wrong, hint in ARGS_MISTAKES]
    + [(ct.check_early_stopping, wrong, hint) for wrong, hint in STOP_MISTAKES]
)
