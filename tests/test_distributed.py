"""DDP with `fit`: 2 CPU processes (gloo) train exactly like one process with twice the batch.

The helpers are also tested in one process.
"""

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from ftlearn import distributed
from ftlearn.tokenization import BatchOrder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # ddp_worker.py lives beside this file
import ddp_worker  # noqa: E402


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run tests/ddp_worker.py as 2 gloo processes with torchrun; return its folder and each rank's results."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # the launcher sets these; stale values from the outside would confuse it
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(HERE / "ddp_worker.py"),
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    logs = "".join((out / f"rank{r}.log").read_text() for r in (0, 1) if (out / f"rank{r}.log").exists())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + logs[-3000:]
    ranks = [torch.load(out / f"results-rank{r}.pt", weights_only=False) for r in (0, 1)]
    return out, ranks


@pytest.fixture(scope="module")
def one_process():
    """The same runs in this process (no launcher): batch 8, i.e. 2 ranks x 4."""
    train = ddp_worker.toy_data(ddp_worker.TRAIN_N, seed=0)
    in_order = ddp_worker.loader(train, 8, shuffle=False)
    return {
        "plain": ddp_worker.train_once(8),
        "accum": ddp_worker.train_once(8, grad_accum_steps=2, restore_best=False),
        "sampler": ddp_worker.train_once(8, train_loader=in_order, restore_best=False),
    }


@pytest.mark.slow
@pytest.mark.floors
@pytest.mark.parametrize("run", ["plain", "accum", "sampler"])
def test_two_ranks_train_like_one_process_with_twice_the_batch(two_ranks, one_process, run):
    _, ranks = two_ranks
    ddp, single = ranks[0][run], one_process[run]
    # DDP averages the two ranks' mean gradients over 4 examples each: the mean over the 8 of the big batch
    assert ddp["history"]["step"] == single["history"]["step"]
    np.testing.assert_allclose(ddp["history"]["loss"], single["history"]["loss"], rtol=1e-10)
    np.testing.assert_allclose(ddp["history"]["grad_norm"], single["history"]["grad_norm"], rtol=1e-8)
    assert ddp["history"]["lr"] == single["history"]["lr"]  # same number of steps, same schedule
    assert ddp["history"]["best_step"] == single["history"]["best_step"]
    for name, tensor in single["state"].items():
        torch.testing.assert_close(ddp["state"][name], tensor, rtol=1e-8, atol=1e-10, msg=name)
    # predictions are gathered back into the loader's order, so even the per-example outputs match
    np.testing.assert_array_equal(ddp["val"]["labels"], single["val"]["labels"])
    np.testing.assert_allclose(ddp["val"]["probs"], single["val"]["probs"], rtol=1e-5)
    assert ddp["val"]["loss"] == pytest.approx(single["val"]["loss"], rel=1e-5)
    # the training really moved: this compares two trainings, not two copies of the initial weights
    start = ddp_worker.tiny_bert().state_dict()
    assert max((ddp["state"][n] - start[n]).abs().max().item() for n in start) > 1e-3


@pytest.mark.slow
@pytest.mark.floors
@pytest.mark.parametrize("run", ["plain", "accum", "sampler"])
def test_both_ranks_end_identical(two_ranks, run):
    _, (rank0, rank1) = two_ranks
    for name, tensor in rank0[run]["state"].items():
        assert torch.equal(rank1[run]["state"][name], tensor), name
    assert rank0[run]["history"]["loss"] == rank1[run]["history"]["loss"]  # all-reduced: one global loss per step
    assert rank0[run]["history"]["evals"] == rank1[run]["history"]["evals"]  # same metrics, same early stopping
    assert rank0[run]["val"]["loss"] == rank1[run]["val"]["loss"]
    np.testing.assert_array_equal(rank0[run]["val"]["probs"], rank1[run]["val"]["probs"])


