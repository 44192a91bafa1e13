"""The course's one training loop: forward → loss → backward → clip → step → schedule → zero_grad.

Introduced in notebook 07 (BERT fine-tuning, by hand). Every run of the course trains through `fit`:
the BERT classifier (07), the GPT-2 language model (09) and classifier (10), the offline GPT-2's
pretraining, and `ftlearn finetune`. Around the six lines of the lesson's loop it adds only named
steps: lesson 04's AdamW over the one weight-decay rule (`ftlearn.optim.param_groups`) and the one
schedule family (`ftlearn.optim.warmup_decay`), gradient accumulation with token-weighted means,
mixed precision on a GPU, evaluation with early stopping, checkpoints with an exact resume, and DDP
when launched with several processes. Evaluation lives in `ftlearn.evaluation`, checkpoints in
`ftlearn.checkpoints`, the History in `ftlearn.history`, precision in `ftlearn.precision`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftlearn.causal_lm import IGNORE_INDEX  # a label position the loss skips
from ftlearn.checkpoints import (
    CHECKPOINT_PREFIX,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from ftlearn.evaluation import evaluate, to_device
from ftlearn.history import PACE_STEPS, History, pace_line
from ftlearn.precision import autocast, choose_precision

if TYPE_CHECKING:  # pragma: no cover
    import torch


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the learning rate."""


@dataclass
class TrainConfig:
    """Knobs of `fit`; every one is explained in notebook 07."""

    lr: float = 5e-5
    epochs: int = 2
    weight_decay: float = 0.01  # on weight matrices only, see `ftlearn.optim.param_groups`
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's decay rates for m and v (lesson 04)
    warmup_ratio: float = 0.1  # fraction of all optimizer steps spent ramping the lr up from 0
    decay: str = "linear"  # after warm-up the lr falls along a line or a half cosine (`warmup_decay`) ...
    final_lr_ratio: float = 0.0  # ... to this fraction of the peak at the last step
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    max_grad_norm: float | None = 1.0  # clip the global gradient norm; None = no clipping
    mixed_precision: str = "auto"  # "auto" (bf16/fp16 on CUDA, fp32 elsewhere), "bf16" or "fp16" (any device), "no"
    eval_every_steps: int | None = None  # evaluate also every N optimizer steps (always at each epoch end)
    patience: int | None = None  # early stopping: evaluations without a better `best_metric` before stopping
    restore_best: bool = True  # at the end, load the weights of the best evaluation (when there is a val set)
    best_metric: str = "loss"  # what "best" means: the lowest validation "loss", or the highest "accuracy"
    checkpoint_every: int | None = None  # save a checkpoint every N optimizer steps ...
    checkpoint_dir: str | None = None  # ... into this folder
    keep_checkpoints: int = 2  # older checkpoints are deleted
    max_steps: int | None = None  # stop after this many optimizer steps (the schedule still spans all epochs)
    progress: bool = True  # tqdm progress bar


# ---------------------------------------------------------------- named steps of the loop


def steps_per_epoch(n_batches: int, grad_accum_steps: int) -> int:
    """Optimizer steps in one epoch: one per `grad_accum_steps` micro-batches, the last may be short (notebook 07)."""
    return math.ceil(n_batches / grad_accum_steps)


