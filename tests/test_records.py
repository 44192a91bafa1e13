"""Run records (`ftlearn finetune ... --record`, `ftlearn.records`) and reusing an earlier lesson's run folder
(`finetune.reuse_or_run`): what lets a lesson stay in its time budget without showing another run's numbers."""

import json

import numpy as np
import pytest

from ftlearn.cli import main
from ftlearn.data import data_fingerprint, load_imdb
from ftlearn.finetune import reuse_or_run
from ftlearn.recipes import BertRecipe
from ftlearn.records import RecordMismatch, load_record, recorded_or_live
from ftlearn.runtime import get_profile

pytestmark = [pytest.mark.slow]  # each test trains a smoke BERT


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A smoke BERT from random weights, recorded by the command a lesson's record is made with."""
    folder = tmp_path_factory.mktemp("record")
    record = folder / "07-random-start-smoke.json"
    argv = ["finetune", "bert", "--profile", "smoke", "--init", "random", "--out", str(folder / "run"), "--record",
            str(record)]  # fmt: skip
    assert main(argv) == 0
    return record


def wanted(**changes):
    profile = get_profile("smoke")
    settings = {"task": "bert", "profile": "smoke", "seed": 0, "init": "random",
                "recipe": BertRecipe.for_profile(profile),
                "data_sha256": data_fingerprint(load_imdb(profile=profile, seed=0, verbose=False))}  # fmt: skip
    return {**settings, **changes}


def test_a_record_holds_what_the_run_made_and_loads_only_for_that_run(recorded):
    record = load_record(recorded, **wanted())
    metrics = json.loads((recorded.parent / "run" / "metrics.json").read_text())
    assert record["metrics"]["accuracy"] == metrics["accuracy"] and record["history"] == metrics["history"]
    assert record["command"].startswith("ftlearn finetune bert --profile smoke --seed 0 --init random")
    assert record["commit"] and record["hardware"] and record["date"]
    assert record["data_sha256"] == metrics["data_sha256"]
    probs = np.array(record["test_probs"])
    assert probs.shape == (metrics["n_test"], 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    accuracy = float((probs.argmax(axis=1) == np.array(record["test_labels"])).mean())
    assert accuracy == pytest.approx(record["metrics"]["accuracy"])
    other = BertRecipe.for_profile(get_profile("smoke"), lr=1e-3)
    for changes, says in [({"recipe": other}, r"lr: 0.0001 there, 0.001 here"), ({"seed": 1}, "seed"),
                          ({"init": "pretrained"}, "init"), ({"data_sha256": "0" * 64}, "data_sha256")]:  # fmt: skip
        with pytest.raises(RecordMismatch, match=says):
            load_record(recorded, **wanted(**changes))


def test_a_damaged_record_is_refused(recorded, tmp_path):
    broken = tmp_path / "broken.json"
    data = json.loads(recorded.read_text())
    broken.write_text(json.dumps({**data, "test_probs": data["test_probs"][:-1]}))
    with pytest.raises(RecordMismatch, match="damaged"):
        load_record(broken, **wanted())
    broken.write_text("{not json")
    with pytest.raises(RecordMismatch, match="cannot be read"):
        load_record(broken, **wanted())


def test_a_lesson_loads_the_record_or_trains_the_same_run_live(recorded, monkeypatch, capsys):
    monkeypatch.setattr("ftlearn.records.record_path", lambda name: recorded.parent / f"{name}.json")
    settings = wanted()
    profile = get_profile("smoke")
    dsd = load_imdb(profile=profile, seed=0, verbose=False)
    kwargs = {"task": "bert", "profile": profile, "seed": 0, "recipe": settings["recipe"], "init": "random", "dsd": dsd}
    loaded = recorded_or_live("07-random-start-smoke", False, **kwargs)
    assert loaded.record is not None and "Loaded the run record" in capsys.readouterr().out
    live = recorded_or_live("07-random-start-smoke", True, **kwargs)
    assert live.record is None
    # the same code made the record: live, the run gives the same answers and the same history
    assert np.array_equal(live.test_probs.argmax(axis=1), loaded.test_probs.argmax(axis=1))
    assert np.allclose(live.history.loss, loaded.history.loss, atol=1e-5)
    other = BertRecipe.for_profile(profile, lr=1e-3)
    changed = recorded_or_live("07-random-start-smoke", False, **{**kwargs, "recipe": other})
    assert changed.record is None and "Training it live instead" in capsys.readouterr().out


def test_a_later_lesson_reuses_a_saved_run_only_when_it_is_the_same_run(tmp_path, capsys):
    out = tmp_path / "bert-smoke"
    folder, metrics = reuse_or_run("bert", "smoke", out, seed=0)
    assert folder == out and "Training the bert run (no saved run" in capsys.readouterr().out
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    again, same = reuse_or_run("bert", "smoke", out, seed=0)
    assert "Reusing the bert run" in capsys.readouterr().out and same["accuracy"] == metrics["accuracy"]
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp  # not trained again
    reuse_or_run("bert", "smoke", out, seed=0, overrides={"lr": 1e-3})
    assert "another recipe" in capsys.readouterr().out  # another learning rate: trained with it, not reused


def test_a_record_or_a_saved_run_of_another_pretrained_model_is_not_this_run(recorded, tmp_path):
    from ftlearn.finetune import expected_model
    from ftlearn.runfolder import reuse_problem

    here = expected_model("bert", "smoke")  # offline: the MiniLM shipped in site-packages, as display_path writes it
    assert here.startswith("<") and "minilm" in here.lower()
    assert load_record(recorded, **wanted(), model=here)["model"]
    with pytest.raises(RecordMismatch, match="model"):
        load_record(recorded, **wanted(), model="bert-base-uncased")  # online, the hub's BERT: another run
    run = recorded.parent / "run"
    settings = {k: v for k, v in wanted().items() if k != "init"}
    assert "init" in reuse_problem(run, **settings, model=here)  # that folder started from random weights
    assert "pretrained model" in reuse_problem(run, **settings, model="bert-base-uncased")


def test_a_run_saved_before_a_recipe_field_existed_ran_with_its_default():
    from ftlearn.runfolder import run_differences

    settings = wanted()
    saved = {"task": "bert", "profile": "smoke", "seed": 0, "init": "random", "data_sha256": settings["data_sha256"],
             "recipe": json.loads(json.dumps(settings["recipe"].as_dict()))}  # fmt: skip
    assert run_differences(saved, **settings) == []
    del saved["recipe"]["class_weights"]  # a record made before lesson 13 added the field: no class weights then
    assert run_differences(saved, **settings) == []
    saved["recipe"]["class_weights"] = "balanced"  # a value the field holds: another run
    assert run_differences(saved, **settings) == ["recipe (class_weights: 'balanced' there, 'none' here)"]
    saved["recipe"]["lr"] = 1.0
    assert "lr: 1.0 there" in run_differences(saved, **settings)[0]
