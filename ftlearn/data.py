"""IMDB reviews from the Hugging Face hub or from a local folder, validated and cut to the profile's size.

Introduced in notebook 00; used by every lesson that touches real text. The schema is that of
`stanfordnlp/imdb`: a `DatasetDict` with `train` and `test`, columns `text` (str) and `label`
(ClassLabel: 0 = neg, 1 = pos).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    import pandas as pd

    from ftlearn.runtime import Profile

HUB_NAME = "stanfordnlp/imdb"
DIR_ENV = "FTLEARN_IMDB_DIR"
SPLITS = ("train", "test")
LABEL_NAMES = ["neg", "pos"]
SUFFIXES = (".csv", ".parquet")


class IMDBDataError(ValueError):
    """IMDB could not be loaded; the message says which file is wrong and what to do."""


def _how_to_point(extra: str = "") -> str:
    return (
        f"{extra}Point the course at a local copy: a folder with train.csv and test.csv "
        f"(columns `text`, `label` with 0/1), either as `load_imdb('path/to/folder')` or with "
        f"`export {DIR_ENV}=path/to/folder` before starting Jupyter (README: 'Offline use')."
    )


def imdb_source(path: str | os.PathLike | None = None) -> str:
    """Where IMDB will come from: the folder given, $FTLEARN_IMDB_DIR, or the hub name."""
    if path is not None:
        return str(path)
    return os.environ.get(DIR_ENV, "").strip() or HUB_NAME


def find_split_files(folder: Path) -> dict[str, list[Path]]:
    """The train/test files in a local folder (train.csv, test.parquet, train-00000-of-00001.parquet...)."""
    if not folder.exists():
        raise IMDBDataError(_how_to_point(f"The IMDB folder {folder} does not exist. "))
    if not folder.is_dir():
        raise IMDBDataError(_how_to_point(f"{folder} is a file, not a folder. "))
    found: dict[str, list[Path]] = {}
    for split in SPLITS:
        named = [p for p in folder.iterdir() if p.suffix in SUFFIXES and p.stem.split("-")[0] == split]
        not_files = sorted(p.name for p in named if not p.is_file())
        if not_files:
            raise IMDBDataError(
                f"{folder / not_files[0]} is a folder, not a file: {split} reviews must be in a file "
                f"{split}.csv or {split}.parquet (columns `text`, `label`)."
            )
        files = sorted(named)
        if not files:
            present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
            raise IMDBDataError(
                f"No {split} file in {folder}: expected {split}.csv or {split}.parquet, found {present}."
            )
        found[split] = files
    return found


def _csv_shape_problem(path: Path) -> str | None:
    """A duplicated header name, or the first record whose field count differs from the header's, or None.

    pandas renames a second `label` column to `label.1` (silently choosing the first), and when a record
    has more fields than the header it moves the extra ones into the index; either way the data it
    returns is not the file's. Python's csv module reads the records exactly as written.
    """
    import csv
    import sys

    previous = csv.field_size_limit(sys.maxsize)  # a review swallowed by an open quote can be very long
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                columns = ", ".join(str(i + 1) for i, name in enumerate(header) if name == repeated[0])
                return f"{path} has {header.count(repeated[0])} `{repeated[0]}` columns (columns {columns}); keep one."
            start = reader.line_num
            for row, record in enumerate(reader, start=1):
                if record and len(record) != len(header):
                    if reader.line_num == start + 1:  # one line: a separator where a text should hold it
                        where = f"line {start + 1}"
                        why = 'a comma in a text that is not in quotes? Write it as "text, with comma"'
                    else:  # the record ran over several lines: a quote swallowed the line ends
                        where = f"lines {start + 1}-{reader.line_num}"
                        why = (
                            'a quote opened in it is probably never closed (a quote inside a quoted text is written "")'
                        )
                    fields = f"{len(record)} fields where the header has {len(header)}"
                    return f"{path}: data row {row} ({where}) has {fields}; {why}"
                start = reader.line_num
    except csv.Error as exc:
        return f"{path} could not be read as csv: {exc}"
    finally:
        csv.field_size_limit(previous)
    return None


def _read_table(path: Path) -> pd.DataFrame:
    """Read one CSV/parquet file and check it has the IMDB schema; errors name the file and the problem."""
    import numpy as np
    import pandas as pd

    if path.stat().st_size == 0:
        raise IMDBDataError(f"{path} is empty: it needs a header line `text,label` and one row per review.")
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path, encoding="utf-8", keep_default_na=False)
        else:
            frame = pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise IMDBDataError(
            f"{path} is not valid UTF-8 text (byte {exc.start} cannot be decoded). Re-save it as UTF-8."
        ) from None
    except pd.errors.EmptyDataError:
        raise IMDBDataError(f"{path} is empty: it needs a header line `text,label` and one row per review.") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        problem = _csv_shape_problem(path) if path.suffix == ".csv" and isinstance(exc, pd.errors.ParserError) else None
        raise IMDBDataError(
            problem or f"{path} could not be read as {path.suffix[1:]}: {str(exc).splitlines()[0]}"
        ) from None
    if path.suffix == ".csv" and (
        not isinstance(frame.index, pd.RangeIndex) or any(f"{c}.1" in frame.columns for c in ("text", "label"))
    ):
        problem = _csv_shape_problem(path)
        if problem:
            raise IMDBDataError(problem)
    missing = [c for c in ("text", "label") if c not in frame.columns]
    if missing:
        raise IMDBDataError(
            f"{path} has no {' or '.join(f'`{c}`' for c in missing)} column; its columns are "
            f"{', '.join(map(str, frame.columns)) or 'none'}. IMDB files need `text` and `label` "
            "(0 = negative, 1 = positive)."
        )
    if frame.empty:
        raise IMDBDataError(f"{path} has a header but no reviews.")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = np.flatnonzero(~labels.isin([0, 1]).to_numpy())  # positions, whatever the index holds
    if len(bad):
        row = int(bad[0])
        value = frame["label"].iloc[row]
        value = value.item() if hasattr(value, "item") else value  # numpy scalar -> plain python for the message
        raise IMDBDataError(
            f"{path}: labels must be 0 or 1, but data row {row + 1} has label {value!r} ({len(bad)} bad row(s) in all)."
        )
    texts = frame["text"]
    empty = np.flatnonzero(~texts.map(lambda t: isinstance(t, str) and bool(t.strip())).to_numpy())
    if len(empty):
        raise IMDBDataError(f"{path}: data row {int(empty[0]) + 1} has no review text ({len(empty)} such row(s)).")
    return pd.DataFrame({"text": texts.astype(str).to_numpy(), "label": labels.astype("int64").to_numpy()})


def load_local(folder: str | os.PathLike) -> datasets.DatasetDict:
    """Load IMDB from a local folder of CSV or parquet files, validated, with the hub's schema."""
    import datasets
    import pandas as pd

    folder = Path(folder).expanduser()
    files = find_split_files(folder)
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=LABEL_NAMES)})
    splits = {}
    for split, paths in files.items():
        frame = pd.concat([_read_table(p) for p in paths], ignore_index=True)
        splits[split] = datasets.Dataset.from_pandas(frame, features=features, preserve_index=False)
    return datasets.DatasetDict(splits)


