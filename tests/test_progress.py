"""`ftlearn progress`: every check's verdict from headless runs; failed notebooks reported, the rest still run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from ftlearn.cli import main
from ftlearn.course import repo_root

ROOT = repo_root(Path(__file__).parent)


def _notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('PROFILE = "auto"')] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)


def _report(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["progress", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_usage_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["progress", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["progress", str(tmp_path)]) == 2
    assert "no notebooks" in capsys.readouterr().err
    _notebook(tmp_path / "01_x.ipynb", "1 + 1")
    assert main(["progress", str(tmp_path), "--profile", "huge"]) == 2
    assert "huge" in capsys.readouterr().err


@pytest.mark.slow
def test_a_notebook_that_fails_to_run_is_reported_and_the_others_still_run(tmp_path, capsys):
    _notebook(
        tmp_path / "01_mixed.ipynb",
        "from ftlearn.checks import check_mean_length, check_positive_fraction, check_quiz",
        "check_mean_length(lambda texts: 0.0)",  # wrong
        "def positive_fraction(labels):\n    raise NotImplementedError\ncheck_positive_fraction(positive_fraction)",
        "undefined_name",  # a cell error does not stop the run
        'check_quiz("04", {"q1": 0.001, "q2": "b", "q3": 0.5})',  # all right
        "check_mean_length(lambda texts: sum(len(t.split()) for t in texts) / len(texts))",  # latest verdict counts
    )
    (tmp_path / "02_not_json.ipynb").write_text("{not json", encoding="utf-8")
    _notebook(tmp_path / "03_kernel_dies.ipynb", "import os\nos._exit(1)")
    _notebook(tmp_path / "04_after.ipynb", "from ftlearn.checks import check_mean_length", "check_mean_length(len)")
    code, report = _report(capsys, str(tmp_path))
    assert code == 1  # some notebook failed to run
    by_name = {nb["notebook"]: nb for nb in report["notebooks"]}
    mixed = by_name["01_mixed.ipynb"]
    assert mixed["ran"] and mixed["lesson"] == "01"
    assert mixed["exercises"] == [
        {"exercise": "mean_length", "status": "correct"},
        {"exercise": "positive_fraction", "status": "not attempted"},
        {"exercise": "quiz_04", "status": "correct"},
    ]
    assert mixed["cell_errors"] == ["cell 4: NameError"]  # numbered as in the file: the injected cell not counted
    assert not by_name["02_not_json.ipynb"]["ran"] and "not JSON" in by_name["02_not_json.ipynb"]["error"]
    assert not by_name["03_kernel_dies.ipynb"]["ran"] and by_name["03_kernel_dies.ipynb"]["error"]
    assert by_name["04_after.ipynb"]["exercises"] == [{"exercise": "mean_length", "status": "wrong"}]
    assert report["summary"] == {"correct": 2, "wrong": 1, "not attempted": 1, "failed to run": 2}
    assert main(["progress", str(tmp_path)]) == 1
    table = capsys.readouterr().out
    assert re.search(r"^02 +02_not_json\.ipynb +- +failed to run: ", table, re.MULTILINE), table
    assert re.search(r"^01 +01_mixed\.ipynb +quiz_04 +correct$", table, re.MULTILINE), table


def _lessons_with_exercises() -> set[str]:
    return {p.name for p in (ROOT / "solutions").glob("*.ipynb")}


@pytest.mark.slow
def test_progress_on_the_solutions_is_correct_everywhere(capsys):
    code, report = _report(capsys, str(ROOT / "solutions"))
    assert code == 0, report
    assert {nb["notebook"] for nb in report["notebooks"]} == _lessons_with_exercises()
    for nb in report["notebooks"]:
        assert nb["ran"] and nb["exercises"], nb
        assert all(row["status"] == "correct" for row in nb["exercises"]), nb
        if nb["lesson"] != "00":
            assert f"quiz_{nb['lesson']}" in [row["exercise"] for row in nb["exercises"]], nb["notebook"]
    assert report["summary"]["correct"] >= 48 and report["summary"]["wrong"] == 0


# Run All of every generated exercise notebook, stubs unanswered, is checked once, as a learner gets it: from a
# wheel install with empty caches (tests/test_learner_path.py), through this same `ftlearn progress --json`.
