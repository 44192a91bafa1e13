"""ftlearn.losses against PyTorch: values and gradients in float64, extreme logits, ignore_index, label smoothing."""

import math

import pytest
import torch
import torch.nn.functional as F

from ftlearn import losses

RTOL = 1e-10


def assert_rel_close(got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL) -> None:
    """Equal to a relative 1e-10 (with a tiny absolute floor for exact zeros)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    assert torch.isfinite(got).all() == torch.isfinite(want).all()
    torch.testing.assert_close(got, want, rtol=rtol, atol=1e-300 if want.abs().max() > 0 else 1e-15)


def logits_and_target(n=7, c=5, scale=3.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * scale
    target = torch.randint(0, c, (n,), generator=gen)
    return logits, target


def both_grads(fn_ours, fn_torch, logits, *args, **kwargs):
    """Loss values and d loss / d logits from our function and PyTorch's."""
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    out_a, out_b = fn_ours(a, *args, **kwargs), fn_torch(b, *args, **kwargs)
    weights = torch.linspace(0.5, 1.5, out_a.numel(), dtype=torch.float64).view_as(
        out_a
    )  # so 'none' gets a non-trivial gradient
    (out_a * weights).sum().backward()
    (out_b * weights).sum().backward()
    return out_a.detach(), out_b.detach(), a.grad, b.grad


def test_logsumexp_and_log_softmax_match_torch():
    logits, _ = logits_and_target(scale=10.0)
    assert_rel_close(losses.logsumexp(logits, dim=1), torch.logsumexp(logits, dim=1))
    assert_rel_close(losses.log_softmax(logits, dim=1), torch.log_softmax(logits, dim=1))
    assert_rel_close(losses.log_softmax(logits, dim=0), torch.log_softmax(logits, dim=0))
    assert_rel_close(losses.softmax(logits), torch.softmax(logits, dim=-1))


def test_log_softmax_is_finite_where_the_naive_formula_fails():
    logits = torch.tensor([[1e4, 0.0, -1e4], [1000.0, 1001.0, 1002.0]], dtype=torch.float64)
    naive = torch.log(torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True))
    assert not torch.isfinite(naive).all()  # the failure the lesson shows
    ours = losses.log_softmax(logits)
    assert torch.isfinite(ours).all()
    assert_rel_close(ours, torch.log_softmax(logits, dim=1))


def test_logsumexp_of_all_minus_inf_is_minus_inf():
    x = torch.full((2, 3), -torch.inf, dtype=torch.float64)
    assert torch.equal(losses.logsumexp(x, dim=1), torch.logsumexp(x, dim=1))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.5])
def test_cross_entropy_values_and_grads_match_torch(reduction, label_smoothing):
    logits, target = logits_and_target()
    kw = dict(label_smoothing=label_smoothing, reduction=reduction)
    ours, theirs, g_ours, g_theirs = both_grads(losses.cross_entropy, F.cross_entropy, logits, target, **kw)
    assert_rel_close(ours, theirs)
    assert_rel_close(g_ours, g_theirs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy_ignore_index_matches_torch(reduction, label_smoothing, ignore_index):
    logits, target = logits_and_target(n=9, c=4, seed=1)
    target[[0, 3, 4]] = ignore_index
    kw = dict(ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction)
    ours, theirs, g_ours, g_theirs = both_grads(losses.cross_entropy, F.cross_entropy, logits, target, **kw)
    assert_rel_close(ours, theirs)
    assert_rel_close(g_ours, g_theirs)
    assert torch.all(g_ours[[0, 3, 4]] == 0)  # ignored rows get no gradient


def test_cross_entropy_mean_divides_by_the_kept_rows():
    logits, target = logits_and_target(n=6, c=3, seed=2)
    target[:2] = -100
    per_row = -torch.log_softmax(logits, dim=1)[torch.arange(6), target.clamp(min=0)]
    want = per_row[2:].sum() / 4
    assert_rel_close(losses.cross_entropy(logits, target), want)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    logits, target = logits_and_target(n=3, c=3)
    target[:] = -100
    assert torch.isnan(losses.cross_entropy(logits, target))
    assert torch.isnan(F.cross_entropy(logits, target))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_is_finite_at_huge_logits(label_smoothing):
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [1e4, 1e4, -1e4]], dtype=torch.float64)
    target = torch.tensor([1, 1, 2])  # row 0 and row 2 are confidently wrong: losses near 1e4 and 2e4
    ours, theirs, g_ours, g_theirs = both_grads(
        losses.cross_entropy, F.cross_entropy, logits, target, label_smoothing=label_smoothing, reduction="none"
    )
    assert torch.isfinite(ours).all() and torch.isfinite(g_ours).all()
    assert_rel_close(ours, theirs)
    assert_rel_close(g_ours, g_theirs)


