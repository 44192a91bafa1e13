"""Data-parallel training (DDP) with the same `fit`: one process per device, each on its own share of the batches.

Introduced in notebook 11 (efficient full fine-tuning). A launcher (`torchrun`, `accelerate launch`)
starts N copies of the script and tells each one who it is through environment variables:
WORLD_SIZE (N), RANK (0..N-1) and LOCAL_RANK (which GPU of this machine). Every helper here is a
no-op answer in a single process (world size 1, rank 0), so code written with them runs unchanged
in a notebook.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import torch

T = TypeVar("T")


def launched_world_size() -> int:
    """How many processes the launcher started: WORLD_SIZE, 1 when there is no launcher (notebook 11)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """Which device of this machine this process owns: LOCAL_RANK, 0 without a launcher (notebook 11)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_initialized() -> bool:
    """True when this process has joined a process group (notebook 11)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes training together; 1 in a plain script or notebook (notebook 11)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_initialized() else launched_world_size()


def rank() -> int:
    """This process's number, 0..world_size-1; read from RANK before the group exists (notebook 11)."""
    import torch.distributed as dist

    # Before `setup` the launcher's RANK already says who we are, so prints can be silenced early.
    return dist.get_rank() if is_initialized() else int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0, the one process that prints, shows progress and writes files (notebook 11)."""
    return rank() == 0


def is_distributed() -> bool:
    """True when a process group of more than one process is running (notebook 11)."""
    return is_initialized() and world_size() > 1


def setup(device: torch.device | str | None = None) -> bool:
    """Join the launcher's process group if one was launched; True when training is distributed (notebook 11).

    gloo on CPU, nccl on CUDA (each rank then uses GPU LOCAL_RANK). Safe to call more than once.
    """
    import torch
    import torch.distributed as dist

    if is_initialized():
        return world_size() > 1
    if launched_world_size() <= 1:
        return False  # a notebook, a plain `python script.py`, or torchrun with one process
    on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    if on_cuda:
        # Bind this process to its own GPU before creating the group: nccl assumes one GPU per rank.
        torch.cuda.set_device(local_rank())
    # The launcher also set MASTER_ADDR/MASTER_PORT, so the default env:// rendezvous finds the others.
    dist.init_process_group(backend="nccl" if on_cuda else "gloo")
    atexit.register(cleanup)  # the group lives until the script ends; leave it cleanly then
    return True


def cleanup() -> None:
    """Leave the process group (a no-op when there is none) (notebook 11)."""
    import torch.distributed as dist

    if is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device) -> torch.device:
    """Under DDP on CUDA, this rank's own GPU (cuda:LOCAL_RANK); otherwise `device` unchanged (notebook 11)."""
    import torch

    if is_distributed() and device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


def shard(items: list[T], rank_: int | None = None, world: int | None = None, even: bool = True) -> list[T]:
    """This rank's share of `items`: every world-th one starting at its rank (notebook 11).

    With `even`, the last len(items) % world items are left out so that every rank gets the same
    number: in training, a rank with one batch more would wait forever for the others at the
    gradient all-reduce. Striding (rather than cutting into blocks) keeps neighbours together:
    ranks 0..N-1 together take items 0..N-1, then N..2N-1, and so on.
    """
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    stop = len(items) - len(items) % world if even else len(items)
    return items[rank_:stop:world]


def shard_iter(batches: Iterable[T], rank_: int | None = None, world: int | None = None) -> Iterator[T]:
    """Like `shard(..., even=False)` for any iterable, e.g. a DataLoader: skips other ranks' batches (notebook 11)."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    for i, batch in enumerate(batches):
        if i % world == rank_:
            yield batch


def all_reduce_mean(value: float, device: torch.device | str = "cpu") -> float:
    """The mean of a number over all ranks, the same on every rank; `value` itself in one process (notebook 11)."""
    import torch
    import torch.distributed as dist

    if not is_distributed():
        return value
    # float64 so the mean of per-rank losses is not rounded again; nccl needs the tensor on the GPU.
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / world_size()


def all_gather_objects(obj: Any) -> list[Any]:
    """`[obj of rank 0, obj of rank 1, ...]` on every rank (pickled); `[obj]` in one process (notebook 11)."""
    import torch.distributed as dist

    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def interleave(per_rank: list[list[T]]) -> list[T]:
    """Undo `shard_iter`: item j of rank r goes back to place j * world + r (notebook 11)."""
    out: list[T] = []
    longest = max((len(items) for items in per_rank), default=0)
    for j in range(longest):
        out.extend(items[j] for items in per_rank if j < len(items))
    return out


def barrier() -> None:
    """Wait until every rank gets here (a no-op in one process) (notebook 11)."""
    import torch.distributed as dist

    if is_distributed():
        dist.barrier()


@contextmanager
def quiet_other_ranks() -> Iterator[None]:
    """Inside the block, ranks other than 0 print nothing and show no library progress bars or warnings (notebook 11).

    N copies of every line would say nothing new: rank 0 speaks for all. Errors (stderr) still show.
    """
    if is_main_process():
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging

    bars_were_on, hf_bars_were_on = not datasets.are_progress_bars_disabled(), hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        with open(os.devnull, "w") as sink, redirect_stdout(sink):
            yield
    finally:  # leave the libraries as we found them
        if bars_were_on:
            datasets.enable_progress_bars()
        if hf_bars_were_on:
            hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(verbosity)
