"""Saved notebooks that render without a kernel: what a learner sees before running a cell.

A notebook executed headless keeps its widgets (sliders, `tqdm.auto` bars) as widget *views*: references
to models whose state lives in the notebook's metadata. JupyterLab draws them only in a trusted notebook
with a live widget manager; anywhere else (an untrusted notebook, GitHub's viewer) a reader gets the raw
repr, `interactive(children=(FloatLogSlider(...` or `training:   0%|   | 0/226 [00:00<?, ?step/s]`.
`tidy` replaces each view by what it showed as static outputs:

- an `interact` view becomes the figure or text its Output widget held (the first drawing, at the
  sliders' default values), unless the cell already shows a static figure of its own (lessons 01, 04:
  then the widget's copy would be the same plot twice);
- a progress bar, which holds no Output widget, is dropped (the cell's own prints report the result);
  bars written as text to a stream (tqdm without widgets) are dropped line by line;
- the widget state in the metadata, now unused, goes;
- the kernelspec becomes ipykernel's own ("Python 3 (ipykernel)"): JupyterLab rewrites any other one
  on opening, so the notebook would open as already modified;
- machine paths in text outputs (streams, errors, text/plain, html, markdown; never images) are shown below
  a named root, as `ftlearn.files.display_path` prints them: `<site-packages>/…`, `<cache>/…`, `<imdb>`,
  `<course>/…`, `~/…`. The notebooks are committed: they must not show the author's home, venv or checkout.

Code cells are never touched, so a run stamp's `code_sha256` (`ftlearn.authoring.nbrun.code_hash`) stays valid.
`ftlearn run --inplace` and `ftlearn exercises` tidy what they write; `ftlearn tidy` tidies every
committed notebook, and tests/test_notebook_files.py fails on one that needs it.
"""

from __future__ import annotations

import re

import nbformat

from ftlearn.files import path_roots, redact_paths

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# what a static reader can show; text/plain alone is the fallback every output has
STATIC_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "text/html", "text/markdown", "text/latex")
# a tqdm bar as text: "  0%|          | 0/226 [00:00<?, ?step/s]" or "12it [00:01, 9.50it/s]"
PROGRESS_BAR = re.compile(r"\d+/\d+ \[\d+:\d+|\d+\S* \[\d+:\d+, ")
RAW_WIDGET_REPRS = ("interactive(children=", "HBox(children=", "VBox(children=", "Error displaying widget")
# the outputs that can show a path as text; images and JSON are left alone
TEXT_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex")


def ipykernel_kernelspec() -> dict:
    """The kernelspec JupyterLab writes for ipykernel's kernel: {display_name, language, name}."""
    from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

    spec = get_kernel_dict()
    return {"display_name": spec["display_name"], "language": spec["language"], "name": KERNEL_NAME}


def _captured_outputs(model_id: str, state: dict, seen: set[str] | None = None) -> list[dict]:
    """The outputs held by the Output widgets inside a widget (an `interact` is a VBox of controls + Output)."""
    seen = set() if seen is None else seen
    model = state.get(model_id)
    if model is None or model_id in seen:
        return []
    seen.add(model_id)
    values = model.get("state", {})
    if model.get("model_name") == "OutputModel":
        return list(values.get("outputs", []))
    children = values.get("children", [])
    return [o for child in children for o in _captured_outputs(child.removeprefix("IPY_MODEL_"), state, seen)]


def _as_output(raw: dict) -> nbformat.NotebookNode:
    """An output from a widget's state as nbformat wants it (display outputs need a metadata dict)."""
    out = nbformat.from_dict(dict(raw))
    if out.get("output_type") in ("display_data", "execute_result"):
        out.setdefault("metadata", {})
        if out.output_type == "execute_result":  # an Output widget's result has no place in the cell's count
            out.output_type = "display_data"
            out.pop("execution_count", None)
    return out


