"""Make the recorded runs that the judgement exercises read (solutions 08 and 11), with the course's own code.

Run from the repository root, offline, with the IMDB sample:

    FTLEARN_IMDB_DIR=/path/to/imdb-sample HF_HUB_OFFLINE=1 python scripts/make_judgement_data.py

Every run trains through `ftlearn.train.fit` on the cpu profile's reviews, in one torch thread (on cores shared
with other jobs, two threads made each step about ten times slower), and writes one small JSON file into
`ftlearn/checks/data/`, recording under "made" the command, commit, date, versions, machine, seconds and settings:

- `bert_epochs.json` (solutions 08): the offline BERT (as lesson 07 loads it) fine-tuned for 6 epochs on 400
  reviews at 64 tokens, validated on 200 after each epoch; its History (training loss and lr per step,
  validation loss/accuracy/F1 per epoch) and, per epoch, which of the 468 test reviews those weights got right
  (for the paired comparison, never for choosing the epoch);
- `lm_lr_sweep.json` (solutions 11): lesson 11's learning-rate sweep (section 11) with its cpu sizes, 30 steps of
  8 blocks per learning rate and the held-out IMDB perplexity after each run, on the offline GPT-2's `smoke` build
  (64 hidden, 2 layers), with the grid extended to the right until a run diverges;
- `diverged_run.json` (solutions 11): the same GPT-2 as a language model with a deliberately too-high peak
  learning rate reached by a warm-up over the whole run, stopped by `fit`'s `TrainingDiverged`.

The checks in `ftlearn/checks/judgement.py` compute every right answer from these files, so making them again
(another machine may round differently) needs no change anywhere else; `tests/test_checks_judgement.py` checks
that each file still shows its phenomenon.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = "smoke"  # the offline GPT-2 build (sweep and diverged run): built in well under a minute
SEED = 0
SWEEP_LRS = [1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0]  # lesson 11's cpu grid, further to the right
# the BERT run of the epoch-choice and paired-comparison exercises (solutions 08): small enough for busy cores
CLASSIFIER = {"reviews": 600, "val_fraction": 1 / 3, "epochs": 6, "lr": 1e-4, "max_length": 64}
DIVERGE = {"lr": 8.0, "steps": 40, "batch": 8, "warmup_ratio": 1.0}  # a peak lr far above the sweep's good region


def _round(value: float, digits: int = 6) -> float:
    """A float with `digits` significant digits (the files stay small); inf and nan as they are."""
    return value if not math.isfinite(value) or value == 0 else float(f"{value:.{digits}g}")


def _history(history, keep_grad_norm: bool = True) -> dict:
    """A History as plain data with rounded floats."""
    data = history.to_dict()
    for key in ("loss", "lr", "grad_norm"):
        data[key] = [_round(v) for v in data[key]]
    if not keep_grad_norm:
        data["grad_norm"] = []
    data["evals"] = [{k: _round(v) if isinstance(v, float) else v for k, v in row.items()} for row in data["evals"]]
    data["train_seconds"] = round(data["train_seconds"], 1)
    return data


class _History:
    """A fit callback that keeps the run's History, which a run stopped by TrainingDiverged does not return."""

    def __init__(self) -> None:
        self.history = None

    def __call__(self, history, event: str) -> None:
        self.history = history


def _made(what: str, seconds: float, **settings) -> dict:
    """How a file was made: the command, the commit, the date, the versions and the machine."""
    import torch

    from ftlearn.runtime import env_report

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    report = env_report()
    return {
        "what": what,
        "command": "python scripts/make_judgement_data.py",
        "commit": commit or "unknown",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(seconds, 1),
        "versions": {k: report[k] for k in ("python", "torch", "transformers") if k in report},
        "hardware": report.get("hardware", ""),
        "torch_threads": torch.get_num_threads(),
        "settings": settings,
    }


def _bert_name(source) -> str:
    """The hub name, or the offline fallback's package name (its folder is called `model`)."""
    return Path(source.location).parent.name if source.is_substitute else source.location