def load_hub(name: str = HUB_NAME) -> datasets.DatasetDict:
    """Load IMDB from the Hugging Face hub (cached after the first download); train and test only."""
    import datasets

    from ftlearn.runtime import is_online

    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # noqa: BLE001 - network and cache errors all end in the same advice
        reason = "you are offline and it is not in the cache. " if not is_online() else f"{type(exc).__name__}: {exc}. "
        raise IMDBDataError(_how_to_point(f"Could not load {name} from the Hugging Face hub: {reason}")) from None
    return datasets.DatasetDict({split: loaded[split] for split in SPLITS})


MIN_PER_LABEL = 2  # a classifier's training data: at least this many reviews of each label (one goes to validation)


def check_training_labels(ds: datasets.Dataset, where: str) -> None:
    """Raise IMDBDataError unless `ds` holds at least `MIN_PER_LABEL` reviews of each label, 0 and 1 (notebook 07).

    Reviews of one label only would train a classifier that answers that label whatever it reads, with exit 0 and
    a plausible loss; too few rows cannot be split into training and validation sets.
    """
    import numpy as np

    labels = np.asarray(ds["label"])
    counts = [int((labels == label).sum()) for label in (0, 1)]
    if min(counts) >= MIN_PER_LABEL:
        return
    if len(labels) >= 2 * MIN_PER_LABEL and (counts[0] == 0 or counts[1] == 0):
        only = 0 if counts[0] else 1
        raise IMDBDataError(
            f"{where}: all {len(labels):,} training reviews are labelled {only} ({LABEL_NAMES[only]}); a classifier "
            f"needs reviews of both labels, 0 and 1, at least {MIN_PER_LABEL} of each, to learn to tell them apart."
        )
    raise IMDBDataError(
        f"{where}: {len(labels):,} training review(s), {counts[0]} labelled 0 and {counts[1]} labelled 1; a run "
        f"needs at least {MIN_PER_LABEL} of each label (some are held out for validation)."
    )


