"""Distillation (ftlearn.distill): the soft-target loss against torch, the student, fit's teacher logits, the CLI."""

import json

import pytest
import torch
import torch.nn.functional as F
from toy_classifier import tiny_bert, toy_data  # tests/toy_classifier.py

from ftlearn.cli import main
from ftlearn.distill import TEACHER_KEY, distillation_loss, keep_first_layers, soft_target_loss, with_teacher_logits
from ftlearn.losses import cross_entropy
from ftlearn.tokenization import pad_collate


def logits_pair(seed: int = 0, b: int = 5, c: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g, dtype=torch.float64) * 3, torch.randn(
        b, c, generator=g, dtype=torch.float64
    ) * 3


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.5])
def test_soft_target_loss_is_t_squared_times_torchs_kl_div(temperature):
    s, t = logits_pair()
    want = temperature**2 * F.kl_div(
        F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1), log_target=True, reduction="batchmean"
    )
    torch.testing.assert_close(soft_target_loss(s, t, temperature), want, rtol=1e-12, atol=1e-12)
    assert soft_target_loss(t, t, temperature).abs() < 1e-12  # the same distribution: nothing to learn
    assert soft_target_loss(s, t, temperature) > 0


def test_t_squared_keeps_the_soft_gradient_the_same_size_as_t_grows():
    s, t = logits_pair(1, b=64, c=2)
    s = (s / 3).requires_grad_()  # small logit gaps: the regime where the 1/T^2 shrinkage is exact
    norms = []
    for temperature in (4.0, 8.0, 16.0):
        (grad,) = torch.autograd.grad(soft_target_loss(s, t / 3, temperature), s)
        norms.append(float(grad.norm()))
    # without T^2 the gradient would shrink 16x from T = 4 to T = 16; with it, it tends to a constant
    assert max(norms) / min(norms) < 1.2


def test_distillation_loss_mixes_the_soft_and_the_hard_loss():
    s, t = logits_pair(2)
    y = torch.tensor([0, 2, 1, 1, 0])
    hard = F.cross_entropy(s, y)
    torch.testing.assert_close(distillation_loss(s, y, t, 2.0, 0.0), hard)
    torch.testing.assert_close(distillation_loss(s, y, None, 2.0, 0.0), cross_entropy(s, y))
    torch.testing.assert_close(distillation_loss(s, y, t, 3.0, 1.0), soft_target_loss(s, t, 3.0))
    mixed = 0.3 * soft_target_loss(s, t, 2.0) + 0.7 * hard
    torch.testing.assert_close(distillation_loss(s, y, t, 2.0, 0.3), mixed)
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(s, y, None, 2.0, 0.5)


def test_a_student_keeps_the_first_layers_and_reloads_as_itself(tmp_path):
    from transformers import BertForSequenceClassification

    teacher = tiny_bert(0, dropout=0.0)
    student = keep_first_layers(tiny_bert(0, dropout=0.0), 1)
    assert len(student.bert.encoder.layer) == 1 and student.config.num_hidden_layers == 1
    torch.testing.assert_close(
        student.bert.encoder.layer[0].attention.self.query.weight,
        teacher.bert.encoder.layer[0].attention.self.query.weight,
    )
    student.save_pretrained(tmp_path)
    again = BertForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = torch.randint(3, 60, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).logits, student.eval()(input_ids=ids).logits)
    with pytest.raises(ValueError, match="1 to 2"):
        keep_first_layers(tiny_bert(0), 3)