def make_optimizer(model: torch.nn.Module, config: TrainConfig, optimizer_cls: Any = None) -> torch.optim.Optimizer:
    """Lesson 04's AdamW (or `optimizer_cls`, e.g. torch.optim.AdamW) over `param_groups` (notebook 07)."""
    from ftlearn.optim import AdamW, param_groups

    cls = optimizer_cls or AdamW
    return cls(param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> Any:
    """The config's member of the one schedule family, over `total_steps` optimizer steps (notebook 07)."""
    from ftlearn.optim import warmup_scheduler

    warmup_steps = round(config.warmup_ratio * total_steps)
    return warmup_scheduler(optimizer, warmup_steps, total_steps, config.decay, config.final_lr_ratio)


def count_targets(batch: dict) -> int:
    """How many targets a batch's mean loss averages: its examples, or a causal LM's predicted tokens (notebook 11).

    Gradient accumulation weights each micro-batch's mean loss by this count, so that a step's
    gradient is the mean over all the targets of its group, not a mean of means (notebook 11 shows
    the trap: with padding, micro-batches of unequal token counts would otherwise weigh the same).
    """
    labels = batch.get("labels")
    if labels is None:
        return 1
    if labels.dim() == 1:  # one class per example
        return int(labels.numel())
    return int((labels[:, 1:] != IGNORE_INDEX).sum())  # a causal LM predicts positions 1..T-1


# Batch keys that are targets for the loss, not inputs of the model: the labels, and a teacher's logits for
# distillation (notebook 12), which the loss receives as a keyword argument.
TARGET_KEYS = ("labels", "teacher_logits")


def compute_loss(net: Any, batch: dict, loss_fn: Callable[..., Any] | None) -> torch.Tensor:
    """The model's own loss, or `loss_fn(logits, labels)` on its logits (e.g. lesson 02's cross-entropy).

    A batch that also carries `teacher_logits` (notebook 12) gives them to `loss_fn` as a keyword argument.
    """
    if loss_fn is None:
        return net(**batch).loss
    inputs = {k: v for k, v in batch.items() if k not in TARGET_KEYS}  # the model then computes no loss of its own
    extra = {k: batch[k] for k in TARGET_KEYS[1:] if k in batch}
    return loss_fn(net(**inputs).logits, batch["labels"], **extra)


def set_epoch(loader: Any, epoch: int) -> None:
    """Tell the loader's sampler which epoch's shuffle to draw: a pure function of (seed, epoch)."""
    for sampler in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
            return


def _shard_for_ddp(train_loader: Any) -> Any:
    """Make each rank draw its own 1/N of every epoch's batches; returns the BatchOrder it sharded, if any."""
    from torch.utils.data.distributed import DistributedSampler

    from ftlearn import distributed

    order = getattr(train_loader, "batch_sampler", None)
    if hasattr(order, "shard"):  # ftlearn's BatchOrder: same seeded shuffle on every rank, then every N-th batch
        order.shard(distributed.rank(), distributed.world_size())
        return order
    if isinstance(getattr(train_loader, "sampler", None), DistributedSampler):
        return None  # already one share of the examples per rank (set_epoch reshuffles it)
    # A plain DataLoader would give every rank the whole data set, each in its own random order:
    # N times the work, and not the large-batch training the user asked for.
    raise ValueError(
        f"Under DDP ({distributed.world_size()} processes) each rank must train on its own share of the batches. "
        "Build the training loader with ftlearn.tokenization.make_loader (its BatchOrder shards itself), or pass "
        "DataLoader(ds, batch_size=..., sampler=DistributedSampler(ds, shuffle=True), collate_fn=...)."
    )


def optimizer_step(
    model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any, max_grad_norm: float | None
) -> tuple[float, float, bool]:
    """Unscale, clip, step, schedule, zero_grad; returns the pre-clip norm, the lr used, and skipped (notebook 07).

    With a GradScaler (fp16), the gradients are unscaled first, so that clipping and the reported norm see the
    true gradients, not the scaled ones; a step whose gradients hold inf or NaN is skipped by the scaler
    (which then halves its scale), and the schedule does not advance for a step that did not happen.
    """
    import torch

    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    max_norm = max_grad_norm if max_grad_norm is not None else math.inf
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))  # 3. clip
    lr = float(optimizer.param_groups[0]["lr"])
    skipped = False
    if scaler is not None:
        scale = scaler.get_scale()
        scaler.step(optimizer)  # skips the step if the gradients overflowed ...
        scaler.update()
        skipped = scaler.get_scale() < scale  # ... and then lowers the scale: that is how we know
    else:
        optimizer.step()  # 4. step
    if not skipped:
        scheduler.step()  # 5. schedule
    optimizer.zero_grad(set_to_none=True)  # 6. zero_grad
    return grad_norm, lr, skipped


