"""The checks of exercises 05-06: right answers pass, known mistakes get their hint, stubs are 'not attempted'."""

import numpy as np
import pytest

from ftlearn.checks import bert as cb
from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, WRONG

pytestmark = pytest.mark.usefixtures("lenient")  # wrong answers are looked at, not raised


def stub(*args):
    raise NotImplementedError


CASES = [
    (cb.check_dynamic_pad, cb._pad_ref, cb._pad_mask_ones, "attention mask"),
    (cb.check_dynamic_pad, cb._pad_ref, cb._pad_fixed, "longest"),
    (cb.check_head_tail, cb._head_tail_ref, lambda ids, b, h: list(ids)[:h] + list(ids)[-(b - h) :], "ids[-0:]"),
    (cb.check_padding_waste, cb._waste_ref, lambda L, b: 1 - sum(L) / (len(L) * max(L)), "own longest"),
    (cb.check_confusion_matrix, cb._cm_ref, lambda t, p: cb._cm_ref(t, p).T, "transposed"),
    (cb.check_metrics_from_confusion, cb._mfc_ref, cb._mfc_f1_arith, "harmonic"),
    (cb.check_metrics_from_confusion, cb._mfc_ref, cb._mfc_transposed, "swapped"),
    (cb.check_train_step, cb._step_ref, cb._step_no_zero, "zero_grad"),
    (cb.check_train_step, cb._step_ref, cb._step_clip_after, "before"),
    (cb.check_train_step, cb._step_ref, cb._step_no_clip, "clip"),  # same weights as clipping too late
    (cb.check_mean_pool, cb._mean_pool_ref, cb._mean_pool_with_padding, "padding vectors"),
    (cb.check_mean_pool, cb._mean_pool_ref, cb._mean_pool_over_length, "not by the padded length"),
    (cb.check_mean_pool, cb._mean_pool_ref, cb._mean_pool_sum, "masked sum"),
    (cb.check_mean_pool, cb._mean_pool_ref, cb._mean_pool_count_without_keepdim, "lines up with H"),
    (cb.check_mean_pool, cb._mean_pool_ref, cb._mean_pool_over_batch_total, "whole batch"),
]


@pytest.mark.parametrize("checker, right, wrong, hint", CASES, ids=[f"{c[0].__name__}-{c[3]}" for c in CASES])
def test_check_verdicts(checker, right, wrong, hint, second_try):
    assert checker(right).status == CORRECT
    result = second_try(checker, wrong)
    assert result.status == WRONG and hint in result.message, result
    assert checker(stub).status == NOT_ATTEMPTED


def test_metrics_from_confusion_reference_agrees_with_sklearn():
    from sklearn.metrics import f1_score

    y, p = [0, 1, 1, 0, 1, 1], [0, 1, 0, 0, 1, 0]
    cm = cb._cm_ref(y, p)
    assert np.isclose(cb._mfc_ref(cm)["f1"], f1_score(y, p))


def test_mean_pool_check_accepts_a_loop_and_explains_a_shape_error():
    import torch

    def loop(hidden, mask):
        return torch.stack([hidden[b][mask[b].bool()].mean(dim=0) for b in range(hidden.shape[0])])

    assert cb.check_mean_pool(loop).status == CORRECT
    result = cb.check_mean_pool(lambda hidden, mask: (hidden * mask).sum(dim=1))  # mask not unsqueezed: (B,T,H) * (B,T)
    assert result.status == WRONG and "RuntimeError" in result.message
