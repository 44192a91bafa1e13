"""The generated parts of docs/instructors.md: run times, workshop plans, learning goals, the checks' known mistakes.

Each part sits between `<!-- guide:NAME:start -->` and `<!-- guide:NAME:end -->` and is rebuilt by
`ftlearn headers` from what the course itself holds: `ftlearn/timings.json` (times measured by
`ftlearn run --record`), each lesson's "Learning goals" list, and each check's table of known mistakes,
so the guide cannot drift from them. A test fails when the file is stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ftlearn.course import LESSONS, TIMINGS_FILE, load_timings

GUIDE = Path("docs") / "instructors.md"
PROFILES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Block:
    """One workshop block: a title and the lessons (two-digit numbers) it covers."""

    title: str
    lessons: tuple[str, ...]


PLANS: dict[str, tuple[Block, ...]] = {
    "one-day": (
        Block("Morning 1 · probability and the loss", ("00", "01", "02")),
        Block("Morning 2 · learning: gradients and Adam", ("03", "04")),
        Block("Afternoon 1 · tokens and the transformer", ("05", "06")),
        Block("Afternoon 2 · fine-tuning BERT by hand", ("07",)),
    ),
    "two-day": (
        Block("Day 1, morning 1 · welcome, a language model by counting", ("00", "01")),
        Block("Day 1, morning 2 · cross-entropy and its gradient", ("02", "03")),
        Block("Day 1, afternoon 1 · Adam, AdamW and schedules", ("04",)),
        Block("Day 1, afternoon 2 · tokens and the transformer", ("05", "06")),
        Block("Day 2, morning 1 · fine-tuning BERT by hand", ("07",)),
        Block("Day 2, morning 2 · the same with the Trainer", ("08",)),
        Block("Day 2, afternoon 1 · GPT-2: language model and classifier", ("09", "10")),
        Block("Day 2, afternoon 2 · the cost of full fine-tuning, and LoRA, a frozen body, distillation", ("11", "12")),
        Block("Day 2, close · the capstone: your own data", ("13",)),
    ),
}


def _lesson_file(number: str) -> str:
    return next(lesson.file for lesson in LESSONS if lesson.file.startswith(number))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not timed"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _seconds(timings: dict, lessons: tuple[str, ...], profile: str) -> float | None:
    values = [timings.get(_lesson_file(n), {}).get(profile, {}).get("seconds") for n in lessons]
    return None if any(v is None for v in values) else sum(values)


def times_table(timings: dict) -> str:
    """Each lesson's measured run time per profile, and the machines they were measured on."""
    rows = ["| lesson | " + " | ".join(PROFILES) + " |", "|---|" + "---|" * len(PROFILES)]
    machines = set()
    for lesson in LESSONS:
        entry = timings.get(lesson.file, {})
        cells = [_duration(entry.get(p, {}).get("seconds")) for p in PROFILES]
        machines |= {entry[p]["hardware"] for p in PROFILES if p in entry}
        rows.append(f"| {lesson.file[:2]} · {lesson.title} | " + " | ".join(cells) + " |")
    where = "; ".join(sorted(machines)) or "no machine yet"
    return (
        "\n".join(rows)
        + f"\n\nMeasured on: {where} (from `ftlearn/{TIMINGS_FILE}`, written by `ftlearn run --record`)."
    )


def plan_table(plan: str, timings: dict) -> str:
    """A workshop plan: its blocks, their lessons, and the lessons' measured run times added up."""
    rows = ["| block | lessons | run time, smoke | run time, cpu |", "|---|---|---|---|"]
    for block in PLANS[plan]:
        names = ", ".join(f"{n} {_lesson_title(n)}" for n in block.lessons)
        smoke, cpu = (_duration(_seconds(timings, block.lessons, p)) for p in ("smoke", "cpu"))
        rows.append(f"| {block.title} | {names} | {smoke} | {cpu} |")
    return "\n".join(rows)


def _lesson_title(number: str) -> str:
    return next(lesson.title for lesson in LESSONS if lesson.file.startswith(number))


def lesson_goals(root: Path, number: str) -> list[str]:
    """The bullets of a lesson notebook's "Learning goals" list (empty when it has none)."""
    import nbformat

    path = root / "notebooks" / _lesson_file(number)
    if not path.exists():
        return []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown" and "**Learning goals**" in cell.source:
            text = cell.source.split("**Learning goals**", 1)[1]
            bullets, current = [], ""
            for line in text.splitlines()[1:]:
                if line.startswith("- "):
                    if current:
                        bullets.append(current)
                    current = line[2:].strip()
                elif line.startswith("  ") and current:
                    current += " " + line.strip()
                else:
                    break
            return bullets + ([current] if current else [])
    return []


def goals_section(root: Path, plan: str) -> str:
    """Learning goals per block of a plan, from the lessons' own lists."""
    parts = []
    for block in PLANS[plan]:
        parts.append(f"**{block.title}**")
        for number in block.lessons:
            goals = lesson_goals(root, number)
            if goals:
                parts.append(f"- *{number} {_lesson_title(number)}*: " + "; ".join(g.rstrip(".;") for g in goals) + ".")
            else:
                parts.append(f"- *{number} {_lesson_title(number)}*: see the notebook's introduction.")
        parts.append("")
    return "\n".join(parts).rstrip()


def checks_by_notebook(root: Path) -> dict[str, list[str]]:
    """The exercise checks each solution notebook calls, in order ("04_adam.ipynb" -> ["momentum_step", ...])."""
    import nbformat

    from ftlearn.checks.core import registered

    known = registered()
    out: dict[str, list[str]] = {}
    for path in sorted((root / "solutions").glob("*.ipynb")):
        names: list[str] = []
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                for name in re.findall(r"\bcheck_(\w+)\(", cell.source):
                    if name in known and name not in names:
                        names.append(name)
        out[path.name] = names
    return out


def mistakes_section(root: Path) -> str:
    """Per exercise, the mistakes its check recognises: the kind (whose nudge comes first) and the hint."""
    from ftlearn.checks.core import known

    parts = []
    for notebook, names in checks_by_notebook(root).items():
        if not names:
            continue
        parts.append(f"#### `solutions/{notebook}`\n")
        for name in names:
            info = known(name)
            parts.append(f"- **`check_{name}`**")
            for mistake in info["mistakes"]:
                parts.append(f"  - *{mistake.kind.replace('_', ' ')}*: {mistake.hint}")
            if info["hint"]:
                parts.append(f"  - *anything else*: {info['hint']}")
        parts.append("")
    return "\n".join(parts).rstrip()


def sections(root: Path) -> dict[str, str]:
    """Every generated part of the guide, by marker name."""
    timings = load_timings(root / "ftlearn" / TIMINGS_FILE)
    return {
        "times": times_table(timings),
        "plan-one-day": plan_table("one-day", timings),
        "goals-one-day": goals_section(root, "one-day"),
        "plan-two-day": plan_table("two-day", timings),
        "goals-two-day": goals_section(root, "two-day"),
        "mistakes": mistakes_section(root),
    }


def with_generated_sections(text: str, root: Path) -> str:
    """`text` (the guide) with every marked part replaced by its generated content."""
    for name, body in sections(root).items():
        start, end = f"<!-- guide:{name}:start -->", f"<!-- guide:{name}:end -->"
        i, j = text.find(start), text.find(end)
        if i < 0 or j < i:
            raise ValueError(f"{GUIDE} needs the lines {start} and {end}, in that order.")
        text = f"{text[: i + len(start)]}\n\n{body}\n\n{text[j:]}"
    return text
