"""ftlearn.authoring.exercises: solution blocks become stubs; stale exercise folders are detected."""

import nbformat
import pytest

from ftlearn.authoring.exercises import (
    SOLUTIONS_NOTE,
    STUB,
    ExerciseFormatError,
    count_stubs,
    make_exercise,
    stub_source,
    sync,
)
from ftlearn.course import header_is_current

SOLUTION_CELL = """def f(x):
    \"\"\"Double x.\"\"\"
    ### BEGIN SOLUTION
    y = x + x
    return y
    ### END SOLUTION

f(2)"""


def test_stub_keeps_indentation_and_surroundings():
    out = stub_source(SOLUTION_CELL)
    assert out.splitlines() == ["def f(x):", '    """Double x."""', "    " + STUB, "", "f(2)"]
    namespace: dict = {}
    exec(out.replace("f(2)", ""), namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](2)


@pytest.mark.parametrize(
    "source, message",
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without a"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION", "inside another"),
    ],
)
def test_unpaired_markers_are_reported_with_their_place(source, message):
    with pytest.raises(ExerciseFormatError, match=message):
        stub_source(source, where="demo.ipynb, cell 3")


def make_solution():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell(
        SOLUTION_CELL,
        execution_count=3,
        outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "4"}, execution_count=3)],
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Exercise"),
        code,
        nbformat.v4.new_markdown_cell(f"{SOLUTIONS_NOTE}\nWhy x + x works."),
    ]
    nb.metadata["ftlearn"] = {"profile": "cpu"}
    return nb


def test_make_exercise_strips_answers_outputs_and_notes():
    ex = make_exercise(make_solution(), "demo.ipynb")
    assert header_is_current(ex, "exercises/demo.ipynb")  # its badge opens the exercise
    body = ex.cells[2:]
    assert [c.cell_type for c in body] == ["markdown", "code"]
    assert body[1].outputs == [] and body[1].execution_count is None
    assert count_stubs(ex) == 1 and "x + x" not in body[1].source
    assert ex.metadata["ftlearn"] == {"generated_from": "solutions/demo.ipynb"}


def test_sync_writes_checks_and_removes_orphans(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    nbformat.write(make_solution(), solutions / "demo.ipynb")
    assert sync(solutions, exercises, check_only=True) == ["demo.ipynb"]
    assert not exercises.exists()  # check_only writes nothing
    assert sync(solutions, exercises) == ["demo.ipynb"]
    assert sync(solutions, exercises, check_only=True) == []
    (exercises / "old.ipynb").write_text("{}")
    assert sync(solutions, exercises) == ["old.ipynb"] and not (exercises / "old.ipynb").exists()
