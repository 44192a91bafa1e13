"""ftlearn.data: local IMDB folders, validation errors, stratified subsets."""

import os
from pathlib import Path

import pandas as pd
import pytest

from ftlearn.data import (
    DIR_ENV,
    HUB_NAME,
    IMDBDataError,
    imdb_source,
    load_imdb,
    load_local,
    stratified_split,
    stratified_subset,
)

SAMPLE = Path(os.environ.get(DIR_ENV, ""))
needs_sample = pytest.mark.skipif(not (SAMPLE / "train.csv").is_file(), reason="IMDB sample folder not found")


def write_split(folder: Path, train: pd.DataFrame, test: pd.DataFrame | None = None, suffix: str = ".csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("train", train), ("test", train if test is None else test)):
        if suffix == ".csv":
            frame.to_csv(folder / f"train{suffix}".replace("train", name), index=False)
        else:
            frame.to_parquet(folder / f"{name}{suffix}", index=False)
    return folder


def _raw_split(folder: Path, train_csv: str) -> Path:
    """A folder whose train.csv is exactly `train_csv` (a well-formed test.csv beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.csv").write_text(train_csv, encoding="utf-8")
    reviews().to_csv(folder / "test.csv", index=False)
    return folder


def reviews(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": [f"review number {i}, quite {'good' if i % 2 else 'bad'}" for i in range(n)],
            "label": [i % 2 for i in range(n)],
        }
    )


@needs_sample
def test_sample_folder_has_hub_schema_and_sizes():
    dsd = load_local(SAMPLE)
    assert set(dsd) == {"train", "test"}
    assert (len(dsd["train"]), len(dsd["test"])) == (2000, 468)
    assert dsd["train"].features["label"].names == ["neg", "pos"]
    assert dsd["train"].column_names == ["text", "label"]
    assert "<br />" in "".join(dsd["train"]["text"][:200])  # untouched, as on the hub


@needs_sample
def test_profile_sizes_subsets_are_seeded_and_stratified():
    a = load_imdb(SAMPLE, profile="smoke", seed=3, verbose=False)
    b = load_imdb(SAMPLE, profile="smoke", seed=3, verbose=False)
    assert len(a["train"]) == 64 and len(a["test"]) == 32
    assert a["train"]["text"] == b["train"]["text"]
    assert load_imdb(SAMPLE, profile="smoke", seed=4, verbose=False)["train"]["text"] != a["train"]["text"]
    positives = sum(a["train"]["label"])
    assert abs(positives - 64 * 1027 / 2000) <= 1  # the sample's train split is 1,027 positive of 2,000


def test_explicit_sizes_beat_profile(tmp_path):
    folder = write_split(tmp_path / "imdb", reviews(20))
    dsd = load_imdb(folder, profile="smoke", n_train=6, n_test=4, verbose=False)
    assert (len(dsd["train"]), len(dsd["test"])) == (6, 4)
    assert sorted(dsd["train"]["label"]) == [0, 0, 0, 1, 1, 1]


def test_stratified_subset_keeps_rare_class_and_all_rows_when_n_is_large(tmp_path):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": [1] * 10 + [0] * 90})
    ds = load_local(write_split(tmp_path / "d", frame))["train"]
    sub = stratified_subset(ds, 20, seed=0)
    assert sum(sub["label"]) == 2 and len(sub) == 20
    assert len(stratified_subset(ds, None)) == 100 and len(stratified_subset(ds, 1000)) == 100
    with pytest.raises(ValueError):
        stratified_subset(ds, 0)


def test_stratified_split_partitions_the_rows_and_is_the_one_way_to_stratify(tmp_path):
    from ftlearn.finetune import split_train_val

    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": [1] * 10 + [0] * 90})
    ds = load_local(write_split(tmp_path / "d", frame))["train"]
    picked, rest = stratified_split(ds, 30, seed=1)
    assert (len(picked), sum(picked["label"]), len(rest), sum(rest["label"])) == (30, 3, 70, 7)
    assert sorted([*picked["text"], *rest["text"]]) == sorted(ds["text"])  # disjoint, and nothing lost
    assert list(stratified_subset(ds, 30, seed=1)["text"]) == list(picked["text"])
    train, val = split_train_val(ds, 0.1, seed=2)  # notebook 07's validation set
    assert list(val["text"]) == list(stratified_split(ds, 10, seed=2)[0]["text"]) and sum(val["label"]) == 1
    assert len(train) == 90 and not set(train["text"]) & set(val["text"])
    for n in (0, 100):
        with pytest.raises(ValueError, match="at least one row on each side"):
            stratified_split(ds, n)


def test_parquet_and_sharded_files(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    reviews(6).to_parquet(folder / "train-00000-of-00002.parquet", index=False)
    reviews(4).to_parquet(folder / "train-00001-of-00002.parquet", index=False)
    reviews(3).to_parquet(folder / "test.parquet", index=False)
    dsd = load_local(folder)
    assert (len(dsd["train"]), len(dsd["test"])) == (10, 3)


def test_source_setting(monkeypatch, tmp_path):
    monkeypatch.delenv(DIR_ENV, raising=False)
    assert imdb_source() == HUB_NAME
    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    assert imdb_source() == str(tmp_path)
    assert imdb_source("elsewhere") == "elsewhere"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: None, "does not exist"),
        (lambda d: (d.mkdir(), reviews().to_csv(d / "train.csv", index=False)), "No test file"),
        (lambda d: write_split(d, reviews().drop(columns="label")), "has no `label` column"),
        (lambda d: write_split(d, reviews().rename(columns={"text": "review"})), "has no `text` column"),
        (
            lambda d: write_split(d, reviews().assign(label=[0, 1, 2] + [0] * 7)),
            "labels must be 0 or 1, but data row 3 has label 2",
        ),
        (lambda d: write_split(d, reviews().assign(label=["pos"] * 10)), "labels must be 0 or 1"),
        (lambda d: write_split(d, reviews().assign(text=[""] + ["ok"] * 9)), "data row 1 has no review text"),
        (lambda d: write_split(d, reviews().iloc[:0]), "has a header but no reviews"),
        (lambda d: _raw_split(d, 'text,label\n"good film,1\n"bad film, really",0\n"ok film",1\n'), "never closed"),
        (
            lambda d: _raw_split(d, "text,label\ngood,1\nbad, really bad,0\n"),
            r"data row 2 \(line 3\) has 3 fields .* not in quotes",
        ),
        (lambda d: _raw_split(d, "text,label,label\ngood,1,0\nbad,0,1\n"), r"has 2 `label` columns \(columns 2, 3\)"),
        (lambda d: _raw_split(d, "label,text,text\n1,good,x\n"), "has 2 `text` columns"),
        (
            lambda d: (_raw_split(d, "text,label\nok,1\n"), (d / "train.csv").unlink(), (d / "train.csv").mkdir()),
            r"train\.csv is a folder, not a file",
        ),
    ],
)
def test_bad_folders_give_one_clear_message(tmp_path, make, message):
    folder = tmp_path / "imdb"
    make(folder)
    with pytest.raises(IMDBDataError, match=message) as info:
        load_imdb(folder, verbose=False)
    # one message, no chained traceback behind it
    assert info.value.__cause__ is None and (info.value.__suppress_context__ or info.value.__context__ is None)


def test_empty_and_undecodable_files_name_the_file(tmp_path):
    folder = write_split(tmp_path / "imdb", reviews())
    (folder / "test.csv").write_bytes(b"")
    with pytest.raises(IMDBDataError, match=r"test\.csv is empty"):
        load_local(folder)
    (folder / "test.csv").write_bytes(b"text,label\n" + "caf\xe9 review,1\n".encode("latin-1"))
    with pytest.raises(IMDBDataError, match=r"test\.csv is not valid UTF-8"):
        load_local(folder)


def test_offline_hub_without_local_copy_says_how_to_point_at_one(monkeypatch):
    monkeypatch.delenv(DIR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", "/nonexistent-ftlearn-cache")
    with pytest.raises(IMDBDataError, match=f"export {DIR_ENV}="):
        load_imdb(verbose=False)
