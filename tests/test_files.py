"""ftlearn.files: writes that are whole or absent, manifests that catch damage, output paths checked up front."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from ftlearn.files import (
    MANIFEST_FILE,
    OutputPathError,
    atomic_path,
    check_output_file,
    check_output_folder,
    json_problem,
    manifest_problem,
    read_manifest,
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