def test_cross_entropy_probability_targets_match_torch():
    logits, _ = logits_and_target(n=5, c=4, seed=3)
    probs = torch.softmax(torch.randn(5, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64), dim=1)
    for ls in (0.0, 0.3):
        ours, theirs, g_ours, g_theirs = both_grads(
            losses.cross_entropy, F.cross_entropy, logits, probs, label_smoothing=ls
        )
        assert_rel_close(ours, theirs)
        assert_rel_close(g_ours, g_theirs)


def test_cross_entropy_unbatched_matches_torch():
    logits = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    target = torch.tensor(2)
    assert_rel_close(losses.cross_entropy(logits, target), F.cross_entropy(logits, target))
    assert_rel_close(
        losses.cross_entropy(logits, target, reduction="none"), F.cross_entropy(logits, target, reduction="none")
    )


def test_cross_entropy_is_minus_log_p_of_the_correct_class():
    logits = torch.tensor([[2.0, 1.0, 0.1]], dtype=torch.float64)
    p = torch.softmax(logits, dim=1)[0, 0]
    assert_rel_close(losses.cross_entropy(logits, torch.tensor([0])), -torch.log(p))


def test_cross_entropy_rejects_bad_input():
    logits, target = logits_and_target(n=2, c=3)
    with pytest.raises(IndexError):
        losses.cross_entropy(logits, torch.tensor([0, 3]))
    with pytest.raises(ValueError):
        losses.cross_entropy(logits, target, reduction="avg")
    with pytest.raises(ValueError):
        losses.cross_entropy(logits, target, label_smoothing=1.5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_logits_matches_torch(reduction):
    z = torch.tensor([-1e4, -30.0, -1.0, 0.0, 0.5, 30.0, 1e4], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 1.0, 0.3, 0.0, 1.0, 0.0], dtype=torch.float64)
    ours, theirs, g_ours, g_theirs = both_grads(
        losses.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, z, y, reduction=reduction
    )
    assert torch.isfinite(ours).all()
    # PyTorch's formula loses relative precision when the loss is ~1e-13 (z = -30, y = 0), so the
    # values are compared to 1e-10 relative OR 1e-14 absolute; the next test shows ours is the exact one.
    torch.testing.assert_close(ours, theirs, rtol=RTOL, atol=1e-14)
    torch.testing.assert_close(g_ours, g_theirs, rtol=RTOL, atol=1e-14)  # same story for sigmoid(30) - 1


def test_binary_cross_entropy_with_logits_is_exact_for_tiny_losses():
    z = torch.tensor([-30.0, 30.0], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0], dtype=torch.float64)
    exact = torch.tensor([math.log1p(math.exp(-30.0))] * 2, dtype=torch.float64)  # log(1 + e^-30), exactly rounded
    assert_rel_close(losses.binary_cross_entropy_with_logits(z, y, reduction="none"), exact)


def test_binary_ce_equals_two_class_ce_with_logits_zero_and_z():
    z = torch.tensor([-3.0, 0.2, 4.0], dtype=torch.float64)
    y = torch.tensor([0, 1, 1])
    two_class = torch.stack([torch.zeros_like(z), z], dim=1)  # p(class 1) = sigmoid(z)
    assert_rel_close(losses.binary_cross_entropy_with_logits(z, y.double()), losses.cross_entropy(two_class, y))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(reduction):
    gen = torch.Generator().manual_seed(5)
    pred, target = (
        torch.randn(4, 3, generator=gen, dtype=torch.float64),
        torch.randn(4, 3, generator=gen, dtype=torch.float64),
    )
    ours, theirs, g_ours, g_theirs = both_grads(losses.mse, F.mse_loss, pred, target, reduction=reduction)
    assert_rel_close(ours, theirs)
    assert_rel_close(g_ours, g_theirs)
