"""Every lesson says what it needs, where its letters are defined and where its exercises are (issue 29).

Pure JSON reading of the committed notebooks, no kernel: the first markdown cell of a lesson (its title cell) has a
prerequisites line and a link to docs/notation.md; its markdown names its exercises notebook; a lesson that gives
the course's range of lessons gives the one of `ftlearn.course.LESSONS`.
"""

import re
from pathlib import Path

import nbformat
import pytest

from ftlearn.course import HEADER_TAG, LESSONS

ROOT = Path(__file__).resolve().parents[1]
LAST = LESSONS[-1].file[:2]  # "12"


def markdown(lesson) -> list[str]:
    nb = nbformat.read(ROOT / "notebooks" / lesson.file, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "markdown" and HEADER_TAG not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.file)
def test_the_title_cell_has_prerequisites_and_the_notation(lesson):
    title = markdown(lesson)[0]
    assert title.startswith(f"# {lesson.file[:2]} ·"), "the first markdown cell after the header is the title cell"
    assert re.search(r"\*\*Prerequisites\**:", title), f"{lesson.file}: no prerequisites line in its title cell"
    assert "](../docs/notation.md)" in title, f"{lesson.file}: its title cell does not link docs/notation.md"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.file)
def test_the_lesson_points_to_its_exercises(lesson):
    assert any(f"exercises/{lesson.file}" in source for source in markdown(lesson)), lesson.file
    assert (ROOT / "exercises" / lesson.file).is_file()


def test_the_notation_exists_and_defines_the_letters_the_lessons_use():
    text = (ROOT / "docs" / "notation.md").read_text(encoding="utf-8")
    for letter in ("$B$", "$T$", "$C$", "$H$", "$d$", "$F$", "$L$", "$V$", "$r$", "$\\alpha$", "$\\tau$", "$\\eta$"):
        assert f"| {letter} |" in text, f"docs/notation.md does not define {letter}"


def test_a_stated_range_of_lessons_ends_with_the_last_lesson():
    # "lessons 07 to 11 fine-tune ..." was written when the course ended at 11
    stale = []
    for lesson in LESSONS:
        for source in markdown(lesson):
            for first, last in re.findall(r"[Ll]essons (\d\d) to (\d\d) (?:fine-tune|train|cover)", source):
                if last != LAST:
                    stale.append(f"{lesson.file}: lessons {first} to {last}")
    assert not stale, stale
