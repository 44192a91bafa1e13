"""LoRA by hand (ftlearn.lora) against itself merged, against peft, and through `ftlearn finetune bert --method`."""

import copy
import json

import pytest
import torch
from toy_classifier import tiny_bert  # tests/toy_classifier.py

from ftlearn.cli import main
from ftlearn.lora import (
    LoRALinear,
    apply_lora,
    apply_method,
    freeze_all_but_head,
    lora_parameter_count,
    merge_lora,
)
from ftlearn.memory import measure_state_memory, predict_state_memory
from ftlearn.models import count_parameters
from ftlearn.recipes import METHOD_LR, BertRecipe
from ftlearn.runtime import get_profile
from ftlearn.train import TrainConfig, make_optimizer


def batch(seed: int = 0, b: int = 3, t: int = 9) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(3, 60, (b, t), generator=g),
        "attention_mask": torch.ones(b, t, dtype=torch.long),
    }


def randomize_b(model: torch.nn.Module, seed: int = 1) -> None:
    """Give every B a random value, as training would: with B = 0 every check below would pass trivially."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.1)


def logits(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**inputs).logits


def test_a_lora_layer_starts_as_its_base_layer_and_its_merge_gives_the_same_outputs():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 4)
    x = torch.randn(5, 6)
    layer = LoRALinear(copy.deepcopy(base), r=2, alpha=4.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(layer(x), base(x))  # B = 0: the update is exactly zero
    assert layer.lora_A.shape == (2, 6) and layer.lora_B.shape == (4, 2) and layer.scaling == 2.0
    assert bool(layer.lora_A.abs().sum() > 0) and not layer.base.weight.requires_grad
    with torch.no_grad():
        layer.lora_B.normal_()
    want = x @ base.weight.T + base.bias + 2.0 * x @ layer.lora_A.T @ layer.lora_B.T
    torch.testing.assert_close(layer(x), want)
    merged = layer.merged()
    assert isinstance(merged, torch.nn.Linear)
    assert (merged(x) - layer(x)).abs().max() < 1e-6
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(base, r=0, alpha=1.0)


def test_apply_lora_keeps_the_model_merges_back_and_counts_its_parameters():
    model = tiny_bert(0, dropout=0.0)
    inputs = batch()
    before = logits(model, inputs)
    total = count_parameters(model)
    names = apply_lora(model, r=4, alpha=8.0, seed=0)
    assert len(names) == 2 * 2 and all(n.endswith(("query", "value")) for n in names)  # 2 layers x (query, value)
    assert torch.equal(logits(model, inputs), before)  # zero-initialised B: the very same model
    hidden, layers = 16, 2
    derived = layers * 2 * 4 * (hidden + hidden)  # per target: r (in + out)
    head = hidden * 2 + 2  # the classifier stays trainable
    assert lora_parameter_count(model) == derived
    assert count_parameters(model, trainable_only=True) == derived + head
    assert count_parameters(model) == total + derived
    randomize_b(model)
    adapted = logits(model, inputs)
    assert not torch.allclose(adapted, before)
    assert merge_lora(model) == 4 and not any(isinstance(m, LoRALinear) for m in model.modules())
    assert count_parameters(model) == total
    assert (logits(model, inputs) - adapted).abs().max() < 1e-6


def test_the_same_a_and_b_give_the_same_outputs_and_trainable_count_as_peft():
    from peft import LoraConfig, get_peft_model

    base = tiny_bert(0, dropout=0.0)
    mine = copy.deepcopy(base)
    apply_lora(mine, r=4, alpha=8.0, seed=0)
    randomize_b(mine)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["query", "value"], lora_dropout=0.0, modules_to_save=["classifier"]
    )
    theirs = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():
        for name, module in mine.named_modules():
            if isinstance(module, LoRALinear):
                peft_layer = theirs.base_model.model.get_submodule(name)
                peft_layer.lora_A["default"].weight.copy_(module.lora_A)
                peft_layer.lora_B["default"].weight.copy_(module.lora_B)
    inputs = batch(2)
    torch.testing.assert_close(logits(theirs, inputs), logits(mine, inputs), rtol=0, atol=1e-6)
    assert count_parameters(theirs, trainable_only=True) == count_parameters(mine, trainable_only=True)


def test_head_only_freezes_the_body_and_the_methods_lr_is_the_recipes():
    model = tiny_bert(0)
    assert freeze_all_but_head(model) == ["classifier.weight", "classifier.bias"]
    assert count_parameters(model, trainable_only=True) == 16 * 2 + 2
    with pytest.raises(ValueError, match="Unknown method"):
        apply_method(tiny_bert(0), "prefix")
    cpu = get_profile("cpu")
    assert BertRecipe.for_profile(cpu).lr == 5e-5
    assert BertRecipe.for_profile(cpu, method="lora").lr == METHOD_LR["lora"]
    assert BertRecipe.for_profile(cpu, method="head", lr=1e-2).lr == 1e-2  # an explicit lr wins
    with pytest.raises(ValueError, match="Unknown method"):
        BertRecipe.for_profile(cpu, method="adapters")


@pytest.mark.parametrize("method", ["full", "lora", "head"])
def test_training_state_is_all_weights_plus_gradients_and_adam_moments_of_the_trained_ones(method):
    model = apply_method(tiny_bert(0), method, r=4, alpha=8.0)
    optimizer = make_optimizer(model, TrainConfig(lr=1e-3))
    loss = model(**batch(), labels=torch.tensor([0, 1, 1])).loss
    loss.backward()
    optimizer.step()
    measured = sum(measure_state_memory(model, optimizer).values())
    trainable = count_parameters(model, trainable_only=True)
    predicted = predict_state_memory(count_parameters(model), "fp32", trainable=trainable)
    assert measured == predicted.total == 4 * count_parameters(model) + 12 * trainable
    assert (trainable == count_parameters(model)) == (method == "full")


def test_finetune_flags_for_lora_are_checked_before_anything_loads(capsys):
    assert main(["finetune", "bert", "--profile", "smoke", "--lora-rank", "4"]) == 2
    assert main(["finetune", "bert", "--profile", "smoke", "--method", "lora", "--lora-rank", "0"]) == 2
    err = capsys.readouterr().err
    assert "apply to --method lora only" in err and "--lora-rank must be positive" in err


@pytest.mark.slow
@pytest.mark.floors
def test_finetune_lora_smoke_writes_its_adapter_with_few_trainable_parameters_and_predict_loads_it(tmp_path, capsys):
    out = tmp_path / "lora"
    args = ["finetune", "bert", "--method", "lora", "--lora-rank", "4", "--lora-alpha", "8", "--profile", "smoke"]
    assert main([*args, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recipe"]["method"] == "lora" and metrics["recipe"]["lora_rank"] == 4
    assert 0 < metrics["trainable_parameters"] < 0.05 * metrics["parameters"]
    assert metrics["saved_parameters"] < metrics["parameters"]  # the adapter: A, B and the head (tests/test_adapter.py)
    assert metrics["saved_as"] == "adapter" and (out / "adapter_model.safetensors").is_file()
    assert metrics["seconds_per_step"] > 0 and metrics["test_reviews_per_second"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 6
    assert "trainable parameters" in capsys.readouterr().out
    assert main(["predict", str(out), "A slow start, but the ending won me over."]) == 0
    assert "p_positive" in capsys.readouterr().out
