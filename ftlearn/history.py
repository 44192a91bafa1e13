"""What a training run did, step by step: `History`, its plots, and a live loss plot for notebooks.

Introduced in notebook 07; `ftlearn.train.fit` returns a History and calls callbacks such as `LiveLossPlot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class History:
    """What happened during `fit`: one row per optimizer step and one per evaluation (notebook 07)."""

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
    skipped_steps: list[int] = field(default_factory=list)  # fp16: steps the GradScaler skipped (inf/NaN gradients)

    def log_step(self, step: int, epoch: float, loss: float, lr: float, grad_norm: float) -> None:
        """Append one optimizer step's row."""
        self.step.append(step)
        self.epoch.append(epoch)
        self.loss.append(loss)
        self.lr.append(lr)
        self.grad_norm.append(grad_norm)

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
        """Training loss (raw and running mean) with validation loss, and the lr schedule (notebook 07)."""
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
    """A `fit` callback redrawing `History.plot` in place every `every` steps (notebook 07).

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


class StepTimer:
    """A `fit` callback timing the optimizer steps; `seconds_per_step` leaves evaluations out (notebook 12).

    Each "step" event ends one step; the time between two consecutive events is one step's time, except when
    an evaluation ran between them, so the median of those intervals is the typical step.
    """

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, history: History, event: str) -> None:
        import time

        if event == "step":
            self.times.append(time.perf_counter())

    @property
    def seconds_per_step(self) -> float | None:
        """Median seconds between consecutive optimizer steps, or None with fewer than two steps."""
        gaps = np.diff(self.times)
        return float(np.median(gaps)) if len(gaps) else None


# ---------------------------------------------------------------- the expected time of a run, announced early

PACE_STEPS = 3  # steps timed, after the first (which also warms up), to announce a run's expected time
ANNOUNCE_SECONDS = 30.0  # runs expected to take less are not announced


def pace_line(pace: float, remaining: int) -> str | None:
    """What a run says after its first steps: the measured seconds per step and the time left (None: under 30 s)."""
    expected = pace * remaining
    if expected < ANNOUNCE_SECONDS:
        return None
    left = f"{expected / 60:.1f} min" if expected >= 90 else f"{expected:.0f} s"
    return (f"pace over steps 2-{1 + PACE_STEPS}: {pace:.2f} s/step, so about {left} for the {remaining} steps left "
            "(evaluations add to it)")  # fmt: skip


def trainer_pace_callback() -> Any:
    """A `transformers.TrainerCallback` that prints `pace_line` after the Trainer's first steps, as `fit` does (08)."""
    import time

    from transformers import TrainerCallback

    class PaceCallback(TrainerCallback):
        """Times steps 2-4 and prints the expected time of the rest of the run."""

        started = 0.0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 1:
                self.started = time.perf_counter()
            elif state.global_step == 1 + PACE_STEPS and state.is_world_process_zero:
                line = pace_line((time.perf_counter() - self.started) / PACE_STEPS, state.max_steps - state.global_step)
                if line:
                    print(line)

    return PaceCallback()