def _without_progress_bars(text: str) -> str:
    """`text` less the lines that are tqdm bars; of a line rewritten with \\r, the part a terminal would show."""
    kept = []
    for line in text.splitlines(keepends=True):
        body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        parts = [p for p in body.split("\r") if p.strip() and not PROGRESS_BAR.search(p)]
        if parts:
            kept.append(parts[-1] + newline)
        elif not body.strip() and "\r" not in body:
            kept.append(line)  # a blank line the cell printed on purpose
    return "".join(kept)


def _is_static_display(output: dict) -> bool:
    data = output.get("data", {})
    return WIDGET_VIEW not in data and any(mime in data for mime in STATIC_MIMES)


def _static_outputs(outputs: list, state: dict, depth: int = 0) -> tuple[list, int]:
    """The outputs with widget views replaced by their captured outputs and text bars removed; and how many changed."""
    has_own_figure = any(_is_static_display(o) for o in outputs)
    new, changed = [], 0
    for output in outputs:
        data = output.get("data", {})
        if WIDGET_VIEW in data:
            changed += 1
            if has_own_figure or depth > 3:
                continue  # the cell's own figure already shows this widget's first drawing
            captured = [_as_output(o) for o in _captured_outputs(data[WIDGET_VIEW].get("model_id", ""), state)]
            more, _ = _static_outputs(captured, state, depth + 1)
            new.extend(more)
        elif output.get("output_type") == "stream":
            text = output.get("text", "")
            clean = _without_progress_bars(text)
            if clean != text:
                changed += 1
                if not clean:
                    continue
                output = nbformat.from_dict({**output, "text": clean})
            new.append(output)
        else:
            new.append(output)
    return new, changed


def _redacted(value: object, roots: list[tuple[str, str]]) -> object:
    """A text field (a str, or a list: lines, or a traceback's frames) with its machine paths redacted."""
    if isinstance(value, str):
        return redact_paths(value, roots)
    if isinstance(value, list):
        return [redact_paths(item, roots) if isinstance(item, str) else item for item in value]
    return value


def redact_outputs(nb: nbformat.NotebookNode, roots: list[tuple[str, str]] | None = None) -> int:
    """Show each machine path in the text outputs below its named root (`ftlearn.files.redact_paths`), in place.

    `roots`: this machine's by default (`ftlearn.files.path_roots`). Returns how many outputs changed.
    """
    roots = path_roots() if roots is None else roots
    changed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            fields = [(output, key) for key in ("text", "evalue", "traceback") if key in output]
            data = output.get("data", {})
            fields += [(data, mime) for mime in TEXT_MIMES if mime in data]
            touched = False
            for holder, key in fields:
                new = _redacted(holder[key], roots)
                if new != holder[key]:
                    holder[key] = new
                    touched = True
            changed += touched
    return changed


def tidy(nb: nbformat.NotebookNode) -> list[str]:
    """Make a saved notebook render without a kernel (see the module's docstring), in place.

    Returns what changed, in words (empty when the notebook was already tidy). Never changes a cell's source.
    """
    changes = []
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.get("outputs"):
            continue
        outputs, changed = _static_outputs(cell.outputs, state)
        if changed:
            cell.outputs = outputs
            replaced += changed
    if replaced:
        changes.append(f"{replaced} widget or progress-bar output(s) made static")
    redacted = redact_outputs(nb)
    if redacted:
        changes.append(f"machine paths in {redacted} output(s) shown below named roots (<course>, <cache>...)")
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        changes.append("widget state dropped")
    spec = ipykernel_kernelspec()
    if nb.metadata.get("kernelspec") != spec:
        nb.metadata["kernelspec"] = spec
        changes.append(f"kernelspec set to {spec['display_name']!r}")
    return changes


def raw_widget_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What a reader without a live kernel would see as raw text: one line per problem (for tests and --check)."""
    problems = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                problems.append(f"cell {index}: a widget view (shows as raw text without a live kernel)")
            texts = [output.get("text", ""), *(v for k, v in data.items() if k.startswith("text/"))]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else str(text)
                found = [r for r in RAW_WIDGET_REPRS if r in text]
                if PROGRESS_BAR.search(text):
                    found.append("a progress bar as text")
                problems.extend(f"cell {index}: {what}" for what in found)
    return problems
