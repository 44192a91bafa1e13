"""ftlearn.authoring.nbrun and ftlearn.course: parameter injection, code hash and stamps, headers, map, a real run."""

import json
import time
from pathlib import Path

import nbformat
import pytest

from ftlearn import course
from ftlearn.authoring import nbrun
from ftlearn.runtime import PROFILE_ENV


def tiny_notebook():
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('PROFILE = "auto"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell("print('profile :', PROFILE)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_injection_goes_after_parameters_and_is_left_out_of_the_hash():
    nb = tiny_notebook()
    before = nbrun.code_hash(nb)
    nbrun.inject_parameters(nb, {"PROFILE": "smoke"})
    assert nb.cells[2].source.endswith("PROFILE = 'smoke'")
    assert nb.cells[2].metadata["tags"] == [nbrun.INJECTED_TAG]
    assert nbrun.code_hash(nb) == before
    nb.cells[-1].source += "\nprint(1)"
    assert nbrun.code_hash(nb) != before


@pytest.mark.slow
def test_execute_inplace_stamps_and_records(tmp_path):
    path = tmp_path / "t.ipynb"
    nbformat.write(tiny_notebook(), path)
    result = nbrun.execute(path, profile="smoke", inplace=True)
    assert result.ok, result.error
    assert result.profile == "smoke"
    nb = nbformat.read(path, as_version=4)
    assert all(nbrun.INJECTED_TAG not in c.metadata.get("tags", []) for c in nb.cells)
    assert nb.cells[-1].outputs[0]["text"] == "profile : smoke\n"
    stamp = nb.metadata["ftlearn"]
    assert stamp["profile"] == "smoke" and stamp["code_sha256"] == nbrun.code_hash(nb)
    nbrun.record_timing(result, "smoke", tmp_path / "timings.json")
    assert json.loads((tmp_path / "timings.json").read_text())["t.ipynb"]["smoke"]["seconds"] >= 0


@pytest.mark.slow
def test_the_profile_is_resolved_as_a_value_not_read_from_the_outputs(tmp_path, monkeypatch):
    path = tmp_path / "t.ipynb"
    nb = tiny_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("print('profile : gpu')"))  # printed text must not decide the stamp
    nbformat.write(nb, path)
    monkeypatch.setenv(PROFILE_ENV, "smoke")  # what "auto" resolves to, in this process and in the kernel
    result = nbrun.execute(path, inplace=True)
    assert result.ok and result.profile == "smoke"
    assert nbformat.read(path, as_version=4).metadata["ftlearn"]["profile"] == "smoke"
    bad = nbrun.execute(path, profile="huge")
    assert not bad.ok and "Unknown profile 'huge'" in bad.error


@pytest.mark.slow
def test_failing_notebook_reports_the_cell_and_keeps_the_file(tmp_path):
    path = tmp_path / "bad.ipynb"
    nb = tiny_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("1 / 0"))
    nbformat.write(nb, path)
    original = path.read_text()
    result = nbrun.execute(path, inplace=True)
    assert not result.ok and "ZeroDivisionError" in result.error and "cell 3" in result.error
    assert path.read_text() == original


def test_headers_are_generated_from_one_url():
    cells = course.header_cells("notebooks/01_x.ipynb")
    assert course.colab_url("notebooks/01_x.ipynb") in cells[0].source
    assert course.REPO_URL in cells[1].source and '"google.colab" in sys.modules' in cells[1].source
    nb = tiny_notebook()
    assert course.apply_header(nb, "notebooks/01_x.ipynb") is True
    assert course.header_is_current(nb, "notebooks/01_x.ipynb")
    assert course.apply_header(nb, "notebooks/01_x.ipynb") is False
    assert not course.header_is_current(nb, "notebooks/02_y.ipynb")
    course.apply_header(nb, "notebooks/02_y.ipynb")  # replaces, never stacks
    assert sum(course.HEADER_TAG in c.metadata.get("tags", []) for c in nb.cells) == 2


def test_install_cell_is_valid_python_that_does_nothing_off_colab():
    exec(course.header_cells("notebooks/00_welcome.ipynb")[1].source, {})


@pytest.mark.slow
def test_figures_are_kept_even_when_the_shell_sets_a_headless_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # would make plt.show() a no-op in the kernel
    path = tmp_path / "plot.ipynb"
    nb = tiny_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()"))
    nbformat.write(nb, path)
    assert nbrun.execute(path, inplace=True).ok
    outputs = nbformat.read(path, as_version=4).cells[-1].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_header_cells_are_left_out_of_the_hash_so_a_new_repo_url_keeps_stamps_valid():
    nb = tiny_notebook()
    course.apply_header(nb, "notebooks/01_x.ipynb")
    before = nbrun.code_hash(nb)
    course.apply_header(nb, "notebooks/01_x.ipynb", repo_url="https://github.com/someone/fork")
    assert "someone/fork" in nb.cells[1].source
    assert nbrun.code_hash(nb) == before


