"""No hand-written time promise: how long a lesson takes is measured (`ftlearn run --record`, ftlearn/timings.json)
and shown from that record (the course map, `ftlearn doctor`'s profile row, the instructors' guide's generated
tables), never typed into prose, where it goes stale (issue 28)."""

import json
import re
from pathlib import Path

import pytest

from ftlearn import course
from ftlearn.runtime import PROFILES

ROOT = Path(__file__).resolve().parent.parent
AMOUNT = r"(?:a|an|one|a few|a couple of|\d+(?:[.,]\d+)?(?:\s*(?:-|–|to)\s*\d+(?:[.,]\d+)?)?)"
PROMISE = re.compile(
    rf"\b(?:in|under|within|about|at most|less than|takes?|only|around)\s+(?:about\s+|roughly\s+)?{AMOUNT}\s+"
    r"(?:seconds?|minutes?|mins?|hours?)\b(?!\s+of\s+(?:device|GPU|CPU))"
    r"|\bwithin minutes\b|\bin minutes\b",
    re.IGNORECASE,
)
GENERATED = re.compile(r"<!-- (\S+):start.*?<!-- \1:end -->", re.DOTALL)  # blocks a tool writes from the record


def prose_files() -> list[Path]:
    """Where a learner or a teacher reads about run times: README, docs, and the markdown of every notebook."""
    folders = ("notebooks", "exercises", "solutions")
    notebooks = [p for folder in folders for p in sorted((ROOT / folder).glob("*.ipynb"))]
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *notebooks]


def prose(path: Path) -> str:
    """What a reader reads: a notebook's markdown and code comments; a Markdown file without its generated blocks."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        parts = []
        for cell in cells:
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                parts.append(source)
            elif cell["cell_type"] == "code":
                parts += [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]
        return "\n".join(parts)
    return GENERATED.sub("", path.read_text(encoding="utf-8"))


def promises(text: str) -> list[str]:
    """Every phrase of `text` that promises a duration."""
    return [m.group(0) for m in PROMISE.finditer(text)]


@pytest.mark.parametrize("phrase", ["in a minute on a laptop", "within minutes", "at most about 10-15 minutes",
                                    "about a minute per notebook", "takes 3 minutes", "under 5 min"])  # fmt: skip
def test_the_guard_catches_a_promise(phrase):
    assert promises(f"The lesson runs {phrase} here."), phrase


@pytest.mark.parametrize("phrase", ["pretrained for minutes", "15 minutes of device time", "train for 2 epochs"])
def test_the_guard_leaves_other_sentences(phrase):
    assert not promises(phrase), phrase


def test_no_prose_promises_a_run_time():
    found = {str(p.relative_to(ROOT)): promises(prose(p)) for p in prose_files()}
    found = {name: phrases for name, phrases in found.items() if phrases}
    assert not found, f"hand-written time promises (say it from ftlearn/timings.json instead): {found}"


def test_profiles_promise_no_time_and_the_record_says_it():
    for profile in PROFILES.values():
        assert not promises(profile.description), profile.description
    timings = {lesson.file: {"cpu": {"seconds": 60.0 * (i + 1), "hardware": "2 cores"}}
               for i, lesson in enumerate(course.LESSONS)}  # fmt: skip
    timings[course.BUILD_TIMING_KEY] = {"cpu": {"seconds": 60.0, "hardware": "2 cores"}}
    n = len(course.LESSONS)
    total = n * (n + 1) / 2 + 1
    expected = f"measured: 1.0 to {n:.0f} min per lesson, {total:.0f} min for all {n} with the offline GPT-2 build"
    expected += ", on 2 cores"
    assert course.time_promise("cpu", timings) == expected
    assert course.time_promise("gpu", timings) == "not measured yet in the gpu profile"
    del timings[course.LESSONS[0].file]
    assert f"for the {n - 1} of {n} measured" in course.time_promise("cpu", timings)
    builder = course.first_lesson_needing("gpt2").file
    timings[builder]["cpu"]["found_at_start"] = ["runs/bert-cpu"]  # lesson 00 (1 min) gone; 06 built GPT-2 itself
    assert f"{total - 2:.0f} min for the {n - 1} of {n} measured, on" in course.time_promise("cpu", timings)
