"""ftlearn.offline_gpt2: the corpus is prose, the tokenizer is byte-level, the build is cached and loads as GPT-2."""

import dataclasses
import json

import pytest
import torch

from ftlearn import models
from ftlearn import offline_gpt2 as og
from ftlearn.runtime import PROFILE_ENV

TINY = dataclasses.replace(
    og.BUILDS["smoke"],
    name="tiny",
    corpus_chars=30_000,
    vocab_size=400,
    n_embd=32,
    n_layer=1,
    n_head=2,
    block_size=32,
    batch_size=4,
    steps=3,
)


def test_paragraph_filter_keeps_prose_and_drops_code_and_markup():
    text = (
        "This function returns the **number** of items in a [container](https://x.org) and never fails.\n\n"
        "    x = len(items)  # code block\n\n"
        ">>> len([1, 2, 3])\n3\n\n"
        "short line.\n\n"
        "| a | b |\n|---|---|\n\n"
        "Read the docs at https://example.org for every option that this package offers today."
    )
    assert og._paragraphs(text) == ["This function returns the number of items in a container and never fails."]


def test_tokenizer_is_byte_level_and_round_trips_any_text():
    docs = ["The quick brown fox jumps over the lazy dog again and again."] * 50
    tok = og.train_tokenizer(docs, vocab_size=300)
    assert tok.eos_token == og.EOS and tok.pad_token is None  # like GPT-2: no pad token until a lesson sets one
    for text in ("The fox", "naïve café, 東京 🎬", "  spaces\tand\nlines"):
        assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.convert_ids_to_tokens(tok(" fox")["input_ids"])[0].startswith("Ġ")  # GPT-2's marker for a leading space


def test_cache_key_changes_with_any_setting(tmp_path, monkeypatch):
    monkeypatch.setenv(og.CACHE_ENV, str(tmp_path))
    other = dataclasses.replace(TINY, steps=4)
    assert og.build_dir(TINY) != og.build_dir(other)
    assert og.build_dir(TINY).parent == tmp_path / "offline-gpt2"


def test_the_build_is_a_parameter_with_an_environment_override(monkeypatch):
    assert og.build_for_profile("smoke") == "smoke"
    assert og.build_for_profile("cpu") == og.build_for_profile("gpu") == "cpu"
    monkeypatch.delenv(og.BUILD_ENV, raising=False)
    monkeypatch.setenv(PROFILE_ENV, "smoke")
    assert og.default_build() == "smoke" and og.build_config(None).name == "smoke"
    monkeypatch.setenv(PROFILE_ENV, "cpu")
    assert og.default_build() == "cpu"
    assert og.build_config("smoke").name == "smoke"  # an explicit build wins over the profile
    monkeypatch.setenv(og.BUILD_ENV, "smoke")
    assert og.default_build() == "smoke" and og.build_config("cpu").name == "cpu"  # ... and over the override
    monkeypatch.setenv(og.BUILD_ENV, "huge")
    with pytest.raises(ValueError, match="choose one of"):
        og.default_build()
    with pytest.raises(ValueError, match="choose one of"):
        og.build_config("huge")


