"""Full fine-tuning of GPT-2 on IMDB, as a language model (lesson 08) and as a classifier (lesson 09).

The notebooks and `ftlearn finetune gpt2-lm` / `ftlearn finetune gpt2-cls` call the same functions here.
The training loop is the minimal one of the course (forward → loss → backward → clip → step →
schedule → zero_grad); the BERT lessons' `ftlearn.train` teaches it at length.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ftlearn.runtime import Profile


# ---------------------------------------------------------------- sizes per profile


@dataclass(frozen=True)
class GPT2RunConfig:
    """Sizes and learning rate of one fine-tuning run; `for_profile` picks them (notebooks 08-09)."""

    block_size: int  # LM: tokens per training row; classifier: longest review in tokens
    max_train_blocks: int | None  # LM only: cap on training rows (None: all of them)
    max_eval_blocks: int | None  # LM only: cap on held-out rows
    epochs: int
    batch_size: int
    lr: float

    @classmethod
    def for_profile(cls, profile: Profile, task: str, model_config: Any = None) -> GPT2RunConfig:
        """The run sizes for `task` ("lm" or "cls") in `profile`, fitted to the model (its context and width).

        A small model (hidden size under 768, the offline build) gets a larger learning rate and, on a CPU,
        more training text; the 124M-parameter hub GPT-2 gets the usual 5e-5 / 2e-5 and, on a CPU, fewer rows.
        """
        if task not in ("lm", "cls"):
            raise ValueError(f"task must be 'lm' or 'cls', got {task!r}")
        n_positions = getattr(model_config, "n_positions", 1024)
        small = getattr(model_config, "n_embd", 768) < 768
        block = min(profile.max_length, n_positions)
        if profile.name == "smoke":
            return cls(block, 24 if task == "lm" else None, 8, 1, profile.batch_size, 1e-3)
        lr = 1e-3 if small else (5e-5 if task == "lm" else 2e-5)
        if profile.name == "cpu":
            # a CPU budget: 128-token rows; the LM reads up to 4,000 rows (512k tokens) once, 300 rows with the hub GPT-2
            if task == "lm":
                return cls(min(block, 128), 4000 if small else 300, 200, 1, profile.batch_size, lr)
            if small:
                # the offline build learns slowly from 2,000 reviews: measured on the sample's 468 test reviews,
                # 2 epochs at lr 1e-3 reached 0.538 accuracy and 8 epochs at 2e-3 reached 0.622 (about 4 min);
                # a later build (its text depends on the installed packages, see README) reached 0.585 in 142 s
                return cls(min(block, 128), None, None, 8, profile.batch_size, 2e-3)
            return cls(min(block, 128), None, None, profile.epochs, profile.batch_size, lr)
        return cls(block, None, 2000, 1 if task == "lm" else profile.epochs, profile.batch_size, lr)


# ---------------------------------------------------------------- loading


def load_causal_lm(profile: Profile, verbose: bool = True) -> tuple[Any, Any, Any]:
    """GPT-2 with its LM head (hub, cache, or the offline build that suits `profile`), its tokenizer and source (notebook 08)."""
    from transformers import AutoModelForCausalLM

    from ftlearn.models import count_parameters, load_tokenizer, resolve_model
    from ftlearn.offline_gpt2 import build_for_profile

    source = resolve_model("gpt2", profile.gpt2_model, build=build_for_profile(profile.name))
    tokenizer = load_tokenizer("gpt2", source=source)
    model = AutoModelForCausalLM.from_pretrained(source.location)
    if verbose:
        print(f"Model: {source.location} ({count_parameters(model) / 1e6:.1f}M parameters); {source.note}.")
    return model, tokenizer, source


def load_gpt2_classifier(profile: Profile, num_labels: int = 2, verbose: bool = True) -> tuple[Any, Any, Any]:
    """GPT2ForSequenceClassification with pad = eos, from the same source as `load_causal_lm` (notebook 09)."""
    from ftlearn.models import load_classifier
    from ftlearn.offline_gpt2 import build_for_profile

    build = build_for_profile(profile.name)
    return load_classifier(profile.gpt2_model, num_labels=num_labels, family="gpt2", verbose=verbose, build=build)


# ---------------------------------------------------------------- the loop


def fit(
    model: Any,
    make_batches: Callable[[int], Iterable[dict]],
    steps_per_epoch: int,
    epochs: int,
    lr: float,
    device: Any,
    weight_decay: float = 0.01,
    warmup_frac: float = 0.1,
    progress: bool = True,
) -> list[float]:
    """Train `model` on the batches `make_batches(epoch)` yields (dicts for `model(**batch)`); returns the step losses.

    AdamW without decay on biases and LayerNorm, linear warm-up then linear decay, gradient clipping at 1.
    """
    import torch
    from tqdm.auto import tqdm

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=lr,
    )
    total = steps_per_epoch * epochs
    warmup = max(1, int(warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    model.to(device).train()
    losses: list[float] = []
    bar = tqdm(total=total, desc="fine-tuning", disable=not progress)
    for epoch in range(epochs):
        for batch in make_batches(epoch):
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
    bar.close()
    model.eval()
    return losses


# ---------------------------------------------------------------- lesson 08: the language model


def lm_texts(ds: Any, prefix: bool = True) -> list[str]:
    """Cleaned reviews of a split, each with its 'Review (positive):' prefix when `prefix` (notebook 08)."""
    from ftlearn.causal_lm import clean_review, with_sentiment_prefix

    return [
        with_sentiment_prefix(clean_review(t), y) if prefix else clean_review(t)
        for t, y in zip(ds["text"], ds["label"])
    ]


def lm_blocks(ds: Any, tokenizer: Any, block_size: int, max_blocks: int | None = None, prefix: bool = True) -> Any:
    """A split as (N, block_size) rows of token ids: reviews concatenated with eos, then chunked (notebook 08)."""
    from ftlearn.causal_lm import chunk_into_blocks

    ids = tokenizer(lm_texts(ds, prefix), add_special_tokens=False)["input_ids"]
    blocks = chunk_into_blocks(ids, block_size, tokenizer.eos_token_id)
    return blocks[:max_blocks] if max_blocks is not None else blocks


def lm_batches(blocks: Any, batch_size: int, seed: int) -> Callable[[int], Iterable[dict]]:
    """A `make_batches(epoch)` for `fit`: shuffled rows, labels = input_ids (the model shifts them)."""
    import torch

    def make(epoch: int) -> Iterable[dict]:
        order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed + epoch))
        for start in range(0, len(blocks), batch_size):
            rows = blocks[order[start : start + batch_size]]  # (B, T)
            yield {"input_ids": rows, "labels": rows}

    return make


def _single_process_only(command: str) -> None:
    """Refuse to run under a multi-process launcher: lessons 08-09's small loop knows nothing of DDP."""
    from ftlearn.distributed import launched_world_size

    if launched_world_size() > 1:
        raise RuntimeError(
            f"`ftlearn finetune {command}` runs in one process: its loop (lessons 08-09) does not split the data across "
            f"ranks, so {launched_world_size()} processes would each train the whole run and write to the same folder. "
            "Start it without torchrun / accelerate launch (docs/multi_gpu.md)."
        )