def test_an_old_stamp_is_carried_over_only_when_it_matched_the_code():
    nb = tiny_notebook()
    course.apply_header(nb, "notebooks/01_x.ipynb")
    old = nbrun._hash_code_cells(nb, skip=(nbrun.INJECTED_TAG,))  # what stamps held: header cells hashed too
    nb.metadata["ftlearn"] = {"code_sha256": old}
    assert nbrun.update_old_stamp(nb) is True
    assert nb.metadata["ftlearn"]["code_sha256"] == nbrun.code_hash(nb)
    assert nbrun.update_old_stamp(nb) is False  # already current
    nb.metadata["ftlearn"]["code_sha256"] = old
    nb.cells[-1].source += "\nprint(2)"  # the code changed after that stamp: it stays stale
    assert nbrun.update_old_stamp(nb) is False and nb.metadata["ftlearn"]["code_sha256"] == old


def test_the_colab_link_is_text_that_reads_without_the_network():
    badge = course.header_cells("notebooks/01_x.ipynb")[0].source
    assert "[Open in Colab](https://colab.research.google.com/github/" in badge
    assert "![" not in badge and ".svg" not in badge  # no image to fetch: nothing breaks offline


def test_course_map_leaves_untimed_profiles_blank(tmp_path):
    timings = {course.LESSONS[0].file: {"cpu": {"seconds": 90.0, "hardware": "x", "date": "2026-01-01"}}}
    (tmp_path / course.TIMINGS_FILE).write_text(json.dumps(timings))
    rows = course.course_map(course.load_timings(tmp_path / course.TIMINGS_FILE))
    assert rows[0]["cpu (min)"] == 1.5 and rows[0]["gpu (min)"] == ""
    assert not any(value is None for row in rows for value in row.values())


def test_the_course_map_and_its_times_ship_inside_the_package():
    # what an installed package (a wheel, Colab's pip install) reads: package data, not a checkout's notebooks/
    assert course.timings_path().parent == Path(course.__file__).parent
    assert course.load_timings() and all(row["cpu (min)"] != "" for row in course.course_map())
    assert course.first_lesson_needing("gpt2").file.startswith("06")
    assert course.first_lesson_needing("nothing") is None


def test_repo_root_prefers_the_checkout_it_is_run_from(tmp_path, monkeypatch):
    other = tmp_path / "other-clone"
    (other / "notebooks").mkdir(parents=True)
    (other / "ftlearn").mkdir()
    (other / "notebooks" / "deep").mkdir()
    monkeypatch.chdir(other / "notebooks" / "deep")
    assert course.repo_root() == other.resolve()
    monkeypatch.chdir(tmp_path)  # not a checkout: the one beside the package, if it sits in one
    package_checkout = course._checkout_above(Path(course.__file__).resolve().parent)
    assert course.repo_root() == package_checkout


def test_a_record_says_how_busy_the_machine_was_and_what_earlier_runs_left(tmp_path, monkeypatch):
    cache, checkout = tmp_path / "cache", tmp_path / "course"
    (checkout / "notebooks").mkdir(parents=True)
    (checkout / "ftlearn").mkdir()
    monkeypatch.setenv("FTLEARN_CACHE", str(cache))
    assert nbrun.course_state(checkout) == []  # cold: nothing built, nothing trained
    (cache / "offline-gpt2" / "cpu-abc").mkdir(parents=True)
    (checkout / "runs" / "bert-cpu").mkdir(parents=True)
    (checkout / "runs" / "07_bert_loop_cpu.json").write_text("{}")
    found = ["<cache>/offline-gpt2/cpu-abc", "runs/07_bert_loop_cpu.json", "runs/bert-cpu"]
    assert nbrun.course_state(checkout) == found
    with nbrun.LoadSampler(every=0.01) as load:
        time.sleep(0.1)
    summary = load.summary()
    assert summary["samples"] >= 1 and 0 <= summary["mean"] <= summary["max"]
    path = tmp_path / course.TIMINGS_FILE
    nbrun.record_seconds("07_bert_finetune_loop.ipynb", "cpu", 600.0, path, load=summary, found=["runs/bert-cpu"])
    entry = json.loads(path.read_text())["07_bert_finetune_loop.ipynb"]["cpu"]
    assert entry["load_during"] == summary and entry["cold"] is False and entry["found_at_start"] == ["runs/bert-cpu"]
    row = course.course_map(json.loads(path.read_text()))[7]
    assert row["cpu (min)"] == 10.0 and row["cpu measured"] == f"after earlier lessons, load {summary['mean']:.1f}"
