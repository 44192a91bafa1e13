"""Your own labelled texts: a CSV, TSV or JSON Lines file, or a folder of one subfolder per class, as a run's data.

Introduced for the capstone after notebook 07 (`ftlearn finetune bert|gpt2-cls --train FILE`): the same runs as on
IMDB, with any number of classes, named by the labels the file holds. Everything is checked before a model loads;
bad data raises `LabelledDataError` with one line that names the file, the line and what to do.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftlearn.data import MIN_PER_LABEL, IMDBDataError

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from ftlearn.runtime import Profile

SEPARATORS = {".csv": ",", ".tsv": "\t"}
JSON_LINES = (".jsonl", ".ndjson")
KINDS = "a .csv, .tsv or .jsonl file, or a folder with one subfolder of text files per class"
TEST_FRACTION = 0.2  # held out, stratified, when no --test file is given
IMBALANCE = 3.0  # the largest class more than this many times the smallest: said before training
UNKNOWN_WARNING = 0.05  # more than this share of unknown tokens: the model does not read this text's script


class LabelledDataError(IMDBDataError):
    """A data file that cannot train or test a classifier; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class LabelledFiles:
    """Where a run's own data is: a training file (or folder), an optional test file, and the columns to read."""

    train: str | Path
    test: str | Path | None = None
    text_column: str = "text"
    label_column: str = "label"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, as metrics.json records it: absolute paths and each file's sha256 (`ftlearn compare` reads
        the same test set, and refuses one that changed)."""
        paths = {"train": Path(self.train), "test": None if self.test is None else Path(self.test)}
        recorded: dict[str, Any] = {}
        for split, path in paths.items():
            recorded[split] = None if path is None else str(path.expanduser().resolve())
            recorded[f"{split}_sha256"] = _digest(path)
        return {**recorded, "text_column": self.text_column, "label_column": self.label_column}


def _digest(path: Path | None) -> str | None:
    """A file's sha256, or None for a folder (or no file)."""
    from ftlearn.files import file_digest

    path = None if path is None else path.expanduser()
    return file_digest(path) if path is not None and path.is_file() else None


def data_changes(recorded: dict[str, Any]) -> str | None:
    """Why the files a run recorded (`LabelledFiles.as_dict`) are no longer the ones it read, or None."""
    for split in ("train", "test"):
        path = recorded.get(split)
        if path is None:
            continue
        if not Path(path).exists():
            return f"{path} (the {split} data) is not there any more"
        digest = recorded.get(f"{split}_sha256")
        if digest is not None and _digest(Path(path)) != digest:
            return f"{path} (the {split} data) has changed since"
    return None


# ---------------------------------------------------------------- reading one file or folder


