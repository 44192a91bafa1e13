"""Make exercise notebooks from solution notebooks: answers become stubs, outputs are dropped.

`solutions/NN_topic.ipynb` is the single source. Inside its code cells, the lines between
`### BEGIN SOLUTION` and `### END SOLUTION` are the answer; the generator replaces them with
`raise NotImplementedError(...)` at the same indentation. Run `ftlearn exercises` after editing a
solution; `ftlearn exercises --check` (and the test suite) fails when `exercises/` is stale.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from ftlearn.authoring.tidy import tidy
from ftlearn.course import apply_header

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: replace this line with your code, then run the check below.")'
SOLUTIONS_NOTE = "<!-- solutions-only -->"


class ExerciseFormatError(ValueError):
    """A solution notebook whose markers do not pair up."""


def stub_source(source: str, where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION block in a cell's source by a NotImplementedError stub."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ExerciseFormatError(f"{where}, line {number}: {BEGIN} inside another solution block.")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + STUB)
        elif marker == END:
            if not inside:
                raise ExerciseFormatError(f"{where}, line {number}: {END} without a {BEGIN} before it.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ExerciseFormatError(f"{where}: {BEGIN} is never closed by {END}.")
    return "\n".join(out)


def make_exercise(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """Return the exercise version of a solution notebook (stubs in, outputs and answers-only notes out)."""
    nb = copy.deepcopy(solution)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and SOLUTIONS_NOTE in cell.source:
            continue  # prose that discusses the answer stays in solutions/ only
        if cell.cell_type == "code":
            cell.source = stub_source(cell.source, where=f"{name}, cell {index}")
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cells.append(cell)
    nb.cells = cells
    apply_header(nb, f"exercises/{name}")  # the Colab link must open the exercise, not the solution
    tidy(nb)  # ipykernel's kernelspec, no widget state: the exercise must not open as already modified
    nb.metadata.pop("ftlearn", None)  # run stamps belong to the executed solutions
    nb.metadata.setdefault("ftlearn", {})["generated_from"] = f"solutions/{name}"
    return nb


def _render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def sync(solutions_dir: Path, exercises_dir: Path, check_only: bool = False) -> list[str]:
    """Write (or with check_only, compare) every exercise; return the names that were stale."""
    from ftlearn.files import write_text_atomic

    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    stale: list[str] = []
    wanted = set()
    for path in sorted(solutions_dir.glob("*.ipynb")):
        wanted.add(path.name)
        text = _render(make_exercise(nbformat.read(path, as_version=4), path.name))
        target = exercises_dir / path.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not check_only:
                exercises_dir.mkdir(parents=True, exist_ok=True)
                write_text_atomic(target, text)  # a rename: an exercise is never seen half-written
    for orphan in sorted(p.name for p in exercises_dir.glob("*.ipynb") if p.name not in wanted):
        stale.append(orphan)
        if not check_only:
            (exercises_dir / orphan).unlink()
    return stale


def count_stubs(nb: nbformat.NotebookNode) -> int:
    """How many stubs an exercise notebook has (one per answer block)."""
    return sum(len(re.findall(re.escape(STUB), c.source)) for c in nb.cells if c.cell_type == "code")