def _start_run(profile: Profile, seed: int, task: str) -> tuple[Any, Any, Any, Any, Any, GPT2RunConfig]:
    """What lessons 08 and 09 both do first: refuse a launcher, seed, pick the device, load data, model and sizes."""
    from ftlearn.data import load_imdb
    from ftlearn.runtime import pick_device, seed_everything

    _single_process_only(f"gpt2-{task}")
    seed_everything(seed)
    device = pick_device()
    dsd = load_imdb(profile=profile, seed=seed)
    model, tokenizer, source = load_causal_lm(profile) if task == "lm" else load_gpt2_classifier(profile)
    return device, dsd, model, tokenizer, source, GPT2RunConfig.for_profile(profile, task, model.config)


def _run_facts(task: str, profile: Profile, source: Any, model: Any, cfg: GPT2RunConfig) -> dict:
    """The metrics.json keys that say what ran: task, profile, model and its size, run sizes."""
    from ftlearn.models import count_parameters

    return {
        "task": task,
        "profile": profile.name,
        "model": source.location,
        "model_kind": source.kind,
        "parameters": count_parameters(model),
        "run": asdict(cfg),
    }


def finetune_lm(profile: Profile, seed: int = 0, out: Path | None = None, progress: bool = True) -> dict:
    """Lesson 08 end to end: held-out perplexity, fine-tune on IMDB review text, perplexity again; metrics dict."""
    from ftlearn.causal_lm import mean_lm_loss, perplexity
    from ftlearn.runtime import seed_everything

    device, dsd, model, tokenizer, source, cfg = _start_run(profile, seed, "lm")
    train = lm_blocks(dsd["train"], tokenizer, cfg.block_size, cfg.max_train_blocks)
    test = lm_blocks(dsd["test"], tokenizer, cfg.block_size, cfg.max_eval_blocks)
    model.to(device)
    before = mean_lm_loss(model, test, cfg.batch_size, device)
    print(f"held-out perplexity before fine-tuning: {perplexity(before):.1f}")
    seed_everything(seed)
    start = time.perf_counter()
    steps = math.ceil(len(train) / cfg.batch_size)
    losses = fit(model, lm_batches(train, cfg.batch_size, seed), steps, cfg.epochs, cfg.lr, device, progress=progress)
    seconds = time.perf_counter() - start
    after = mean_lm_loss(model, test, cfg.batch_size, device)
    print(f"held-out perplexity after fine-tuning:  {perplexity(after):.1f}  ({seconds:.0f} s of training)")
    metrics = {
        **_run_facts("gpt2-lm", profile, source, model, cfg),
        "train_tokens": int(train.numel()),
        "eval_tokens": int(test.numel()),
        "loss_before": before,
        "loss_after": after,
        "perplexity_before": perplexity(before),
        "perplexity_after": perplexity(after),
        "train_seconds": round(seconds, 1),
        "first_losses": losses[:5],
        "last_losses": losses[-5:],
    }
    if out is not None:
        _save(out, model, tokenizer, metrics)
    return metrics


