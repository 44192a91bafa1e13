"""How fast is full BERT fine-tuning, done four ways on the same reviews? (lesson 11's benchmark)

In one run, the same pretrained model (with the same seeded new head) is fine-tuned on the same
IMDB reviews for the same number of epochs, four ways:

  (a) seed     the recipe of the blog posts the course started from: every review padded to 512
               tokens, fp32, a plain loop (batch 8, AdamW at a constant lr, no schedule, no clipping);
  (b) trainer  Hugging Face `Trainer` with default `TrainingArguments` (batch 8, linear decay, fp32
               unless told otherwise, truncation at 512 and dynamic padding by its default collator);
  (c) ftlearn  `ftlearn.train.fit` with the course's recipe for the profile (`ftlearn.recipes.BertRecipe.for_profile`:
               head+tail truncation, dynamic padding, length-grouped batches, warm-up + linear decay,
               bf16/fp16 autocast on a GPU), at the same batch size of 8 as the other arms;
  (d) trainer_recipe  Hugging Face `Trainer` given the course's recipe: the same head+tail tokens, the
               same length-grouped batches (`train_sampling_strategy="group_by_length"`), batch size,
               lr, weight decay, warm-up and linear decay, clipping and precision as (c).

(c) against (b) mixes the recipe (fewer tokens, less padding) with the loop; (c) against (d) is the loop
alone. Each arm is then tested on the same held-out reviews through its own inference path. The loop's
own ratio is a few per cent at most, smaller than the run-to-run noise of one timing on a shared machine
(15% or more on 2 cloud cores), so (c) and (d) train `--repeats` times each, in alternating order (c d,
d c, c d, ...), and their samples/s is the median run's (a line under the table lists every run). The script
prints a table of training samples/s, time, accuracy (with its standard error) and F1, and ends with
the line `speedup_vs_seed=X speedup_vs_trainer=Y speedup_vs_trainer_same_recipe=Z` (ratios of training
samples/s, measured in this run). With --mfu (default on a GPU) it also measures model FLOPs utilisation
for the bert-base architecture (random weights) against this device's measured matmul peak, and projects the time of
one epoch over IMDB's 25,000 training reviews.

    python benchmarks/finetune_throughput.py --profile cpu       # 33 minutes on 2 quiet CPU cores (--mfu adds a minute)
    python benchmarks/finetune_throughput.py --profile smoke     # a minute: checks the code paths
    python benchmarks/finetune_throughput.py --profile gpu       # 4,000 reviews + the MFU section

It is a script, not a test: timings depend on the machine, so nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SEED_MAX_LENGTH = 512  # the seeds padded every review to BERT's maximum (and the Trainer arm truncates there)
SEED_BATCH_SIZE = 8  # seed 000's batch size (also TrainingArguments' default)
IMDB_TRAIN_REVIEWS = 25_000
ARMS = ("seed", "trainer", "ftlearn", "trainer_recipe")  # (a), (b), (c), (d); (c) and (d) run one after the other

# Reviews trained on / tested on, epochs, the length the seed arm pads to (and the Trainer arm
# truncates at), and how often the paired arms (c) and (d) are timed, per profile: on cpu enough for
# accuracy to mean something (the test set is the whole 468-review test split of the sample) within
# half an hour; smoke only checks the code paths, so it pads to 128 instead of 512.
SIZES: dict[str, dict[str, int | None]] = {
    "smoke": {"n_train": 8, "n_test": 8, "epochs": 1, "max_length": 128, "repeats": 2},
    "cpu": {"n_train": 640, "n_test": None, "epochs": 1, "max_length": SEED_MAX_LENGTH, "repeats": 3},
    "gpu": {"n_train": 4000, "n_test": 2000, "epochs": 1, "max_length": SEED_MAX_LENGTH, "repeats": 3},
}
PAIRED = ("ftlearn", "trainer_recipe")  # the arms that differ by the loop alone: timed `repeats` times each


@dataclass
class ArmResult:
    """What one way of fine-tuning achieved."""

    arm: str
    how: str
    samples: int  # training examples processed (reviews x epochs)
    train_seconds: float
    accuracy: float
    f1: float
    n_test: int
    tokens_per_review: float  # mean token slots per training review actually computed, padding included
    extra: dict[str, Any] = field(default_factory=dict)
    runs: list[float] = field(default_factory=list)  # the training seconds of every timing (the paired arms repeat)

    def __post_init__(self) -> None:
        self.runs = self.runs or [self.train_seconds]

    def add_run(self, seconds: float) -> None:
        """One more timing of the same training; `train_seconds` becomes the median run's."""
        self.runs.append(seconds)
        self.train_seconds = float(np.median(self.runs))

    @property
    def samples_per_second(self) -> float:
        """Training throughput (of the median run)."""
        return self.samples / self.train_seconds

    @property
    def accuracy_se(self) -> float:
        """One standard error of the test accuracy (binomial)."""
        return math.sqrt(self.accuracy * (1 - self.accuracy) / self.n_test)


