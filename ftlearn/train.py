"""The hand-written training loop: forward → loss → backward → clip → step → schedule → zero_grad.

Introduced in notebook 06 (BERT fine-tuning, by hand); `ftlearn finetune` runs the same `fit`.
Everything a fine-tuning run needs and nothing hidden: AdamW without weight decay on biases and
LayerNorm, linear warm-up then linear decay, gradient accumulation, mixed precision on a GPU,
evaluation on a validation set with early stopping, a `History` for plots, checkpoints saved with
safetensors, and a resume that continues to exactly the losses an uninterrupted run would have had.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ftlearn.metrics import classification_report
from ftlearn.optim import warmup_linear  # lesson 04's schedule: linear warm-up, then linear decay to 0

if TYPE_CHECKING:  # pragma: no cover
    import torch

CHECKPOINT_PREFIX = "checkpoint-"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best_model.safetensors"
STATE_FILE = "trainer_state.pt"  # optimizer / scheduler / scaler / RNG tensors, read with weights_only=True
INFO_FILE = "trainer_state.json"  # counters and history, human-readable


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the learning rate."""


# ---------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """Knobs of `fit`; every one is explained in notebook 06."""

    lr: float = 5e-5
    epochs: int = 2
    weight_decay: float = 0.01  # on weight matrices only, see `param_groups`
    warmup_ratio: float = 0.1  # fraction of all optimizer steps spent ramping the lr up from 0
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    max_grad_norm: float | None = 1.0  # clip the global gradient norm; None = no clipping
    mixed_precision: str = "auto"  # "auto" (bf16/fp16 on CUDA, nothing on CPU), "bf16", "fp16" or "no"
    eval_every_steps: int | None = None  # evaluate also every N optimizer steps (always at each epoch end)
    patience: int | None = None  # early stopping: evaluations without a better val loss before stopping
    restore_best: bool = True  # at the end, load the weights of the best evaluation (when there is a val set)
    checkpoint_every: int | None = None  # save a checkpoint every N optimizer steps ...
    checkpoint_dir: str | None = None  # ... into this folder
    keep_checkpoints: int = 2  # older checkpoints are deleted
    max_steps: int | None = None  # stop after this many optimizer steps (the schedule still spans all epochs)
    progress: bool = True  # tqdm progress bar


# ---------------------------------------------------------------- optimizer and schedule


def no_decay_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that get no weight decay: every bias and every LayerNorm weight (notebook 06)."""
    import torch

    names = set()
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            # Decay pulls weights towards 0; for a bias or a LayerNorm gain that is a pull towards
            # "off" (gain 0) rather than towards "simple", so they are left alone.
            if param_name == "bias" or isinstance(module, torch.nn.LayerNorm):
                names.add(full)
    return names


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer groups: weight matrices with decay, biases and LayerNorm without (notebook 06)."""
    skip = no_decay_names(model)
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name in skip else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: torch.nn.Module, config: TrainConfig, optimizer_cls: Any = None) -> torch.optim.Optimizer:
    """AdamW over `param_groups` (torch's by default; pass `ftlearn.optim.AdamW` to use lesson 04's) (notebook 06)."""
    import torch

    cls = optimizer_cls or torch.optim.AdamW
    return cls(param_groups(model, config.weight_decay), lr=config.lr)


def make_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR applying `warmup_linear`; the same curve as transformers' get_linear_schedule_with_warmup (notebook 06)."""
    from functools import partial

    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, partial(warmup_linear, warmup_steps=warmup_steps, total_steps=total_steps))


def steps_per_epoch(n_batches: int, grad_accum_steps: int) -> int:
    """Optimizer steps in one epoch: one per `grad_accum_steps` micro-batches, the last group may be short (notebook 06)."""
    return math.ceil(n_batches / grad_accum_steps)


# ---------------------------------------------------------------- mixed precision


@dataclass
class Precision:
    """How the forward pass runs: autocast dtype (None = full fp32) and whether a GradScaler is needed."""

    dtype: Any  # torch.bfloat16, torch.float16 or None
    use_scaler: bool

    @property
    def name(self) -> str:
        """'bf16', 'fp16' or 'fp32'."""
        import torch

        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")


