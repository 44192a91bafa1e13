"""benchmarks/finetune_throughput.py runs end to end (smoke sizes) and reports what it promises.

Timings are not checked (they depend on the machine); the figures' presence and consistency are.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "finetune_throughput.py"


@pytest.mark.slow
@pytest.mark.floors
def test_benchmark_prints_four_way_table_and_speedup_line(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    env = {**os.environ, "FTLEARN_PROFILE": "smoke", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--profile", "smoke", "--json", str(out_json)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]

    # the table: a header, then one row per arm in the order (a) seed, (b) trainer, (c) ftlearn, (d) trainer_recipe
    header = next(i for i, line in enumerate(lines) if line.startswith("arm ") and "samples/s" in line)
    rows = [line.split() for line in lines[header + 1 : header + 5]]
    assert [r[0] for r in rows] == ["seed", "trainer", "ftlearn", "trainer_recipe"]
    table_rate = {r[0]: float(r[1]) for r in rows}
    assert all(rate > 0 for rate in table_rate.values())

    # the last line is the speed-up line, and its ratios are the table's samples/s ratios
    line = r"speedup_vs_seed=(\S+) speedup_vs_trainer=(\S+) speedup_vs_trainer_same_recipe=(\S+)"
    match = re.fullmatch(line, lines[-1])
    assert match, lines[-1]
    saved = json.loads(out_json.read_text())
    rate = {arm["arm"]: arm["samples_per_second"] for arm in saved["arms"]}
    assert math.isclose(float(match.group(1)), rate["ftlearn"] / rate["seed"], abs_tol=0.006)
    assert math.isclose(float(match.group(2)), rate["ftlearn"] / rate["trainer"], abs_tol=0.006)
    assert math.isclose(float(match.group(3)), rate["ftlearn"] / rate["trainer_recipe"], abs_tol=0.006)
    for arm in saved["arms"]:
        assert math.isclose(table_rate[arm["arm"]], arm["samples_per_second"], abs_tol=0.006)
        assert arm["samples"] == saved["sizes"]["n_train"] * saved["sizes"]["epochs"]
        assert 0.0 <= arm["accuracy"] <= 1.0 and arm["n_test"] == saved["sizes"]["n_test"]
    # the seed arm pads every review to the fixed length; ours computes fewer token slots per review
    tokens = {arm["arm"]: arm["tokens_per_review"] for arm in saved["arms"]}
    assert tokens["seed"] == saved["sizes"]["max_length"]
    assert tokens["ftlearn"] < tokens["seed"]
    # the Trainer given the course's recipe reads the very same tokens as ftlearn (real ones: padding not counted)
    recipe_row = next(arm for arm in saved["arms"] if arm["arm"] == "trainer_recipe")
    assert "head+tail" in recipe_row["how"] and "grouped by length" in recipe_row["how"]
    assert tokens["trainer_recipe"] <= tokens["ftlearn"]
    # the loop's own ratio: (c) and (d) are timed `repeats` times each (smoke: 2) and the table shows the median run;
    # each repeat redid the same seeded training, so its mean training loss is the first timing's
    by_arm = {arm["arm"]: arm for arm in saved["arms"]}
    for name in ("ftlearn", "trainer_recipe"):
        arm = by_arm[name]
        assert len(arm["runs"]) == saved["sizes"]["repeats"] == 2
        assert math.isclose(arm["train_seconds"], statistics.median(arm["runs"]))
        first, *again = arm["extra"]["train_loss_runs"]
        assert again and all(math.isclose(loss, first, rel_tol=1e-6) for loss in again)
        assert f"{name}: trained in " in proc.stdout
    for name in ("seed", "trainer"):
        assert len(by_arm[name]["runs"]) == 1  # the other two arms are timed once
    # where the two loops differ: their optimizers' step, timed on the same model
    step_ms = saved["optimizer_step_ms"]
    assert {"lesson 04's AdamW (c)", "torch.optim.AdamW (d)"} <= set(step_ms) and min(step_ms.values()) > 0
    assert "one AdamW step (median of 20 timings)" in proc.stdout


@pytest.mark.slow
def test_benchmark_rejects_unknown_arm(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--profile", "smoke", "--arms", "seed,fast"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "unknown arm(s) fast" in proc.stderr


def test_trainer_scores_pair_each_prediction_with_its_own_label(monkeypatch) -> None:
    """Arm (d)'s Trainer returns its test predictions grouped by length, not in the data set's order."""
    import importlib.util
    from types import SimpleNamespace

    import numpy as np

    spec = importlib.util.spec_from_file_location("finetune_throughput", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    labels = np.array([0, 1, 1, 0, 1, 0])
    order = np.array([3, 0, 5, 1, 4, 2])  # the order a length-grouped sampler might read them in
    logits = np.eye(2)[labels[order]]  # a model right on every review, reported in that order
    trainer = SimpleNamespace(predict=lambda test: SimpleNamespace(predictions=logits, label_ids=labels[order]))
    assert bench.trainer_test_scores(trainer, None) == (1.0, 1.0)
    wrong = bench.scores(labels, logits.argmax(-1))[0]  # what pairing with the data set's order scored
    assert wrong < 1.0