def fresh_model(model_name: str, seed: int) -> tuple[Any, Any, Any]:
    """The pretrained encoder with a new head whose random init depends on `seed` only."""
    from ftlearn.models import load_classifier
    from ftlearn.runtime import seed_everything

    seed_everything(seed)
    return load_classifier(model_name, verbose=False)


def sync(device: Any) -> None:
    """Wait for queued GPU work, so that wall-clock times are honest."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def scores(labels: np.ndarray, preds: np.ndarray) -> tuple[float, float]:
    """Accuracy and F1 (ftlearn.metrics, tested against scikit-learn)."""
    from ftlearn.metrics import accuracy, f1_score

    return accuracy(labels, preds), f1_score(labels, preds)


# ---------------------------------------------------------------- (a) the seeds' recipe


def trainer_test_scores(trainer: Any, test: Any) -> tuple[float, float]:
    """Accuracy and F1 of a Trainer's predictions on `test`, each prediction paired with the label returned beside it.

    The Trainer's evaluation sampler groups the test set by length when training does (arm (d)), so its
    predictions are not in the data set's order: pairing them with `test["label"]` scores chance.
    """
    out = trainer.predict(test)
    return scores(np.asarray(out.label_ids), np.asarray(out.predictions).argmax(-1))


def run_seed(
    dsd: Any, model_name: str, epochs: int, lr: float, seed: int, device: Any, max_length: int = SEED_MAX_LENGTH
) -> ArmResult:
    """(a) Pad to 512, fp32, a plain loop: forward, backward, step; nothing else."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model, tokenizer, _ = fresh_model(model_name, seed)
    model.to(device)

    def encode(split: Any) -> TensorDataset:
        enc = tokenizer(
            list(split["text"]), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
        )
        return TensorDataset(enc["input_ids"], enc["attention_mask"], torch.tensor(list(split["label"])))

    train, test = encode(dsd["train"]), encode(dsd["test"])
    loader = DataLoader(train, batch_size=SEED_BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        for ids, mask, labels in loader:
            model.zero_grad()
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
            out.loss.backward()
            optimizer.step()
    sync(device)
    seconds = time.perf_counter() - start
    model.eval()
    preds = []
    with torch.no_grad():
        for ids, mask, _ in DataLoader(test, batch_size=4 * SEED_BATCH_SIZE):
            preds.append(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.argmax(-1).cpu())
    acc, f1 = scores(np.asarray(list(dsd["test"]["label"])), torch.cat(preds).numpy())
    how = f"pad to {max_length}, fp32, batch {SEED_BATCH_SIZE}, constant lr, plain loop"
    return ArmResult("seed", how, len(train) * epochs, seconds, acc, f1, len(test), float(max_length))


# ---------------------------------------------------------------- (b) the Trainer's defaults


def run_trainer(dsd: Any, model_name: str, epochs: int, seed: int, max_length: int = SEED_MAX_LENGTH) -> ArmResult:
    """(b) `Trainer` with default arguments, except: our epochs and seed, no checkpoints, no loggers, no bar."""
    from transformers import Trainer, TrainingArguments

    model, tokenizer, _ = fresh_model(model_name, seed)

    def encode(split: Any) -> Any:
        return split.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=max_length),
            batched=True,
            remove_columns=["text"],
        )

    train, test = encode(dsd["train"]), encode(dsd["test"])
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            num_train_epochs=epochs,
            seed=seed,
            save_strategy="no",  # the other two arms write no checkpoints either
            report_to="none",  # no experiment trackers
            disable_tqdm=True,  # a bar costs nothing measurable; it would only clutter the report
        )
        trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
        device = trainer.args.device
        sync(device)
        start = time.perf_counter()
        trainer.train()
        sync(device)
        seconds = time.perf_counter() - start
        acc, f1 = trainer_test_scores(trainer, test)
    lengths = np.array([len(ids) for ids in train["input_ids"]])
    dtype = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    how = f"defaults: batch {args.per_device_train_batch_size}, truncate at {max_length}, dynamic padding, {dtype}"
    # the random batches' padding is not recorded; the mean real length is a lower bound of the slots
    return ArmResult(
        "trainer",
        how,
        len(train) * epochs,
        seconds,
        acc,
        f1,
        len(test),
        float(lengths.mean()),
        {"tokens_note": "real tokens (padding not counted)"},
    )