def _decoded(path: Path) -> str:
    """The file's text, or one line naming the file and the line of its first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as spreadsheets write, is not part of the header
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LabelledDataError(
            f"{path}, line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 text. Re-save the file as UTF-8."
        ) from None


def _missing_column(path: Path, column: str, flag: str, columns: list[str]) -> LabelledDataError:
    present = ", ".join(f"`{c}`" for c in columns) or "none"
    return LabelledDataError(
        f"{path} has no `{column}` column; its columns are {present}. Name yours with {flag} NAME."
    )


def _read_delimited(path: Path, text_column: str, label_column: str) -> tuple[list[Any], list[Any], list[int]]:
    """Texts, labels and the line each record starts on, from a CSV or TSV file read exactly as written."""
    import csv
    import io
    import sys

    text = _decoded(path)
    previous = csv.field_size_limit(sys.maxsize)  # a text swallowed by an open quote can be very long
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=SEPARATORS[path.suffix.lower()])
        header = next(reader, None)
        if not header:
            raise LabelledDataError(f"{path} is empty: it needs a header line naming its columns and one row per text.")
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise LabelledDataError(f"{path} has {header.count(repeated[0])} `{repeated[0]}` columns; keep one.")
        for column, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
            if column not in header:
                raise _missing_column(path, column, flag, header)
        at_text, at_label = header.index(text_column), header.index(label_column)
        texts, labels, lines = [], [], []
        start = reader.line_num + 1
        for record in reader:
            if not record:  # a blank line
                start = reader.line_num + 1
                continue
            if len(record) != len(header):
                where = f"line {start}" if reader.line_num == start else f"lines {start}-{reader.line_num}"
                raise LabelledDataError(
                    f"{path}, {where}: {len(record)} fields where the header has {len(header)}; a separator inside a "
                    'text needs the text in quotes ("like, this"), and a quote inside one is written "".'
                )
            texts.append(record[at_text])
            labels.append(record[at_label])
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise LabelledDataError(f"{path} could not be read as {path.suffix[1:]}: {exc}.") from None
    finally:
        csv.field_size_limit(previous)
    return texts, labels, lines


def _read_json_lines(path: Path, text_column: str, label_column: str) -> tuple[list[Any], list[Any], list[int]]:
    """Texts, labels and line numbers from a JSON Lines file: one object per line."""
    texts, labels, lines = [], [], []
    for number, line in enumerate(_decoded(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabelledDataError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise LabelledDataError(f"{path}, line {number}: each line must be one JSON object, like "
                                    f'{{"{text_column}": "...", "{label_column}": "..."}}.')  # fmt: skip
        for column, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
            if column not in record:
                raise LabelledDataError(
                    f"{path}, line {number} has no `{column}` field; its fields are "
                    f"{', '.join(f'`{k}`' for k in record) or 'none'}. Name yours with {flag} NAME."
                )
        texts.append(record[text_column])
        labels.append(record[label_column])
        lines.append(number)
    if not texts:
        raise LabelledDataError(f"{path} is empty: it needs one JSON object per line, each with a text and a label.")
    return texts, labels, lines


def _read_folder(folder: Path) -> tuple[list[Any], list[Any], list[str]]:
    """Texts and labels from a folder with one subfolder per class; each file in a subfolder is one text."""
    visible = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    loose = [p.name for p in visible if not p.is_dir()]
    if loose:
        raise LabelledDataError(
            f"{folder / loose[0]} is not in a class subfolder: {folder} must hold one subfolder per class, "
            "each with one text per file."
        )
    texts, labels, where = [], [], []
    for sub in visible:
        for path in sorted(p for p in sub.rglob("*") if p.is_file() and not p.name.startswith(".")):
            text = _decoded(path).strip()
            if not text:
                raise LabelledDataError(f"{path} is empty: each file in a class subfolder is one text; remove it.")
            texts.append(text)
            labels.append(sub.name)
            where.append(str(path))
    if not texts:
        raise LabelledDataError(f"{folder} holds no texts: it needs one subfolder per class, each with text files.")
    return texts, labels, where


def read_labelled(path: str | Path, text_column: str = "text", label_column: str = "label") -> tuple[list, list, list]:
    """Texts, raw labels and where each came from ("line N" or a file) in a labelled file or folder, checked."""
    path = Path(path).expanduser()
    if not path.exists():
        raise LabelledDataError(f"No such file or folder: {path}. Give {KINDS}.")
    if path.is_dir():
        texts, labels, where = _read_folder(path)
    else:
        suffix = path.suffix.lower()
        if suffix in SEPARATORS:
            texts, labels, lines = _read_delimited(path, text_column, label_column)
        elif suffix in JSON_LINES:
            texts, labels, lines = _read_json_lines(path, text_column, label_column)
        else:
            raise LabelledDataError(f"{path}: unknown file type `{path.suffix or path.name}`; give {KINDS}.")
        if not texts:
            raise LabelledDataError(f"{path} has a header but no rows.")
        where = [f"line {n}" for n in lines]
        for values, column in ((texts, text_column), (labels, label_column)):
            empty = [i for i, v in enumerate(values) if v is None or not str(v).strip()]
            if empty:
                raise LabelledDataError(
                    f"{path}, {where[empty[0]]}: the `{column}` column is empty ({len(empty)} such row(s) of "
                    f"{len(values)}); fill them in or remove them."
                )
        if len(set(map(str, labels))) == len(labels) == len(texts) > 1 and len(labels) > 20:
            raise LabelledDataError(
                f"{path}: every row has a label of its own ({len(labels)} labels); is `{label_column}` the column of "
                "classes? Name it with --label-column NAME."
            )
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise LabelledDataError(f"{path}, {where[bad[0]]}: the text is {type(texts[bad[0]]).__name__}, not a string.")
    return texts, labels, where


def class_names(labels: list) -> list[str]:
    """The classes in a stable order: whole numbers by value ("2" before "10"), anything else as sorted strings."""
    names = sorted({str(label).strip() for label in labels})
    if all(re.fullmatch(r"-?\d+", name) for name in names):
        return sorted(names, key=int)
    return names


# ---------------------------------------------------------------- checks and splits


def _counts(ids: list[int], names: list[str]) -> list[int]:
    return [ids.count(i) for i in range(len(names))]


def check_classes(names: list[str], counts: list[int], where: str) -> None:
    """Raise LabelledDataError unless there are two classes or more, each with at least `MIN_PER_LABEL` texts."""
    if len(names) < 2:
        raise LabelledDataError(
            f"{where}: every text is labelled {names[0]!r}; a classifier needs two classes or more to tell apart."
        )
    few = [(n, c) for n, c in zip(names, counts, strict=True) if c < MIN_PER_LABEL]
    if few:
        listed = ", ".join(f"{n!r} ({c})" for n, c in few[:5]) + (f" and {len(few) - 5} more" if len(few) > 5 else "")
        raise LabelledDataError(
            f"{where}: class {listed} has fewer than {MIN_PER_LABEL} training texts (some are held out for "
            "validation); add examples or remove the class."
        )


def describe_counts(names: list[str], counts: list[int]) -> str:
    """'3 classes: sports 30, business 28, tech 31', and a warning when the largest is over 3x the smallest."""
    line = f"{len(names)} classes: " + ", ".join(f"{n} {c:,}" for n, c in zip(names, counts, strict=True))
    largest, smallest = max(counts), min(counts)
    if smallest and largest > IMBALANCE * smallest:
        big, small = names[counts.index(largest)], names[counts.index(smallest)]
        line += (
            f"\nimbalanced: {big!r} has {largest / smallest:.1f}x as many texts as {small!r}; accuracy will flatter "
            "the model (read macro-F1 and each class's recall), and --class-weights balanced weighs the classes equally"
        )
    return line


def _dataset(texts: list[str], ids: list[int], names: list[str]) -> datasets.Dataset:
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({"text": texts, "label": ids}, features=features)


def load_labelled(
    files: LabelledFiles, *, profile: Profile | str | None = None, seed: int = 0, verbose: bool = True
) -> datasets.DatasetDict:
    """The files as a DatasetDict (train, test) with a ClassLabel of the class names, checked, cut to the profile.

    Without a test file, a stratified, seeded `TEST_FRACTION` of the training file is held out. Test labels that the
    training file never has are refused. The profile's sizes cut both splits as they cut IMDB (stratified).
    """
    from ftlearn.data import stratified_split, stratified_subset
    from ftlearn.runtime import get_profile

    texts, labels, _ = read_labelled(files.train, files.text_column, files.label_column)
    names = class_names(labels)
    index = {name: i for i, name in enumerate(names)}
    ids = [index[str(label).strip()] for label in labels]
    where = str(files.train)
    check_classes(names, _counts(ids, names), where)
    train = _dataset(texts, ids, names)
    if files.test is not None:
        test_texts, test_labels, test_where = read_labelled(files.test, files.text_column, files.label_column)
        unseen = [i for i, label in enumerate(test_labels) if str(label).strip() not in index]
        if unseen:
            values = sorted({str(test_labels[i]).strip() for i in unseen})
            raise LabelledDataError(
                f"{files.test}, {test_where[unseen[0]]}: label {values[0]!r} never appears in the training data "
                f"{where} ({len(unseen)} test row(s), labels {', '.join(map(repr, values))}); its classes are "
                f"{', '.join(names)}. A model cannot predict a class it never saw: fix the labels or add training "
                "texts."
            )
        test = _dataset(test_texts, [index[str(label).strip()] for label in test_labels], names)
    else:
        import math

        n_test = math.ceil(TEST_FRACTION * len(train))
        test, train = stratified_split(train, n_test, seed + 2)  # seed + 2: apart from the subsets' seed, seed + 1
        check_classes(names, _counts(list(train["label"]), names), f"{where} (after holding out {n_test} for test)")
    full = {"train": len(train), "test": len(test)}
    if profile is not None:
        prof = get_profile(profile) if isinstance(profile, str) else profile
        train, test = stratified_subset(train, prof.n_train, seed), stratified_subset(test, prof.n_test, seed + 1)
        if len(train) < full["train"]:
            check_classes(names, _counts(list(train["label"]), names), f"{where} (the {prof.name} profile's subset)")
    if verbose:
        from ftlearn.files import display_path

        source = f"{display_path(files.train)}" + (f" and {display_path(files.test)}" if files.test else "")
        held = "" if files.test is not None else " (held out, stratified)"
        print(f"Data from {source}: train {len(train):,} of {full['train']:,}, test {len(test):,} of {full['test']:,}"
              f"{held} texts")  # fmt: skip
        print("training texts, " + describe_counts(names, _counts(list(train["label"]), names)))
        seen = set(train["text"])
        repeated = sum(text in seen for text in test["text"])
        if repeated:  # a test text the model trained on is a question it may have memorised: accuracy flatters it
            print(f"warning: {repeated:,} of the {len(test):,} test texts are also training texts; remove the "
                  "duplicates for a fair test")  # fmt: skip
    import datasets

    return datasets.DatasetDict({"train": train, "test": test})


def class_weights(labels: Any, num_classes: int) -> list[float]:
    """'Balanced' weights N / (C * n_c), as scikit-learn computes them: each class weighs as much in the loss."""
    import numpy as np

    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    return [float(len(labels) / (num_classes * c)) if c else 0.0 for c in counts]


# ---------------------------------------------------------------- what the tokenizer makes of the text


def reading_report(texts: list[str], tokenizer: Any, max_length: int) -> dict[str, Any]:
    """How many texts are longer than `max_length` tokens (cut), and the share of tokens the tokenizer does not know.

    A high unknown-token rate means the model's vocabulary does not cover the text's script (a byte-level tokenizer
    such as GPT-2's has no unknown token: its rate is 0).
    """
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
    unknown_id = getattr(tokenizer, "unk_token_id", None)
    total = sum(len(ids) - 2 for ids in encoded) or 1
    unknown = sum(ids.count(unknown_id) for ids in encoded) if unknown_id is not None else 0
    return {
        "texts": len(encoded),
        "longer_than_max_length": sum(len(ids) > max_length for ids in encoded),
        "max_length": max_length,
        "unknown_token_rate": unknown / total,
        "unknown_token": getattr(tokenizer, "unk_token", None),
    }


def describe_reading(report: dict[str, Any]) -> str:
    """The reading report in a line or two, with a warning when many tokens are unknown."""
    line = (
        f"{report['longer_than_max_length']:,} of {report['texts']:,} training texts are longer than "
        f"{report['max_length']} tokens and will be cut; unknown tokens: {report['unknown_token_rate']:.1%}"
    )
    if report["unknown_token_rate"] > UNKNOWN_WARNING:
        line += (
            f"\nwarning: {report['unknown_token_rate']:.0%} of the tokens are {report['unknown_token']}: the model's "
            "vocabulary does not cover this text's script, so it reads little of it; choose a model that does (--model)"
        )
    return line
