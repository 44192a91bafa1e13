"""README and the welcome notebook say every lesson has exercises: each lesson of the course map has both notebooks."""

from pathlib import Path

import pytest

from ftlearn.course import LESSONS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.file)
def test_every_lesson_has_a_solutions_and_an_exercises_notebook(lesson):
    assert (ROOT / "solutions" / lesson.file).exists(), f"solutions/{lesson.file} is missing"
    assert (ROOT / "exercises" / lesson.file).exists(), f"run `ftlearn exercises` for {lesson.file}"


def test_readme_still_makes_the_claim_this_file_tests():
    assert "Each lesson has" in (ROOT / "README.md").read_text(encoding="utf-8")