# ---------------------------------------------------------------- (c) ftlearn.train, the course's recipe


def run_ftlearn(
    dsd: Any,
    model_name: str,
    epochs: int,
    seed: int,
    device: Any,
    profile: Any,
    batch_size: int = SEED_BATCH_SIZE,
    test: bool = True,
) -> ArmResult:
    """(c) `ftlearn.train.fit` with the profile's `BertRecipe`: head+tail, dynamic padding, length-grouped batches.

    `test=False` only trains (a repeat timing): accuracy and F1 are then NaN.
    """
    from ftlearn.bert import eval_loader, tokenize_splits, train_loader
    from ftlearn.evaluation import evaluate
    from ftlearn.losses import cross_entropy
    from ftlearn.recipes import BertRecipe
    from ftlearn.runtime import seed_everything
    from ftlearn.tokenization import make_collator, padding_cost
    from ftlearn.train import fit

    # The same batch size as the other two arms (the seeds' and the Trainer's 8): all three take the same
    # number of optimizer steps, so accuracy differences come from what each does to the reviews, not
    # from one arm getting half the updates. (The cpu profile's own recipe uses batches of 16.)
    recipe = BertRecipe.for_profile(profile, epochs=epochs, batch_size=batch_size)
    model, tokenizer, _ = fresh_model(model_name, seed)
    # the library's data preparation (ftlearn.bert), as every run uses it, without the validation split: the
    # arms train on the same reviews
    train, testset = tokenize_splits(tokenizer, recipe, dsd["train"], dsd["test"])
    collator = make_collator(tokenizer)
    loader = train_loader(train, collator, recipe, seed, device)
    lengths = [len(ids) for ids in train["input_ids"]]
    slots = 0  # token slots computed, padding included: the batches fit will see, epoch by epoch
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        slots += padding_cost(lengths, loader.batch_sampler.batches())["slots"]
    seed_everything(seed)
    history = fit(model, loader, None, recipe.train_config(progress=False), device=device, loss_fn=cross_entropy)
    report = {"accuracy": math.nan, "f1": math.nan}
    if test:
        report = evaluate(model, eval_loader(testset, collator, recipe, device), device)
    how = f"{recipe.truncation} {recipe.max_length}, batch {recipe.batch_size}, grouped by length, {history.precision}"
    return ArmResult(
        "ftlearn",
        how,
        len(train) * epochs,
        history.train_seconds,
        report["accuracy"],
        report["f1"],
        len(testset),
        slots / (len(lengths) * epochs),
        {"train_loss": float(np.mean(history.loss))},
    )


# ---------------------------------------------------------------- (d) the Trainer with the course's recipe


