"""docs/instructors.md: its generated parts (times, plans, goals, known mistakes) match the course."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ftlearn.authoring.guide import GUIDE, PLANS, checks_by_notebook, sections, with_generated_sections
from ftlearn.course import LESSONS, repo_root

ROOT = repo_root(Path(__file__).parent)


def _guide() -> str:
    return (ROOT / GUIDE).read_text(encoding="utf-8")


def test_the_generated_parts_are_current():
    text = _guide()
    assert with_generated_sections(text, ROOT) == text, "run `ftlearn headers`"


def test_the_quoted_run_times_are_timings_json_s():
    timings = json.loads((ROOT / "ftlearn" / "timings.json").read_text(encoding="utf-8"))
    text = _guide()
    for lesson in LESSONS:
        row = next(line for line in text.splitlines() if line.startswith(f"| {lesson.file[:2]} · "))
        for profile in ("smoke", "cpu"):
            seconds = timings.get(lesson.file, {}).get(profile, {}).get("seconds")
            if seconds is None:
                continue
            shown = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
            assert f"| {shown} " in row + " ", (lesson.file, profile, row)
    # no run time in the guide's prose that the generated tables do not hold
    generated = "\n".join(sections(ROOT).values())
    for figure in re.findall(r"\b\d+(?:\.\d+)? (?:s|min)\b", text):
        assert figure in generated, figure


def test_every_plan_covers_each_lesson_once_and_two_days_cover_them_all():
    for blocks in PLANS.values():
        lessons = [n for block in blocks for n in block.lessons]
        assert len(lessons) == len(set(lessons))
    assert {n for block in PLANS["two-day"] for n in block.lessons} == {lesson.file[:2] for lesson in LESSONS}


def test_every_exercise_and_its_known_mistakes_are_listed():
    from ftlearn.checks.core import known

    text = _guide()
    for names in checks_by_notebook(ROOT).values():
        for name in names:
            assert f"**`check_{name}`**" in text, name
            for mistake in known(name)["mistakes"]:
                assert mistake.hint in text, (name, mistake.hint)


def test_readme_links_the_guide():
    assert "(docs/instructors.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
