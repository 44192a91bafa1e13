"""ftlearn.optim against torch.optim: same numbers in float64, drop-in behaviour, schedule values."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from ftlearn import optim

STEPS = 200


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids thread hand-off costs that dominate on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _problem(seed: int):
    """A random least-squares + cross-entropy problem: a small MLP with two param groups."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 10, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=gen)
    t = torch.randn(64, 1, generator=gen, dtype=torch.float64)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()

    def loss_fn(m):
        out = m(X)  # (64, 4): 3 class logits + 1 regression output
        return torch.nn.functional.cross_entropy(out[:, :3], y) + ((out[:, 3:] - t) ** 2).mean()

    return model, loss_fn


def _run(model, loss_fn, opt, steps=STEPS, sched=None):
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model).backward()
        opt.step()
        if sched is not None:
            sched.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _groups(model, wd):
    """Two param groups with different weight decay, as the BERT lesson uses them."""
    return optim.param_groups(model, wd)


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


CASES = [
    # (ours, torch's, kwargs)
    (optim.Adam, torch.optim.Adam, dict(lr=1e-2)),
    (optim.Adam, torch.optim.Adam, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (optim.AdamW, torch.optim.AdamW, dict(lr=1e-2)),  # both default to weight_decay=0.01
    (optim.AdamW, torch.optim.AdamW, dict(lr=3e-3, betas=(0.85, 0.95), eps=1e-7, weight_decay=0.3)),
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=0.01)),
    (optim.Momentum, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    (optim.RMSProp, torch.optim.RMSprop, dict(lr=1e-3, alpha=0.9, eps=1e-8, weight_decay=0.01)),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("ours,theirs,kwargs", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_equals_torch_over_200_steps(ours, theirs, kwargs, seed):
    model, loss_fn = _problem(seed)
    twin = copy.deepcopy(model)
    start = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    mine = _run(model, loss_fn, ours(model.parameters(), **kwargs))
    ref = _run(twin, loss_fn, theirs(twin.parameters(), **kwargs))
    assert _rel(mine, start) > 1e-2, "the parameters should have moved"
    assert _rel(mine, ref) < 1e-10


@pytest.mark.parametrize("ours,theirs", [(optim.Adam, torch.optim.Adam), (optim.AdamW, torch.optim.AdamW)])
def test_param_groups_and_scheduler_equal_torch(ours, theirs):
    """Different weight decay per group plus a warmup/linear LambdaLR: still the same numbers as torch."""
    model, loss_fn = _problem(2)
    twin = copy.deepcopy(model)
    opt_a = ours(_groups(model, 0.2), lr=1e-2, betas=(0.9, 0.98))
    opt_b = theirs(_groups(twin, 0.2), lr=1e-2, betas=(0.9, 0.98))
    mine = _run(model, loss_fn, opt_a, sched=optim.warmup_scheduler(opt_a, 20, STEPS))
    ref = _run(twin, loss_fn, opt_b, sched=optim.warmup_scheduler(opt_b, 20, STEPS))
    assert [g["weight_decay"] for g in opt_a.param_groups] == [0.2, 0.0]
    assert _rel(mine, ref) < 1e-10


def test_param_groups_leave_biases_and_layernorm_undecayed():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2))
    decay, no_decay = optim.param_groups(model, 0.01)
    assert [tuple(p.shape) for p in decay["params"]] == [(3, 4), (2, 3)]
    assert [tuple(p.shape) for p in no_decay["params"]] == [(3,), (3,), (3,), (2,)]
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01


def test_state_dict_round_trip_resumes_identically():
    """Save after 50 steps, load into a fresh optimizer, continue: same as never stopping."""
    model, loss_fn = _problem(3)
    twin = copy.deepcopy(model)
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    _run(model, loss_fn, opt, steps=50)
    saved = copy.deepcopy(opt.state_dict())
    straight = _run(model, loss_fn, opt, steps=50)

    opt2 = optim.AdamW(twin.parameters(), lr=1e-2, weight_decay=0.1)
    _run(twin, loss_fn, opt2, steps=50)
    opt3 = optim.AdamW(twin.parameters(), lr=1.0)  # wrong hyper-parameters, replaced by the load
    opt3.load_state_dict(saved)
    resumed = _run(twin, loss_fn, opt3, steps=50)
    assert opt3.state[next(twin.parameters())]["step"] == 100
    assert torch.equal(straight, resumed)


def test_first_adam_step_moves_each_coordinate_by_lr():
    """With bias correction the first update is lr * g / (|g| + eps): about lr per coordinate."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    p.grad = torch.tensor([0.5, -4.0, 1e-3], dtype=torch.float64)
    optim.Adam([p], lr=0.1, eps=0.0).step()
    assert torch.allclose(p.detach(), torch.tensor([0.9, -1.9, 2.9], dtype=torch.float64), rtol=0, atol=1e-12)


def test_adamw_decay_alone_is_a_constant_shrink():
    """Zero gradient: AdamW multiplies by (1 - lr*wd) each step; Adam's L2 version does something else."""
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    for _ in range(10):
        p.grad = torch.zeros_like(p)
        opt.step()
    assert torch.allclose(p.detach(), torch.full((2,), 0.95**10, dtype=torch.float64), rtol=1e-12)


def test_parameters_without_grad_are_skipped():
    a = torch.nn.Parameter(torch.ones(2))
    b = torch.nn.Parameter(torch.ones(2))
    a.grad = torch.ones(2)
    opt = optim.Adam([a, b], lr=0.1)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and not opt.state[b]
    assert (a.detach() < 1).all()


