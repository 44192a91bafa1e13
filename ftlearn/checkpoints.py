"""Checkpoints of a training run: weights, optimizer/scheduler/scaler/RNG state and counters, saved atomically.

Introduced in notebook 07. `fit(checkpoint_every=..., resume_from=...)` writes and reads these; a resume
continues to exactly the losses an uninterrupted run would have had.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

CHECKPOINT_PREFIX = "checkpoint-"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best_model.safetensors"
STATE_FILE = "trainer_state.pt"  # optimizer / scheduler / scaler / RNG tensors, read with weights_only=True
INFO_FILE = "trainer_state.json"  # counters and history, human-readable


def rng_state() -> dict:
    """The CPU and CUDA random-number states, as saved in a checkpoint."""
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` returned."""
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
    """Write weights (safetensors), optimizer/scheduler/scaler/RNG state and counters (notebook 07)."""
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
            "rng": rng_state(),
        },
        tmp / STATE_FILE,
    )
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first (notebook 07)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.iterdir()
        if p.is_dir()
        and p.name.startswith(CHECKPOINT_PREFIX)
        and p.name.removeprefix(CHECKPOINT_PREFIX).isdigit()  # not a leftover checkpoint-5.tmp
        and (p / INFO_FILE).exists()
    ]
    return sorted(found, key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)))


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete checkpoint in `folder`, or None (notebook 07)."""
    found = list_checkpoints(folder)
    return found[-1] if found else None


def _state_problem(path: Path) -> str | None:
    """Why a `torch.save` file (a zip archive) is incomplete or damaged, from its archive's CRCs; or None."""
    import zipfile

    if not path.is_file():
        return f"{path.name} is missing"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"{path.name} is not a complete torch.save file ({str(exc).splitlines()[0] if str(exc) else exc!r})"
    return f"{path.name} is damaged ({bad} fails its checksum)" if bad else None


def checkpoint_problem(path: str | Path) -> str | None:
    """Why the checkpoint `path` cannot be resumed from, checked without loading it into a model; or None."""
    from ftlearn.files import json_problem, safetensors_problem

    path = Path(path)
    checks = (
        lambda: json_problem(path / INFO_FILE),
        lambda: safetensors_problem(path / MODEL_FILE),
        lambda: safetensors_problem(path / BEST_FILE) if (path / BEST_FILE).exists() else None,
        lambda: _state_problem(path / STATE_FILE),
    )
    return next((problem for check in checks if (problem := check())), None)


def intact_checkpoint(folder: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint in `folder` that `checkpoint_problem` passes, and the newer ones it refused, with why.

    A run killed while a disk filled, or a copy cut short, can leave the newest checkpoint damaged: the resume
    then continues from the one before, and says so (notebook 07).
    """
    skipped = []
    for checkpoint in reversed(list_checkpoints(folder)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint, skipped
        skipped.append((checkpoint, problem))
    return None, skipped


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints in `folder`."""
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    path: str | Path, model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any
) -> tuple[dict, dict | None, dict, Path]:
    """Load a checkpoint, or the newest one in a folder of them; returns (counters, best weights, RNG state, path)."""
    import torch
    from safetensors.torch import load_file, load_model

    path = Path(path)
    if not (path / INFO_FILE).exists():
        newest, skipped = intact_checkpoint(path)
        if newest is None:
            why = f"; {skipped[0][0].name} is damaged ({skipped[0][1]})" if skipped else ""
            raise FileNotFoundError(
                f"{path} is neither a checkpoint nor a folder holding an intact one "
                f"({CHECKPOINT_PREFIX}N with {INFO_FILE}){why}."
            )
        for damaged, problem in skipped:
            print(f"{damaged.name} is damaged ({problem}); trying the checkpoint before it.")
        path = newest
    load_model(model, str(path / MODEL_FILE))
    # weights_only=True: only tensors and plain containers are unpickled, never arbitrary code.
    state = torch.load(path / STATE_FILE, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    best = load_file(str(path / BEST_FILE)) if (path / BEST_FILE).exists() else None
    return json.loads((path / INFO_FILE).read_text(encoding="utf-8")), best, state["rng"], path
