"""The Colab path, proved as far as a machine without Colab can: the header's install cell on a Colab-like venv.

Colab comes with torch and transformers installed and `google.colab` imported; the first cell of every
notebook then runs `pip install git+REPO_URL@BRANCH`. Here a fresh venv stands for it: the packages of
the venv running the tests are preinstalled in it (a site folder of links to them, the course package
itself left out), a stub `google.colab` is importable, and the install cell (`course.header_cells`, with
the repository pointed at a `git+file://` clone of this checkout's HEAD) installs the course. The test
shows that pip's resolution would install the course alone, that the cell leaves torch and every other
preinstalled package as they were, and that every notebook's imports then work in the same process, as
they do in a Colab kernel.

What it cannot prove: Colab's own versions. A Colab whose torch is older than pyproject's floor would
get torch upgraded by this cell; the dry run below is where that would show.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from ftlearn import course

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent(
    """
    import ast, importlib.metadata as md, json, sys
    from pathlib import Path

    import google.colab  # Colab imports it before any cell runs; the install cell looks for it

    def installed():
        return {d.metadata["Name"].lower(): (d.version, str(d.locate_file(""))) for d in md.distributions()}

    install_cell, notebooks = sys.argv[1], sys.argv[2:]
    before = installed()
    exec(install_cell, {"__name__": "__main__"})
    after = installed()
    import ftlearn

    failed = []
    for path in notebooks:
        cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] != "code" or "ftlearn-header" in cell["metadata"].get("tags", []):
                continue
            try:
                body = ast.parse("".join(cell["source"])).body
            except SyntaxError:
                continue
            for node in body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    try:
                        exec(compile(ast.Module([node], []), path, "exec"), {})
                    except Exception as exc:
                        failed.append(f"{Path(path).name}: {ast.unparse(node)}: {type(exc).__name__}: {exc}")
    print(json.dumps({"before": before, "after": after, "ftlearn": ftlearn.__file__, "failed": failed}))
    """
)


def run(*command, cwd, timeout=300):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=CLEAN_ENV)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


# The venv must see only what it was given: no PYTHONPATH pointing at this checkout, no user site.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
CLEAN_ENV["PYTHONNOUSERSITE"] = "1"
CLEAN_ENV["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"


def colab_like_venv(tmp: Path) -> Path:
    """A fresh venv whose preinstalled packages are this interpreter's (the course package aside), plus google.colab."""
    venv = tmp / "colab"
    # --without-pip: nothing of its own (ensurepip's old setuptools would break torch's setuptools>=77 and
    # pip would want to upgrade it); pip itself is one of the preinstalled packages, as on Colab.
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp).strip())
    preinstalled = tmp / "preinstalled"  # links to this venv's packages: read-only for the test's purposes
    preinstalled.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if "ftlearn" not in entry.name.lower():
            (preinstalled / entry.name).symlink_to(entry)
    (site / "zz_colab_preinstalled.pth").write_text(f"import site; site.addsitedir({str(preinstalled)!r})\n")
    (site / "google" / "colab").mkdir(parents=True)  # `google` stays a namespace package (protobuf's lives there)
    (site / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s own module."""\n')
    return python


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git, to clone the repository the cell installs from")
def test_install_cell_installs_the_course_on_a_colab_like_machine_and_leaves_torch_alone(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the install cell installs from a git repository")
    clone = tmp_path / "repo"
    run("git", "clone", "-q", ROOT, clone, cwd=tmp_path)
    run("git", "checkout", "-q", "-B", course.BRANCH, cwd=clone)  # the branch the install cell names
    python = colab_like_venv(tmp_path)
    assert run(python, "-c", "import google.colab, torch, transformers; print(torch.__version__)", cwd=tmp_path)
    probe = subprocess.run([python, "-c", "import ftlearn"], cwd=tmp_path, capture_output=True, env=CLEAN_ENV)
    assert probe.returncode != 0, "the course is importable before the cell ran: the test would prove nothing"

    install_cell = course.header_cells("notebooks/00_welcome.ipynb", repo_url=clone.as_uri())[1].source
    # 1. What pip would do, before letting it: the course and nothing else (no torch up- or downgrade).
    report = tmp_path / "report.json"
    requirement = f"git+{clone.as_uri()}@{course.BRANCH}"
    assert requirement in install_cell
    run(python, "-m", "pip", "install", "-q", "--dry-run", "--report", report, requirement, cwd=tmp_path)
    would_install = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert would_install == ["ftlearn"], f"the install cell would also install or change: {would_install}"

    # 2. The cell itself, then every notebook's imports, in one process as in a Colab kernel.
    notebooks = [str(p) for d in course.NOTEBOOK_DIRS for p in sorted((clone / d).glob("*.ipynb"))]
    assert notebooks
    out = json.loads(run(python, "-c", DRIVER, install_cell, *notebooks, cwd=tmp_path).splitlines()[-1])
    before, after = out["before"], out["after"]
    assert "ftlearn" not in before and set(after) - set(before) == {"ftlearn"}
    changed = {name: (before[name], after[name]) for name in before if after.get(name) != before[name]}
    assert not changed, f"the install cell changed preinstalled packages: {changed}"
    assert after["torch"] == before["torch"] and "preinstalled" in after["torch"][1]
    assert Path(out["ftlearn"]).is_relative_to(python.parent.parent), out["ftlearn"]  # the venv's copy, not ours
    assert out["failed"] == [], "\n".join(out["failed"])
