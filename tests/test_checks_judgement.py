"""The judgement checks (solutions 08 and 11): recorded runs load and show their phenomenon; answers are graded."""

import json
import math

import numpy as np
import pytest

from ftlearn.checks import judgement as cj
from ftlearn.checks.core import CORRECT, KINDS, NOT_ATTEMPTED, WRONG, reset_session

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args):
    raise NotImplementedError


def answer(value):
    return lambda *args: value


# ---- the recorded runs themselves


@pytest.mark.parametrize("name", sorted(cj.RECORDED))
def test_recorded_runs_say_how_they_were_made_and_are_small(name):
    data = cj.load_recorded(name)
    assert data["made"]["command"].startswith("python scripts/make_judgement_data.py")
    assert data["made"]["commit"] and data["made"]["date"] and data["made"]["settings"]
    assert (cj.DATA_DIR / f"{name}.json").stat().st_size < 100_000


def test_the_bert_run_overfits_after_the_epoch_it_keeps():
    history = cj.recorded_history("bert_epochs")
    facts = cj._epoch_facts(history)
    val = history.val("loss")
    steps = len(history.step) // len(val)
    train = [np.mean(history.loss[i * steps : (i + 1) * steps]) for i in range(len(val))]
    assert facts["best"] < facts["epochs"][-1] and val[-1] > min(val)  # the validation loss turns up again
    assert train[-1] < train[facts["best"] - 1]  # while the training loss keeps falling
    data = cj.load_recorded("bert_epochs")
    assert len(data["test_correct_by_epoch"]) == len(val) and len(data["test_labels"]) == 468


def test_the_sweep_has_a_valley_and_a_cliff():
    sweep, base = cj.lr_sweep()
    best, accepted = cj._lr_regions(sweep)
    grid = sorted(sweep)
    assert grid[0] < best < grid[-1] and sweep[grid[0]] > sweep[best]
    assert sweep[grid[-1]] > base or not math.isfinite(sweep[grid[-1]])  # the largest lr is worse than no training
    assert best in accepted and max(accepted) < grid[-1]


def test_the_diverged_run_climbs_with_the_warm_up_and_stops():
    data = cj.load_recorded("diverged_run")
    history = cj.recorded_history("diverged_run")
    assert "TrainingDiverged" in data["stopped_by"] or "no longer" in data["stopped_by"] or "nan" in data["stopped_by"]
    assert all(b >= a for a, b in zip(history.lr, history.lr[1:], strict=False))  # still warming up
    assert max(history.loss) > 10 * history.loss[0] and 0 < cj._first_rise(history) < len(history.loss) // 2


def test_a_damaged_or_missing_file_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cj, "DATA_DIR", tmp_path)
    with pytest.raises(cj.RecordedRunError, match="missing.*make_judgement_data"):
        cj.load_recorded("diverged_run")
    (tmp_path / "diverged_run.json").write_text("{not json")
    with pytest.raises(cj.RecordedRunError, match="cannot be read"):
        cj.load_recorded("diverged_run")
    (tmp_path / "diverged_run.json").write_text(json.dumps({"made": {}}))
    with pytest.raises(cj.RecordedRunError, match="lacks history, stopped_by"):
        cj.load_recorded("diverged_run")
    with pytest.raises(cj.RecordedRunError, match="No recorded run"):
        cj.load_recorded("nope")


# ---- which epoch


def _epochs():
    return cj._epoch_facts(cj.recorded_history("bert_epochs"))


def _epoch_wrongs() -> dict:
    facts = _epochs()
    best, last, top = facts["best"], facts["epochs"][-1], facts["top_accuracy"]
    wrong = {
        (best, "a"): "always keeps the last epoch",
        (best, "c"): "too coarse and noisy",
        (best, "d"): "more training is not better",
        (best, "z"): "one letter",
        (best - 1 if best > 1 else 0, "b"): "epochs count from 1" if best == 1 else "",
        (last, "d"): "gap between them" if last != top else "",
        (top, "c"): "steps of one review" if top != best else "",
        (99, "b"): "not in history.evals",
        (best,): "return a pair",
        None: "forget `return`",
    }
    return {value: hint for value, hint in wrong.items() if hint}  # this run may make two wrong answers one epoch


def test_epoch_choice_right_answer_and_each_known_wrong_one(second_try):
    best = _epochs()["best"]
    assert cj.check_epoch_choice(answer((best, "b"))).status == CORRECT
    assert cj.check_epoch_choice(answer((best, " (B) "))).status == CORRECT
    assert cj.check_epoch_choice(cj._epoch_answer).status == CORRECT  # the reasoning `reveal=True` shows
    assert cj.check_epoch_choice(stub).status == NOT_ATTEMPTED
    for value, hint in _epoch_wrongs().items():
        result = second_try(cj.check_epoch_choice, answer(value))
        assert result.status == WRONG and hint in result.message, (value, result)


def test_a_first_wrong_judgement_gets_the_nudge_then_the_hint():
    best = _epochs()["best"]
    first, second = (cj.check_epoch_choice(answer((best, "a"))) for _ in range(2))
    assert first.message.startswith("Not yet. " + KINDS["reading"]) and "always keeps" not in first.message, first
    assert "always keeps the last epoch" in second.message, second


# ---- A against B


PAIRED = [
    (cj._paired_variant("unpaired"), "independent samples"),
    (cj._paired_variant("ddof0"), "n - 1"),
    (cj._paired_variant("no sqrt"), "square root of n"),
    (cj._paired_variant("over n"), "not by n"),
    (cj._paired_variant(flip=True), "A minus B"),
    (cj._sign_only, "more than 2 standard errors"),
    (cj._paired_variant(threshold=1.0), "not 1"),
]


