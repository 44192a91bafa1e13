"""One rank of the 2-process DDP test: `python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py OUT`.

tests/test_distributed.py starts it and also imports `train_once` from here to run the same
training in a single process, so both sides share every setting. Each rank writes what it ended
with (history, weights, validation report) and its own log to OUT; nothing else.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import datasets
import torch
import toy_classifier  # tests/toy_classifier.py, shared with test_train.py
from toy_classifier import toy_data

from ftlearn.evaluation import evaluate
from ftlearn.tokenization import make_loader, pad_collate
from ftlearn.train import TrainConfig, fit

TRAIN_N, VAL_N = 32, 20  # 32 = 4 global batches of 8: every batch full, so DDP's mean of means is the big batch's mean


def tiny_bert() -> torch.nn.Module:
    """The tests' tiny BERT in float64 without dropout: the runs we compare must differ by rounding only."""
    return toy_classifier.tiny_bert(seed=0, dropout=0.0).double()


COLLATE = partial(pad_collate, pad_token_id=0)


def loader(ds: datasets.Dataset, batch_size: int, shuffle: bool = True) -> torch.utils.data.DataLoader:
    # Shuffled but not grouped by length: BatchOrder's permutation then does not depend on the batch
    # size, so batches of 4 taken in pairs are exactly the batches of 8 of a single process.
    return make_loader(ds, COLLATE, batch_size, shuffle=shuffle, group_by_length=False, seed=3)


def train_once(
    batch_size: int,
    grad_accum_steps: int = 1,
    checkpoint_dir: str | None = None,
    train_loader=None,
    restore_best: bool = True,
) -> dict:
    """Train a fresh tiny BERT with `fit`; return its history, final weights and validation report.

    32 toy examples are too few to learn from (validation loss rises after epoch 1), so with
    `restore_best` the final weights are epoch 1's; without it, those of the last step.
    """
    train, val = toy_data(TRAIN_N, seed=0), toy_data(VAL_N, seed=1)
    model = tiny_bert()
    config = TrainConfig(
        lr=3e-3,
        epochs=2,
        warmup_ratio=0.25,
        grad_accum_steps=grad_accum_steps,
        max_grad_norm=1.0,
        checkpoint_every=1 if checkpoint_dir else None,
        checkpoint_dir=checkpoint_dir,
        restore_best=restore_best,
    )
    # validation in batches of 4: 5 batches, so under DDP the ranks get unequal shares (3 and 2)
    val_loader = loader(val, 4, shuffle=False)
    history = fit(model, train_loader or loader(train, batch_size), val_loader, config, device="cpu")
    return {
        "history": history.to_dict(),
        "state": {name: t.detach().clone() for name, t in model.state_dict().items()},
        "val": evaluate(model, val_loader, "cpu", return_outputs=True),
    }


def main(out: Path) -> None:
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    rank = int(os.environ["RANK"])
    # Each rank's prints and progress bars go to its own file, so the test can see who printed what.
    sys.stdout = sys.stderr = open(out / f"rank{rank}.log", "w", buffering=1)
    train = toy_data(TRAIN_N, seed=0)
    results = {
        # per-rank batch 4 on 2 ranks, against a single process with batch 8
        "plain": train_once(4, checkpoint_dir=str(out / f"checkpoints-rank{rank}")),
        # accumulation over 2 micro-batches (no_sync on the first), against batch 8 with accumulation 2
        "accum": train_once(4, grad_accum_steps=2, restore_best=False),
        # a DistributedSampler without shuffling gives rank r the examples r, r+2, ...: batch j of the
        # two ranks together is examples 8j..8j+7, the single process's batch j of 8 in order
        "sampler": train_once(
            4,
            restore_best=False,
            train_loader=DataLoader(
                train, batch_size=4, sampler=DistributedSampler(train, shuffle=False), collate_fn=COLLATE
            ),
        ),
    }
    try:
        train_once(4, train_loader=DataLoader(train, batch_size=4, shuffle=True, collate_fn=COLLATE))
        results["plain_loader_error"] = None
    except ValueError as exc:
        results["plain_loader_error"] = str(exc)
    torch.save(results, out / f"results-rank{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