def classifier_epochs(profile, dsd, device) -> dict:
    """Lesson 07's BERT run, small: 6 epochs on 400 reviews, validation each epoch, test correctness each epoch."""
    import numpy as np
    from datasets import DatasetDict

    from ftlearn.bert import prepare_classifier_data
    from ftlearn.evaluation import evaluate
    from ftlearn.losses import cross_entropy
    from ftlearn.models import load_classifier
    from ftlearn.recipes import BertRecipe
    from ftlearn.runtime import seed_everything
    from ftlearn.train import fit

    start = time.perf_counter()
    settings = CLASSIFIER
    recipe = BertRecipe.for_profile(
        profile, **{key: settings[key] for key in ("lr", "epochs", "max_length", "val_fraction")}
    )
    small = DatasetDict(train=dsd["train"].select(range(settings["reviews"])), test=dsd["test"])
    seed_everything(SEED)
    model, tokenizer, source = load_classifier(profile.bert_model, pooling=recipe.pooling, verbose=False)
    data = prepare_classifier_data(small, tokenizer, recipe, SEED)
    correct_by_epoch: list[list[int]] = []
    labels: list[int] = []

    def test_each_epoch(history, event):
        if event != "eval":
            return
        report = evaluate(model, data.test_loader, device, return_outputs=True)
        assert report["in_dataset_order"]
        labels[:] = report["labels"].tolist()
        correct_by_epoch.append((report["probs"].argmax(-1) == report["labels"]).astype(int).tolist())
        model.train()

    seed_everything(SEED)
    history = fit(
        model, data.train_loader, data.val_loader, recipe.train_config(patience=None, progress=False), device=device,
        loss_fn=cross_entropy, callbacks=[test_each_epoch],
    )  # fmt: skip
    accuracies = [float(np.mean(c)) for c in correct_by_epoch]
    print(f"classifier: val losses {history.val('loss')}, test accuracies {accuracies}")
    return {
        "made": _made(
            f"BERT ({_bert_name(source)}) fine-tuned on IMDB reviews with ftlearn.train.fit as in lesson 07, for "
            "more epochs than the lesson's recipe, validated after each",
            time.perf_counter() - start,
            model=_bert_name(source),
            profile=profile.name,
            recipe=recipe.as_dict(),
            train_reviews=len(data.train),
            val_reviews=len(data.val),
            test_reviews=len(data.test),
        ),
        "history": _history(history, keep_grad_norm=False),
        "test_labels": labels,
        "test_correct_by_epoch": correct_by_epoch,
    }


def _lm_setup(profile, dsd, device):
    from transformers import AutoModelForCausalLM

    from ftlearn.gpt2 import lm_blocks
    from ftlearn.models import load_tokenizer, resolve_model
    from ftlearn.recipes import GPT2LMRecipe

    source = resolve_model("gpt2", profile.gpt2_model, build=BUILD)
    tokenizer = load_tokenizer("gpt2", source=source)
    model = AutoModelForCausalLM.from_pretrained(source.location).to(device)
    recipe = GPT2LMRecipe.for_profile(profile, model.config)
    return model, tokenizer, recipe, lm_blocks