def test_closure_is_called_and_its_loss_returned():
    p = torch.nn.Parameter(torch.tensor([3.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0 and p.item() == pytest.approx(3.0 - 0.25 * 6.0)


def test_bad_hyper_parameters_raise():
    p = [torch.nn.Parameter(torch.ones(1))]
    with pytest.raises(ValueError):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError):
        optim.SGD(p, lr=-1.0)
    with pytest.raises(ValueError):
        optim.Momentum(p, momentum=1.5)


# ---- schedules ---------------------------------------------------------------------------------


def test_warmup_linear_values():
    values = [optim.warmup_linear(s, 4, 12) for s in range(14)]
    expected = [0.0, 0.25, 0.5, 0.75, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0, 0.0]
    assert values == pytest.approx(expected, abs=1e-15)
    assert optim.warmup_linear(0, 0, 10) == 1.0  # no warmup: start at the peak


def test_warmup_linear_matches_transformers():
    transformers = pytest.importorskip("transformers")
    for warmup, total in [(0, 10), (3, 10), (10, 100), (7, 7)]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
        hf = transformers.get_linear_schedule_with_warmup(opt, warmup, total)
        theirs = [lam(s) for s in range(total + 3) for lam in hf.lr_lambdas]
        ours = [optim.warmup_linear(s, warmup, total) for s in range(total + 3)]
        assert ours == pytest.approx(theirs, abs=1e-15)


def test_warmup_scheduler_sets_group_lr():
    opt = optim.AdamW([torch.nn.Parameter(torch.ones(1))], lr=2e-5)
    sched = optim.warmup_scheduler(opt, warmup_steps=2, total_steps=6)
    seen = []
    for _ in range(7):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.0, 1e-5, 2e-5, 1.5e-5, 1e-5, 0.5e-5, 0.0], abs=1e-18)


def test_warmup_decay_cosine_values_and_floor():
    cosine = [optim.warmup_decay(s, 2, 10, "cosine") for s in (0, 1, 2, 6, 10, 20)]
    assert cosine == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0, 0.0], abs=1e-15)
    # with a floor both shapes end at final_ratio and the cosine's midpoint sits halfway between 1 and it
    assert optim.warmup_decay(10, 2, 10, "linear", 0.1) == pytest.approx(0.1)
    assert optim.warmup_decay(6, 2, 10, "cosine", 0.1) == pytest.approx(0.55)
    assert optim.warmup_decay(20, 2, 10, "cosine", 0.1) == pytest.approx(0.1)
    # the linear member with no floor is exactly lesson 04's warmup_linear
    assert all(optim.warmup_decay(s, 3, 17) == optim.warmup_linear(s, 3, 17) for s in range(25))
    with pytest.raises(ValueError, match="decay must be"):
        optim.warmup_decay(1, 2, 10, "step")


def test_warmup_scheduler_rejects_bad_lengths():
    opt = optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    with pytest.raises(ValueError):
        optim.warmup_scheduler(opt, warmup_steps=5, total_steps=3)
    with pytest.raises(ValueError):
        optim.warmup_scheduler(opt, warmup_steps=1, total_steps=3, final_ratio=2.0)


# ---- gradient check ----------------------------------------------------------------------------


def _central_difference(f, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        e = torch.zeros_like(x).view(-1)
        e[i] = h
        e = e.view_as(x)
        grad.view(-1)[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


def test_hand_derived_softmax_ce_gradient_passes_finite_difference_and_autograd():
    """The p - y gradient of a linear softmax classifier (notebook 03), checked two ways in float64."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=gen)
    W = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(3, generator=gen, dtype=torch.float64)

    def loss_of(W_, b_):
        return torch.nn.functional.cross_entropy(X @ W_ + b_, y)

    P = torch.softmax(X @ W + b, dim=1)  # (N, K)
    Y = torch.nn.functional.one_hot(y, 3).double()  # (N, K)
    dW = X.T @ (P - Y) / len(X)  # (D, K)
    db = (P - Y).mean(0)  # (K,)

    assert torch.allclose(dW, _central_difference(lambda w: loss_of(w, b), W), rtol=1e-6, atol=1e-9)
    assert torch.allclose(db, _central_difference(lambda c: loss_of(W, c), b), rtol=1e-6, atol=1e-9)
    Wr, br = W.clone().requires_grad_(), b.clone().requires_grad_()
    loss_of(Wr, br).backward()
    assert torch.allclose(dW, Wr.grad, rtol=1e-12, atol=1e-14)
    assert torch.allclose(db, br.grad, rtol=1e-12, atol=1e-14)


def test_bag_of_words_fits_vocabulary_on_train_only():
    from ftlearn.features import bag_of_words

    bow = bag_of_words(["good film<br />good", "bad film"], [1, 0], ["good unseenword"], [1], max_features=10)
    assert bow.vocabulary == ["bad", "film", "good"]
    assert bow.X_train.shape == (2, 3) and bow.X_test.shape == (1, 3)
    assert torch.allclose(bow.X_train.norm(dim=1), torch.ones(2, dtype=bow.X_train.dtype))
    assert bow.X_test[0, 2] > 0 and bow.X_test[0, :2].abs().sum() == 0  # unseen word simply dropped
    assert bow.y_train.tolist() == [1, 0] and bow.y_train.dtype == torch.long
    assert not math.isnan(bow.X_test.sum().item())
