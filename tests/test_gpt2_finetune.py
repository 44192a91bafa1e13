"""ftlearn.gpt2_finetune and `ftlearn finetune gpt2-lm / gpt2-cls`: the lessons' runs from the command line."""

import json

import pytest
import torch

from ftlearn.cli import main
from ftlearn.gpt2_finetune import GPT2RunConfig, accuracy_and_f1, cls_batches, lm_batches
from ftlearn.runtime import get_profile


def test_run_sizes_follow_the_profile_and_the_models_context():
    from transformers import GPT2Config

    small, hub = GPT2Config(n_positions=256, n_embd=128), GPT2Config()
    assert GPT2RunConfig.for_profile(get_profile("gpu"), "lm", small).block_size == 256  # 512 would not fit
    smoke = GPT2RunConfig.for_profile(get_profile("smoke"), "lm", small)
    assert smoke.block_size == 64 and smoke.max_train_blocks is not None
    assert GPT2RunConfig.for_profile(get_profile("cpu"), "cls", hub).epochs == get_profile("cpu").epochs
    cpu_small, cpu_hub = (GPT2RunConfig.for_profile(get_profile("cpu"), "lm", c) for c in (small, hub))
    assert cpu_small.lr > cpu_hub.lr and cpu_hub.max_train_blocks is not None  # the 124M model on a CPU reads less
    with pytest.raises(ValueError):
        GPT2RunConfig.for_profile(get_profile("cpu"), "mlm")


def test_lm_batches_use_the_inputs_as_labels_and_cover_every_row_once():
    blocks = torch.arange(40).view(10, 4)
    batches = list(lm_batches(blocks, batch_size=4, seed=0)(0))
    assert [len(b["input_ids"]) for b in batches] == [4, 4, 2]
    assert all(torch.equal(b["input_ids"], b["labels"]) for b in batches)
    assert sorted(torch.cat([b["input_ids"][:, 0] for b in batches]).tolist()) == list(range(0, 40, 4))


def test_cls_batches_pad_per_batch_and_keep_labels_aligned():
    class Tok:
        def __call__(self, texts, truncation, max_length, padding, return_tensors):
            ids = [[len(w) for w in t.split()][:max_length] for t in texts]
            width = max(map(len, ids))
            return {
                "input_ids": torch.tensor([x + [0] * (width - len(x)) for x in ids]),
                "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids]),
            }

    ds = {"text": ["a bb<br />ccc", "dddd", "e ff ggg hhhh iiiii"], "label": [1, 0, 1]}
    batch = next(iter(cls_batches(ds, Tok(), max_length=3, batch_size=3, seed=None)(0)))
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0], [1, 2, 3]]  # <br /> removed, truncated to 3
    assert batch["labels"].tolist() == [1, 0, 1] and batch["attention_mask"][1].tolist() == [1, 0, 0]


def test_accuracy_and_f1_by_hand():
    scores = accuracy_and_f1([1, 1, 0, 0], [1, 0, 0, 1])
    assert scores == {"accuracy": 0.5, "f1": 0.5}


@pytest.mark.slow
@pytest.mark.parametrize(
    "task,keys", [("gpt2-lm", {"perplexity_before", "perplexity_after"}), ("gpt2-cls", {"accuracy", "f1"})]
)
def test_finetune_command_writes_metrics_and_a_model(task, keys, tmp_path, capsys):
    assert main(["finetune", task, "--profile", "smoke", "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert keys <= metrics.keys() and metrics["profile"] == "smoke" and metrics["task"] == task
    assert all(0 <= metrics[k] < float("inf") for k in keys)  # smoke trains 2-4 steps: F1 may be 0
    assert (tmp_path / "model" / "config.json").exists() and (tmp_path / "model" / "tokenizer.json").exists()
    assert "metrics.json" in capsys.readouterr().out


def test_gpt2_commands_refuse_to_run_under_a_multi_process_launcher(monkeypatch) -> None:
    from ftlearn.gpt2_finetune import finetune_cls, finetune_lm
    from ftlearn.runtime import get_profile

    monkeypatch.setenv("WORLD_SIZE", "2")
    for fn, name in ((finetune_lm, "gpt2-lm"), (finetune_cls, "gpt2-cls")):
        with pytest.raises(RuntimeError, match=f"`ftlearn finetune {name}` runs in one process"):
            fn(get_profile("smoke"))