def run_trainer_recipe(
    dsd: Any,
    model_name: str,
    epochs: int,
    seed: int,
    device: Any,
    profile: Any,
    batch_size: int = SEED_BATCH_SIZE,
    test: bool = True,
) -> ArmResult:
    """(d) `Trainer` given (c)'s recipe: its tokens, length-grouped batches, lr, warm-up, decay, clipping, precision.

    `test=False` only trains (a repeat timing): accuracy and F1 are then NaN.
    """
    from transformers import Trainer, TrainingArguments

    from ftlearn.bert import tokenize_splits
    from ftlearn.precision import choose_precision
    from ftlearn.recipes import BertRecipe
    from ftlearn.tokenization import make_collator

    recipe = BertRecipe.for_profile(profile, epochs=epochs, batch_size=batch_size)
    config = recipe.train_config()
    model, tokenizer, _ = fresh_model(model_name, seed)
    train, testset = tokenize_splits(tokenizer, recipe, dsd["train"], dsd["test"])  # (c)'s head+tail tokens, exactly
    precision = choose_precision(device, config.mixed_precision)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            num_train_epochs=epochs,
            per_device_train_batch_size=recipe.batch_size,
            per_device_eval_batch_size=2 * recipe.batch_size,
            learning_rate=config.lr,
            weight_decay=config.weight_decay,  # the Trainer also spares biases and LayerNorm, as param_groups does
            adam_beta1=config.betas[0],
            adam_beta2=config.betas[1],
            optim="adamw_torch",
            lr_scheduler_type=config.decay,
            warmup_steps=config.warmup_ratio,  # a float below 1: a fraction of all steps
            max_grad_norm=config.max_grad_norm,
            train_sampling_strategy="group_by_length" if recipe.group_by_length else "random",
            bf16=precision.name == "bf16",
            fp16=precision.name == "fp16",
            dataloader_pin_memory=device.type == "cuda",  # pinned memory only helps copies to a GPU
            seed=seed,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            processing_class=tokenizer,
            data_collator=make_collator(tokenizer),
        )
        sync(device)
        start = time.perf_counter()
        train_loss = trainer.train().training_loss  # the mean over the run's steps
        sync(device)
        seconds = time.perf_counter() - start
        acc, f1 = trainer_test_scores(trainer, testset) if test else (math.nan, math.nan)
    lengths = np.array([len(ids) for ids in train["input_ids"]])
    how = (
        f"Trainer, {recipe.truncation} {recipe.max_length}, batch {recipe.batch_size}, grouped by length, "
        f"warm-up + {config.decay} decay, {precision.name}"
    )
    return ArmResult(
        "trainer_recipe",
        how,
        len(train) * epochs,
        seconds,
        acc,
        f1,
        len(testset),
        float(lengths.mean()),
        {"tokens_note": "real tokens (padding not counted)", "train_loss": float(train_loss)},
    )


# ---------------------------------------------------------------- where (c) and (d) differ: the optimizer step


def time_optimizer_steps(model_name: str, seed: int, device: Any, rounds: int = 20) -> dict[str, float]:
    """Median milliseconds of one AdamW step over the model's parameters, per implementation, timed in turn.

    The loops of (c) and (d) run the same forward and backward on the same batches; per step they differ in
    the optimizer: (c) steps lesson 04's `ftlearn.optim.AdamW`, (d) the Trainer's `adamw_torch`
    (`torch.optim.AdamW`, whose default on a GPU is its multi-tensor form). The fused kernel is shown for scale.
    """
    import torch

    from ftlearn.optim import AdamW, param_groups

    model, _, _ = fresh_model(model_name, seed)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():  # small gradients, so that the repeated steps keep the weights sensible
        param.grad = (torch.randn(param.shape, generator=generator) * 1e-3).to(device)
    groups = lambda: param_groups(model, 0.01)  # noqa: E731  (fresh groups: each optimizer keeps its own state)
    optimizers = {
        "lesson 04's AdamW (c)": AdamW(groups(), lr=1e-9),
        "torch.optim.AdamW (d)": torch.optim.AdamW(groups(), lr=1e-9),
    }
    try:
        optimizers["torch.optim.AdamW fused"] = torch.optim.AdamW(groups(), lr=1e-9, fused=True)
    except (RuntimeError, ValueError):  # no fused kernel on this device
        pass
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(rounds + 1):  # the first round warms up (allocates each optimizer's state) and is dropped
        for name, optimizer in optimizers.items():
            sync(device)
            start = time.perf_counter()
            optimizer.step()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * float(np.median(t[1:])) for name, t in times.items()}