def choose_precision(device: torch.device, mode: str = "auto") -> Precision:
    """bf16 on GPUs that support it, else fp16 with loss scaling; none of it on CPU (notebook 06)."""
    import torch

    if mode not in ("auto", "bf16", "fp16", "no"):
        raise ValueError(f"mixed_precision must be 'auto', 'bf16', 'fp16' or 'no', got {mode!r}.")
    if device.type != "cuda" or mode == "no":
        # On CPU, bf16 autocast exists but is slower than fp32 on most CPUs and changes the numbers:
        # the course keeps CPU runs in plain fp32.
        return Precision(None, False)
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return Precision(torch.bfloat16, False)  # bf16 has fp32's exponent range: no loss scaling needed
    return Precision(torch.float16, True)  # fp16 gradients underflow without scaling


def _autocast(device: torch.device, precision: Precision):
    import torch

    if precision.dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision.dtype)


# ---------------------------------------------------------------- history


@dataclass
class History:
    """What happened during `fit`: one row per optimizer step and one per evaluation (notebook 06)."""

    step: list[int] = field(default_factory=list)  # optimizer step, 1-based
    epoch: list[float] = field(default_factory=list)  # fractional epoch at that step
    loss: list[float] = field(default_factory=list)  # mean training loss over the step's micro-batches
    lr: list[float] = field(default_factory=list)  # learning rate used for that step
    grad_norm: list[float] = field(default_factory=list)  # global gradient norm before clipping
    evals: list[dict] = field(default_factory=list)  # {"step", "epoch", "loss", "accuracy", "f1", ...}
    train_seconds: float = 0.0
    stopped_early: bool = False
    best_step: int | None = None
    precision: str = "fp32"

    def to_dict(self) -> dict:
        """Plain data, JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """Inverse of `to_dict`."""
        return cls(**data)

    def val(self, key: str) -> list[float]:
        """One column of the evaluations, e.g. `history.val("accuracy")`."""
        return [e[key] for e in self.evals]

    def plot(self, axes: Sequence[Any] | None = None, smooth: int = 10) -> Any:
        """Training loss (raw and running mean) with validation loss, and the lr schedule (notebook 06)."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
        else:
            fig = axes[0].figure
        ax_loss, ax_lr = axes
        ax_loss.clear()
        ax_lr.clear()
        if self.step:
            ax_loss.plot(self.step, self.loss, color="tab:blue", alpha=0.3, lw=1, label="train loss (per step)")
            window = max(1, min(smooth, len(self.loss)))
            running = np.convolve(self.loss, np.ones(window) / window, mode="valid")
            ax_loss.plot(
                self.step[window - 1 :], running, color="tab:blue", lw=2, label=f"train loss (mean of {window})"
            )
            ax_lr.plot(self.step, self.lr, color="tab:green")
        if self.evals:
            ax_loss.plot(self.val("step"), self.val("loss"), "o-", color="tab:red", label="validation loss")
        ax_loss.set(xlabel="optimizer step", ylabel="cross-entropy", title="loss")
        ax_loss.legend(loc="upper right", fontsize=8)
        ax_lr.set(xlabel="optimizer step", ylabel="learning rate", title="schedule: warm-up, then linear decay")
        fig.tight_layout()
        return fig


class LiveLossPlot:
    """A `fit` callback redrawing `History.plot` in place every `every` steps (notebook 06).

    In Jupyter the figure updates in one output; in a headless run the last drawing is what stays.
    """

    def __init__(self, every: int = 10) -> None:
        self.every = every
        self._handle = None
        self._fig = None

    def __call__(self, history: History, event: str) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        if event == "step" and history.step and history.step[-1] % self.every:
            return
        if self._fig is None:
            self._fig, _ = plt.subplots(1, 2, figsize=(11, 3.5))
            plt.close(self._fig)  # we display it ourselves; keeps the inline backend from drawing it twice
        history.plot(self._fig.axes)
        if self._handle is None:
            self._handle = display(self._fig, display_id=True)
        else:
            self._handle.update(self._fig)