def test_fit_hands_the_teacher_logits_to_the_loss():
    from torch.utils.data import DataLoader

    from ftlearn.train import TrainConfig, fit

    teacher = tiny_bert(1, dropout=0.0)
    ds = with_teacher_logits(teacher, toy_data(12), pad_collate, batch_size=4, device="cpu")
    assert len(ds[0][TEACHER_KEY]) == 2
    seen = []

    def collate(rows):
        out = pad_collate(rows)
        out[TEACHER_KEY] = torch.tensor([r[TEACHER_KEY] for r in rows])
        return out

    def loss_fn(logits, labels, teacher_logits):
        seen.append(teacher_logits.shape)
        return distillation_loss(logits, labels, teacher_logits, 2.0, 0.5)

    fit(tiny_bert(0), DataLoader(ds, batch_size=4, collate_fn=collate), config=TrainConfig(epochs=1, progress=False),
        device="cpu", loss_fn=loss_fn)  # fmt: skip
    assert seen == [torch.Size([4, 2])] * 3


def test_distill_refuses_bad_flags_and_a_missing_teacher_in_one_line(tmp_path, capsys):
    assert main(["distill", "--teacher", str(tmp_path / "none"), "--profile", "smoke", "--soft-weight", "2"]) == 2
    assert main(["distill", "--teacher", str(tmp_path / "none"), "--profile", "smoke", "--layers", "0"]) == 2
    assert (
        main(["distill", "--teacher", str(tmp_path / "none"), "--profile", "smoke", "--out", str(tmp_path / "s")]) == 1
    )
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("ftlearn distill: ") for line in err)
    assert "--soft-weight" in err[0] and "--layers must be positive" in err[1] and "No model folder" in err[2]


@pytest.mark.slow
def test_finetune_distill_and_ftlearn_distill_train_the_same_student(smoke_teacher, tmp_path, capsys):
    """`ftlearn distill` is `ftlearn finetune distill` under another name: the same flags give the same metrics."""
    flags = ["--teacher", str(smoke_teacher), "--profile", "smoke", "--seed", "1", "--layers", "1"]
    flags += ["--temperature", "3", "--soft-weight", "0.7", "--lr", "2e-4", "--max-length", "24"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["finetune", "distill", *flags, "--out", str(a)]) == 0
    said_a = capsys.readouterr().out
    assert main(["distill", *flags, "--out", str(b)]) == 0
    said_b = capsys.readouterr().out
    timing = {"train_seconds", "total_seconds", "date", "seconds_per_step", "test_reviews_per_second"}
    got = [json.loads((folder / "metrics.json").read_text()) for folder in (a, b)]
    for metrics in got:
        for key in timing:
            metrics.pop(key, None)
            metrics["history"].pop(key, None)
    assert got[0] == got[1]
    assert got[0]["task"] == "distill" and got[0]["teacher"] == str(smoke_teacher)
    recipe = got[0]["recipe"]
    assert (recipe["student_layers"], recipe["temperature"], recipe["soft_weight"]) == (1, 3.0, 0.7)
    assert (recipe["lr"], recipe["max_length"]) == (2e-4, 24)
    for said, out in ((said_a, a), (said_b, b)):
        assert f"Distilling {smoke_teacher} into a student, profile smoke, seed 1, into {out}" in said
        assert "student " in said and "test (" in said and f"metrics.json to {out}" in said


@pytest.mark.slow
@pytest.mark.floors
def test_distill_smoke_from_a_head_only_teacher_writes_a_student_that_predict_loads(tmp_path, capsys):
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    assert main(["finetune", "bert", "--method", "head", "--profile", "smoke", "--out", str(teacher)]) == 0
    head = json.loads((teacher / "metrics.json").read_text())
    assert head["recipe"]["method"] == "head" and head["trainable_parameters"] == 384 * 2 + 2
    assert main(["distill", "--teacher", str(teacher), "--profile", "smoke", "--out", str(student)]) == 0
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["task"] == "distill" and metrics["teacher"] == str(teacher)
    assert metrics["trainable_parameters"] == metrics["parameters"] < metrics["teacher_parameters"]
    assert metrics["recipe"]["student_layers"] == 2 and metrics["test_reviews_per_second"] > 0
    assert json.loads((student / "config.json").read_text())["num_hidden_layers"] == 2
    capsys.readouterr()
    assert main(["predict", str(student), "Two hours of my life I will never get back."]) == 0
    assert "p_positive" in capsys.readouterr().out
