"""The four runs of `ftlearn finetune` (bert, gpt2-lm, gpt2-cls, distill): recipes, the LM loader, one layout, one flag
set."""

import json

import pytest
import torch

from ftlearn.cli import build_parser, main
from ftlearn.gpt2_finetune import lm_loader
from ftlearn.recipes import RECIPES, BertRecipe, GPT2ClsRecipe, GPT2LMRecipe
from ftlearn.runtime import get_profile

CORE_KEYS = {
    "task",
    "model",
    "profile",
    "seed",
    "recipe",
    "train_seconds",
    "history",
    "parameters",
    "trainable_parameters",
}
TASK_KEYS = {
    "bert": {"accuracy", "f1", "confusion_matrix"},
    "gpt2-lm": {"perplexity_before", "perplexity_after"},
    "gpt2-cls": {"accuracy", "f1", "confusion_matrix"},
    "distill": {"accuracy", "f1", "confusion_matrix", "teacher", "teacher_parameters"},
}
DISTILL_FLAGS = {"--teacher", "--layers", "--temperature", "--soft-weight"}


def test_every_recipe_is_made_from_the_profile_the_same_way():
    from transformers import GPT2Config

    small = GPT2Config(n_positions=256, n_embd=128)
    for profile in ("smoke", "cpu", "gpu"):
        p = get_profile(profile)
        for kind, recipe_cls in RECIPES.items():
            recipe = recipe_cls.for_profile(p, small, epochs=3, lr=None)
            assert recipe.kind == kind and recipe.epochs == 3 and recipe.lr > 0  # None keeps the profile's value
            assert recipe.batch_size == p.batch_size and recipe.as_dict()["kind"] == kind
            assert recipe.train_config().lr == recipe.lr
    with pytest.raises(TypeError, match="no setting pooling"):
        GPT2LMRecipe.for_profile(get_profile("cpu"), small, pooling="mean")


def test_gpt2_recipes_follow_the_profile_and_the_models_context():
    from transformers import GPT2Config

    small, hub = GPT2Config(n_positions=256, n_embd=128), GPT2Config()
    assert GPT2LMRecipe.for_profile(get_profile("gpu"), small).max_length == 256  # 512 would not fit
    smoke = GPT2LMRecipe.for_profile(get_profile("smoke"), small)
    assert smoke.max_length == 64 and smoke.max_train_rows is not None
    assert GPT2ClsRecipe.for_profile(get_profile("cpu"), hub).epochs == get_profile("cpu").epochs
    # the small offline build keeps its most accurate epoch (loss rises early, lesson 10); the hub model its lowest loss
    for profile in ("smoke", "cpu", "gpu"):
        small_cls, hub_cls = (GPT2ClsRecipe.for_profile(get_profile(profile), c) for c in (small, hub))
        assert small_cls.train_config().best_metric == "accuracy" and hub_cls.train_config().best_metric == "loss"
    cpu_small, cpu_hub = (GPT2LMRecipe.for_profile(get_profile("cpu"), c) for c in (small, hub))
    assert cpu_small.lr > cpu_hub.lr and cpu_hub.max_train_rows is not None  # the 124M model on a CPU reads less
    assert BertRecipe.for_profile(get_profile("cpu")).max_length <= get_profile("cpu").max_length


def test_lm_loader_uses_the_inputs_as_labels_covers_every_row_once_and_reshuffles_by_epoch():
    blocks = torch.arange(40).view(10, 4)
    loader = lm_loader(blocks, batch_size=4, seed=0)
    orders = []
    for epoch in (0, 1, 0):
        loader.batch_sampler.set_epoch(epoch)
        batches = list(loader)
        assert [len(b["input_ids"]) for b in batches] == [4, 4, 2]
        assert all(torch.equal(b["input_ids"], b["labels"]) for b in batches)
        firsts = torch.cat([b["input_ids"][:, 0] for b in batches]).tolist()
        assert sorted(firsts) == list(range(0, 40, 4))
        orders.append(firsts)
    assert orders[0] == orders[2] != orders[1]  # a pure function of (seed, epoch)


def finetune_targets(parser):
    """`ftlearn finetune`'s targets, name -> parser."""
    finetune = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("finetune"))
    return finetune._subparsers._group_actions[0].choices


def option_strings(command) -> set[str]:
    """Every flag a command's parser knows, "-h" included."""
    return {s for action in command._actions for s in action.option_strings}


