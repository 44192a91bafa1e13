"""Run records: the committed results of a run too long for its lesson's time budget, and their verified loading.

Introduced in notebook 07, section 10 (the same recipe from random weights). A record is written by the command
that the lesson would otherwise run live, `ftlearn finetune TARGET ... --record FILE`: the same code, so the same
numbers. It holds the recipe, a hash of the data, the commit, the date, the hardware, the training history and
every test review's probabilities. A lesson loads it with `load_record`, which refuses a record whose recipe,
seed, start or data differ from the run the lesson would make; the lesson then says so and trains live.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORDS_DIR = "records"  # package data beside this module: ftlearn/records/NAME.json
FORMAT = 1


class RecordMismatch(ValueError):
    """A run record that does not belong to the run a lesson asks for (or is not a record at all)."""


def record_path(name: str) -> Path:
    """Where the package keeps the committed record `name` (ftlearn/records/NAME.json)."""
    from importlib.resources import files

    return Path(str(files("ftlearn").joinpath(RECORDS_DIR, f"{name}.json")))


def _commit() -> str:
    """The checkout's commit, with "+changes" when files differ from it; "unknown" outside a git checkout."""
    from ftlearn.course import repo_root

    root = repo_root()
    if root is None or not (root / ".git").exists():
        return "unknown"
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def make_record(result: Any, command: str) -> dict:
    """The record of a classifier run (`ftlearn.finetune.run`'s result): what ran, on what, and every answer."""
    from ftlearn.runtime import hardware_summary

    m = result.metrics
    if result.test_probs is None:
        raise RecordMismatch("only a classifier run (bert, gpt2-cls) can be recorded: it answers every review")
    keep = ("accuracy", "precision", "recall", "f1", "test_loss", "confusion_matrix", "train_seconds",
            "seconds_per_step", "optimizer_steps", "best_step", "stopped_early", "n_train", "n_val",
            "n_test")  # fmt: skip
    return {
        "format": FORMAT,
        "command": command,
        "task": m["task"],
        "profile": m["profile"],
        "seed": m["seed"],
        "init": m.get("init", "pretrained"),
        "model": m["model"],
        "recipe": m["recipe"],
        "data_sha256": m["data_sha256"],
        "commit": _commit(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hardware": hardware_summary(),
        "metrics": {k: m[k] for k in keep if k in m},
        "history": m["history"],
        "test_labels": [int(y) for y in result.test_labels],
        "test_probs": [[round(float(p), 6) for p in row] for row in result.test_probs],
    }


def write_record(path: str | Path, record: dict) -> Path:
    """Write `record` to `path` as JSON, atomically."""
    from ftlearn.files import write_json_atomic

    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)
    return path


def load_record(
    path: str | Path,
    *,
    task: str,
    profile: str,
    seed: int,
    init: str,
    recipe: Any,
    data_sha256: str,
    model: str | None = None,
) -> dict:
    """Read a run record and check it belongs to this run: the same task, profile, seed, start, recipe, data, model.

    Raises `RecordMismatch` naming what differs (a changed learning rate, another data set), so a lesson can train
    live instead of showing another run's numbers.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordMismatch(f"{path.name} cannot be read as a run record: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RecordMismatch(f"{path.name} is not a run record of format {FORMAT}")
    from ftlearn.runfolder import run_differences

    differ = run_differences(record, task=task, profile=profile, seed=seed, init=init, recipe=recipe,
                             data_sha256=data_sha256, model=model)  # fmt: skip
    if differ:
        raise RecordMismatch(f"{path.name} was made for another run: {'; '.join(differ)} differ")
    n = len(record["test_labels"])
    if len(record["test_probs"]) != n or record["metrics"].get("n_test", n) != n:
        raise RecordMismatch(f"{path.name} is damaged: {len(record['test_probs'])} answers for {n} test reviews")
    return record


@dataclass
class RecordedRun:
    """A classifier run as a lesson compares it: its History, metrics and per-review answers, from a record or live."""

    history: Any
    metrics: dict
    test_probs: Any  # (N, classes), in the test set's order
    test_labels: Any  # (N,)
    record: dict | None = None  # the record it came from; None when it was trained just now


def recorded_or_live(
    name: str, live: bool, *, task: str, profile: Any, seed: int, recipe: Any, init: str, dsd: Any
) -> RecordedRun:
    """The run a lesson compares against: loaded from the committed record `name` when it matches this run and
    `live` is False, else trained now by `ftlearn.finetune.run`, the code that wrote the record. Says which, and why.
    """
    import numpy as np

    from ftlearn.data import data_fingerprint
    from ftlearn.files import display_path
    from ftlearn.history import History

    path = record_path(name)
    if not live and path.is_file():
        try:
            from ftlearn.finetune import expected_model

            record = load_record(path, task=task, profile=profile.name, seed=seed, init=init, recipe=recipe,
                                 data_sha256=data_fingerprint(dsd), model=expected_model(task, profile))  # fmt: skip
        except RecordMismatch as exc:
            print(f"Not loading the run record: {exc}. Training it live instead.")
        else:
            load = record.get("load_during", {}).get("mean")
            busy = f" (load {load:.1f})" if load is not None else ""
            print(f"Loaded the run record {display_path(path)}: made by `{record['command']}` at commit "
                  f"{record['commit'][:12]} on {record['date']}, {record['hardware']}; its task, recipe, seed, start "
                  f"and data match this run's. Training it took {record['metrics']['train_seconds']:.0f} s there"
                  f"{busy}; set the live switch to True to train it here.")  # fmt: skip
            return RecordedRun(History.from_dict(record["history"]), record["metrics"],
                               np.array(record["test_probs"]), np.array(record["test_labels"]), record)  # fmt: skip
    elif not live:
        print(f"No run record for this run ({path.name}): training it live.")
    from ftlearn.finetune import run

    result = run(task, profile, None, seed, recipe, init=init)
    return RecordedRun(result.history, result.metrics, result.test_probs, result.test_labels)
