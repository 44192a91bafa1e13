"""ftlearn.authoring.tidy: saved widget views become the static outputs they showed; code cells never change."""

import copy

import nbformat
import pytest

from ftlearn.authoring import nbrun
from ftlearn.authoring.tidy import (
    WIDGET_STATE,
    WIDGET_VIEW,
    ipykernel_kernelspec,
    raw_widget_problems,
    redact_outputs,
    tidy,
)
from ftlearn.files import display_path

PNG = "iVBORw0KGgo="  # any base64 will do: tidy never decodes images


def view(model_id, text):
    return nbformat.v4.new_output(
        "display_data",
        data={WIDGET_VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0}, "text/plain": text},
    )


def widget_notebook():
    """What nbclient saves for `interact(...)` in one cell and a tqdm bar in another."""
    figure = {"output_type": "display_data", "data": {"image/png": PNG, "text/plain": "<Figure>"}, "metadata": {}}
    state = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out"]}},
        "slider": {"model_name": "FloatSliderModel", "state": {"value": 1.0}},
        "out": {
            "model_name": "OutputModel",
            "state": {"outputs": [figure, {"output_type": "stream", "name": "stdout", "text": "T = 1\n"}]},
        },
        "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_html"]}},
        "html": {"model_name": "HTMLModel", "state": {"value": "training: 100%"}},
    }
    interact_cell = nbformat.v4.new_code_cell("interact(show, temperature=(0.1, 2.0))")
    interact_cell.outputs = [view("box", "interactive(children=(FloatSlider(value=1.0, description='temperature'")]
    twice_cell = nbformat.v4.new_code_cell("show(1.0)\ninteract(show, temperature=(0.1, 2.0))")
    twice_cell.outputs = [nbformat.from_dict(figure), view("box", "interactive(children=(FloatSlider(")]
    train_cell = nbformat.v4.new_code_cell("history = fit(model)\nprint('done')")
    train_cell.outputs = [
        view("bar", "training:   0%|          | 0/226 [00:00<?, ?step/s]"),
        nbformat.v4.new_output(
            "stream",
            name="stderr",
            text="shards:   0%|   | 0/1 [00:00<?, ?it/s]\rshards: 100%|#| 1/1 [00:00<00:00, 3.1it/s]\n",
        ),
        nbformat.v4.new_output("stream", name="stdout", text="done\n\nbest step 10\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=[interact_cell, twice_cell, train_cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def test_an_interact_becomes_its_first_drawing_and_a_bar_goes():
    nb = widget_notebook()
    assert len(raw_widget_problems(nb)) >= 4
    sources = [c.source for c in nb.cells]
    changes = tidy(nb)
    nbformat.validate(nb)
    assert [c.source for c in nb.cells] == sources  # code is never touched
    interact_outputs = nb.cells[0].outputs
    assert [o.output_type for o in interact_outputs] == ["display_data", "stream"]
    assert interact_outputs[0].data["image/png"] == PNG and interact_outputs[1].text == "T = 1\n"
    assert [o.output_type for o in nb.cells[1].outputs] == ["display_data"]  # its own figure, not the same one twice
    assert [o.text for o in nb.cells[2].outputs] == ["done\n\nbest step 10\n"]  # bars gone, blank line kept
    assert "widgets" not in nb.metadata
    assert nb.metadata["kernelspec"] == ipykernel_kernelspec()
    assert nb.metadata["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    assert raw_widget_problems(nb) == []
    assert changes and tidy(nb) == []  # a second pass finds nothing


def test_tidy_keeps_the_run_stamp_valid():
    nb = widget_notebook()
    before = nbrun.code_hash(nb)
    tidy(nb)
    assert nbrun.code_hash(nb) == before


def test_raw_reprs_are_found_in_any_text_output():
    for text in ("interactive(children=(IntSlider(", "HBox(children=(HTML(", "Error displaying widget: model not found",
                 "Writing model shards:   0%|          | 0/1 [00:00<?, ?it/s]"):  # fmt: skip
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
        nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        assert raw_widget_problems(nb), text
    plain = copy.deepcopy(nb)
    plain.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="lr=0.1, 3/4 of the steps [done]\n")]
    assert raw_widget_problems(plain) == []


@pytest.mark.slow
def test_a_real_run_saves_static_outputs(tmp_path):
    """Through nbclient, as `ftlearn run --inplace` does: the saved file holds no widget, only what it showed."""
    path = tmp_path / "w.ipynb"
    cells = [
        "from ipywidgets import FloatSlider, interact\nfrom tqdm.auto import tqdm",
        "for _ in tqdm(range(3), desc='steps'):\n    pass\nprint('trained')",
        "def show(t=1.0):\n    print(f'temperature {t}')\n\n\ninteract(show, t=FloatSlider(value=1.0, max=2.0));",
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    # Three tiny cells: 120 s each is ample. Once (2026-12-07, a CI run) the kernel sat idle with the client still
    # waiting, which the default hour-long cell timeout would have let eat the CI budget: such a run is tried again.
    result = nbrun.execute(path, inplace=True, timeout=120)
    if not result.ok and "Timeout" in result.error:
        result = nbrun.execute(path, inplace=True, timeout=120)
    assert result.ok, result.error
    nb = nbformat.read(path, as_version=4)
    assert raw_widget_problems(nb) == [] and "widgets" not in nb.metadata
    assert [o.get("text") for o in nb.cells[1].outputs] == ["trained\n"]
    assert [o.get("text") for o in nb.cells[2].outputs] == ["temperature 1.0\n"]
    assert nb.metadata["kernelspec"] == ipykernel_kernelspec()
    assert nb.metadata["ftlearn"]["code_sha256"] == nbrun.code_hash(nb)


def test_machine_paths_in_text_outputs_are_shown_below_named_roots(tmp_path, monkeypatch):
    """Every text output (stream, error, text/plain, html) loses this machine's folders; code and images stay."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FTLEARN_CACHE", str(cache))
    model = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "gt_model" / "model"
    code = f"print('{cache}/offline-gpt2')  # a path in code is the learner's own: never changed"
    cell = nbformat.v4.new_code_cell(code)
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"Model: {model} (22.7M parameters)\n"),
        nbformat.v4.new_output(
            "execute_result",
            data={"text/plain": f"PosixPath('{cache}/offline-gpt2/cpu-1a2b')", "text/html": f"<b>{model}</b>"},
            execution_count=1,
        ),
        nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
        nbformat.v4.new_output(
            "error", ename="OSError", evalue=f"no {cache}/x", traceback=[f"\x1b[0;32m{model}/modeling.py:3\x1b[0m"]
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = ipykernel_kernelspec()
    stamp = nbrun.code_hash(nb)
    changes = tidy(nb)
    nbformat.validate(nb)
    stream, result, figure, error = nb.cells[0].outputs
    assert stream.text == "Model: <site-packages>/gt_model/model (22.7M parameters)\n"
    assert (
        result.data["text/plain"]
        == "PosixPath('<cache>/offline-gpt2/cpu-1a2b')"
        == f"PosixPath('{display_path(cache / 'offline-gpt2' / 'cpu-1a2b')}')"
    )
    assert result.data["text/html"] == "<b><site-packages>/gt_model/model</b>"
    assert figure.data == {"image/png": PNG, "text/plain": "<Figure>"}
    assert error.evalue == "no <cache>/x" and error.traceback == [
        "\x1b[0;32m<site-packages>/gt_model/model/modeling.py:3\x1b[0m"
    ]
    assert nb.cells[0].source == code and nbrun.code_hash(nb) == stamp
    assert changes == ["machine paths in 3 output(s) shown below named roots (<course>, <cache>...)"]
    assert tidy(nb) == []  # a second pass finds nothing


def test_outputs_made_on_another_machine_are_redacted_with_its_roots():
    cell = nbformat.v4.new_code_cell("run()")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="no /work/wt-g2/runs/bert-cpu yet; /root/x\n")]
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert redact_outputs(nb, [("<course>", "/work/wt-g2"), ("~", "/root")]) == 1
    assert nb.cells[0].outputs[0].text == "no <course>/runs/bert-cpu yet; ~/x\n"
