"""The course as a learner arrives: a wheel installed outside the checkout, empty caches, lessons in order.

CI's other tests run from a warm checkout: the offline GPT-2 built by an earlier test, notebooks beside the
code, ftlearn imported from the source tree. A learner has none of that. This test builds a wheel of the
checkout, installs it into a fresh venv in a temporary folder (the dependencies are lent from the test's own
venv through a .pth file, so nothing is downloaded; ftlearn itself comes from the wheel alone), copies the
notebooks alone into another folder, as Colab would see them, and with an empty FTLEARN_CACHE and HF_HOME:

1. executes lessons 00 to 13 in order, each in a fresh kernel, every cell (Run All), in the smoke profile;
2. runs every exercise notebook with its stubs unanswered: every cell runs, and every check says not attempted.

It found: lesson 06 crashing when it had to build the offline GPT-2 (its cells run with gradients off), the
course map reporting no lesson available outside a checkout, and Run All stopping at the first stub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ftlearn.course import LESSONS

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def checks_called(path: Path) -> set[str]:
    """The exercises whose checks a notebook calls: check_mean_length(...) -> "mean_length", the quiz -> quiz_NN."""
    import ast

    import nbformat

    names = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("check_"):
                name = node.func.id.removeprefix("check_")
                names.add(f"quiz_{path.name[:2]}" if name == "quiz" else name)
    return names


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def learner(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fresh venv with ftlearn installed from a wheel, an empty cache, and a home folder outside the checkout."""
    home = tmp_path_factory.mktemp("learner")
    wheels = home / "wheels"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTLEARN_", "HF_", "PYTHON"))}
    # offline as CI is; the data folder is the one setting a learner gives (README's offline variant)
    env |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if "FTLEARN_IMDB_DIR" in os.environ:
        env["FTLEARN_IMDB_DIR"] = os.environ["FTLEARN_IMDB_DIR"]
    env |= {"FTLEARN_CACHE": str(home / "cache"), "HF_HOME": str(home / "hf")}
    env["FTLEARN_CHECKS_STRICT"] = "0"  # a learner's checks report, they do not raise

    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)], home, env, 600)
    (wheel,) = wheels.glob("ftlearn-*.whl")
    venv = home / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], home, env, 300)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib], home, env, 60).stdout.strip())
    # the dependencies from this venv, appended after the new venv's own site-packages (which holds the wheel)
    (site / "zz_ftlearn_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], home, env, 300)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # from here on a home of its own too (matplotlib's font cache, Jupyter's settings); pip needed the real one
    env["HOME"] = str(home)
    return {"home": home, "python": python, "ftlearn": venv / "bin" / "ftlearn", "site": site, "env": env}


def test_the_installed_package_is_the_wheel_and_knows_its_course(learner):
    code = (
        "import json, ftlearn\n"
        "from ftlearn.course import course_map\n"
        "print(json.dumps({'file': ftlearn.__file__, 'map': course_map()}))"
    )
    out = json.loads(_run([str(learner["python"]), "-c", code], learner["home"], learner["env"], 120).stdout)
    assert Path(out["file"]).is_relative_to(learner["site"]), out["file"]
    assert [row["notebook"] for row in out["map"]] == [lesson.file for lesson in LESSONS]
    assert all(row["cpu (min)"] != "" for row in out["map"]), "the measured times ship with the package"


def test_doctor_reports_the_offline_gpt2_missing_with_its_cost(learner):
    result = subprocess.run(
        [str(learner["ftlearn"]), "doctor", "--profile", "smoke"],
        cwd=learner["home"],
        env=learner["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    gpt2 = next(line for line in result.stdout.splitlines() if " gpt2 " in f" {line} ")
    assert "not built yet" in gpt2 and "ftlearn build-gpt2" in gpt2 and "lesson 06" in gpt2, gpt2
    assert str(learner["home"]) not in gpt2, "paths are shown below named roots (<cache>/...)"


def test_every_lesson_runs_in_order_from_an_empty_cache(learner):
    lessons = learner["home"] / "lessons"
    lessons.mkdir()
    for lesson in LESSONS:
        shutil.copy(ROOT / "notebooks" / lesson.file, lessons / lesson.file)
    assert not (learner["home"] / "cache").exists(), "the cache starts empty"
    # --timeout: a cell that hangs fails the run in minutes, naming its notebook, instead of holding CI for an hour
    command = [str(learner["ftlearn"]), "run", *(lesson.file for lesson in LESSONS), "--profile", "smoke"]
    command += ["--timeout", "600"]
    result = subprocess.run(command, cwd=lessons, env=learner["env"], capture_output=True, text=True, timeout=3000)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.stdout.count(" ok") >= len(LESSONS), result.stdout


def test_run_all_of_every_exercise_notebook_reaches_every_check(learner):
    exercises = learner["home"] / "exercises"
    shutil.copytree(ROOT / "exercises", exercises)
    command = [str(learner["ftlearn"]), "progress", str(exercises), "--json", "--profile", "smoke"]
    result = subprocess.run(command, cwd=exercises, env=learner["env"], capture_output=True, text=True, timeout=3000)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert {nb["notebook"] for nb in report["notebooks"]} == {p.name for p in (ROOT / "solutions").glob("*.ipynb")}
    for nb in report["notebooks"]:
        assert nb["ran"] and nb["exercises"], nb
        assert not nb["cell_errors"], f"{nb['notebook']}: Run All stops at {nb['cell_errors'][0]}"
        assert all(row["status"] == "not attempted" for row in nb["exercises"]), nb
        # every check cell of the notebook was reached: each one it calls reported
        called = checks_called(exercises / nb["notebook"])
        assert {row["exercise"] for row in nb["exercises"]} == called, (nb["notebook"], called)
    assert report["summary"]["correct"] == report["summary"]["wrong"] == 0