def lr_sweep(profile, dsd, device) -> dict:
    """Lesson 11's section 10 with the cpu profile's sizes: same model, same batches, only the lr changes."""
    from ftlearn.causal_lm import mean_lm_loss, perplexity
    from ftlearn.gpt2 import lm_loader
    from ftlearn.runtime import seed_everything
    from ftlearn.train import TrainConfig, TrainingDiverged, fit

    start = time.perf_counter()
    steps, batch = 30, 8
    pretrained, tokenizer, recipe, lm_blocks = _lm_setup(profile, dsd, device)
    train_blocks = lm_blocks(dsd["train"], tokenizer, recipe.max_length, steps * batch)
    imdb_blocks = lm_blocks(dsd["test"], tokenizer, recipe.max_length, min(recipe.max_eval_rows or 100, 100))
    base = perplexity(mean_lm_loss(pretrained, imdb_blocks, recipe.batch_size, device))
    runs = []
    for lr in SWEEP_LRS:
        seed_everything(SEED)
        model = copy.deepcopy(pretrained)
        keep = _History()
        try:
            fit(model, list(lm_loader(train_blocks, batch, SEED)), config=TrainConfig(lr=lr, epochs=1, progress=False),
                device=device, callbacks=[keep])  # fmt: skip
            ppl, diverged = perplexity(min(mean_lm_loss(model, imdb_blocks, recipe.batch_size, device), 50.0)), False
        except TrainingDiverged:
            ppl, diverged = math.inf, True
        runs.append({"lr": lr, "perplexity": _round(ppl), "diverged": diverged, "history": _history(keep.history)})
        print(f"sweep: lr {lr:g}: perplexity {ppl:.1f}{' (diverged)' if diverged else ''}")
    return {
        "made": _made(
            "lesson 11's learning-rate sweep (GPT-2 LM on IMDB, offline smoke build) through ftlearn.train.fit",
            time.perf_counter() - start,
            build=BUILD,
            profile=profile.name,
            steps=steps,
            batch_blocks=batch,
            block_tokens=recipe.max_length,
            eval_blocks=len(imdb_blocks),
            schedule="TrainConfig defaults: AdamW, 10% warm-up, linear decay, clipping at 1",
        ),
        "base_perplexity": _round(base),
        "runs": runs,
    }


def diverged_run(profile, dsd, device) -> dict:
    """A language-model run whose peak lr is far too high; fit stops it when the loss is no longer finite."""
    from ftlearn.gpt2 import lm_loader
    from ftlearn.runtime import seed_everything
    from ftlearn.train import TrainConfig, TrainingDiverged, fit

    start = time.perf_counter()
    model, tokenizer, recipe, lm_blocks = _lm_setup(profile, dsd, device)
    blocks = lm_blocks(dsd["train"], tokenizer, recipe.max_length, DIVERGE["steps"] * DIVERGE["batch"])
    config = TrainConfig(lr=DIVERGE["lr"], epochs=1, warmup_ratio=DIVERGE["warmup_ratio"], progress=False)
    keep = _History()
    seed_everything(SEED)
    error = ""
    try:
        fit(model, list(lm_loader(blocks, DIVERGE["batch"], SEED)), config=config, device=device, callbacks=[keep])
    except TrainingDiverged as exc:
        error = str(exc)
    history = keep.history
    print(f"diverged run: {len(history.step)} steps, last losses {history.loss[-5:]}; {error or 'no NaN'}")
    return {
        "made": _made(
            "a GPT-2 LM run on IMDB (offline smoke build) with a deliberately too-high peak lr, through "
            "ftlearn.train.fit",
            time.perf_counter() - start,
            build=BUILD,
            profile=profile.name,
            block_tokens=recipe.max_length,
            batch_blocks=DIVERGE["batch"],
            planned_steps=DIVERGE["steps"],
            config={
                "lr": config.lr,
                "warmup_ratio": config.warmup_ratio,
                "decay": config.decay,
                "max_grad_norm": config.max_grad_norm,
            },
        ),  # fmt: skip
        "history": _history(history),
        "stopped_by": error,
    }


def write_json(path: Path, data: dict) -> None:
    """Write one data file atomically, with a trailing newline."""
    from ftlearn.files import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=1, allow_nan=True) + "\n")
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def main(argv: list[str] | None = None) -> int:
    """Make the three files (or those named with --only)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "ftlearn" / "checks" / "data")
    parser.add_argument("--only", choices=("classifier", "sweep", "diverged"), action="append")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on busy shared cores)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    from ftlearn.data import load_imdb
    from ftlearn.runtime import get_profile, pick_device, seed_everything

    profile, device = get_profile("cpu"), pick_device()
    seed_everything(SEED)
    dsd = load_imdb(profile=profile, seed=SEED)
    makers = {"classifier": ("bert_epochs.json", classifier_epochs), "sweep": ("lm_lr_sweep.json", lr_sweep),
              "diverged": ("diverged_run.json", diverged_run)}  # fmt: skip
    for name in args.only or list(makers):
        filename, make = makers[name]
        write_json(args.out / filename, make(profile, dsd, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
