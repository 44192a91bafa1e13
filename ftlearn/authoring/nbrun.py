"""Run notebooks headless: inject parameters (papermill style), execute, time, and stamp the outputs.

Backs `ftlearn run` and `ftlearn progress`. A notebook executed with `--inplace` keeps its outputs (made
static by `ftlearn.authoring.tidy`, so that they render without a kernel) and gets a stamp in its metadata (profile,
hardware, versions, date, and a hash of its code cells), so a reader knows where the figures came from and a
test can tell when the code changed after the outputs were made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ftlearn.course import HEADER_TAG

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


@dataclass
class RunResult:
    """How one notebook run went."""

    path: Path
    ok: bool
    seconds: float
    error: str = ""
    profile: str = ""  # the profile the notebook ran in ("smoke", "cpu" or "gpu"), resolved before it started
    load: dict = field(default_factory=dict)  # the 1-minute load average during the run: {"mean", "max", "samples"}
    found: list = field(default_factory=list)  # what earlier runs had left at the start: see `course_state`


class LoadSampler:
    """Samples the 1-minute load average every `every` seconds while a run lasts (`with LoadSampler() as s:`).

    A lesson running alone on an otherwise idle machine keeps the load near the cores it uses (2 here); a load well
    above that says other jobs shared the cores, and the time measured the machine as much as the lesson.
    """

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        if hasattr(os, "getloadavg"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> dict:
        """{"mean", "max", "samples"} of the sampled load averages ({} when none was taken)."""
        if not self.samples:
            return {}
        return {"mean": round(sum(self.samples) / len(self.samples), 2), "max": round(max(self.samples), 2),
                "samples": len(self.samples)}  # fmt: skip


def course_state(checkout: Path | None) -> list[str]:
    """What earlier runs left that a lesson may reuse: the ftlearn cache's builds and the checkout's runs/ folder.

    An empty list is a cold start: nothing built, nothing trained before this run.
    """
    from ftlearn.files import cache_root

    found = []
    for label, folder in (("<cache>", cache_root()), ("runs", checkout / "runs" if checkout else None)):
        if folder is not None and folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if entry.is_dir() and not entry.name.startswith("."):
                    found += [
                        f"{label}/{entry.name}/{sub.name}" for sub in sorted(entry.iterdir()) if sub.is_dir()
                    ] or [f"{label}/{entry.name}"]
                elif entry.is_file() and not entry.name.startswith("."):
                    found.append(f"{label}/{entry.name}")
    return found


def code_hash(nb: nbformat.NotebookNode) -> str:
    """sha256 of the notebook's code cells: the cells whose outputs a run stamp vouches for.

    Left out: injected parameter cells (a run adds them) and the header's install cell, which does nothing
    outside Colab and is rewritten by `ftlearn headers --repo-url`; that must not make outputs look stale.
    """
    return _hash_code_cells(nb, skip=(INJECTED_TAG, HEADER_TAG))


def _hash_code_cells(nb: nbformat.NotebookNode, skip: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code" and not set(skip) & set(cell.metadata.get("tags", [])):
            digest.update(cell.source.encode("utf-8") + b"\x00")
    return digest.hexdigest()


def update_old_stamp(nb: nbformat.NotebookNode) -> bool:
    """Carry a valid stamp over to the current `code_hash`; True if it changed.

    Stamps written before the header cells were left out of the hash hold the hash *with* them. When that
    old hash still matches the code, the outputs do come from this code, and only the hash is rewritten;
    a stamp that matches neither is left alone, for the test to report as stale.
    """
    stamp = nb.metadata.get("ftlearn", {})
    old = stamp.get("code_sha256")
    if not old or old == code_hash(nb) or old != _hash_code_cells(nb, skip=(INJECTED_TAG,)):
        return False
    stamp["code_sha256"] = code_hash(nb)
    return True


def inject_parameters(nb: nbformat.NotebookNode, params: dict) -> nbformat.NotebookNode:
    """Insert a cell assigning `params` right after the `parameters`-tagged cell (or at the top)."""
    if not params:
        return nb
    source = "# Parameters injected by `ftlearn run`\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [INJECTED_TAG]
    index = next((i + 1 for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.metadata.get("tags", [])), 0)
    nb.cells.insert(index, cell)
    return nb


def _first_error(nb: nbformat.NotebookNode) -> str:
    """'cell N: Error: message' for the first failing cell, N counted in the notebook as saved (no injected cell)."""
    cells = [c for c in nb.cells if INJECTED_TAG not in c.metadata.get("tags", [])]
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
    return ""


def stamp(nb: nbformat.NotebookNode, profile: str, seconds: float) -> None:
    """Record where and how a notebook's outputs were produced in its metadata."""
    from ftlearn.runtime import env_report

    report = env_report()
    nb.metadata["ftlearn"] = {
        "profile": profile,
        "hardware": report["hardware"],
        "device": report["device"],
        "versions": {k: report[k] for k in ("python", "torch", "transformers", "datasets")},
        "executed": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(seconds, 1),
        "code_sha256": code_hash(nb),
    }


