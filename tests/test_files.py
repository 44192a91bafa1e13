"""ftlearn.files: writes that are whole or absent, manifests that catch damage, output paths checked up front."""

import json
import os
import tempfile

import pytest
import torch
from safetensors.torch import save_file

from ftlearn.files import (
    MANIFEST_FILE,
    OutputPathError,
    atomic_path,
    cache_root,
    check_output_file,
    check_output_folder,
    display_path,
    json_problem,
    manifest_problem,
    read_manifest,
    redact_paths,
    replace_folder,
    safetensors_problem,
    write_json_atomic,
    write_manifest,
    write_text_atomic,
)


def test_an_atomic_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "preds.csv"
    write_text_atomic(path, "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed while writing")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["preds.csv"]
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and len(list(tmp_path.iterdir())) == 1


def test_an_atomic_write_keeps_the_usual_permissions(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert (tmp_path / "a.txt").stat().st_mode == (tmp_path / "b.txt").stat().st_mode


def test_the_manifest_catches_a_missing_truncated_or_changed_file(tmp_path):
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "weights.bin").write_bytes(b"x" * 1000)
    manifest = write_manifest(tmp_path, task="bert")
    assert read_manifest(tmp_path) == manifest and manifest["task"] == "bert"
    assert set(manifest["files"]) == {"config.json", "weights.bin"}  # not itself
    assert manifest_problem(tmp_path, manifest) is None
    (tmp_path / "weights.bin").write_bytes(b"x" * 999)
    assert "999 bytes where 1,000 were saved" in manifest_problem(tmp_path, manifest)
    (tmp_path / "weights.bin").write_bytes(b"y" * 1000)  # same size, other bytes
    assert "sha256 differs" in manifest_problem(tmp_path, manifest)
    assert manifest_problem(tmp_path, manifest, hashes=False) is None
    (tmp_path / "config.json").unlink()
    assert manifest_problem(tmp_path, manifest) == "config.json is missing"
    (tmp_path / MANIFEST_FILE).write_text("garbage")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path / "nowhere") is None


def test_safetensors_and_json_are_checked_without_loading(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(100, 10)}, str(path))
    assert safetensors_problem(path) is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])
    assert "truncated or damaged" in safetensors_problem(path)
    path.write_bytes(data[:20])
    assert "truncated" in safetensors_problem(path)
    path.write_bytes(b"not a safetensors file at all")
    assert safetensors_problem(path) is not None
    assert safetensors_problem(tmp_path / "none.safetensors") == "none.safetensors is missing"
    for text, problem in (("", "empty"), ("{nope", "not valid JSON"), ("[1]", "JSON object"), ('{"a": 1}', None)):
        (tmp_path / "c.json").write_text(text)
        found = json_problem(tmp_path / "c.json")
        assert (found is None) if problem is None else (problem in found), (text, found)


def test_a_folder_is_replaced_only_by_a_complete_one(tmp_path):
    folder, new = tmp_path / "run", tmp_path / ".run.tmp"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_folder(new, folder)
    assert [p.name for p in folder.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_output_paths_are_refused_before_any_work(tmp_path):
    (tmp_path / "a_file").write_text("keep me")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "thesis.tex").write_text("keep me too")
    with pytest.raises(OutputPathError, match="is a folder; give a file name"):
        check_output_file(tmp_path)
    with pytest.raises(OutputPathError, match="is a file, so nothing can be created under it"):
        check_output_file(tmp_path / "a_file" / "preds.csv")
    with pytest.raises(OutputPathError, match="is a file; give a folder name"):
        check_output_folder(tmp_path / "a_file", is_ours=False)
    with pytest.raises(OutputPathError, match="ftlearn did not write"):
        check_output_folder(tmp_path / "theirs", is_ours=False)
    check_output_folder(tmp_path / "theirs", is_ours=True)  # a run folder: it may be replaced
    check_output_file(tmp_path / "new" / "deeper" / "preds.csv")  # created later, under a writable folder
    check_output_folder(tmp_path / "new" / "run", is_ours=False)
    assert not (tmp_path / "new").exists()  # checking creates nothing
    if os.path.isdir("/proc/self"):
        with pytest.raises(OutputPathError, match="cannot write in /proc"):
            check_output_file("/proc/preds.csv")
    assert (tmp_path / "a_file").read_text() == "keep me"