# ---------------------------------------------------------------- MFU of the bert-base architecture


def measure_peak_flops(device: Any, dtype: Any, n: int, repeats: int = 10, trials: int = 5) -> float:
    """This device's dense matmul FLOP/s in `dtype`: the best of `trials` timings of n x n matmuls (2n^3 FLOPs each)."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):  # warm-up: kernel selection, clocks
        a @ b
    best = 0.0
    for _ in range(trials):  # the best trial: a peak is what the hardware can do, not what a busy moment gave
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def measure_mfu(device: Any, batch: int, seq: int, steps: int, mean_review_tokens: float) -> dict[str, Any]:
    """Training tokens/s of a random-init bert-base classifier, its MFU, and one IMDB epoch projected."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from ftlearn.memory import flops_per_token, matmul_parameters, mfu
    from ftlearn.runtime import seed_everything

    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    peak = measure_peak_flops(
        device, dtype, 8192 if device.type == "cuda" else 2048, repeats=10 if device.type == "cuda" else 2
    )
    seed_everything(0)
    config = BertConfig(num_labels=2)  # bert-base: 12 layers, hidden 768, 12 heads
    model = BertForSequenceClassification(config).to(device).train()
    params = matmul_parameters(model)  # the N of 6N: embedding look-ups are not matmuls (notebook 11)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    ids = torch.randint(1000, config.vocab_size, (batch, seq), device=device)
    labels = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    tokens_per_s = batch * seq * steps / (time.perf_counter() - start)
    per_token = flops_per_token(params, config.num_hidden_layers, config.hidden_size, seq)
    utilisation = mfu(tokens_per_s, per_token, peak)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return {
        "device": name,
        "dtype": str(dtype).replace("torch.", ""),
        "batch": batch,
        "seq": seq,
        "params": params,
        "peak_tflops": peak / 1e12,
        "tokens_per_s": tokens_per_s,
        "model_tflops": tokens_per_s * per_token / 1e12,
        "mfu": utilisation,
        # every review padded to `seq` tokens, vs. only the reviews' real tokens (length-grouped batches,
        # assuming the same tokens/s at their shorter lengths; shorter sequences are, if anything, faster)
        "epoch_minutes_padded": IMDB_TRAIN_REVIEWS * seq / tokens_per_s / 60,
        "epoch_minutes_real_tokens": IMDB_TRAIN_REVIEWS * mean_review_tokens / tokens_per_s / 60,
    }


# ---------------------------------------------------------------- report


def flops_text(tflops: float) -> str:
    """TFLOP/s, or GFLOP/s below one TFLOP/s (a CPU), with three significant figures."""
    return f"{tflops:.3g} TFLOP/s" if tflops >= 1 else f"{tflops * 1e3:.3g} GFLOP/s"


def print_table(results: list[ArmResult]) -> None:
    """One row per arm: samples/s, training time, accuracy +- SE, F1, tokens per review."""
    print()
    print(f"{'arm':14s} {'samples/s':>9s} {'train s':>8s} {'accuracy':>14s} {'F1':>6s} {'tok/review':>10s}  how")
    for r in results:
        print(
            f"{r.arm:14s} {r.samples_per_second:9.2f} {r.train_seconds:8.1f} {r.accuracy:7.3f} ± {r.accuracy_se:.3f} "
            f"{r.f1:6.3f} {r.tokens_per_review:10.1f}  {r.how}"
        )