@dataclass
class _Counters:
    """Where the run is; a checkpoint stores these so that a resume continues from here."""

    step: int = 0
    epoch: int = 0
    batches_done: int = 0  # micro-batches of the current epoch already trained on
    best_score: float = math.inf  # the best evaluation so far, as a score where lower is better (see `_score`)
    bad_evals: int = 0
    history: History = field(default_factory=History)

    def snapshot(self) -> dict:
        """The counters as plain data, for a checkpoint's JSON."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "best_score": self.best_score,
            "bad_evals": self.bad_evals,
            "history": self.history.to_dict(),
        }


BEST_METRICS = ("loss", "accuracy")


def _score(report: dict, best_metric: str) -> float:
    """An evaluation as one number where lower is better: the loss, or minus the accuracy."""
    return report["loss"] if best_metric == "loss" else -report["accuracy"]


# ---------------------------------------------------------------- the loop


def fit(
    model: torch.nn.Module,
    train_loader: Any,
    val_loader: Any = None,
    config: TrainConfig | None = None,
    device: torch.device | str | None = None,
    optimizer_cls: Any = None,
    loss_fn: Callable[[Any, Any], Any] | None = None,
    callbacks: Sequence[Callable[[History, str], None]] = (),
    resume_from: str | Path | None = None,
    ddp: bool | None = None,
    eval_fn: Callable[..., dict] | None = None,
) -> History:
    """Train `model` on `train_loader`, evaluating on `val_loader`; returns the History (notebook 07).

    Batches are dicts for `model(**batch)` with `labels`: class ids (B,) for a classifier, token ids
    (B, T) for a causal LM. The loss is the model's own `.loss` unless `loss_fn(logits, labels)` is
    given (lesson 02's `ftlearn.losses.cross_entropy`, lesson 09's `causal_lm_loss`). The optimizer is
    lesson 04's `ftlearn.optim.AdamW` unless `optimizer_cls` names another. `val_loader` (labelled
    classification batches) is evaluated at each epoch end and every `eval_every_steps`; the best evaluation
    (`config.best_metric`: lowest loss by default, or highest accuracy) decides early stopping and, with
    `restore_best`, which weights the model ends with.
    Exact resume needs a loader whose batch sampler has `set_epoch` (`ftlearn.tokenization.BatchOrder`);
    `resume_from` is a checkpoint or a folder of them (the newest is taken).
    Callbacks are called as `cb(history, event)` with event "step", "eval" or "end".

    Launched by torchrun or accelerate launch with N processes, the same call trains with DDP
    (notebook 11): each rank takes every N-th batch, gradients are averaged across ranks, every rank
    sees the same History and validation metrics, and only rank 0 prints and writes checkpoints.
    `ddp=False` keeps this call to this process alone even then (the offline GPT-2's build does).
    `eval_fn(model, val_loader, device, shard=)` replaces `evaluate` for validation batches that are not a
    classifier's: a dict with at least "loss" (the GPT-2 language-model run's mean per-token loss, notebook 09).
    Gradients are on during the call whatever the caller set, and the model's train/eval mode is handed back.
    """
    # Training must not depend on the caller's state: a notebook that ran torch.set_grad_enabled(False), or a
    # model left in eval mode, would otherwise fail at backward() or train without dropout. `fit` turns gradients
    # on and the model to train mode for the run, and hands both back as it found them (notebook 06 found this).
    with training_state(model):
        return _fit(
            model, train_loader, val_loader, config, device, optimizer_cls, loss_fn, callbacks, resume_from, ddp,
            eval_fn,
        )  # fmt: skip


@contextmanager
def training_state(model: torch.nn.Module) -> Iterator[None]:
    """Gradients on and `model.train()` inside; the caller's grad mode and train/eval mode restored on the way out."""
    import torch

    modes = [(module, module.training) for module in model.modules()]  # each submodule's own mode, as found
    with torch.enable_grad():
        try:
            yield
        finally:
            for module, training in modes:
                module.training = training


def _announce_pace(bar: Any, started: float, done: int, remaining: int) -> float:
    """After step 1 start the clock; after `PACE_STEPS` more, write the measured pace and the expected time.

    Returns the clock's start. The estimate covers the remaining training steps; evaluations add to it.
    """
    now = time.perf_counter()
    if done == 1:
        return now
    line = pace_line((now - started) / PACE_STEPS, remaining)
    if line:
        bar.write(line)
    return started