# ---------------------------------------------------------------- lesson 09: the classifier


def cls_batches(
    ds: Any, tokenizer: Any, max_length: int, batch_size: int, seed: int | None
) -> Callable[[int], Iterable[dict]]:
    """A `make_batches(epoch)` of tokenized reviews, padded per batch (right side, pad = eos); shuffled unless seed is None."""
    import torch

    from ftlearn.causal_lm import clean_review

    texts = [clean_review(t) for t in ds["text"]]
    labels = torch.tensor(ds["label"])

    def make(epoch: int) -> Iterable[dict]:
        order = (
            torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed + epoch))
            if seed is not None
            else torch.arange(len(texts))
        )
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size].tolist()
            enc = tokenizer(
                [texts[i] for i in idx], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            )
            yield {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels[idx]}

    return make


def predict_classifier(
    model: Any, tokenizer: Any, ds: Any, max_length: int, batch_size: int, device: Any
) -> tuple[list[int], list[int]]:
    """Predicted and true labels of a split (argmax of the logits), without gradients (notebook 09)."""
    import torch

    preds, truth = [], []
    model.eval()
    with torch.no_grad():
        for batch in cls_batches(ds, tokenizer, max_length, batch_size, seed=None)(0):
            truth += batch.pop("labels").tolist()
            preds += model(**{k: v.to(device) for k, v in batch.items()}).logits.argmax(-1).tolist()
    return preds, truth


def accuracy_and_f1(preds: list[int], truth: list[int]) -> dict[str, float]:
    """Accuracy and F1 of the positive class (notebook 09), computed by lesson 06's `ftlearn.metrics`."""
    from ftlearn.metrics import confusion_matrix, metrics_from_confusion

    scores = metrics_from_confusion(confusion_matrix(truth, preds))
    return {"accuracy": scores["accuracy"], "f1": scores["f1"]}


def finetune_cls(profile: Profile, seed: int = 0, out: Path | None = None, progress: bool = True) -> dict:
    """Lesson 09 end to end: GPT-2 with a classification head, fully fine-tuned on IMDB; metrics dict."""
    from ftlearn.runtime import seed_everything

    device, dsd, model, tokenizer, source, cfg = _start_run(profile, seed, "cls")
    seed_everything(seed)
    start = time.perf_counter()
    steps = math.ceil(len(dsd["train"]) / cfg.batch_size)
    losses = fit(
        model,
        cls_batches(dsd["train"], tokenizer, cfg.block_size, cfg.batch_size, seed),
        steps,
        cfg.epochs,
        cfg.lr,
        device,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    preds, truth = predict_classifier(model, tokenizer, dsd["test"], cfg.block_size, cfg.batch_size, device)
    scores = accuracy_and_f1(preds, truth)
    print(
        f"test accuracy {scores['accuracy']:.3f}, F1 {scores['f1']:.3f} on {len(truth)} reviews ({seconds:.0f} s of training)"
    )
    metrics = {
        **_run_facts("gpt2-cls", profile, source, model, cfg),
        "n_train": len(dsd["train"]),
        "n_test": len(truth),
        **scores,
        "train_seconds": round(seconds, 1),
        "first_losses": losses[:5],
        "last_losses": losses[-5:],
    }
    if out is not None:
        _save(out, model, tokenizer, metrics)
    return metrics


# ---------------------------------------------------------------- CLI


def _save(out: Path, model: Any, tokenizer: Any, metrics: dict) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    print(f"saved the fine-tuned model to {out / 'model'} and the metrics to {out / 'metrics.json'}")


def _cmd(task: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from ftlearn.runtime import get_profile

        try:
            profile = get_profile(args.profile)
        except ValueError as exc:
            print(f"ftlearn finetune: {exc}")
            return 2
        out = Path(args.out) if args.out else Path("runs") / f"{task}-{profile.name}"
        (finetune_lm if task == "gpt2-lm" else finetune_cls)(profile, seed=args.seed, out=out)
        return 0

    return run


def add_commands(targets: Any) -> None:
    """Register `gpt2-lm` and `gpt2-cls` under `ftlearn finetune` (argparse sub-parsers object)."""
    for task, help_text in (
        ("gpt2-lm", "GPT-2 as a language model on IMDB review text (lesson 08)"),
        ("gpt2-cls", "GPT-2 as a sentiment classifier on IMDB (lesson 09)"),
    ):
        cmd = targets.add_parser(task, help=help_text)
        cmd.add_argument("--profile", default="auto", help="smoke, cpu, gpu or auto (default)")
        cmd.add_argument("--out", help=f"folder for metrics.json and the model (default runs/{task}-PROFILE)")
        cmd.add_argument("--seed", type=int, default=0)
        cmd.set_defaults(func=_cmd(task))
