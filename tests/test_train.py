"""The training loop on a tiny random BERT.

Schedule, no-decay groups, accumulation, exact resume, NaN stop, early stopping.
"""

import math
from functools import partial

import numpy as np
import pytest
import torch
from toy_classifier import tiny_bert, toy_data  # tests/toy_classifier.py, shared with the DDP worker

from ftlearn.checkpoints import latest_checkpoint, list_checkpoints
from ftlearn.evaluation import evaluate, loader_order
from ftlearn.optim import no_decay_names, param_groups, warmup_linear
from ftlearn.precision import choose_precision
from ftlearn.tokenization import make_loader, pad_collate
from ftlearn.train import TrainConfig, TrainingDiverged, fit, make_scheduler


def loader(ds, batch_size=4, shuffle=True, seed=0):
    return make_loader(
        ds, partial(pad_collate, pad_token_id=0), batch_size, shuffle=shuffle, group_by_length=shuffle, seed=seed
    )


def test_warmup_linear_matches_transformers_schedule():
    from transformers import get_linear_schedule_with_warmup

    p = torch.nn.Parameter(torch.zeros(1))
    ours_opt, theirs_opt = torch.optim.SGD([p], lr=0.1), torch.optim.SGD([p], lr=0.1)
    config = TrainConfig(warmup_ratio=7 / 50)  # round(0.14 * 50) = 7 warm-up steps
    ours, theirs = make_scheduler(ours_opt, config, 50), get_linear_schedule_with_warmup(theirs_opt, 7, 50)
    for _ in range(55):
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], abs=1e-12)
        ours_opt.step(), theirs_opt.step(), ours.step(), theirs.step()
    assert warmup_linear(0, 10, 100) == 0 and warmup_linear(10, 10, 100) == 1 and warmup_linear(100, 10, 100) == 0


