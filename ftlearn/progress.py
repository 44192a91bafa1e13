"""`ftlearn progress`: run every exercise notebook of a folder headless and report each check's verdict.

Each check keeps its verdict in its kernel (`ftlearn.checks.outcomes()`); after a notebook's own cells
(run with errors allowed, as a learner's half-done notebook has them), one more cell prints those
verdicts as a JSON line after a marker, which is read back here. Nothing is written to the notebooks.
A notebook that cannot be run (not a notebook, a dead kernel, a timeout) is reported as such and the
others still run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ftlearn.checks.core import CORRECT, NOT_ATTEMPTED, STRICT_ENV, WRONG

MARKER = "FTLEARN-PROGRESS "
FAILED = "failed to run"
_EPILOGUE = (
    "import json as _ftlearn_json\n"
    "from ftlearn.checks import outcomes as _ftlearn_outcomes\n"
    f"print({MARKER!r} + _ftlearn_json.dumps(_ftlearn_outcomes()))"
)


@dataclass
class NotebookProgress:
    """The verdicts of one notebook's checks, or why it could not be run."""

    notebook: str
    exercises: list[dict[str, str]] = field(default_factory=list)  # {"exercise", "status"}, in the order checked
    error: str = ""  # set when the notebook could not be run: then `exercises` is empty
    cell_errors: list[str] = field(default_factory=list)  # "cell N: Name" of cells that raised (stubs included)
    seconds: float = 0.0

    @property
    def lesson(self) -> str:
        """The lesson number from the file name ("04" for 04_adam.ipynb), or the name without .ipynb."""
        stem = Path(self.notebook).stem
        return stem[:2] if stem[:2].isdigit() else stem


def _read_marker(nb) -> list[dict[str, str]] | None:
    for output in nb.cells[-1].get("outputs", []):
        for line in str(output.get("text", "")).splitlines():
            if line.startswith(MARKER):
                return json.loads(line[len(MARKER) :])
    return None


def _cell_errors(nb) -> list[str]:
    """Each cell that raised, as "cell N: Name", N counted as the learner's file has them (no injected cell)."""
    from ftlearn.authoring.nbrun import INJECTED_TAG

    errors = []
    cells = [c for c in nb.cells[:-1] if INJECTED_TAG not in c.metadata.get("tags", [])]  # [:-1]: the epilogue
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"cell {index}: {output.get('ename')}")
    return errors


def notebook_progress(path: Path, profile: str = "smoke", timeout: int = 600) -> NotebookProgress:
    """Run one exercise notebook (errors allowed) and collect the verdict of every check it ran."""
    import nbformat

    from ftlearn.authoring.nbrun import inject_parameters, notebook_problem, run_cells

    path = Path(path)
    start = time.perf_counter()
    problem = notebook_problem(path)
    if problem:
        return NotebookProgress(path.name, error=problem)
    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, {"PROFILE": profile})
    nb.cells.append(nbformat.v4.new_code_cell(_EPILOGUE))
    # the learner's setting: a check answers, it never raises (the test suite's strict mode is for solutions)
    stopped = run_cells(nb, path.parent, timeout=timeout, allow_errors=True, env={STRICT_ENV: "0"})
    seconds = time.perf_counter() - start
    verdicts = None if stopped else _read_marker(nb)
    if verdicts is None:
        why = stopped or "the checks' verdicts could not be read back (did a cell stop the kernel?)"
        return NotebookProgress(path.name, error=why, cell_errors=_cell_errors(nb), seconds=seconds)
    return NotebookProgress(path.name, verdicts, cell_errors=_cell_errors(nb), seconds=seconds)


def folder_progress(
    folder: Path, profile: str = "smoke", timeout: int = 600, echo: bool = False
) -> list[NotebookProgress]:
    """`notebook_progress` for every .ipynb in `folder`, in name order."""
    results = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        if echo:
            print(f"running {path} ...", flush=True)
        results.append(notebook_progress(path, profile=profile, timeout=timeout))
    return results


def summary(results: list[NotebookProgress]) -> dict[str, int]:
    """How many exercises are correct, wrong and not attempted, and how many notebooks failed to run."""
    counts = {CORRECT: 0, WRONG: 0, NOT_ATTEMPTED: 0}
    for result in results:
        for row in result.exercises:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
    counts[FAILED] = sum(1 for r in results if r.error)
    return counts


def as_table(results: list[NotebookProgress]) -> str:
    """A plain-text table: lesson, notebook, exercise, status (one row per check, one per failed notebook)."""
    rows = [("lesson", "notebook", "exercise", "status")]
    for r in results:
        if r.error:
            rows.append((r.lesson, r.notebook, "-", f"{FAILED}: {r.error}"))
        elif not r.exercises:
            rows.append((r.lesson, r.notebook, "-", "no checks ran"))
        rows += [(r.lesson, r.notebook, row["exercise"], row["status"]) for row in r.exercises]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    counts = summary(results)
    lines.append("")
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items()))
    return "\n".join(lines)


def as_json(results: list[NotebookProgress], folder: Path, profile: str) -> dict:
    """The report as one JSON-ready dict, for a teacher who collects them."""
    return {
        "folder": str(folder),
        "profile": profile,
        "notebooks": [
            {
                "notebook": r.notebook,
                "lesson": r.lesson,
                "ran": not r.error,
                "error": r.error,
                "seconds": round(r.seconds, 1),
                "cell_errors": r.cell_errors,
                "exercises": r.exercises,
            }
            for r in results
        ],
        "summary": summary(results),
    }
