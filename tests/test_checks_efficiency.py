"""The checks of solutions/11 (costs): references are ftlearn.memory's and count_targets; mistakes get their hints."""

import pytest

from ftlearn.checks import efficiency as ce
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args):
    raise NotImplementedError


def _scaled(per_16bit):
    return lambda b, s, h, a, v: per_16bit(b, s, h, a) * v // 2


def _with_flops(per_token):
    return lambda n, t, N, L, h, s, peak, u: n * t * per_token(N, L, h, s) / (peak * u)


CASES = [
    *[
        (ce.check_bytes_per_param, ce._bytes_ref, ce._bytes_mistake(part), hint)
        for part, hint in [
            ("weights only", "inference"),
            ("gradients", "gradients are missing"),
            ("one moment", "*two* running averages"),
            ("master in weights dtype", "fp32, 4 bytes"),
            ("fp32 gradients", "gradients have the weights' dtype"),
            ("state in weights dtype", "`state`'s dtype"),
        ]
    ],
    (ce.check_activation_bytes, ce._activation_ref, _scaled(lambda b, s, h, a: 34 * s * b * h), "*square*"),
    (ce.check_activation_bytes, ce._activation_ref, _scaled(lambda b, s, h, a: 34 * s * b * h + 5 * a * s * b), "T²"),
    (
        ce.check_activation_bytes,
        ce._activation_ref,
        _scaled(lambda b, s, h, a: 34 * s * b * h + 5 * s * s * b),
        "heads",
    ),
    (ce.check_activation_bytes, ce._activation_ref, lambda b, s, h, a, v: 34 * s * b * h + 5 * a * s * s * b, "/ 2"),
    (
        ce.check_activation_bytes,
        ce._activation_ref,
        lambda b, s, h, a, v: (34 * s * b * h + 5 * a * s * s * b) * v,
        "not by bytes_per_value",
    ),  # fmt: skip
    (ce.check_accumulation_weights, ce._weights_ref, lambda ls: [1 / len(ls)] * len(ls), "token-mean trap"),
    (
        ce.check_accumulation_weights,
        ce._weights_ref,
        lambda ls: [float((lb[:, 1:] != -100).sum()) for lb in ls],
        "n_j / n",
    ),
    (ce.check_epoch_seconds, ce._epoch_ref, _with_flops(lambda N, L, h, s: 2 * N + 4 * L * s * h), "forward pass only"),
    (ce.check_epoch_seconds, ce._epoch_ref, _with_flops(lambda N, L, h, s: 6 * N), "weightless"),
    (ce.check_epoch_seconds, ce._epoch_ref, lambda *a: ce._epoch_ref(*a) * a[-1], "MFU is missing"),
    (ce.check_epoch_seconds, ce._epoch_ref, lambda *a: ce._epoch_ref(*a) / 60, "minutes"),
]


@pytest.mark.parametrize("checker, right, wrong, hint", CASES, ids=[f"{c[0].__name__}-{c[3]}" for c in CASES])
def test_check_verdicts(checker, right, wrong, hint, second_try):
    assert checker(right).status == CORRECT
    first = checker(wrong)  # the first wrong try: a nudge about the kind of mistake, not the hint
    assert first.status == WRONG and first.message.startswith("Not yet. ") and hint not in first.message, first
    result = second_try(checker, wrong)
    assert result.status == WRONG and hint in result.message, result
    assert checker(stub).status == NOT_ATTEMPTED


def test_accumulation_hints_tell_the_counting_slips_apart(second_try):
    def counts(ls, count):
        n = [float(count(lb)) for lb in ls]
        return [c / sum(n) for c in n]

    for count, hint in [
        (lambda lb: (lb != -100).sum(), "position 0 is never predicted"),
        (lambda lb: lb[:, 1:].numel(), "padding, left out of the loss"),
        (lambda lb: lb.shape[0], "counts reviews"),
    ]:
        result = second_try(ce.check_accumulation_weights, lambda ls, count=count: counts(ls, count))
        assert result.status == WRONG and hint in result.message, result


def test_bytes_reference_gives_the_four_recipes_of_ftlearn_memory():
    from ftlearn.memory import RECIPES

    named = {
        "fp32": ("fp32", False),
        "amp": ("fp32", False),
        "half-master": ("bf16", True),
        "pure-bf16": ("bf16", False),
    }
    for recipe, (weights, master) in named.items():
        state = "bf16" if recipe == "pure-bf16" else "fp32"
        assert ce._bytes_ref(weights, master, "adamw", state) == sum(RECIPES[recipe].values())


def test_accumulation_reference_weights_give_the_big_batch_mean():
    """Weighting the micro-batch means by n_j / n gives the mean over every predicted token of the group."""
    import torch

    (labels_list,) = ce._accum_cases()[1]
    g = torch.Generator().manual_seed(0)
    per_token = [torch.rand(lb[:, 1:].shape, generator=g, dtype=torch.float64) for lb in labels_list]
    masks = [lb[:, 1:] != -100 for lb in labels_list]
    means = [t[m].mean() for t, m in zip(per_token, masks, strict=True)]
    weighted = sum(w * m for w, m in zip(ce._weights_ref(labels_list), means, strict=True))
    overall = torch.cat([t[m] for t, m in zip(per_token, masks, strict=True)]).mean()
    assert torch.isclose(weighted, overall)
