"""Project files agree: pyproject vs environment.yml, README's test command vs .ci/run."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells a few packages differently from PyPI
CONDA_TO_PYPI = {"pytorch": "torch"}


def canonical(name):
    """PEP 503: case, `-`, `_` and `.` do not matter (conda-forge's huggingface_hub is PyPI's huggingface-hub)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def names(requirements):
    return {canonical(re.split(r"[<>=!~ \[]", r.strip(), maxsplit=1)[0]) for r in requirements}


def floors(requirements):
    """{name: X} for every `name>=X`; .ci/floors installs exactly these versions."""
    found = {}
    for r in requirements:
        m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*(\S+)\s*", r)
        if m:
            found[CONDA_TO_PYPI.get(m[1], canonical(m[1]))] = m[2]
    return found


def requirement_sets():
    """pyproject's requirements (dependencies + the test and site extras), and environment.yml's (conda, pip)."""
    import yaml  # a dependency of transformers and datasets

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    extras = project["optional-dependencies"]
    return project["dependencies"] + extras["test"] + extras["site"], conda, pip


def test_environment_yml_matches_pyproject():
    pyproject, conda, pip = requirement_sets()
    wanted = names(pyproject)
    have = {CONDA_TO_PYPI.get(n, n) for n in names(conda)} - {"python", "pip"}
    have |= names(p for p in pip if p != "-e .")
    assert "-e ." in pip  # the course package itself
    assert have == wanted, (
        f"only in environment.yml: {sorted(have - wanted)}; only in pyproject: {sorted(wanted - have)}"
    )


def test_environment_yml_has_pyprojects_floors():
    pyproject, conda, pip = requirement_sets()
    wanted = floors(pyproject)
    have = floors(conda + [p for p in pip if p != "-e ."])
    have.pop("python", None)
    assert set(wanted) == set(names(pyproject)), "every pyproject requirement must be a plain `name>=X` floor"
    differ = {n: (have.get(n), wanted.get(n)) for n in sorted(set(have) | set(wanted)) if have.get(n) != wanted.get(n)}
    assert not differ, f"floors that differ, as (environment.yml, pyproject): {differ}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- test-command -->\s*```bash\n(.+?)\n```", readme, re.S)
    assert block, "README.md must hold the test command in a ```bash block after <!-- test-command -->"
    assert block.group(1).strip() in (ROOT / ".ci" / "run").read_text()


def _readme_block(readme: str, marker: str) -> str:
    block = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n\s*```", readme, re.S)
    assert block, f"README.md must hold a ```bash block after <!-- {marker} -->"
    return block.group(1).strip()


def test_readme_first_screen_is_in_step_with_the_package():
    from ftlearn.cli import build_parser
    from ftlearn.data import DIR_ENV

    readme = (ROOT / "README.md").read_text()
    cpu, data, setup = (_readme_block(readme, m) for m in ("cpu-torch", "offline-data", "setup-command"))
    # in the order a learner reads and runs them: the CPU build and the data folder come before the command
    assert readme.index("<!-- cpu-torch -->") < readme.index("<!-- offline-data -->") < readme.index("<!-- setup-")
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in cpu
    assert data.startswith(f"export {DIR_ENV}=")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in re.findall(r'-e "\.\[(\w+)\]"', setup):
        assert extra in extras, f"README installs the extra [{extra}], which pyproject.toml does not declare"
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    for command in re.findall(r"ftlearn (\w[\w-]*)", setup):
        assert command in commands, f"README runs `ftlearn {command}`, which the CLI does not have"
    for command in re.findall(r"`ftlearn ([a-z][\w-]*)", readme):
        assert command in commands, f"README mentions `ftlearn {command}`, which the CLI does not have"


def test_dependencies_are_lower_bounds_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for requirement in project["dependencies"] + extras["test"] + extras["site"]:
        assert "==" not in requirement and "<" not in requirement, requirement