@pytest.mark.parametrize("wrong, hint", PAIRED, ids=[p[1] for p in PAIRED])
def test_paired_comparison_verdicts(wrong, hint, second_try):
    assert cj.check_paired_comparison(cj._paired_ref).status == CORRECT
    result = second_try(cj.check_paired_comparison, wrong)
    assert result.status == WRONG and hint in result.message, result


def test_paired_cases_need_the_pairing_and_include_the_recorded_run():
    a1, b1 = cj._paired_cases()[0]
    assert cj._paired_ref(a1, b1)["verdict"] == "A better"
    assert cj._paired_variant("unpaired")(a1, b1)["verdict"] == "within 2 standard errors"
    kept, last = cj._paired_cases()[-1]
    assert len(kept) == len(last) == 468
    assert cj.check_paired_comparison(stub).status == NOT_ATTEMPTED


# ---- which learning rate


def _lr_wrongs() -> dict:
    sweep, base = cj.lr_sweep()
    best, accepted = cj._lr_regions(sweep)
    grid = sorted(sweep)
    expected = {grid[0]: "too small", 0.00123: "between two points", "fast": "a number"}
    for lr in grid:
        if not math.isfinite(sweep[lr]):
            expected[lr] = "diverged"
        elif sweep[lr] > base:
            expected[lr] = "worse* than before"
    edge = [lr for lr in grid if lr > best and lr not in accepted and sweep[lr] <= 1.05 * sweep[best]]
    expected.update({lr: "edge of the cliff" for lr in edge})
    return expected


def test_lr_choice_accepts_the_valley_and_explains_the_rest(second_try):
    sweep, base = cj.lr_sweep()
    best, _ = cj._lr_regions(sweep)
    assert cj.check_lr_choice(answer(best)).status == CORRECT
    assert cj._lr_answer(sweep, base) == best and cj.check_lr_choice(cj._lr_answer).status == CORRECT
    assert cj.check_lr_choice(stub).status == NOT_ATTEMPTED
    for value, hint in _lr_wrongs().items():
        result = second_try(cj.check_lr_choice, answer(value))
        assert result.status == WRONG and hint in result.message, (value, result)


# ---- the diverged run


def _divergence_wrongs() -> dict:
    history = cj.recorded_history("diverged_run")
    rise = cj._first_rise(history)
    right = history.lr[rise]
    return {
        ("a", right): "one spike",
        ("c", right): "training loss itself climbs",
        ("d", right): "fall slowly",
        ("x", right): "one letter",
        ("b", history.lr[-1]): "already blown up",
        ("b", 10 * history.lr[-1]): "never reached",
        ("b", history.lr[rise - 1]): "one step too early",
        ("b", history.step[rise]): "a step number",
        ("b", "high"): "return a pair",
    }


def test_divergence_right_answer_and_each_known_wrong_one(second_try):
    history = cj.recorded_history("diverged_run")
    right = history.lr[cj._first_rise(history)]
    assert cj.check_divergence(answer(("b", right))).status == CORRECT
    assert cj._divergence_answer(history) == ("b", right)
    assert cj.check_divergence(cj._divergence_answer).status == CORRECT
    assert cj.check_divergence(stub).status == NOT_ATTEMPTED
    for value, hint in _divergence_wrongs().items():
        result = second_try(cj.check_divergence, answer(value))
        assert result.status == WRONG and hint in result.message, (value, result)


# every (check, wrong answer, words of its hint) above, for tests/test_checks_reveal.py and the test below
TABLE = (
    [(cj.check_epoch_choice, answer(value), hint) for value, hint in _epoch_wrongs().items()]
    + [(cj.check_paired_comparison, wrong, hint) for wrong, hint in PAIRED]
    + [(cj.check_lr_choice, answer(value), hint) for value, hint in _lr_wrongs().items()]
    + [(cj.check_divergence, answer(value), hint) for value, hint in _divergence_wrongs().items()]
    + [(cj.check_epoch_choice, answer((1, "q")), ""), (cj.check_lr_choice, answer(12345.0), "")]
    + [(cj.check_divergence, answer(("b", -1.0)), "")]
)
JUDGED = (cj.check_epoch_choice, cj.check_lr_choice, cj.check_divergence)


def _secrets() -> list[str]:
    sweep, _ = cj.lr_sweep()
    history = cj.recorded_history("diverged_run")
    facts = _epochs()
    return [
        f"{min(sweep, key=sweep.get):g}",
        f"{history.lr[cj._first_rise(history)]:g}",
        f"epoch {facts['best']}",
        "(b)",
        "'b'",
        "reason b",
    ]


@pytest.mark.parametrize(
    "checker, wrong", [(c, w) for c, w, _ in TABLE if c in JUDGED], ids=lambda x: getattr(x, "__name__", "")
)
def test_no_judgement_hint_gives_the_answer_away(checker, wrong):
    """No message of three wrong tries names the right letter in a sentence or the right number."""
    reset_session()
    results = [checker(wrong) for _ in range(3)]
    assert all(r.status == WRONG for r in results), results
    shown = "\n".join(r.message for r in results)
    assert not any(secret in shown for secret in _secrets()), shown


@pytest.mark.parametrize("checker", JUDGED, ids=lambda c: c.__name__)
def test_reveal_shows_the_reasoning(checker):
    revealed = checker(answer("?"), reveal=True).message
    assert "Reference answer" in revealed and "# " in revealed  # the reasoning is in the answer's comments
    assert any(secret in revealed for secret in ('"b"', "min(")), revealed