def _fit(
    model: torch.nn.Module,
    train_loader: Any,
    val_loader: Any,
    config: TrainConfig | None,
    device: torch.device | str | None,
    optimizer_cls: Any,
    loss_fn: Callable[[Any, Any], Any] | None,
    callbacks: Sequence[Callable[[History, str], None]],
    resume_from: str | Path | None,
    ddp: bool | None,
    eval_fn: Callable[..., dict] | None = None,
) -> History:
    """The body of `fit`, run inside `training_state`."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from ftlearn import distributed
    from ftlearn.runtime import pick_device

    config = config or TrainConfig()
    device = torch.device(device) if device is not None else pick_device()
    # False in a notebook or a plain script: nothing below changes then
    ddp = distributed.setup(device) if ddp is None else ddp and distributed.setup(device)
    if ddp:
        device = distributed.rank_device(device)  # under DDP on CUDA: this rank's own GPU
    main = distributed.is_main_process() or not ddp  # the process that prints and writes
    model.to(device)
    precision = choose_precision(device, config.mixed_precision)
    k = config.grad_accum_steps
    if k < 1:
        raise ValueError(f"grad_accum_steps must be >= 1, got {k}.")
    if config.best_metric not in BEST_METRICS:
        raise ValueError(f"best_metric must be one of {', '.join(BEST_METRICS)}, got {config.best_metric!r}.")
    sharded = _shard_for_ddp(train_loader) if ddp else None
    n_batches = len(train_loader)  # this rank's micro-batches per epoch (1/N of them under DDP)
    if n_batches == 0:
        raise ValueError("The training loader yields no batches: is the training set empty?")
    per_epoch = steps_per_epoch(n_batches, k)
    total_steps = per_epoch * config.epochs

    optimizer = make_optimizer(model, config, optimizer_cls)
    scheduler = make_scheduler(optimizer, config, total_steps)
    # fp16 gradients underflow without loss scaling; the scaler lives on the training device
    scaler = torch.amp.GradScaler(device.type) if precision.use_scaler else None
    run = _Counters(history=History(precision=precision.name))
    best_state, saved_rng, elapsed_before = None, None, 0.0
    if resume_from is not None:
        info, best_state, saved_rng, path = load_checkpoint(resume_from, model, optimizer, scheduler, scaler)
        info = {**info, "best_score": info.pop("best_loss", info.get("best_score", math.inf))}  # older checkpoints
        run = _Counters(**{**info, "history": History.from_dict(info["history"])})
        elapsed_before = run.history.train_seconds
        if main:
            print(f"Resumed from {path}: step {run.step}, epoch {run.epoch + 1}, {run.batches_done} batches into it.")
    history = run.history

    # Under DDP the forward and backward go through the wrapper: its backward averages the gradients
    # over the ranks, so every rank takes the same optimizer step and the copies stay identical. (Its
    # constructor also copies rank 0's weights to the others.) Evaluation and saving use `model` itself.
    device_ids = [device] if device.type == "cuda" else None
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids) if ddp else model
    bar = tqdm(total=total_steps, initial=run.step, desc="training", unit="step") if config.progress and main else None

    def lr_now() -> float:
        return float(optimizer.param_groups[0]["lr"])

    def backward_group(group: list[dict], first_batch: int) -> float:
        """Forward and backward every micro-batch of one optimizer step; returns the group's mean loss."""
        weights = [count_targets(b) for b in group]
        total = sum(weights) or 1
        values = []
        for j, batch in enumerate(group):
            batch = to_device(batch, device)
            # DDP: average gradients across ranks once per group, in its last backward; no_sync() keeps
            # the earlier backwards local (they only add into .grad), saving k - 1 all-reduces per step
            with net.no_sync() if ddp and j < len(group) - 1 else nullcontext():
                with autocast(device, precision):
                    loss = compute_loss(net, batch, loss_fn)  # 1. forward: mean loss over the micro-batch
                # the mean over ranks (the loss itself in one process): every rank logs the same number
                # and, if it is NaN on any rank, every rank stops here together instead of waiting forever
                value = distributed.all_reduce_mean(loss.item(), device) if ddp else loss.item()
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"The loss became {value} at optimizer step {run.step + 1} (epoch {run.epoch + 1}, "
                        f"batch {first_batch + j + 1}) with learning rate {lr_now():.3g}. Try a smaller lr, more "
                        "warm-up, or mixed_precision='no'; the model's weights are now unusable."
                    )
                # 2. backward of mean x (its share of the group's targets): the gradients add up to the
                # gradient of the mean over all the group's targets (with k = 1 the share is exactly 1)
                share = loss * (weights[j] / total)
                (scaler.scale(share) if scaler else share).backward()
            values.append(value)
        return values[0] if len(values) == 1 else float(np.dot(values, weights) / total)

    def step_and_log() -> tuple[float, float]:
        """One optimizer step (`optimizer_step`); a step the scaler skipped is recorded in the History."""
        grad_norm, lr, skipped = optimizer_step(model, optimizer, scheduler, scaler, config.max_grad_norm)
        if skipped:
            history.skipped_steps.append(run.step + 1)
        return grad_norm, lr

    def run_eval() -> bool:
        """Evaluate, keep the best weights; True when early stopping says stop."""
        nonlocal best_state
        report = (eval_fn or evaluate)(model, val_loader, device, shard=ddp)
        row = {"step": run.step, "epoch": round(run.step / per_epoch, 3)}
        row.update({key: value for key, value in report.items() if key != "confusion_matrix"})
        history.evals.append(row)
        score = _score(report, config.best_metric)
        if score < run.best_score:
            run.best_score, run.bad_evals = score, 0
            history.best_step = run.step
            # a CPU copy of the best weights, cloned so later steps do not overwrite it
            best_state = {name: t.detach().to("cpu", copy=True) for name, t in model.state_dict().items()}
        else:
            run.bad_evals += 1
        for cb in callbacks:
            cb(history, "eval")
        if bar is not None:
            scores = "".join(f", {key} {report[key]:.3f}" for key in ("accuracy", "f1") if key in report)
            bar.write(f"step {run.step} (epoch {row['epoch']:.2f}): val loss {report['loss']:.4f}{scores}")
        return config.patience is not None and run.bad_evals >= config.patience

    start = time.perf_counter()
    first_step, paced = run.step, 0.0  # the expected time is announced after the first steps (`_announce_pace`)
    stop = False
    net.train()
    optimizer.zero_grad(set_to_none=True)
    while run.epoch < config.epochs and not stop:
        set_epoch(train_loader, run.epoch)  # the epoch's shuffle depends on (seed, epoch) only
        batches = iter(train_loader)  # a DataLoader draws a seed from torch's RNG here, every epoch
        if saved_rng is not None:
            # Restore the RNG only now: the interrupted run had already made this draw before saving.
            set_rng_state(saved_rng)
            saved_rng = None
        group: list[dict] = []
        for i, batch in enumerate(batches):
            if i < run.batches_done:
                continue  # resuming mid-epoch: these batches were already trained on
            group.append(batch)
            # a step follows the k-th micro-batch of a group, or the epoch's last one (the last group
            # may be short); (i + 1) % k, not i % k, which would step on the first batch
            if (i + 1) % k and i + 1 != n_batches:
                continue
            loss_value = backward_group(group, i + 1 - len(group))
            grad_norm, lr = step_and_log()
            group = []
            run.step, run.batches_done = run.step + 1, i + 1
            history.log_step(run.step, round(run.step / per_epoch, 4), loss_value, lr, grad_norm)
            history.train_seconds = elapsed_before + time.perf_counter() - start
            if bar is not None and run.step - first_step in (1, 1 + PACE_STEPS):
                paced = _announce_pace(bar, paced, run.step - first_step, total_steps - run.step)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.1e}")
            for cb in callbacks:
                cb(history, "step")
            if val_loader is not None and config.eval_every_steps and run.step % config.eval_every_steps == 0:
                if run.batches_done != n_batches:  # the epoch-end evaluation below covers that one
                    stop = run_eval()
            # one writer: the ranks hold identical weights, and N processes renaming the same folder would collide
            if main and config.checkpoint_every and config.checkpoint_dir and run.step % config.checkpoint_every == 0:
                folder = Path(config.checkpoint_dir)
                save_checkpoint(
                    folder / f"{CHECKPOINT_PREFIX}{run.step}", model, optimizer, scheduler, scaler, run.snapshot(),
                    best_state,
                )  # fmt: skip
                prune_checkpoints(folder, config.keep_checkpoints)
            if stop or (config.max_steps is not None and run.step >= config.max_steps):
                stop = True
                break
        else:  # the epoch ran to its end
            if val_loader is not None:
                stop = run_eval()
            run.epoch, run.batches_done = run.epoch + 1, 0
    history.train_seconds = elapsed_before + time.perf_counter() - start
    # early stopping cut the run short only when patience ran out before the planned last step
    patience_out = config.patience is not None and run.bad_evals >= config.patience
    history.stopped_early = bool(patience_out and run.step < total_steps)
    if bar is not None:
        bar.close()
    if config.restore_best and best_state is not None and history.best_step != run.step:
        model.load_state_dict(best_state)  # on every rank: they all chose the same best step
        if main:
            print(
                f"Restored the weights of step {history.best_step}, "
                + (
                    f"the lowest validation loss ({run.best_score:.4f})."
                    if config.best_metric == "loss"
                    else f"the highest validation accuracy ({-run.best_score:.4f})."
                )
            )
    if sharded is not None:
        sharded.shard(0, 1)  # hand the loader back whole, as it came
    for cb in callbacks:
        cb(history, "end")
    return history