@pytest.mark.slow
@pytest.mark.floors
def test_only_rank_0_prints_and_writes(two_ranks):
    out, _ = two_ranks
    # each rank was given its own checkpoint folder: only rank 0's exists
    assert [p.name for p in sorted((out / "checkpoints-rank0").iterdir())] == ["checkpoint-7", "checkpoint-8"]
    assert not (out / "checkpoints-rank1").exists()
    log0, log1 = (out / "rank0.log").read_text(), (out / "rank1.log").read_text()
    assert "training" in log0 and "val loss" in log0 and "Restored the weights" in log0
    assert log1 == ""


@pytest.mark.slow
@pytest.mark.floors
def test_a_plain_shuffled_loader_is_refused_under_ddp(two_ranks):
    _, ranks = two_ranks
    for results in ranks:
        message = results["plain_loader_error"]
        assert message is not None and "DistributedSampler" in message and "make_loader" in message


# ---------------------------------------------------------------- one process: the helpers answer "alone"


def test_helpers_without_a_launcher(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert not distributed.setup("cpu") and not distributed.is_initialized()
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main_process()
    assert distributed.all_reduce_mean(0.25) == 0.25
    assert distributed.all_gather_objects({"a": 1}) == [{"a": 1}]
    assert distributed.rank_device(torch.device("cpu")) == torch.device("cpu")
    # before the process group exists, the launcher's RANK already tells a process it must stay quiet
    monkeypatch.setenv("RANK", "3")
    assert not distributed.is_main_process()


def test_shard_and_interleave_are_inverse():
    items = list(range(11))
    shares = [distributed.shard(items, r, 3) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]  # equal shares; 9 and 10 left out
    uneven = [list(distributed.shard_iter(items, r, 3)) for r in range(3)]
    assert uneven == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert distributed.interleave(uneven) == items
    assert distributed.shard(items, 0, 1) == items


def test_batch_order_shards_after_its_shuffle():
    lengths = np.random.default_rng(0).integers(5, 50, 103)
    make = partial(BatchOrder, lengths, 4, shuffle=True, group_by_length=True, seed=7)
    whole = make()
    whole.set_epoch(2)
    everything = whole.batches()  # 26 batches
    shares = []
    for r in range(3):
        order = make()
        order.shard(r, 3)
        order.set_epoch(2)
        shares.append(order.batches())
        assert len(order) == len(shares[-1]) == 26 // 3  # same count on every rank
    # together the ranks take the first 24 batches of the common order, each exactly once
    assert distributed.interleave(shares) == everything[:24]
    order.shard(0, 1)
    assert order.batches() == everything and len(order) == 26  # unsharded again
    with pytest.raises(ValueError, match="rank must be"):
        order.shard(3, 3)


def test_other_ranks_are_quiet_and_the_libraries_restored(monkeypatch, capsys):
    import datasets

    monkeypatch.setenv("RANK", "1")  # what torchrun sets in the second process
    assert not datasets.are_progress_bars_disabled()
    with distributed.quiet_other_ranks():
        print("rank 1 says this")
        assert datasets.are_progress_bars_disabled()
    assert not datasets.are_progress_bars_disabled()
    monkeypatch.setenv("RANK", "0")
    with distributed.quiet_other_ranks():
        print("rank 0 says this")
    assert capsys.readouterr().out == "rank 0 says this\n"


@pytest.mark.slow
@pytest.mark.floors
def test_the_gpt2_classifier_command_runs_under_torchrun(tmp_path):
    """`ftlearn finetune gpt2-cls` trains through the same `fit` as BERT: 2 gloo ranks, one report, one folder."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    out = tmp_path / "gpt2-cls"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "ftlearn.cli", "finetune", "gpt2-cls", "--profile", "smoke", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["task"] == "gpt2-cls"
    assert result.stdout.count("saved the model") == 1  # rank 0 alone reports and writes
    assert not list(tmp_path.glob(".*"))