def test_every_finetune_target_has_the_same_common_flags():
    targets = finetune_targets(build_parser())
    assert set(targets) == set(RECIPES)
    common = {"--profile", "--seed", "--out", "--model", "--lr", "--epochs", "--max-length"}
    common |= {"--checkpoint-every", "--resume", "--init"}  # every run chooses its starting weights
    for name, sub in targets.items():
        flags = {s for action in sub._actions for s in action.option_strings}
        assert common <= flags, name
        own_data = {"--train", "--test", "--text-column", "--label-column", "--class-weights"}  # the classifiers'
        extra = {  # lesson 12 adds BERT's methods; the LM run's validation is asked for (lesson 09 runs without);
            # a classifier's run can be recorded (its per-review answers), for a lesson to load (ftlearn.records)
            # and lesson 12's smaller training set (--n-train) is a flag of the classifiers and the student
            "bert": {"--pooling", "--method", "--lora-rank", "--lora-alpha", "--merge", "--record", "--n-train"}
            | own_data,
            "gpt2-cls": {"--record", "--n-train", *own_data},
            "gpt2-lm": {"--sentiment-prefix", "--no-sentiment-prefix", "--val-rows", "--patience"},
            "distill": DISTILL_FLAGS | {"--record", "--n-train"},  # lesson 12: the teacher and the student's shape
        }
        assert (flags - common - {"-h", "--help"}) == extra.get(name, set()), name


def test_finetune_rejects_a_bad_profile_and_a_bad_number_on_stderr(capsys):
    for target in RECIPES:
        teacher = ["--teacher", "nowhere"] if target == "distill" else []  # a teacher is looked for after the numbers
        assert main(["finetune", target, "--profile", "huge", *teacher]) == 2
        assert main(["finetune", target, "--profile", "smoke", "--lr", "-1", *teacher]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("ftlearn finetune:") == 2 * len(RECIPES)
    assert captured.err.count("--lr must be positive and finite") == len(RECIPES)


def test_ftlearn_distill_is_the_distill_target_under_another_name():
    """`ftlearn distill ARGS` parses to what `ftlearn finetune distill ARGS` does: the same flags, the same command."""
    from ftlearn.cli import cmd_finetune

    parser = build_parser()
    alias = parser._subparsers._group_actions[0].choices["distill"]
    target = finetune_targets(parser)["distill"]
    assert option_strings(alias) == option_strings(target)
    flags = ["--teacher", "t", "--profile", "smoke", "--layers", "3", "--temperature", "4", "--soft-weight", "0.2"]
    by_alias, by_target = parser.parse_args(["distill", *flags]), parser.parse_args(["finetune", "distill", *flags])
    assert by_alias.func is by_target.func is cmd_finetune and by_alias.target == by_target.target == "distill"
    assert vars(by_alias) == {**vars(by_target), "command": "distill"}  # the prefix of its error lines


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["finetune", "distill", "--profile", "smoke"], "ftlearn finetune: --teacher DIR is required to distil"),
        (["distill", "--profile", "smoke"], "ftlearn distill: --teacher DIR is required to distil"),
        (
            ["finetune", "bert", "--layers", "3"],
            "ftlearn finetune: --layers is a flag of `ftlearn finetune distill` only, not of bert.",
        ),
        (["finetune", "gpt2-cls", "--soft-weight=0.3"], "--soft-weight is a flag of `ftlearn finetune distill` only"),
        (["finetune", "gpt2-lm", "--teacher", "t"], "--teacher is a flag of `ftlearn finetune distill` only"),
        (
            ["distill", "--teacher", "t", "--method", "lora"],
            "ftlearn distill: --method is a flag of `ftlearn finetune bert` only, not of distill.",
        ),
    ],
)
def test_a_flag_of_another_target_or_no_teacher_is_refused_in_one_line(args, says, capsys):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and says in captured.err, captured.err