# ---------------------------------------------------------------- evaluation and prediction


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def predict_logits(
    model: torch.nn.Module, loader: Iterable[dict], device: torch.device | None = None, shard: bool | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (N, C) of every batch in order, and the labels (N,) when batches carry `labels` (notebook 06).

    Under DDP (notebook 10; `shard=None` means "when a process group is running") each rank predicts
    every N-th batch and the pieces are gathered back into the loader's order, so every rank gets
    the whole result: all ranks must call it together. `shard=False` predicts everything here.
    """
    import torch

    from ftlearn import distributed

    if device is not None:
        device = torch.device(device)
        model.to(device)  # a model fresh from from_pretrained is on the CPU; predict where asked
    else:
        device = next(model.parameters()).device
    precision = choose_precision(device)
    split = distributed.is_distributed() if shard is None else shard
    was_training = model.training
    model.eval()  # dropout off: predictions are deterministic
    logits, labels = [], []
    with torch.no_grad(), _autocast(device, precision):
        for batch in distributed.shard_iter(loader) if split else loader:
            batch = _to_device(batch, device)
            y = batch.pop("labels", None)
            logits.append(model(**batch).logits.float().cpu())
            if y is not None:
                labels.append(y.cpu())
    model.train(was_training)
    if split:
        # every rank receives every rank's list of per-batch tensors; interleave restores the batch order
        logits = distributed.interleave(distributed.all_gather_objects(logits))
        labels = distributed.interleave(distributed.all_gather_objects(labels))
    return torch.cat(logits).numpy(), (torch.cat(labels).numpy() if labels else None)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a numpy array, stable (the max is subtracted first)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def loader_order(loader: Any) -> np.ndarray | None:
    """The dataset index of each example in the order `loader` yields them; None when the loader cannot say (notebook 06).

    A length-grouped loader (`BatchOrder`) yields its examples sorted by length, not in dataset order:
    output row i is then *not* review i, which is what this undoes.
    """
    from torch.utils.data import SequentialSampler

    batch_sampler = getattr(loader, "batch_sampler", None)
    if hasattr(batch_sampler, "batches"):  # ftlearn.tokenization.BatchOrder
        batches = batch_sampler.batches()
        return (
            np.concatenate([np.asarray(b, dtype=np.int64) for b in batches]) if batches else np.zeros(0, dtype=np.int64)
        )
    if isinstance(getattr(loader, "sampler", None), SequentialSampler):  # DataLoader(ds, batch_size=..., shuffle=False)
        return np.arange(len(loader.sampler), dtype=np.int64)
    return None


def evaluate(
    model: torch.nn.Module,
    loader: Iterable[dict],
    device: torch.device | None = None,
    return_outputs: bool = False,
    shard: bool | None = None,
) -> dict:
    """Mean cross-entropy, accuracy, precision, recall, F1 and confusion matrix on a labelled loader (notebook 06).

    With `return_outputs`, also `probs` (N, C) and `labels` (N,) for error analysis, put back in
    dataset order (row i is the dataset's example i) when the loader's order is known
    (`loader_order`); `in_dataset_order` says whether it was. Under DDP the ranks share the batches
    and gather the predictions (see `predict_logits`), so every rank computes the same numbers from
    the same arrays (notebook 10).
    """
    logits, labels = predict_logits(model, loader, device, shard)
    if labels is None:
        raise ValueError("evaluate needs batches with `labels`; use predict_logits for unlabelled data.")
    probs = softmax(logits.astype(np.float64))
    # cross-entropy = mean over examples of -log p(true class)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    report = {"loss": loss, **classification_report(labels, probs.argmax(axis=-1))}
    if return_outputs:
        order = loader_order(loader)
        known = (
            order is not None and len(order) == len(labels) and np.array_equal(np.sort(order), np.arange(len(labels)))
        )
        if known:  # row k of the outputs is example order[k]: scatter it back to its place
            probs_ds, labels_ds = np.empty_like(probs), np.empty_like(labels)
            probs_ds[order], labels_ds[order] = probs, labels
            probs, labels = probs_ds, labels_ds
        report["probs"], report["labels"], report["in_dataset_order"] = probs, labels, bool(known)
    return report


# ---------------------------------------------------------------- checkpoints


def _rng_state() -> dict:
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    folder: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    info: dict,
    best_state: dict | None = None,
) -> Path:
    """Write weights (safetensors), optimizer/scheduler/scaler/RNG state (torch.save) and counters (JSON) (notebook 06)."""
    import torch
    from safetensors.torch import save_file, save_model

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")  # write, then rename: a crash never leaves half a checkpoint
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / MODEL_FILE))
    if best_state is not None:
        save_file(best_state, str(tmp / BEST_FILE))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "rng": _rng_state(),
        },
        tmp / STATE_FILE,
    )
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first (notebook 06)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        p for p in folder.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / INFO_FILE).exists()
    ]
    return sorted(found, key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)))


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete checkpoint in `folder`, or None (notebook 06)."""
    found = list_checkpoints(folder)
    return found[-1] if found else None


def _prune(folder: Path, keep: int) -> None:
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any
) -> tuple[dict, dict | None, dict]:
    import torch
    from safetensors.torch import load_file, load_model

    if not (path / INFO_FILE).exists():
        raise FileNotFoundError(f"{path} is not a checkpoint: it has no {INFO_FILE}.")
    load_model(model, str(path / MODEL_FILE))
    # weights_only=True: only tensors and plain containers are unpickled, never arbitrary code.
    state = torch.load(path / STATE_FILE, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    best = load_file(str(path / BEST_FILE)) if (path / BEST_FILE).exists() else None
    return json.loads((path / INFO_FILE).read_text(encoding="utf-8")), best, state["rng"]


# ---------------------------------------------------------------- the loop


def _lr_of(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _shard_for_ddp(train_loader: Any) -> Any:
    """Make each rank draw its own 1/N of every epoch's batches; returns the BatchOrder it sharded, if any."""
    from torch.utils.data.distributed import DistributedSampler

    from ftlearn import distributed

    order = getattr(train_loader, "batch_sampler", None)
    if hasattr(order, "shard"):  # ftlearn's BatchOrder: same seeded shuffle on every rank, then every N-th batch
        order.shard(distributed.rank(), distributed.world_size())
        return order
    if isinstance(getattr(train_loader, "sampler", None), DistributedSampler):
        return None  # already one share of the examples per rank (fit calls its set_epoch)
    # A plain DataLoader would give every rank the whole data set, each in its own random order:
    # N times the work, and not the large-batch training the user asked for.
    raise ValueError(
        f"Under DDP ({distributed.world_size()} processes) each rank must train on its own share of the batches. "
        "Build the training loader with ftlearn.tokenization.make_loader (its BatchOrder shards itself), or pass "
        "DataLoader(ds, batch_size=..., sampler=DistributedSampler(ds, shuffle=True), collate_fn=...)."
    )


def fit(
    model: torch.nn.Module,
    train_loader: Any,
    val_loader: Any = None,
    config: TrainConfig | None = None,
    device: torch.device | str | None = None,
    optimizer_cls: Any = None,
    callbacks: Sequence[Callable[[History, str], None]] = (),
    resume_from: str | Path | None = None,
) -> History:
    """Fine-tune `model` on `train_loader`, evaluating on `val_loader`; returns the History (notebook 06).

    Batches are dicts with `input_ids`, `attention_mask`, `labels`; the model returns `.loss`.
    Exact resume needs a loader whose batch sampler has `set_epoch` (`ftlearn.tokenization.BatchOrder`).
    Callbacks are called as `cb(history, event)` with event "step", "eval" or "end".

    Launched by torchrun or accelerate launch with N processes, the same call trains with DDP
    (notebook 10): each rank takes every N-th batch, gradients are averaged across ranks, every rank
    sees the same History and validation metrics, and only rank 0 prints and writes checkpoints.
    """
    import torch

    from ftlearn import distributed
    from ftlearn.runtime import pick_device

    config = config or TrainConfig()
    device = torch.device(device) if device is not None else pick_device()
    ddp = distributed.setup(device)  # False in a notebook or a plain script: nothing below changes then
    device = distributed.rank_device(device)  # under DDP on CUDA: this rank's own GPU
    main = distributed.is_main_process()  # the one process that prints and writes
    model.to(device)
    precision = choose_precision(device, config.mixed_precision)
    k = config.grad_accum_steps
    if k < 1:
        raise ValueError(f"grad_accum_steps must be >= 1, got {k}.")
    sharded = _shard_for_ddp(train_loader) if ddp else None
    n_batches = len(train_loader)  # this rank's micro-batches per epoch (1/N of them under DDP)
    per_epoch = steps_per_epoch(n_batches, k)
    total_steps = per_epoch * config.epochs
    warmup_steps = round(config.warmup_ratio * total_steps)

    optimizer = make_optimizer(model, config, optimizer_cls)
    scheduler = make_scheduler(optimizer, warmup_steps, total_steps)
    scaler = torch.amp.GradScaler("cuda") if precision.use_scaler else None
    history = History(precision=precision.name)
    # Counters that say where we are; a checkpoint stores them so a resume continues from here.
    step, epoch, batches_done = 0, 0, 0
    best_loss, bad_evals, best_state = math.inf, 0, None
    elapsed_before = 0.0
    saved_rng = None
    if resume_from is not None:
        info, best_state, saved_rng = _load_checkpoint(Path(resume_from), model, optimizer, scheduler, scaler)
        step, epoch, batches_done = info["step"], info["epoch"], info["batches_done"]
        best_loss, bad_evals = info["best_loss"], info["bad_evals"]
        history = History.from_dict(info["history"])
        elapsed_before = history.train_seconds
        if main:
            print(f"Resumed from {resume_from}: step {step}, epoch {epoch + 1}, {batches_done} batches into it.")

    def snapshot() -> dict:
        return {
            "step": step,
            "epoch": epoch,
            "batches_done": batches_done,
            "best_loss": best_loss,
            "bad_evals": bad_evals,
            "history": history.to_dict(),
        }

    def run_eval() -> bool:
        """Evaluate, track the best weights; True when early stopping says stop."""
        nonlocal best_loss, bad_evals, best_state
        report = evaluate(model, val_loader, device)
        row = {
            "step": step,
            "epoch": round(step / per_epoch, 3),
            **{k_: v for k_, v in report.items() if k_ != "confusion_matrix"},
        }
        history.evals.append(row)
        if report["loss"] < best_loss:
            best_loss, bad_evals = report["loss"], 0
            history.best_step = step
            # a CPU copy of the best weights, cloned so later steps do not overwrite it
            best_state = {name: t.detach().to("cpu", copy=True) for name, t in model.state_dict().items()}
        else:
            bad_evals += 1
        for cb in callbacks:
            cb(history, "eval")
        if bar is not None:
            bar.write(
                f"step {step} (epoch {row['epoch']:.2f}): val loss {report['loss']:.4f}, accuracy {report['accuracy']:.3f}, f1 {report['f1']:.3f}"
            )
        return config.patience is not None and bad_evals >= config.patience

    from tqdm.auto import tqdm

    # Under DDP the forward and backward go through the wrapper: its backward averages the gradients
    # over the ranks, so every rank takes the same optimizer step and the copies stay identical. (Its
    # constructor also copies rank 0's weights to the others.) Evaluation and saving use `model` itself.
    net = (
        torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        if ddp
        else model
    )
    bar = tqdm(total=total_steps, initial=step, desc="training", unit="step") if config.progress and main else None
    start = time.perf_counter()
    stop = False
    net.train()
    optimizer.zero_grad(set_to_none=True)
    while epoch < config.epochs and not stop:
        for sampler in (getattr(train_loader, "batch_sampler", None), getattr(train_loader, "sampler", None)):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)  # the epoch's shuffle depends on (seed, epoch) only
                break
        group_losses: list[float] = []
        batches = iter(train_loader)  # a DataLoader draws a seed from torch's RNG here, every epoch
        if saved_rng is not None:
            # Restore the RNG only now: the interrupted run had already made this draw before saving.
            _set_rng_state(saved_rng)
            saved_rng = None
        for i, batch in enumerate(batches):
            if i < batches_done:
                continue  # resuming mid-epoch: these batches were already trained on
            batch = _to_device(batch, device)
            # the last group of an epoch may hold fewer than k micro-batches; average over what it has
            group = min(k, n_batches - (i // k) * k)
            # an optimizer step follows the k-th micro-batch of a group, or the epoch's last one;
            # (i + 1) % k, not i % k, which would step on the first batch
            ends_group = (i + 1) % k == 0 or i + 1 == n_batches
            # DDP: average gradients across ranks once per group, in its last backward; no_sync() keeps
            # the earlier backwards local (they only add into .grad), saving k - 1 all-reduces per step
            with net.no_sync() if ddp and not ends_group else nullcontext():
                with _autocast(device, precision):
                    loss = net(**batch).loss  # forward; mean cross-entropy over the micro-batch
                # the mean over ranks (the loss itself in one process): every rank logs the same number
                # and, if it is NaN on any rank, every rank stops here together instead of waiting forever
                loss_value = distributed.all_reduce_mean(loss.item(), device)
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"The loss became {loss_value} at optimizer step {step + 1} (epoch {epoch + 1}, batch {i + 1}) "
                        f"with learning rate {_lr_of(optimizer):.3g}. Try a smaller lr, more warm-up, or "
                        f"mixed_precision='no'; the model's weights are now unusable."
                    )
                # backward of loss/group: the accumulated gradient is the mean over the group's micro-batches
                (scaler.scale(loss / group) if scaler else loss / group).backward()
            group_losses.append(loss_value)
            batches_done = i + 1
            if not ends_group:
                continue  # keep accumulating
            if scaler is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            max_norm = config.max_grad_norm if config.max_grad_norm is not None else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))
            lr = _lr_of(optimizer)
            if scaler is not None:
                scaler.step(optimizer)  # skips the step if the scaled gradients overflowed
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            history.step.append(step)
            history.epoch.append(round(step / per_epoch, 4))
            history.loss.append(float(np.mean(group_losses)))
            history.lr.append(lr)
            history.grad_norm.append(grad_norm)
            group_losses = []
            history.train_seconds = elapsed_before + time.perf_counter() - start
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{history.loss[-1]:.3f}", lr=f"{lr:.1e}")
            for cb in callbacks:
                cb(history, "step")
            if (
                val_loader is not None
                and config.eval_every_steps
                and step % config.eval_every_steps == 0
                and batches_done != n_batches
            ):
                stop = run_eval()
            # one writer: the ranks hold identical weights, and N processes renaming the same folder would collide
            if main and config.checkpoint_every and config.checkpoint_dir and step % config.checkpoint_every == 0:
                save_checkpoint(
                    Path(config.checkpoint_dir) / f"{CHECKPOINT_PREFIX}{step}",
                    model,
                    optimizer,
                    scheduler,
                    scaler,
                    snapshot(),
                    best_state,
                )
                _prune(Path(config.checkpoint_dir), config.keep_checkpoints)
            if stop or (config.max_steps is not None and step >= config.max_steps):
                stop = True
                break
        else:  # the epoch ran to its end
            if val_loader is not None:
                stop = run_eval()
            epoch, batches_done = epoch + 1, 0
    history.train_seconds = elapsed_before + time.perf_counter() - start
    # early stopping cut the run short only when patience ran out before the planned last step
    history.stopped_early = bool(config.patience is not None and bad_evals >= config.patience and step < total_steps)
    if bar is not None:
        bar.close()
    if config.restore_best and best_state is not None and history.best_step != step:
        model.load_state_dict(best_state)  # on every rank: they all chose the same best step
        if main:
            print(f"Restored the weights of step {history.best_step}, the lowest validation loss ({best_loss:.4f}).")
    if sharded is not None:
        sharded.shard(0, 1)  # hand the loader back whole, as it came
    for cb in callbacks:
        cb(history, "end")
    return history
