"""README's course map is generated from ftlearn.course.LESSONS, the single list of lessons."""

from pathlib import Path

import pytest

from ftlearn import course

ROOT = Path(__file__).resolve().parents[1]


def test_readme_course_map_is_the_one_lessons_renders():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert course.with_course_map(readme) == readme, "README's course map differs from LESSONS: run `ftlearn headers`"


def test_the_table_has_a_row_per_lesson_and_replaces_only_what_is_between_the_markers():
    table = course.course_map_table()
    assert len(table.splitlines()) == 2 + len(course.LESSONS)
    assert all(f"(notebooks/{lesson.file})" in table and lesson.teaches in table for lesson in course.LESSONS)
    stale = f"intro\n{course.README_MAP_START}\n| old | table |\n{course.README_MAP_END}\nrest\n"
    fresh = course.with_course_map(stale)
    assert fresh.startswith("intro\n") and fresh.endswith(f"{course.README_MAP_END}\nrest\n")
    assert "| old | table |" not in fresh and table in fresh
    assert course.with_course_map(fresh) == fresh
    with pytest.raises(ValueError, match="course-map"):
        course.with_course_map("a README without the markers")


def test_welcome_map_shows_plain_text():
    rows = course.course_map()
    assert [row["notebook"] for row in rows] == [lesson.file for lesson in course.LESSONS]
    assert not any("`" in row["teaches"] for row in rows)  # backticks are README markdown, not table values


def test_source_markdown_shows_the_library_s_own_code():
    import inspect

    from ftlearn.course import source_markdown
    from ftlearn.transformer import causal_mask, gelu

    text = source_markdown(causal_mask, gelu)
    assert text.startswith("```python\ndef causal_mask(") and text.endswith("\n```")
    assert inspect.getsource(gelu).rstrip() in text and text.count("```") == 2