@pytest.mark.slow
@pytest.mark.floors
@pytest.mark.parametrize("target", sorted(RECIPES))
def test_every_target_writes_the_same_layout_and_core_metrics(target, tmp_path, capsys, request):
    out = tmp_path / target
    # distill's teacher: a smoke BERT run folder (conftest.py), made when this test first needs it
    teacher = ["--teacher", str(request.getfixturevalue("smoke_teacher"))] if target == "distill" else []
    capsys.readouterr()
    with torch.no_grad():  # a run trains whatever grad mode its caller (a notebook) left
        assert main(["finetune", target, "--profile", "smoke", "--out", str(out), "--seed", "1", *teacher]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert CORE_KEYS | TASK_KEYS[target] <= metrics.keys()
    assert metrics["task"] == target and metrics["profile"] == "smoke" and metrics["seed"] == 1
    assert metrics["recipe"]["kind"] == target and len(metrics["history"]["loss"]) == metrics["optimizer_steps"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    assert not list(tmp_path.glob(".*")), "no temporary folder left beside the run"
    assert "metrics.json" in capsys.readouterr().out
    if target == "bert":  # the head the recipe resolved to ("auto": as the checkpoint was trained) reloads as itself
        from ftlearn.pooling import checkpoint_pooling, model_pooling
        from ftlearn.predict import load_finetuned

        assert metrics["recipe"]["pooling"] == "auto" and metrics["pooling"] == checkpoint_pooling(metrics["model"])
        assert model_pooling(load_finetuned(out)[0]) == metrics["pooling"]
    if target == "gpt2-lm":  # a language model writes text: predict says so instead of guessing a label
        assert main(["predict", str(out), "a review"]) == 1
        assert "language model" in capsys.readouterr().err
    else:
        assert (out / "ftlearn_preprocess.json").is_file()
        assert main(["predict", str(out), "a review"]) == 0
        captured = capsys.readouterr()
        assert "p_positive" in captured.out
        assert f"{out} was trained in the smoke profile" in captured.err  # a pipeline check, not a classifier


@pytest.mark.parametrize(
    ("flag", "prefix"), [([], None), (["--sentiment-prefix"], True), (["--no-sentiment-prefix"], False)]
)
def test_gpt2_lm_sentiment_prefix_flag_reaches_the_recipe(flag, prefix, tmp_path, monkeypatch):
    """`--no-sentiment-prefix`: the language model reads review text alone (lesson 10's ULMFiT chain)."""
    import ftlearn.cli as cli
    import ftlearn.finetune as finetune

    seen = {}

    def fake_run(profile, overrides, **_):
        seen.update(overrides)
        raise KeyboardInterrupt  # stop here: the recipe's settings are all this test needs

    monkeypatch.setitem(finetune.RUNS, "gpt2-lm", fake_run)
    monkeypatch.setattr(cli, "_report_interrupt", lambda *a: None)
    assert main(["finetune", "gpt2-lm", "--profile", "smoke", "--out", str(tmp_path / "lm"), *flag]) == 130
    assert seen["sentiment_prefix"] is prefix  # None keeps the recipe's default, which is on
    assert GPT2LMRecipe.for_profile(get_profile("smoke"), None, **seen).sentiment_prefix is (prefix is not False)


def test_finetune_checks_out_device_and_checkpoints_before_loading_anything(tmp_path, capsys, monkeypatch):
    import ftlearn.finetune as finetune

    for target in RECIPES:  # the run itself must never start
        monkeypatch.setitem(finetune.RUNS, target, lambda *a, **k: pytest.fail("the run must not start"))
    (tmp_path / "a_file").write_text("keep")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("keep")
    cases = [
        (["--out", str(tmp_path / "a_file")], "is a file; give a folder name"),
        (["--out", str(tmp_path / "theirs")], "ftlearn did not write"),
        (["--out", str(tmp_path / "r"), "--checkpoint-every", "0"], "--checkpoint-every must be positive"),
        (["--out", str(tmp_path / "r"), "--resume"], "no complete checkpoint in " + str(tmp_path / "r.checkpoints")),
    ]
    for flags, says in cases:
        assert main(["finetune", "bert", "--profile", "smoke", *flags]) == 2, flags
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, err
    leftover = tmp_path / "ck" / "checkpoint-5.tmp"  # a killed checkpoint save: not a checkpoint
    leftover.mkdir(parents=True)
    assert (
        main(["finetune", "bert", "--profile", "smoke", "--out", str(tmp_path / "r"), "--resume", str(leftover.parent)])
        == 2
    )
    assert "no complete checkpoint" in capsys.readouterr().err
    monkeypatch.setenv("FTLEARN_DEVICE", "cuda:7" if torch.cuda.is_available() else "cuda")
    if not torch.cuda.is_available():
        assert main(["finetune", "gpt2-lm", "--profile", "smoke", "--out", str(tmp_path / "r")]) == 2
        assert "asks for CUDA, but torch sees no CUDA GPU" in capsys.readouterr().err
    monkeypatch.setenv("FTLEARN_DEVICE", "bogus")
    assert main(["finetune", "gpt2-cls", "--profile", "smoke", "--out", str(tmp_path / "r")]) == 2
    assert "FTLEARN_DEVICE='bogus' is not a device torch knows" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text() == "keep" and (tmp_path / "theirs" / "notes.txt").read_text() == "keep"
    assert not (tmp_path / "r").exists()


def test_ctrl_c_says_what_was_saved_and_how_to_resume(tmp_path, capsys, monkeypatch):
    import ftlearn.finetune as finetune
    from ftlearn.checkpoints import INFO_FILE

    out = tmp_path / "run"

    def interrupted_after_a_checkpoint(profile, out, resume, **kwargs):
        step = resume.checkpoint_dir / "checkpoint-2"
        step.mkdir(parents=True)
        (step / INFO_FILE).write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setitem(finetune.RUNS, "bert", interrupted_after_a_checkpoint)
    assert main(["finetune", "bert", "--profile", "smoke", "--out", str(out), "--checkpoint-every", "2"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "interrupted; nothing was saved to" in err
    assert f"the last checkpoint is {out}.checkpoints/checkpoint-2" in err
    assert f"--out {out} --checkpoint-every 2 --resume`" in err
    monkeypatch.setitem(finetune.RUNS, "bert", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["finetune", "bert", "--profile", "smoke", "--out", str(out)]) == 130
    assert "add --checkpoint-every N" in capsys.readouterr().err


def test_resume_refuses_checkpoints_written_with_other_flags(tmp_path, capsys, monkeypatch):
    """--resume continues a run only with the flags that wrote its checkpoints (they are recorded beside them)."""
    from safetensors.torch import save_file

    import ftlearn.finetune as finetune
    from ftlearn.checkpoints import INFO_FILE, MODEL_FILE, STATE_FILE

    out, resumed_from = tmp_path / "run", []

    def killed_after_a_checkpoint(profile, out, resume, **kwargs):
        resumed_from.append(resume.resume_from)
        step = resume.checkpoint_dir / "checkpoint-2"
        step.mkdir(parents=True, exist_ok=True)
        save_file({"w": torch.zeros(1)}, str(step / MODEL_FILE))  # intact, as --resume checks before it resumes
        torch.save({}, step / STATE_FILE)
        (step / INFO_FILE).write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setitem(finetune.RUNS, "gpt2-lm", killed_after_a_checkpoint)
    first = ["finetune", "gpt2-lm", "--profile", "smoke", "--out", str(out), "--checkpoint-every", "2", "--lr", "1e-3"]
    assert main(first) == 130
    record = json.loads((tmp_path / "run.checkpoints" / "run_flags.json").read_text())
    assert record["lr"] == 1e-3 and record["profile"] == "smoke" and record["sentiment_prefix"] is None
    capsys.readouterr()
    for changed, was, now in [
        (["--lr", "2e-3"], "--lr 0.001", "--lr 0.002"),
        (["--lr", "1e-3", "--no-sentiment-prefix"], "--sentiment-prefix not given", "--no-sentiment-prefix"),
        (["--lr", "1e-3", "--seed", "1"], "--seed 0", "--seed 1"),
    ]:
        assert main([*first[:-2], *changed, "--resume"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("ftlearn finetune: --resume: the checkpoints in")
        assert f"written with {was}; this command has {now}." in err, err
    assert len(resumed_from) == 1  # none of the refused commands started a run
    assert main([*first, "--resume"]) == 130  # the same flags: the run continues from the checkpoint
    assert str(resumed_from[-1]).endswith("checkpoint-2")


@pytest.mark.slow  # the smoke teacher (conftest.py): a few seconds of training
def test_distill_resumes_only_with_the_same_teacher_and_student_flags(smoke_teacher, tmp_path, capsys, monkeypatch):
    """distill's own flags are recorded beside its checkpoints like the common ones; Ctrl-C names `ftlearn distill`."""
    from safetensors.torch import save_file

    import ftlearn.finetune as finetune
    from ftlearn.checkpoints import INFO_FILE, MODEL_FILE, STATE_FILE

    out, seen = tmp_path / "student", []

    def killed_after_a_checkpoint(profile, out, resume, teacher, teacher_info, **kwargs):
        seen.append((teacher_info["teacher"], kwargs["overrides"]))
        step = resume.checkpoint_dir / "checkpoint-2"
        step.mkdir(parents=True, exist_ok=True)
        save_file({"w": torch.zeros(1)}, str(step / MODEL_FILE))
        torch.save({}, step / STATE_FILE)
        (step / INFO_FILE).write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setitem(finetune.RUNS, "distill", killed_after_a_checkpoint)
    first = ["--teacher", str(smoke_teacher), "--profile", "smoke", "--out", str(out), "--checkpoint-every", "2"]
    assert main(["distill", *first, "--temperature", "3"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("ftlearn distill: interrupted;") and f"--teacher {smoke_teacher}" in err, err
    assert "--temperature 3.0 --checkpoint-every 2 --resume`" in err and "`ftlearn finetune distill " in err
    assert seen == [(str(smoke_teacher), {**seen[0][1], "temperature": 3.0})]
    assert main(["finetune", "distill", *first, "--temperature", "4", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "written with --temperature 3.0; this command has --temperature 4.0." in err, err
    assert main(["finetune", "distill", *first, "--temperature", "3", "--resume"]) == 130  # the same: it continues
    assert len(seen) == 2