def test_no_decay_on_bias_and_layernorm():
    model = tiny_bert()
    skip = no_decay_names(model)
    # the usual name-based rule of the HF examples gives the same set for BERT
    by_name = {n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm.weight" in n}
    assert skip == by_name
    groups = param_groups(model, 0.01)
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert all(p.ndim == 2 for p in groups[0]["params"])  # only matrices decay


def test_cpu_runs_in_full_precision():
    precision = choose_precision(torch.device("cpu"))
    assert precision.dtype is None and not precision.use_scaler and precision.name == "fp32"


def test_gradient_accumulation_equals_the_big_batch():
    ds = toy_data(16)
    config = dict(lr=1e-2, epochs=1, warmup_ratio=0.0, max_grad_norm=None, progress=False, restore_best=False)
    big, small = tiny_bert(dropout=0.0), tiny_bert(dropout=0.0)
    h_big = fit(big, loader(ds, 8, shuffle=False), config=TrainConfig(**config), device="cpu")
    h_small = fit(small, loader(ds, 4, shuffle=False), config=TrainConfig(grad_accum_steps=2, **config), device="cpu")
    assert h_big.step == h_small.step == [1, 2]
    for (name, a), b in zip(big.named_parameters(), small.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    # reported loss = mean over the micro-batches; equal-sized halves average to the big batch's loss
    assert h_small.loss[0] == pytest.approx(h_big.loss[0], rel=1e-5)


def test_fit_trains_whatever_grad_mode_the_caller_left_and_hands_the_modes_back():
    # a notebook that ran torch.set_grad_enabled(False) for its own cells (lesson 06) must still be able to train
    ds = toy_data(16)
    model = tiny_bert(dropout=0.0)
    model.eval()
    model.classifier.train()  # mixed modes, as a frozen body with a live head would have
    before = [p.detach().clone() for p in model.parameters()]
    config = TrainConfig(lr=1e-2, epochs=1, warmup_ratio=0.0, progress=False)
    seen = []
    torch.set_grad_enabled(False)
    try:
        fit(model, loader(ds, 8), config=config, device="cpu", callbacks=[lambda h, e: seen.append(model.training)])
        assert not torch.is_grad_enabled(), "fit hands the caller's grad mode back"
    finally:
        torch.set_grad_enabled(True)
    assert seen and all(seen), "the model trains in train mode"
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "every weight moved"
    assert not model.training and not model.bert.training and model.classifier.training, "each module's mode restored"


@pytest.mark.slow
@pytest.mark.floors
def test_resume_continues_to_the_same_losses(tmp_path):
    train, val = toy_data(42, seed=0), toy_data(12, seed=1)
    # 42 examples / batch 4 = 11 micro-batches, accumulation 2 -> 6 steps per epoch (the last one short)
    base = dict(lr=3e-3, epochs=3, grad_accum_steps=2, progress=False)
    torch.manual_seed(123)
    straight = fit(tiny_bert(), loader(train), loader(val, 8, shuffle=False), TrainConfig(**base), device="cpu")
    assert len(straight.step) == 18

    torch.manual_seed(123)
    ckpt = tmp_path / "ckpt"
    first = fit(
        tiny_bert(),
        loader(train),
        loader(val, 8, shuffle=False),
        TrainConfig(**base, checkpoint_every=4, checkpoint_dir=str(ckpt), max_steps=9, keep_checkpoints=2),
        device="cpu",
    )
    assert first.step[-1] == 9
    assert [p.name for p in list_checkpoints(ckpt)] == ["checkpoint-4", "checkpoint-8"]  # older pruned
    saved = latest_checkpoint(ckpt)
    assert (saved / "model.safetensors").exists() and (saved / "trainer_state.pt").exists()

    torch.manual_seed(999)  # a different RNG state and fresh weights: the checkpoint must restore both
    resumed = fit(
        tiny_bert(seed=5),
        loader(train),
        loader(val, 8, shuffle=False),
        TrainConfig(**base),
        device="cpu",
        resume_from=saved,
    )
    assert resumed.step == straight.step
    assert resumed.loss == straight.loss  # bit-for-bit: same batches, same dropout masks, same optimizer state
    assert resumed.lr == straight.lr
    assert [e["loss"] for e in resumed.evals] == [e["loss"] for e in straight.evals]


def test_nan_loss_stops_with_step_and_lr():
    model = tiny_bert()
    with torch.no_grad():
        model.classifier.bias.fill_(float("nan"))
    config = TrainConfig(lr=1e-3, epochs=1, warmup_ratio=0.0, progress=False)
    with pytest.raises(TrainingDiverged, match=r"step 1 .*learning rate 0\.001"):
        fit(model, loader(toy_data(8)), config=config, device="cpu")


def test_evaluate_matches_torch_cross_entropy():
    model, ds = tiny_bert(), toy_data(20)
    report = evaluate(model, loader(ds, 8, shuffle=False), "cpu", return_outputs=True)
    model.eval()
    with torch.no_grad():
        batch = pad_collate([ds[i] for i in range(len(ds))])
        labels = batch.pop("labels")
        logits = model(**batch).logits
    assert report["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits.double(), labels).item(), rel=1e-5)
    assert report["accuracy"] == pytest.approx((logits.argmax(-1) == labels).float().mean().item())
    assert np.array_equal(report["labels"], labels.numpy())
    assert report["probs"].shape == (20, 2)


def test_evaluate_returns_outputs_in_dataset_order_from_a_length_grouped_loader():
    """A length-grouped loader yields the longest examples first; row i of the outputs must still be example i."""
    model, ds = tiny_bert(), toy_data(20)
    grouped = make_loader(ds, partial(pad_collate, pad_token_id=0), 8, group_by_length=True)
    order = loader_order(grouped)
    assert not np.array_equal(order, np.arange(20)), "the toy lengths should make the grouped order differ"
    report = evaluate(model, grouped, "cpu", return_outputs=True)
    assert report["in_dataset_order"]
    assert np.array_equal(report["labels"], np.array(ds["label"]))
    model.eval()
    with torch.no_grad():  # each example alone: no padding, the dataset's own order
        alone = [
            {k: v for k, v in pad_collate([ds[i]], pad_token_id=0).items() if k != "labels"} for i in range(len(ds))
        ]
        one_by_one = torch.cat([torch.softmax(model(**batch).logits.double(), -1) for batch in alone])
    np.testing.assert_allclose(report["probs"], one_by_one.numpy(), atol=1e-5)
    # a loader that does not say its order keeps the loader's order, and says so
    shuffled = torch.utils.data.DataLoader(
        ds, batch_size=8, shuffle=True, collate_fn=partial(pad_collate, pad_token_id=0)
    )
    assert loader_order(shuffled) is None
    assert evaluate(model, shuffled, "cpu", return_outputs=True)["in_dataset_order"] is False


@pytest.mark.slow
def test_early_stopping_restores_the_best_weights():
    # train on flipped labels, validate on the true ones: validation loss can only get worse
    train, val = toy_data(40, seed=0, flip=True), toy_data(40, seed=0)
    model = tiny_bert(dropout=0.0)
    config = TrainConfig(lr=1e-2, epochs=20, warmup_ratio=0.0, patience=2, progress=False)
    history = fit(model, loader(train), loader(val, 8, shuffle=False), config, device="cpu")
    assert history.stopped_early
    assert len(history.evals) < 20
    best = min(history.evals, key=lambda e: e["loss"])
    assert history.best_step == best["step"]
    assert evaluate(model, loader(val, 8, shuffle=False), "cpu")["loss"] == pytest.approx(best["loss"], rel=1e-6)
    assert math.isfinite(history.train_seconds) and history.train_seconds > 0


@pytest.mark.parametrize("best_metric, kept_epoch", [("loss", 1), ("accuracy", 2)])
def test_best_metric_decides_which_weights_are_kept(monkeypatch, best_metric, kept_epoch):
    # lesson 10's small GPT-2: after epoch 1 its validation loss rises while its accuracy still rises
    import ftlearn.train

    scripted = iter([(0.70, 0.50), (0.72, 0.65), (0.90, 0.62), (1.10, 0.60)])  # (loss, accuracy) per epoch
    monkeypatch.setattr(
        ftlearn.train, "evaluate", lambda *a, **k: dict(zip(("loss", "accuracy"), next(scripted), strict=True))
    )
    weights_at = {}  # a copy of one weight matrix at every evaluation
    model = tiny_bert(dropout=0.0)

    def record(history, event):
        if event == "eval":
            weights_at[history.evals[-1]["step"]] = model.classifier.weight.detach().clone()

    config = TrainConfig(lr=1e-2, epochs=4, warmup_ratio=0.0, best_metric=best_metric, progress=False)
    history = fit(model, loader(toy_data(16)), [None], config, device="cpu", callbacks=[record])
    kept = history.evals[kept_epoch - 1]["step"]
    assert history.best_step == kept
    assert torch.equal(model.classifier.weight, weights_at[kept])  # the model ends with that epoch's weights


def test_an_unknown_best_metric_is_refused_before_training():
    with pytest.raises(ValueError, match="best_metric must be one of loss, accuracy"):
        fit(tiny_bert(), loader(toy_data(8)), config=TrainConfig(best_metric="f1", progress=False), device="cpu")


def test_a_run_that_ends_on_schedule_did_not_stop_early():
    # patience runs out at the last evaluation: nothing was cut short, so this is not early stopping
    train, val = toy_data(40, seed=0, flip=True), toy_data(40, seed=0)
    config = TrainConfig(lr=1e-2, epochs=2, warmup_ratio=0.0, patience=1, progress=False)
    history = fit(tiny_bert(dropout=0.0), loader(train), loader(val, 8, shuffle=False), config, device="cpu")
    assert len(history.evals) == 2 and history.evals[1]["loss"] > history.evals[0]["loss"]
    assert not history.stopped_early


def test_lesson_02_cross_entropy_as_loss_fn_trains_like_the_models_own_loss():
    from ftlearn.losses import cross_entropy

    ds = toy_data(24)
    config = TrainConfig(lr=3e-3, epochs=1, progress=False)
    torch.manual_seed(0)
    own = fit(tiny_bert(dropout=0.0), loader(ds), config=config, device="cpu")
    torch.manual_seed(0)
    mine = fit(tiny_bert(dropout=0.0), loader(ds), config=config, device="cpu", loss_fn=cross_entropy)
    np.testing.assert_allclose(mine.loss, own.loss, rtol=1e-5)


def _tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    return GPT2LMHeadModel(config)


def test_accumulation_weights_micro_batches_by_their_tokens():
    """Two micro-batches with 3 and 12 predicted tokens: one step over both equals one step over their union."""
    from ftlearn.causal_lm import causal_lm_loss
    from ftlearn.train import count_targets

    ids = torch.randint(0, 50, (4, 8), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[:2, 2:] = -100  # the first two rows keep labels at positions 0-1 only: one predicted token each
    short = {"input_ids": ids[:2], "labels": labels[:2]}
    long = {"input_ids": ids[2:], "labels": labels[2:]}
    assert count_targets(short) == 2 and count_targets(long) == 14
    config = dict(lr=1e-2, epochs=1, warmup_ratio=0.0, progress=False)
    whole, parts = _tiny_gpt2(), _tiny_gpt2()
    fit(whole, [{"input_ids": ids, "labels": labels}], config=TrainConfig(**config), device="cpu")
    history = fit(parts, [short, long], config=TrainConfig(grad_accum_steps=2, **config), device="cpu")
    for (name, a), b in zip(whole.named_parameters(), parts.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    # the logged loss is the token-weighted mean too: the union's mean loss at the start
    with torch.no_grad():
        start = causal_lm_loss(_tiny_gpt2()(input_ids=ids).logits, labels).item()
    assert history.loss[0] == pytest.approx(start, rel=1e-5)


def test_a_leftover_temporary_checkpoint_is_ignored(tmp_path):
    (tmp_path / "checkpoint-5.tmp").mkdir()
    assert list_checkpoints(tmp_path) == [] and latest_checkpoint(tmp_path) is None


def test_the_library_has_one_training_loop():
    """One `.backward(` call site in ftlearn/: every run trains through `fit` (lesson notebooks may write their own)."""
    import ast
    from pathlib import Path

    import ftlearn

    root = Path(ftlearn.__file__).parent
    sites = [  # calls in code (read with ast), so a quiz question that names loss.backward() is not one
        f"{path.relative_to(root)}:{node.lineno}"
        for path in sorted(root.rglob("*.py"))
        if path.parent.name != "checks"  # the exercise checks differentiate learners' functions, they train nothing
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "backward"
    ]
    assert sites == [s for s in sites if s.startswith("train.py:")] and len(sites) == 1, sites