def notebook_problem(path: Path) -> str | None:
    """Why `path` cannot be run as a notebook (not JSON, not a notebook, an invalid one), or None."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        hint = " (a .py file? `ftlearn run` executes .ipynb notebooks)" if Path(path).suffix != ".ipynb" else ""
        return f"{path} is not a Jupyter notebook: it is not JSON{hint} ({str(exc).splitlines()[0]})."
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "nbformat" not in data:
        return f"{path} is not a Jupyter notebook: it is JSON, but has no `cells` list and `nbformat` version."
    try:
        nbformat.validate(nbformat.reads(json.dumps(data), as_version=4))
    except Exception as exc:  # noqa: BLE001 - nbformat's validation errors come in several types
        return f"{path} is not a valid notebook: {str(exc).strip().splitlines()[0]}."
    return None


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    """Save a notebook through a temporary sibling and a rename: a killed run never leaves it half-written."""
    from ftlearn.files import write_text_atomic

    write_text_atomic(path, nbformat.writes(nb) + "\n")


def run_cells(
    nb: nbformat.NotebookNode,
    folder: Path,
    timeout: int = 3600,
    allow_errors: bool = False,
    env: dict[str, str] | None = None,
) -> str:
    """Execute `nb` in place, in a kernel started in `folder`; return "" or why it stopped.

    With `allow_errors`, a cell that raises is kept as an error output and the next cells still run (what a
    learner's half-done exercise notebook needs); only a dead kernel or a timeout stops the run. `env` adds
    to the kernel's environment.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(folder)}},
    )
    # Figures must land in the outputs: a backend such as Agg inherited from the shell would
    # swallow every plt.show(), so the kernel always gets Jupyter's inline backend.
    # A headless run keeps only a bar's last state (`tidy`), so the bars redraw once a second, not ten times: fewer
    # messages on the kernel's output channel, which drops messages past its high-water mark.
    kernel_env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"TQDM_MININTERVAL": "1"} | (env or {})
    try:
        # The kernel's own stderr is start-up chatter; cell errors arrive as outputs anyway.
        client.execute(stderr=subprocess.DEVNULL, env=kernel_env)
    except CellExecutionError:
        return _first_error(nb) or "a cell raised an error"
    except Exception as exc:  # noqa: BLE001 - kernel death, timeouts: report, don't crash the table
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return ""


def execute(path: Path, profile: str | None = None, inplace: bool = False, timeout: int = 3600) -> RunResult:
    """Execute one notebook in its own folder; with `inplace`, save outputs and the stamp."""
    from ftlearn.runtime import get_profile

    path = Path(path)
    try:
        # The kernel resolves "auto" exactly so: same environment (FTLEARN_PROFILE), same CUDA check.
        resolved = get_profile(profile or "auto").name
    except ValueError as exc:
        return RunResult(path, False, 0.0, str(exc))
    nb = nbformat.read(path, as_version=4)
    params = {"PROFILE": profile} if profile else {}
    inject_parameters(nb, params)
    from ftlearn.course import repo_root

    found = course_state(repo_root(path.resolve().parent))
    with LoadSampler() as load:
        start = time.perf_counter()
        error = run_cells(nb, path.parent, timeout)
        seconds = time.perf_counter() - start
    if inplace and not error:
        from ftlearn.authoring.tidy import tidy

        nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.metadata.get("tags", [])]
        tidy(nb)  # widget views become the static outputs they showed: the saved file renders anywhere
        stamp(nb, resolved, seconds)
        write_notebook(nb, path)
    return RunResult(path, not error, seconds, error, resolved, load.summary(), found)


def record_timing(result: RunResult, profile: str, timings_path: Path) -> None:
    """Add a successful run's time to the timings file the welcome notebook's course map reads."""
    record_seconds(result.path.name, profile, result.seconds, timings_path, load=result.load, found=result.found)


def record_seconds(
    name: str, profile: str, seconds: float, timings_path: Path, load: dict | None = None, found: list | None = None
) -> None:
    """Record `seconds` for `name` (a notebook, or the offline GPT-2 build) in `profile`, with hardware, date, load.

    `load` is the load average sampled during the run (`LoadSampler.summary`), `found` what earlier runs had left
    (`course_state`; empty: a cold start). Without `load`, the load averages as the run ended stand in.
    """
    from ftlearn.runtime import hardware_summary

    data = json.loads(timings_path.read_text(encoding="utf-8")) if timings_path.exists() else {}
    entry = {"seconds": round(seconds, 1), "hardware": hardware_summary(), "date": dt.date.today().isoformat()}
    if load:
        entry["load_during"] = load
    elif hasattr(os, "getloadavg"):  # the load averages over the last 1, 5 and 15 minutes as the run ended
        entry["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    if found is not None:
        entry["cold"] = not found
        entry["found_at_start"] = found
    data.setdefault(name, {})[profile] = entry
    from ftlearn.files import write_text_atomic

    write_text_atomic(timings_path, json.dumps(data, indent=1, sort_keys=True) + "\n")
