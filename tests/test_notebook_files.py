"""The committed notebooks: headers, run stamps, outputs that render, exercises that stop cleanly at the first stub."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from ftlearn.authoring.exercises import STUB, make_exercise
from ftlearn.authoring.nbrun import code_hash
from ftlearn.authoring.tidy import ipykernel_kernelspec
from ftlearn.course import LESSONS, NOTEBOOK_DIRS, header_is_current

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
EVERY_NOTEBOOK = [p for d in NOTEBOOK_DIRS for p in sorted((ROOT / d).glob("*.ipynb"))]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_there_are_notebooks_to_test():
    assert NOTEBOOKS and SOLUTIONS and EXERCISES  # never pass by finding nothing


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=rel)
def test_every_notebook_starts_with_the_current_header(path):
    assert header_is_current(nbformat.read(path, as_version=4), rel(path)), "run `ftlearn headers`"


# What a learner saw in JupyterLab before running a cell (issue 17), and what GitHub's viewer shows too.
RAW_REPRS = ("interactive(children=", "HBox(children=", "VBox(children=", "Error displaying widget")
TEXT_PROGRESS_BAR = re.compile(r"\d+/\d+ \[\d+:\d+[^\]]*\]")  # tqdm: "0/226 [00:00<?, ?step/s]", "1/1 [..., 3.1it/s]"


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=rel)
def test_saved_outputs_render_without_a_live_kernel(path):
    """No widget view, raw widget repr or text progress bar among the outputs; no widget state left behind."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                found.append(f"cell {index}: a widget view")
            text = json.dumps([output.get("text", ""), output.get("data", {}).get("text/plain", "")])
            found += [f"cell {index}: {r}" for r in RAW_REPRS if r in text]
            found += [f"cell {index}: progress bar {m!r}" for m in TEXT_PROGRESS_BAR.findall(text)]
    assert not found and "widgets" not in nb["metadata"], f"run `ftlearn tidy`: {found[:5]}"


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=rel)
def test_kernelspec_is_ipykernels_own_so_the_notebook_opens_unmodified(path):
    kernelspec = nbformat.read(path, as_version=4).metadata.get("kernelspec")
    assert kernelspec == ipykernel_kernelspec(), f"run `ftlearn tidy`: {kernelspec}"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=rel)
def test_committed_outputs_come_from_the_committed_code(path):
    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata.get("ftlearn", {})
    assert stamp.get("code_sha256"), (
        f"{rel(path)} has no run stamp: run `ftlearn run {rel(path)} --profile cpu --inplace`"
    )
    assert stamp["code_sha256"] == code_hash(nb), (
        f"code changed after the outputs were made: re-run `ftlearn run {rel(path)} --profile {stamp['profile']} "
        "--inplace`"
    )
    assert stamp["profile"] in ("smoke", "cpu", "gpu") and stamp["hardware"]
    errors = [
        o
        for c in nb.cells
        if "raises-exception" not in c.metadata.get("tags", [])
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors, f"{rel(path)} was committed with an error output"


def shows_a_figure(source: str) -> bool:
    """True when the cell itself calls plt.show() (not merely inside a function it defines)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax (magics): fall back to a plain search
        return "plt.show()" in source
    inside_defs = {
        id(n)
        for d in ast.walk(tree)
        if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for n in ast.walk(d)
    }
    return any(
        isinstance(node, ast.Call) and ast.unparse(node.func) == "plt.show" and id(node) not in inside_defs
        for node in ast.walk(tree)
    )


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=rel)
def test_every_cell_that_shows_a_figure_kept_it(path):
    """A reader on GitHub must see the plots: each cell calling plt.show() carries an image."""
    nb = nbformat.read(path, as_version=4)
    missing = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and shows_a_figure(cell.source)
        and not any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
    ]
    assert not missing, (
        f"{rel(path)}: cells {missing} call plt.show() but have no image output (re-run with `ftlearn run --inplace`)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_lessons_have_parameters_and_are_on_the_course_map(path):
    nb = nbformat.read(path, as_version=4)
    assert path.name in {lesson.file for lesson in LESSONS}
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'PROFILE = "auto"' in params[0].source


@pytest.mark.parametrize("path", SOLUTIONS, ids=rel)
def test_exercise_is_generated_from_its_solution(path):
    target = ROOT / "exercises" / path.name
    assert target.exists(), "run `ftlearn exercises`"
    assert nbformat.writes(make_exercise(nbformat.read(path, as_version=4), path.name)) + "\n" == target.read_text(
        encoding="utf-8"
    )


@pytest.mark.parametrize("path", EXERCISES, ids=rel)
def test_exercises_carry_no_outputs_and_have_stubs(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert any(STUB in c.source for c in nb.cells if c.cell_type == "code")
    assert (ROOT / "solutions" / path.name).exists(), "an exercise without a solution"


# Run All of every exercise notebook with its stubs unanswered is executed once, as a learner gets it: from a wheel
# install with empty caches, every check cell reached and saying not attempted (tests/test_learner_path.py).