# ---------------------------------------------------------------- paths as printed


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A home, a course checkout with its venv inside, an IMDB folder elsewhere; the process inside the checkout."""
    home, course, imdb = tmp_path / "home" / "ada", tmp_path / "src" / "ftlearn", tmp_path / "data" / "imdb"
    for folder in (home, course / "notebooks", course / "ftlearn", imdb):
        folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("FTLEARN_CACHE", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FTLEARN_IMDB_DIR", str(imdb))
    monkeypatch.chdir(course / "notebooks")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # else tmp_path itself is under <tmp>
    return {"home": home, "course": course, "imdb": imdb}


def test_a_path_prints_below_its_most_specific_root(machine):
    home, course, imdb = machine["home"], machine["course"], machine["imdb"]
    venv_model = course / ".venv" / "lib" / "python3.11" / "site-packages" / "gt_model" / "model"
    assert display_path(home / ".cache" / "ftlearn" / "offline-gpt2" / "cpu-1a2b") == "<cache>/offline-gpt2/cpu-1a2b"
    assert display_path(home / ".cache" / "huggingface" / "hub") == "<hf-home>/hub"
    assert display_path(venv_model) == "<site-packages>/gt_model/model"  # not <course>/.venv/...
    assert display_path("/usr/lib/python3/dist-packages/torch") == "<site-packages>/torch"
    assert display_path(imdb) == "<imdb>" and display_path(str(imdb / "train.csv")) == "<imdb>/train.csv"
    assert display_path(course / "runs" / "bert-cpu") == "<course>/runs/bert-cpu"
    assert display_path(home / "notes" / "x.txt") == "~/notes/x.txt" and display_path(home) == "~"
    assert display_path(tempfile.gettempdir() + "/ftlearn-07-x/checkpoint-2") == "<tmp>/ftlearn-07-x/checkpoint-2"
    assert display_path(str(course / "runs" / ".." / "runs" / "x")) == "<course>/runs/x"
    for unchanged in ("runs/bert-cpu", "model.safetensors", "/opt/elsewhere/model", str(course) + "-old/runs"):
        assert display_path(unchanged) == unchanged


def test_roots_follow_the_environment(machine, tmp_path, monkeypatch):
    monkeypatch.setenv("FTLEARN_CACHE", str(tmp_path / "fast" / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("FTLEARN_IMDB_DIR", "stanfordnlp/imdb")  # a hub name: no folder to name
    assert display_path(tmp_path / "fast" / "cache" / "offline-gpt2") == "<cache>/offline-gpt2"
    assert display_path(tmp_path / "hf" / "hub" / "models--bert") == "<hf-home>/hub/models--bert"
    assert display_path(machine["imdb"]) == str(machine["imdb"])  # under no root now


def test_the_roots_agree_with_the_modules_that_own_them(machine, tmp_path, monkeypatch):
    from ftlearn import course, data, files, offline_gpt2
    from ftlearn.files import _course_root

    assert (files.CACHE_ENV, files.IMDB_DIR_ENV) == (offline_gpt2.CACHE_ENV, data.DIR_ENV)
    assert cache_root() == offline_gpt2.cache_root()
    monkeypatch.setenv("FTLEARN_CACHE", str(tmp_path / "elsewhere"))
    assert cache_root() == offline_gpt2.cache_root()
    assert _course_root() == course.repo_root() == machine["course"].resolve()


def test_paths_in_text_are_redacted_as_display_path_prints_them(machine):
    course, imdb = machine["course"], machine["imdb"]
    model = course / ".venv" / "lib" / "python3.11" / "site-packages" / "gt_model" / "model"
    text = (
        f"BERT from {model}: 22M parameters\nIMDB from {imdb}: 25,000 reviews\n"
        f"saved to PosixPath('{course / 'runs' / 'bert-cpu'}'), see https://example.org{course}/runs\n"
        f"{course}-old/runs is another checkout\n"
    )
    redacted = redact_paths(text)
    assert redacted == (
        f"BERT from {display_path(model)}: 22M parameters\nIMDB from <imdb>: 25,000 reviews\n"
        f"saved to PosixPath('<course>/runs/bert-cpu'), see https://example.org{course}/runs\n"
        f"{course}-old/runs is another checkout\n"
    )
    assert redact_paths(redacted) == redacted


def test_another_machines_paths_are_redacted_with_its_roots():
    roots = [("<cache>", "/root/.cache/ftlearn"), ("<course>", "/work/main"), ("~", "/root")]
    text = (
        "/root/.cache/ftlearn/offline-gpt2/cpu-3668f779df: built\n"
        "/work/main/.venv/lib/python3.11/site-packages/m/model and C:\\Py\\Lib\\site-packages\\m\n"
        "/root/.bashrc /work/mainline/x /opt/other relative/work/main\n"
    )
    assert redact_paths(text, roots) == (
        "<cache>/offline-gpt2/cpu-3668f779df: built\n"
        "<site-packages>/m/model and <site-packages>\\m\n"
        "~/.bashrc /work/mainline/x /opt/other relative/work/main\n"
    )
