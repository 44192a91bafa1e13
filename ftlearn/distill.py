"""Knowledge distillation written out: the soft-target loss at temperature T, a smaller student, the teacher's logits.

Introduced in notebook 12. A fine-tuned teacher's output distribution says more than its label: how sure it
is, and which reviews are close calls. The student learns from both:

    loss = soft_weight * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - soft_weight) * CE(s, y)

with s and t the student's and teacher's logits. T > 1 softens both distributions, so the small
probabilities carry signal; their gradients then shrink as 1 / T^2, which the T^2 factor undoes (Hinton,
Vinyals and Dean, 2015). The KL term is written with lesson 02's log-softmax and the CE term is lesson 02's
`cross_entropy`. The student is the first k layers of the teacher's pretrained checkpoint (`make_student`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftlearn.losses import cross_entropy, log_softmax

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    import torch

TEACHER_KEY = "teacher_logits"  # the batch key `ftlearn.train.fit` hands to the loss beside the labels


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 x KL(teacher || student) of the distributions at temperature T, averaged over the batch (notebook 12).

    Equal to T**2 * torch.nn.functional.kl_div(log_softmax(s / T), log_softmax(t / T), log_target=True,
    reduction="batchmean"); tests/test_distill.py checks it.
    """
    log_q = log_softmax(student_logits / temperature, dim=-1)  # (B, C) the student's log-probabilities
    log_p = log_softmax(teacher_logits.to(student_logits.dtype) / temperature, dim=-1)  # (B, C) the teacher's
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)  # (B,) sum_c p_c (log p_c - log q_c)
    return temperature**2 * kl.mean()


def distillation_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    temperature: float = 2.0,
    soft_weight: float = 0.5,
) -> torch.Tensor:
    """soft_weight x `soft_target_loss` + (1 - soft_weight) x cross-entropy with the labels (notebook 12).

    The argument order is `fit`'s loss hook: `loss_fn(logits, labels, teacher_logits=...)`. With soft_weight 0
    it is lesson 02's cross-entropy exactly, and needs no teacher.
    """
    hard = cross_entropy(student_logits, labels)
    if soft_weight == 0:
        return hard
    if teacher_logits is None:
        raise ValueError("soft_weight > 0 needs teacher_logits: add them with `with_teacher_logits`.")
    return soft_weight * soft_target_loss(student_logits, teacher_logits, temperature) + (1 - soft_weight) * hard


def keep_first_layers(model: Any, n_layers: int) -> Any:
    """Cut a BERT classifier down to its first `n_layers` encoder layers, in place; config follows (notebook 12).

    More layers than the model has is a SettingError (a ValueError): `ftlearn finetune distill --layers` exits 2.
    """
    import torch

    from ftlearn.recipes import SettingError

    encoder = model.base_model.encoder
    total = len(encoder.layer)
    if not 1 <= n_layers <= total:
        raise SettingError(f"a student keeps 1 to {total} of the checkpoint's {total} layers, not {n_layers}.")
    encoder.layer = torch.nn.ModuleList(list(encoder.layer)[:n_layers])
    model.config.num_hidden_layers = n_layers  # config.json then rebuilds the same shape when the student is loaded
    return model


def make_student(
    name: str | None, n_layers: int, pooling: str = "auto", verbose: bool = True, init: str = "pretrained"
) -> tuple[Any, Any, Any]:
    """The first `n_layers` layers of the pretrained checkpoint `name`, with a new head: model, tokenizer, source.

    `init="random"` draws the kept layers afresh (`ftlearn.models.load_classifier`): a student without pretraining.
    """
    from ftlearn.models import count_parameters, load_classifier

    model, tokenizer, source = load_classifier(name, pooling=pooling, verbose=verbose, init=init)
    before = count_parameters(model)
    keep_first_layers(model, n_layers)
    if verbose:
        print(f"Student: the first {n_layers} layers, {count_parameters(model):,} of {before:,} parameters.")
    return model, tokenizer, source


def with_teacher_logits(
    teacher: Any, ds: datasets.Dataset, collator: Any, batch_size: int, device: Any = None
) -> datasets.Dataset:
    """`ds` with a `teacher_logits` column: the teacher's logits for every example, in order (notebook 12).

    Computed once, in eval mode (no dropout): the teacher is frozen, so its logits for a review never change,
    and the student's training batches carry them to the loss.
    """
    from torch.utils.data import DataLoader

    from ftlearn.evaluation import predict_logits

    if TEACHER_KEY in ds.column_names:
        ds = ds.remove_columns(TEACHER_KEY)
    loader = DataLoader(ds, batch_size=batch_size, collate_fn=collator)  # sequential: row i is example i
    logits, _ = predict_logits(teacher, loader, device, shard=False)
    return ds.add_column(TEACHER_KEY, logits.tolist())