def accuracy_verdict(a: ArmResult, b: ArmResult) -> str:
    """Whether two arms' test accuracies differ by more than two standard errors of the difference."""
    diff = a.accuracy - b.accuracy
    se = math.sqrt(a.accuracy_se**2 + b.accuracy_se**2)
    same = abs(diff) <= 2 * se
    return (
        f"{a.arm} - {b.arm}: {diff:+.3f} ± {se:.3f} (1 SE) -> {'equal within noise' if same else 'a real difference'}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the four arms (and the MFU section), print the table and the speed-up line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="auto", help="smoke | cpu | gpu | auto (default; FTLEARN_PROFILE wins)")
    parser.add_argument("--n-train", type=int, help="training reviews (default: per profile)")
    parser.add_argument("--n-test", type=int, help="test reviews (default: per profile; cpu: the whole test split)")
    parser.add_argument("--epochs", type=int, help="epochs, the same for every arm (default: per profile)")
    parser.add_argument(
        "--max-length",
        type=int,
        help="what the seed arm pads to and the Trainer arm truncates at (default 512; smoke 128)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        help="the seed arm's constant lr (default: the course recipe's lr, so that speed is what differs)",
    )
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {','.join(ARMS)}")
    parser.add_argument(
        "--repeats",
        type=int,
        help="how many times (c) and (d) are each timed, alternating (default: per profile; cpu 3)",
    )
    parser.add_argument(
        "--mfu",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure bert-base MFU (default: on a GPU only)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)

    import datasets
    import torch

    from ftlearn.data import load_imdb
    from ftlearn.files import write_json_atomic
    from ftlearn.models import resolve_model
    from ftlearn.recipes import BertRecipe
    from ftlearn.runtime import get_profile, hardware_summary, package_version, pick_device

    profile = get_profile(args.profile)
    datasets.disable_progress_bar()  # tokenizing takes a second; its bars would bury the report
    sizes = {**SIZES.get(profile.name, SIZES["cpu"])}
    for key in ("n_train", "n_test", "epochs", "max_length", "repeats"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = set(arms) - set(ARMS)
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(sorted(unknown))}; choose from {', '.join(ARMS)}")
    if sizes["repeats"] < 1:
        parser.error(f"--repeats must be at least 1, got {sizes['repeats']}")
    device = pick_device()
    lr = args.lr if args.lr is not None else BertRecipe.for_profile(profile).lr
    print(
        f"profile {profile.name} | device {device} | {hardware_summary()} | torch {torch.__version__}, "
        f"transformers {package_version('transformers')}"
    )
    source = resolve_model("bert", profile.bert_model)
    print(f"threads {torch.get_num_threads()} | model {source.location} ({source.note}) | seed {args.seed}")
    dsd = load_imdb(profile=profile, n_train=sizes["n_train"], n_test=sizes["n_test"], seed=args.seed)
    n_train, n_test, epochs = len(dsd["train"]), len(dsd["test"]), sizes["epochs"]
    print(f"{n_train} training reviews x {epochs} epoch(s), tested on {n_test} reviews; seed-arm lr {lr:g}")

    def run_arm(arm: str, test: bool = True) -> ArmResult:
        if arm == "seed":
            return run_seed(dsd, profile.bert_model, epochs, lr, args.seed, device, sizes["max_length"])
        if arm == "trainer":
            return run_trainer(dsd, profile.bert_model, epochs, args.seed, sizes["max_length"])
        if arm == "ftlearn":
            return run_ftlearn(dsd, profile.bert_model, epochs, args.seed, device, profile, test=test)
        return run_trainer_recipe(dsd, profile.bert_model, epochs, args.seed, device, profile, test=test)

    results: list[ArmResult] = []
    for arm in arms:
        print(f"\n--- ({'abcd'[ARMS.index(arm)]}) {arm} ...", flush=True)
        result = run_arm(arm)
        print(
            f"    {result.samples_per_second:.2f} samples/s, {result.train_seconds:.1f} s, "
            f"accuracy {result.accuracy:.3f}",
            flush=True,
        )
        results.append(result)
    by_arm = {r.arm: r for r in results}

    # The paired arms again, training only, in alternating order (d c, c d, ...): the first round ran c then d,
    # so over the rounds each arm goes first as often as the other (warm caches, a neighbour's load).
    paired = [arm for arm in PAIRED if arm in by_arm]
    for round_ in range(1, sizes["repeats"]):
        for arm in paired if round_ % 2 == 0 else paired[::-1]:
            print(f"\n--- ({'abcd'[ARMS.index(arm)]}) {arm}, timing {round_ + 1} of {sizes['repeats']} ...", flush=True)
            again, first = run_arm(arm, test=False), by_arm[arm]
            first.add_run(again.train_seconds)
            # the same seeded training each time: the mean training loss shows that it did the same work
            first.extra.setdefault("train_loss_runs", [first.extra["train_loss"]]).append(again.extra["train_loss"])
            print(
                f"    {again.samples_per_second:.2f} samples/s, {again.train_seconds:.1f} s, mean training loss "
                f"{again.extra['train_loss']:.4f} (first timing {first.extra['train_loss']:.4f})",
                flush=True,
            )

    print_table(results)
    for arm in paired:
        r = by_arm[arm]
        if len(r.runs) > 1:
            runs = ", ".join(f"{seconds:.1f}" for seconds in r.runs)
            print(f"{arm}: trained in {runs} s; the table shows the median, {r.train_seconds:.1f} s")
    if "ftlearn" in by_arm:
        for other in ("seed", "trainer", "trainer_recipe"):
            if other in by_arm:
                print(accuracy_verdict(by_arm["ftlearn"], by_arm[other]))

    optimizer_ms = None
    if set(PAIRED) <= set(by_arm):
        optimizer_ms = time_optimizer_steps(profile.bert_model, args.seed, device)
        steps = math.ceil(n_train / SEED_BATCH_SIZE) * epochs
        print(
            "one AdamW step (median of 20 timings), where the loops of (c) and (d) differ most: "
            + ", ".join(f"{name} {ms:.0f} ms" for name, ms in optimizer_ms.items())
            + f"; {steps} steps per run"
        )

    mfu_report = None
    if args.mfu or (args.mfu is None and device.type == "cuda"):
        from ftlearn.models import load_tokenizer

        tokenizer = load_tokenizer("bert", name=profile.bert_model)
        mean_tokens = float(
            np.mean([len(ids) for ids in tokenizer(list(dsd["train"]["text"]), truncation=True)["input_ids"]])
        )
        shape = (32, 512, 20) if device.type == "cuda" else (4, 128, 3)
        print(
            f"\n--- MFU: bert-base architecture (random weights), batch {shape[0]} x {shape[1]} tokens, "
            f"{shape[2]} steps ...",
            flush=True,
        )
        mfu_report = measure_mfu(device, *shape, mean_review_tokens=mean_tokens)
        m = mfu_report
        print(
            f"{m['device']} {m['dtype']}: measured matmul peak {flops_text(m['peak_tflops'])}; "
            f"training {m['tokens_per_s']:,.0f} tokens/s "
            f"= {flops_text(m['model_tflops'])} of model FLOPs -> MFU {m['mfu']:.1%} of the measured peak"
        )
        padded = (
            f"; {m['epoch_minutes_padded']:.1f} min with every review padded to 512"
            if m["seq"] == SEED_MAX_LENGTH
            else ""
        )
        print(
            f"one epoch of IMDB's {IMDB_TRAIN_REVIEWS:,} training reviews at {m['tokens_per_s']:,.0f} tokens/s: about "
            f"{m['epoch_minutes_real_tokens']:.1f} min for their real tokens "
            f"(mean {mean_tokens:.0f} per review after truncation "
            f"at 512, length-grouped batches){padded}"
        )

    if args.json:
        payload = {
            "profile": profile.name,
            "device": str(device),
            "hardware": hardware_summary(),
            "sizes": sizes,
            "arms": [
                {**asdict(r), "samples_per_second": r.samples_per_second, "accuracy_se": r.accuracy_se} for r in results
            ],
            "mfu": mfu_report,
            "optimizer_step_ms": optimizer_ms,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.json, payload)  # a killed run leaves the previous results file whole

    if "ftlearn" in by_arm:
        ratio = {
            k: by_arm["ftlearn"].samples_per_second / by_arm[k].samples_per_second if k in by_arm else float("nan")
            for k in ("seed", "trainer", "trainer_recipe")
        }
        print(
            f"speedup_vs_seed={ratio['seed']:.2f} speedup_vs_trainer={ratio['trainer']:.2f} "
            f"speedup_vs_trainer_same_recipe={ratio['trainer_recipe']:.2f}"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
