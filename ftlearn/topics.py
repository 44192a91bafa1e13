"""A labelled data set of more than two classes that ships with a package: which topic a chat line comes from.

Introduced in notebook 13 (your own data). The PyPI package `chatterbot-corpus` installs YAML files of short
dialogues, one file per topic (`chatterbot_corpus/data/<language>/<topic>.yml`, key `conversations`: a list of
exchanges, each a list of lines). Every line of a topic's file is one text labelled with that topic. Nothing is
downloaded: the files are found inside the installed package with `importlib.resources`, and the train/test split
is stratified and seeded, so the same corpus version always gives the same two CSV files.

The corpus repeats itself (tech_support's 2,100 lines hold 20 distinct ones), so texts are deduplicated within a
topic, and a text that appears under two topics is dropped from both: it has no one right answer.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ftlearn.labelled import LabelledDataError

PACKAGE = "chatterbot_corpus"
DISTRIBUTION = "chatterbot-corpus"
# Five English topics with over a hundred distinct lines each after deduplication, and unequal: trivia holds
# about four times as many as psychology, an imbalance lesson 13 measures class weights against.
TOPICS = ("ai", "coding", "emotion", "psychology", "trivia")
MIN_CHARACTERS = 3  # shorter lines ("n", "ok") say nothing about their topic
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class TopicTexts:
    """The corpus as texts and topic names, in a fixed order, with what deduplication removed."""

    texts: list[str]
    labels: list[str]
    lines_read: dict[str, int]  # every line of each topic's file, repeats included
    shared_dropped: int  # distinct texts that appeared under two topics or more, dropped

    def counts(self) -> dict[str, int]:
        """Texts per topic, in topic order."""
        return {topic: self.labels.count(topic) for topic in dict.fromkeys(self.labels)}


def corpus_folder(language: str = "english") -> Path:
    """The folder of one language's YAML files inside the installed package; a one-line error when it is missing."""
    from importlib.resources import files

    try:
        root = files(PACKAGE)
    except ModuleNotFoundError:
        raise LabelledDataError(
            f"the `{DISTRIBUTION}` package is not installed: `pip install {DISTRIBUTION}` (ftlearn depends on it)."
        ) from None
    folder = Path(str(root.joinpath("data", language)))
    if not folder.is_dir():
        have = ", ".join(sorted(p.name for p in folder.parent.iterdir() if p.is_dir()))
        raise LabelledDataError(f"{DISTRIBUTION} has no language {language!r}; it has {have}.")
    return folder


def available_topics(language: str = "english") -> list[str]:
    """The topics (file names without .yml) of one language, sorted."""
    return sorted(p.stem for p in corpus_folder(language).glob("*.yml"))


def corpus_licence() -> dict[str, str]:
    """What the installed package says about itself: version, and its licence as its metadata states it.

    The wheel holds no licence file; its metadata has a `License ::` classifier (and, in some versions, a License
    field). Both are returned as written, for a lesson to print.
    """
    from importlib.metadata import metadata

    meta = metadata(DISTRIBUTION)
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return {
        "package": DISTRIBUTION,
        "version": meta["Version"],
        "license_classifier": "; ".join(classifiers) or "none",
        "license_field": (meta.get("License") or "").strip() or "none",
        "repository": next(
            (u.split(",", 1)[1].strip() for u in meta.get_all("Project-URL") or [] if u.startswith("Repository")), ""
        ),
    }


def _lines(path: Path) -> list[str]:
    """Every line of one topic's file, stripped, in file order: the `conversations` lists, flattened."""
    import yaml  # PyYAML: a dependency of transformers and huggingface-hub

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [str(line).strip() for exchange in data.get("conversations") or [] for line in exchange]


def read_topics(topics: tuple[str, ...] | list[str] = TOPICS, language: str = "english") -> TopicTexts:
    """The distinct lines of each topic's file, labelled with the topic; lines shared by topics dropped.

    Order: topics as given, lines in the order they first appear in their file (deterministic for a corpus version).
    """
    folder = corpus_folder(language)
    if len(set(topics)) < 2:
        raise LabelledDataError(f"give two topics or more, got {list(topics)}.")
    per_topic, lines_read = {}, {}
    for topic in topics:
        path = folder / f"{topic}.yml"
        if not path.is_file():
            raise LabelledDataError(
                f"{DISTRIBUTION} has no topic {topic!r} in {language}; it has {', '.join(available_topics(language))}."
            )
        lines = _lines(path)
        lines_read[topic] = len(lines)
        per_topic[topic] = list(dict.fromkeys(t for t in lines if len(t) >= MIN_CHARACTERS))
    seen: dict[str, int] = {}
    for distinct in per_topic.values():
        for text in distinct:
            seen[text] = seen.get(text, 0) + 1
    shared = {text for text, n in seen.items() if n > 1}
    texts, labels = [], []
    for topic, distinct in per_topic.items():
        kept = [t for t in distinct if t not in shared]
        texts += kept
        labels += [topic] * len(kept)
    return TopicTexts(texts, labels, lines_read, len(shared))


def split_topics(corpus: TopicTexts, test_fraction: float = TEST_FRACTION, seed: int = 0) -> dict[str, TopicTexts]:
    """A stratified, seeded train/test split (`ftlearn.data.stratified_split`, the course's one way to stratify)."""
    import math

    import datasets

    from ftlearn.data import stratified_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}.")
    names = list(dict.fromkeys(corpus.labels))
    ids = [names.index(label) for label in corpus.labels]
    ds = datasets.Dataset.from_dict({"text": corpus.texts, "label": ids})
    test, train = stratified_split(ds, math.ceil(test_fraction * len(ds)), seed)
    return {
        split: TopicTexts(part["text"], [names[i] for i in part["label"]], corpus.lines_read, corpus.shared_dropped)
        for split, part in (("train", train), ("test", test))
    }


def to_csv(part: TopicTexts) -> str:
    """A CSV with a header `text,label` and one row per text: what `ftlearn finetune --train FILE` reads."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(zip(part.texts, part.labels, strict=True))
    return buffer.getvalue()


def write_topic_files(
    folder: str | Path,
    topics: tuple[str, ...] | list[str] = TOPICS,
    language: str = "english",
    test_fraction: float = TEST_FRACTION,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write `train.csv` and `test.csv` of the topic corpus into `folder` (each written whole, then renamed).

    Returns their paths; the same arguments and corpus version write the same bytes.
    """
    from ftlearn.files import write_text_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = split_topics(read_topics(topics, language), test_fraction, seed)
    paths = folder / "train.csv", folder / "test.csv"
    for path, split in zip(paths, ("train", "test"), strict=True):
        write_text_atomic(path, to_csv(parts[split]))
    return paths