def test_locate_never_builds_and_says_the_build_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(og.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(models, "in_hub_cache", lambda name: False)
    monkeypatch.setattr(og, "ensure_built", lambda *a, **k: pytest.fail("locate_model must not build"))
    source = models.locate_model("gpt2", online=False, build="smoke")
    assert source.kind == "offline-fallback" and not source.ready and source.requested == "gpt2"
    assert source.location == str(og.build_dir(og.BUILDS["smoke"])) and "not built yet" in source.note
    assert not (tmp_path / "offline-gpt2").exists()
    assert models.locate_model("bert", online=False).ready  # only the offline GPT-2 is ever "not ready"


@pytest.mark.slow
@pytest.mark.floors
def test_resolve_builds_a_gpt2_that_reloads_and_is_reused(tmp_path, monkeypatch, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv(og.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(og.BUILDS, "tiny", TINY)
    monkeypatch.setattr(models, "in_hub_cache", lambda name: False)
    assert not models.locate_model("gpt2", online=False, build="tiny").ready  # nothing built yet
    source = models.resolve_model("gpt2", online=False, build="tiny")  # order: local -> hub -> cache -> this fallback
    folder = og.build_dir(TINY)
    assert source.kind == "offline-fallback" and source.location == str(folder) and "not OpenAI's GPT-2" in source.note
    assert source.ready and models.locate_model("gpt2", online=False, build="tiny") == source
    assert {"config.json", "model.safetensors", "tokenizer.json", "build_info.json"} <= {
        p.name for p in folder.iterdir()
    }
    info = json.loads((folder / "build_info.json").read_text())
    assert info["config"]["steps"] == 3 and info["corpus_sources"]["stdlib docstrings"] > 0
    docs, _, provenance = og.build_corpus(TINY.corpus_chars)  # the record names what the build read
    assert info["corpus_sha256"] == og.corpus_sha256(docs) == provenance["sha256"]
    assert set(info["corpus_packages"]) <= set(og.CORPUS_PACKAGES) and info["corpus_python"] == provenance["python"]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setenv(og.BUILD_ENV, "tiny")  # the user's override, when the caller names no build
    assert og.ensure_built() == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp  # no rebuild

    model = AutoModelForCausalLM.from_pretrained(source.location)
    tok = AutoTokenizer.from_pretrained(source.location)
    assert type(model).__name__ == "GPT2LMHeadModel" and model.config.n_embd == 32
    ids = tok("The file is closed.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
    assert out.logits.shape == (1, ids.size(1), len(tok)) and torch.isfinite(out.loss)

    clf, clf_tok, _ = models.load_classifier(family="gpt2", verbose=False)  # the lessons' loader: pad = eos
    assert type(clf).__name__ == "GPT2ForSequenceClassification"
    assert clf_tok.pad_token == og.EOS and clf.config.pad_token_id == clf_tok.eos_token_id


def test_online_still_prefers_the_hub(monkeypatch):
    monkeypatch.setitem(models.FALLBACKS, "gpt2", lambda build: pytest.fail("no fallback is looked for when online"))
    assert models.resolve_model("gpt2", online=True).location == "gpt2"


def _tiny_build(tmp_path, monkeypatch):
    monkeypatch.setenv(og.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(og.BUILDS, "tiny", TINY)
    monkeypatch.setattr(models, "in_hub_cache", lambda name: False)
    # built with gradients off, as lesson 06 calls it (its cells run under torch.set_grad_enabled(False))
    with torch.no_grad():
        folder = og.ensure_built("tiny", verbose=False)
        assert not torch.is_grad_enabled()
    return folder


@pytest.mark.slow
@pytest.mark.floors
@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:500]), "model.safe"),
        (lambda d: (d / "build_info.json").write_text("garbage"), "build_info.json"),
        (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json is missing"),
    ],
    ids=["truncated-weights", "garbage-build-info", "missing-tokenizer"],
)
def test_a_damaged_build_is_reported_and_rebuilt_saying_so(tmp_path, monkeypatch, capsys, damage, says):
    folder = _tiny_build(tmp_path, monkeypatch)
    assert og.build_status(folder) == ("ok", None) and (folder / "ftlearn_manifest.json").is_file()
    damage(folder)
    status, problem = og.build_status(folder)
    assert status == "damaged" and says in problem and not og.is_built(folder)
    located = models.locate_model("gpt2", online=False, build="tiny")  # what doctor shows
    assert not located.ready and "damaged" in located.note and says in located.note
    capsys.readouterr()
    source = models.resolve_model("gpt2", online=False, build="tiny")
    assert "is damaged" in capsys.readouterr().out and source.ready and source.location == str(folder)
    assert og.build_status(folder) == ("ok", None) and og.build_info(folder)["config"]["name"] == "tiny"
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # nothing left beside it


@pytest.mark.slow
@pytest.mark.floors
def test_an_intact_build_from_before_manifests_is_kept_and_given_one(tmp_path, monkeypatch):
    folder = _tiny_build(tmp_path, monkeypatch)
    (folder / "ftlearn_manifest.json").unlink()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert og.build_status(folder) == ("ok", None)  # the cheap checks pass
    assert models.resolve_model("gpt2", online=False, build="tiny").ready
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt ...
    assert (folder / "ftlearn_manifest.json").is_file()  # ... but recorded
    (folder / "build_info.json").write_text("[]")
    assert og.build_status(folder)[0] == "damaged" and og.build_info(folder) is None


def test_temporaries_of_killed_builds_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import time

    monkeypatch.setenv(og.CACHE_ENV, str(tmp_path))
    target = og.build_dir(TINY)
    target.parent.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = target.with_name(f".{target.name}-{gone.stdout.strip()}-abc")  # its process has exited
    live = target.with_name(f".{target.name}-{os.getpid()}-abc")  # this process: still building
    old = target.with_name(f".{target.name}-x1y2z3")  # an unnamed one from an older version, 2 hours old
    young = target.with_name(f".{target.name}-q9w8e7")
    for path in (dead, live, old, young):
        path.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert sorted(og.remove_stale_temporaries(target)) == sorted([dead, old])
    assert live.is_dir() and young.is_dir()


@pytest.mark.slow
@pytest.mark.floors
def test_under_torchrun_only_local_rank_0_builds_and_the_others_wait_for_it(tmp_path, monkeypatch):
    """Rank 1 never builds: it waits for local rank 0's build to appear (here a thread plays rank 0), then uses it."""
    import threading

    monkeypatch.setenv(og.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(og.BUILDS, "tiny", TINY)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    target = og.build_dir(TINY)
    with pytest.raises(og.BuildWaitTimeout, match="ensure_built\\('tiny'\\)"):
        og.ensure_built("tiny", verbose=False, wait_s=0.2)  # nobody is building: a clear error, not a hang
    assert not target.exists() and not list(tmp_path.rglob(".*"))  # and rank 1 started no build of its own
    # through resolve_model (how the CLI loads GPT-2) it is the ModelUnavailableError the CLI reports in one line
    monkeypatch.setattr(og, "BUILD_WAIT_S", 0.2)
    with pytest.raises(models.ModelUnavailableError, match="ensure_built\\('tiny'\\)"):
        models.resolve_model("gpt2", build="tiny", online=False)

    built = {}

    def build_as_rank_0():
        # force builds whatever the rank (this whole process says LOCAL_RANK 1)
        built["path"] = og.ensure_built("tiny", verbose=False, force=True)

    thread = threading.Thread(target=build_as_rank_0)
    thread.start()
    waited = og.ensure_built("tiny", verbose=False, wait_s=300)
    thread.join()
    assert waited == target == built["path"] and og.is_built(target)


def test_corpus_packages_are_the_course_s_declared_dependencies():
    import re
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~ ;\[]", req, maxsplit=1)[0].lower() for req in project["dependencies"]}
    assert set(og.CORPUS_PACKAGES) <= declared, set(og.CORPUS_PACKAGES) - declared
    assert len(set(og.CORPUS_PACKAGES)) == len(og.CORPUS_PACKAGES)


def test_installing_an_unrelated_package_does_not_change_the_corpus(tmp_path, monkeypatch):
    """Item 8 of issue 20: the build reads fixed sources, so what else is installed cannot change it."""
    from importlib import metadata

    before, _, provenance = og.build_corpus(60_000)
    prose = "\n\n".join(
        f"This unrelated package number {i} describes itself in long and perfectly ordinary English sentences."
        for i in range(200)
    )
    dist_info = tmp_path / "aaa_unrelated_extra-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: aaa-unrelated-extra\nVersion: 1.0\n\n{prose}\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # the package is really installed as far as importlib.metadata can tell, and its text is prose that the
    # paragraph filter keeps: a corpus drawn from "every installed package" would have changed
    assert metadata.distribution("aaa-unrelated-extra").version == "1.0"
    assert len(og._paragraphs(prose)) == 200
    after, _, provenance_after = og.build_corpus(60_000)
    assert og.corpus_sha256(after) == og.corpus_sha256(before) == provenance["sha256"] == provenance_after["sha256"]
    assert "aaa-unrelated-extra" not in provenance_after["packages"]