def stratified_split(ds: datasets.Dataset, n: int, seed: int = 0) -> tuple[datasets.Dataset, datasets.Dataset]:
    """`n` seeded rows with the same label proportions as `ds`, and the other rows; each part shuffled.

    The course's one way to stratify: profile subsets (notebook 00) and the validation set (notebook 07).
    """
    import numpy as np

    if not 0 < n < len(ds):
        raise ValueError(f"A split needs at least one row on each side: n={n} of {len(ds)} rows.")
    rng = np.random.default_rng(seed)
    labels = np.asarray(ds["label"])
    picked = []
    classes, counts = np.unique(labels, return_counts=True)
    quotas = np.floor(counts / counts.sum() * n).astype(int)
    for i in np.argsort(-(counts / counts.sum() * n - quotas))[: n - quotas.sum()]:
        quotas[i] += 1  # hand the rounding remainder to the classes that lost most to rounding
    for cls, quota in zip(classes, quotas, strict=True):
        members = np.flatnonzero(labels == cls)
        picked.extend(rng.choice(members, size=quota, replace=False).tolist())
    picked = rng.permutation(picked)
    rest = rng.permutation(np.setdiff1d(np.arange(len(ds)), picked))
    return ds.select(picked.tolist()), ds.select(rest.tolist())


def stratified_subset(ds: datasets.Dataset, n: int | None, seed: int = 0) -> datasets.Dataset:
    """A seeded subset of `n` rows with the label proportions of `ds` (all of it, shuffled, if n is None or too big)."""
    import numpy as np

    if n is None or n >= len(ds):
        return ds.select(np.random.default_rng(seed).permutation(len(ds)).tolist())
    if n <= 0:
        raise ValueError(f"A subset needs at least one row, got n={n}.")
    return stratified_split(ds, n, seed)[0]


def load_imdb(
    path: str | os.PathLike | None = None,
    *,
    profile: Profile | str | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> datasets.DatasetDict:
    """IMDB as a DatasetDict (train, test), from `path`, $FTLEARN_IMDB_DIR or the hub, cut to the profile's size.

    Explicit `n_train` / `n_test` win over the profile's sizes; subsets are seeded and stratified.
    """
    from ftlearn.runtime import get_profile

    source = imdb_source(path)
    if source == HUB_NAME:
        dsd = load_hub(source)
    else:
        dsd = load_local(source)
    if profile is not None:
        prof = get_profile(profile) if isinstance(profile, str) else profile
        n_train = prof.n_train if n_train is None else n_train
        n_test = prof.n_test if n_test is None else n_test
    full = {split: len(dsd[split]) for split in SPLITS}
    dsd["train"] = stratified_subset(dsd["train"], n_train, seed)
    dsd["test"] = stratified_subset(dsd["test"], n_test, seed + 1)
    if verbose:
        sizes = ", ".join(f"{s} {len(dsd[s]):,} of {full[s]:,}" for s in SPLITS)
        from ftlearn.files import display_path  # `<imdb>`: outputs name no machine's folders

        print(f"IMDB from {display_path(source)}: {sizes} reviews")
    return dsd


def data_fingerprint(dsd: datasets.DatasetDict) -> str:
    """sha256 of every split's texts and labels, in order: two runs on the same reviews have the same one."""
    digest = hashlib.sha256()
    for split in sorted(dsd):
        digest.update(split.encode() + b"\x00")
        for text, label in zip(dsd[split]["text"], dsd[split]["label"], strict=True):
            digest.update(text.encode("utf-8") + b"\x00" + str(label).encode() + b"\x01")
    return digest.hexdigest()
