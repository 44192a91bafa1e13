"""Test-suite settings (tests/, and nbval over notebooks/ and solutions/): smoke profile, hub offline, IMDB sample;
the fast tier (a bare `pytest`) and the full suite (`pytest --full`), below.

The IMDB sample is the one beside the checkout (../shared/data/imdb-sample).

Set before any notebook kernel starts, so nbval's kernels inherit them. Each one is a default:
an environment variable set by the caller wins.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SAMPLE = ROOT.parent / "shared" / "data" / "imdb-sample"

os.environ.setdefault("FTLEARN_PROFILE", "smoke")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if SAMPLE.is_dir():
    os.environ.setdefault("FTLEARN_IMDB_DIR", str(SAMPLE))
os.environ.setdefault("FTLEARN_CHECKS_STRICT", "1")


# The fast tier and the full suite (issue 31). A bare `python -m pytest` is the fast tier: unit tests only, no
# nbval notebook and no test marked slow (a kernel, a subprocess, a browser, a real training run, or more than
# ~2 s). `--full` runs everything, once each: README's test command. `-m` still filters either tier, so
# `python -m pytest --full -m floors` is the dependency floors' slow tests (.ci/floors).
NOTEBOOK_DIRS = tuple(ROOT / name for name in ("notebooks", "solutions"))
LEFT_OUT = pytest.StashKey[dict]()


def pytest_addoption(parser):
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="run the full suite: the slow tests and nbval over notebooks/ and solutions/ (README's test command)",
    )


def _left_out(config) -> dict:
    """What the fast tier left out of this run: a count of slow tests, the notebook files."""
    return config.stash.setdefault(LEFT_OUT, {"slow": 0, "notebooks": set()})


def _named_on_the_command_line(config) -> list[Path]:
    """The paths the caller typed (not pyproject's testpaths), without any `::test` suffix."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    return [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]


def pytest_ignore_collect(collection_path, config):
    """Without --full, leave out notebooks/ and solutions/, unless the caller named a path inside them."""
    if config.getoption("full"):
        return None
    path = collection_path.resolve()
    folder = next((d for d in NOTEBOOK_DIRS if path.is_relative_to(d)), None)
    if folder is None:
        return None
    named = [n for n in _named_on_the_command_line(config) if n.is_relative_to(folder)]
    if named:  # e.g. `pytest notebooks` or `pytest notebooks/06_transformer.ipynb` runs them in either tier
        return None if any(path.is_relative_to(n) or n.is_relative_to(path) for n in named) else True
    if path.suffix == ".ipynb":
        _left_out(config)["notebooks"].add(path)
    return True


@pytest.hookimpl(trylast=True)  # after -m / -k, so the count is of the slow tests those selected
def pytest_collection_modifyitems(config, items):
    """Without --full, deselect the tests marked slow (reported as deselected)."""
    if config.getoption("full"):
        return
    # a file or test the caller named runs whole (`pytest tests/test_learner_path.py`); a folder gets the fast tier
    named = {path for path in _named_on_the_command_line(config) if path.is_file()}
    slow = [item for item in items if item.get_closest_marker("slow") and item.path.resolve() not in named]
    if slow:
        config.hook.pytest_deselected(items=slow)
        left_out = set(slow)
        items[:] = [item for item in items if item not in left_out]
        _left_out(config)["slow"] = len(slow)


def pytest_terminal_summary(terminalreporter, config):
    """Say what the fast tier left out and how to run it."""
    if config.getoption("full"):
        return
    slow, notebooks = _left_out(config)["slow"], len(_left_out(config)["notebooks"])
    parts = [f"{slow} slow test{'s' * (slow != 1)}"] if slow else []
    if notebooks:
        parts.append(f"the {notebooks} notebooks of notebooks/ and solutions/ (nbval)")
    if parts:
        terminalreporter.write_line(
            f"fast tier, left out: {' and '.join(parts)}; add --full to run them "
            "(`python -m pytest --full` runs everything: README's test command)"
        )


@pytest.fixture(scope="session")
def smoke_teacher(tmp_path_factory) -> Path:
    """A BERT run folder to distil from, written once by `ftlearn finetune bert --profile smoke` (a few seconds)."""
    from ftlearn.cli import main

    folder = tmp_path_factory.mktemp("teacher") / "bert-smoke"
    assert main(["finetune", "bert", "--profile", "smoke", "--out", str(folder)]) == 0
    return folder
