"""The course map, and the header (Colab link + Colab-only install cell) every notebook starts with.

The repository URL lives here and only here: `ftlearn headers` writes it into every notebook, and
tests/test_notebook_files.py fails when a notebook's header is not the one this module generates.
`LESSONS` is the one list of lessons: the welcome notebook's course map reads it, and `ftlearn headers`
writes it into README.md as a table between two marker comments (a test fails when that table is stale).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO_URL = "https://github.com/ftlearn/ftlearn"
BRANCH = "main"
HEADER_TAG = "ftlearn-header"
NOTEBOOK_DIRS = ("notebooks", "solutions", "exercises")
TIMINGS_FILE = "timings.json"  # package data beside this module: the course map ships with the package
README_MAP_START = "<!-- course-map:start (generated from ftlearn.course.LESSONS by `ftlearn headers`) -->"
README_MAP_END = "<!-- course-map:end -->"


@dataclass(frozen=True)
class Lesson:
    """One notebook of the course map."""

    file: str
    title: str
    teaches: str  # markdown (`code` in backticks): README's course map shows it as written
    needs: tuple[str, ...] = ()  # models it loads that may have to be built first: "gpt2" (the offline GPT-2)


LESSONS: tuple[Lesson, ...] = (
    Lesson("00_welcome.ipynb", "Welcome", "course map, profiles, environment check, how exercises are checked"),
    Lesson(
        "01_language_model_probability.ipynb",
        "Language-model probability",
        "the chain rule, a counted n-gram LM, sampling, perplexity",
    ),
    Lesson(
        "02_cross_entropy.ipynb",
        "Cross-entropy",
        "NLL, a stable log-softmax, a neural bigram, MSE vs CE, `ignore_index`, label smoothing",
    ),
    Lesson(
        "03_gradient_descent.ipynb",
        "Gradient descent",
        "the gradient p − y by hand, SGD, gradient checking, a bag-of-words IMDB baseline",
    ),
    Lesson(
        "04_adam.ipynb",
        "Adam and AdamW",
        "momentum, RMSProp, Adam's five equations, AdamW's decoupled weight decay, warm-up and decay schedules",
    ),
    Lesson(
        "05_tokenization_and_data.ipynb",
        "Tokenization and data",
        "WordPiece; byte-pair encoding by hand, merge for merge equal to `tokenizers`' trainer; attention masks, "
        "truncation, dynamic padding",
    ),
    Lesson(
        "06_transformer.ipynb",
        "The transformer, by hand",
        "self-attention, the √d scale, padding and causal masks, multi-head, LayerNorm, GELU; a BERT layer and a GPT-2 "
        "block written by hand and matched to the real models; parameters and FLOPs per token",
        needs=("gpt2",),
    ),
    Lesson(
        "07_bert_finetune_loop.ipynb",
        "BERT fine-tuning, by hand",
        "a TF-IDF baseline, `[CLS]` vs mean pooling, the hand-written training loop, mixed precision and accumulation, "
        "metrics, error analysis, reading whole reviews, what pretraining buys (the same recipe from random weights), "
        "saving",
    ),
    Lesson(
        "08_bert_trainer.ipynb",
        "BERT with the Trainer",
        "the same with the Hugging Face `Trainer`: `TrainingArguments`, `compute_metrics`, checkpoints; paired against "
        "lesson 07's loop",
    ),
    Lesson(
        "09_gpt2_causal_lm.ipynb",
        "GPT-2 as a language model",
        "the causal-LM loss, perplexity before and after, generation",
        needs=("gpt2",),
    ),
    Lesson(
        "10_gpt2_classifier.ipynb",
        "GPT-2 as a classifier",
        "GPT-2 as a classifier: the pad token, last-token pooling, which epoch to keep, compared with BERT; the ULMFiT "
        "chain (adapt the language model first)",
        needs=("gpt2",),
    ),
    Lesson(
        "11_efficient_full_finetuning.ipynb",
        "The cost of full fine-tuning",
        "memory anatomy, activations, mixed precision, accumulation, checkpointing, padding, `torch.compile`, MFU, "
        "forgetting, lr sweep",
        needs=("gpt2",),
    ),
    Lesson(
        "12_lora_and_distillation.ipynb",
        "LoRA, a frozen body, distillation",
        "LoRA by hand and with `peft`, merged; full vs LoRA vs a frozen body on one recipe: accuracy, trainable "
        "parameters, state memory, time; distillation with temperature into a smaller student",
    ),
    Lesson(
        "13_your_own_data.ipynb",
        "Your own data",
        "the capstone: a five-class topic corpus that ships with a package (licence checked), class counts and "
        "imbalance, a TF-IDF baseline, full fine-tuning with class weights measured, macro-F1, the confusion matrix by "
        "class, save and predict with top-k; then your own file through the same checks, unknown-token rate included",
    ),
)


def course_map_table() -> str:
    """README's course map: a markdown table of `LESSONS`, one row per notebook."""
    rows = ["| # | notebook | what it teaches |", "|---|---|---|"]
    for lesson in LESSONS:
        stem = lesson.file.removesuffix(".ipynb")
        rows.append(f"| {stem[:2]} | [`{stem}`](notebooks/{lesson.file}) | {lesson.teaches} |")
    return "\n".join(rows)


def with_course_map(readme: str) -> str:
    """`readme` with the text between the course-map markers replaced by `course_map_table()`."""
    start, end = readme.find(README_MAP_START), readme.find(README_MAP_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md needs the lines {README_MAP_START} and {README_MAP_END}, in that order.")
    head = readme[: start + len(README_MAP_START)]
    return f"{head}\n\n{course_map_table()}\n\n{readme[end:]}"  # blank lines: the table is its own block


def colab_url(relative_path: str, repo_url: str = REPO_URL) -> str:
    """The 'Open in Colab' address of a notebook given its path inside the repository."""
    slug = repo_url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/{relative_path}"


def header_cells(relative_path: str, repo_url: str = REPO_URL) -> list[nbformat.NotebookNode]:
    """The two cells every notebook starts with: the 'Open in Colab' link and the Colab-only install cell.

    The link is text, not the badge image: the image comes from colab.research.google.com, so offline (the
    course's classroom case) it showed as a broken picture and a failed request. `repo_url` is the
    repository the course is published at (`ftlearn headers --repo-url`); it defaults to `REPO_URL`.
    """
    badge = nbformat.v4.new_markdown_cell(
        f"**[Open in Colab]({colab_url(relative_path, repo_url)})** "
        "(the next cell installs the course there; anywhere else it does nothing)"
    )
    install = nbformat.v4.new_code_cell(
        "# On Colab only: install the course package from its repository (does nothing elsewhere).\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import importlib\n"
        "    import subprocess\n"
        "\n"
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+{repo_url}@{BRANCH}"], check=True)\n'
        "    importlib.invalidate_caches()"
    )
    for cell in (badge, install):
        cell.metadata["tags"] = [HEADER_TAG]
        cell.pop("id", None)
    return [badge, install]


def _strip_ids(cell: nbformat.NotebookNode) -> dict:
    data = {k: v for k, v in cell.items() if k not in ("id", "outputs", "execution_count")}
    data["metadata"] = {k: v for k, v in cell.metadata.items() if k == "tags"}
    return data


def header_is_current(nb: nbformat.NotebookNode, relative_path: str, repo_url: str = REPO_URL) -> bool:
    """True when the notebook starts with exactly the header this module generates."""
    want = [_strip_ids(c) for c in header_cells(relative_path, repo_url)]
    have = [_strip_ids(c) for c in nb.cells[: len(want)]]
    return have == want


def apply_header(nb: nbformat.NotebookNode, relative_path: str, repo_url: str = REPO_URL) -> bool:
    """Put the current header at the top of a notebook (replacing an old one); True if it changed."""
    if header_is_current(nb, relative_path, repo_url):
        return False
    body = [c for c in nb.cells if HEADER_TAG not in c.metadata.get("tags", [])]
    new = header_cells(relative_path, repo_url)
    for cell in new:
        cell["id"] = f"{HEADER_TAG}-{new.index(cell)}"
    nb.cells = new + body
    return True


def _checkout_above(base: Path) -> Path | None:
    for folder in [base, *base.parents]:
        if (folder / "notebooks").is_dir() and (folder / "ftlearn").is_dir():
            return folder
    return None


def repo_root(start: Path | None = None) -> Path | None:
    """The course checkout: the nearest folder holding notebooks/ and ftlearn/ above `start`, else above the
    current folder, else above this file.

    The current folder comes before the package's own: with one venv shared by two clones, `ftlearn lab`
    run inside a clone must open that clone's notebooks, not the ones beside the installed package.
    """
    if start is not None:
        return _checkout_above(Path(start).resolve())
    return _checkout_above(Path.cwd().resolve()) or _checkout_above(Path(__file__).resolve().parent)


def timings_path() -> Path:
    """Where the measured run times live: `timings.json` beside this module, shipped as package data."""
    from importlib.resources import files

    return Path(str(files("ftlearn").joinpath(TIMINGS_FILE)))


def load_timings(path: Path | None = None) -> dict:
    """Measured run times, {notebook: {profile: {seconds, hardware, date, ...}}}, as `ftlearn run --record` wrote them.

    Read from the package (`timings_path()`), so an installed course knows its times wherever it is installed.
    """
    path = path or timings_path()
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def first_lesson_needing(what: str) -> Lesson | None:
    """The first lesson of the course map that loads `what` (e.g. "gpt2"), or None."""
    return next((lesson for lesson in LESSONS if what in lesson.needs), None)


def lesson_label(lesson: Lesson) -> str:
    """How a lesson is named in a message: 'lesson 06 (The transformer, by hand)'."""
    return f"lesson {lesson.file[:2]} ({lesson.title})"


# the offline GPT-2 build's entry in timings.json (`ftlearn build-gpt2 --record` writes it; `ftlearn.offline_gpt2`)
BUILD_TIMING_KEY = "offline-gpt2"


def run_conditions(entry: dict) -> str:
    """How a recorded time was taken, in a few words: 'cold, load 2.0' (what `ftlearn run --record` saw)."""
    parts = []
    if "cold" in entry:
        parts.append("cold" if entry["cold"] else "after earlier lessons")
    if entry.get("load_during"):
        parts.append(f"load {entry['load_during']['mean']:.1f}")
    elif entry.get("load_avg"):
        parts.append(f"load {entry['load_avg'][0]:.1f} at the end")
    return ", ".join(parts) or "not recorded"


def course_map(timings: dict | None = None) -> list[dict]:
    """The course map as rows: file, title, what it teaches, measured minutes per profile, how cpu was measured.

    Every lesson of `LESSONS` ships with the package (a test checks each has its notebook), so the map is the
    same in a checkout, a wheel install or Colab. A profile not timed yet has an empty string, not None: a table
    shows it as an empty cell. "cpu measured" says whether the cpu run started cold (nothing built or trained by
    an earlier lesson) and the mean load average during it: at most about 2 while a lesson trains on both cores of
    an otherwise idle 2-core machine, well above it when other jobs shared the cores.
    """
    timings = load_timings() if timings is None else timings
    rows = []
    for lesson in LESSONS:
        measured = timings.get(lesson.file, {})
        rows.append(
            {
                "notebook": lesson.file,
                "title": lesson.title,
                "teaches": lesson.teaches.replace("`", ""),  # plain text for a table of values
                **{
                    f"{p} (min)": round(measured[p]["seconds"] / 60, 1) if p in measured else ""
                    for p in ("smoke", "cpu", "gpu")
                },
                "cpu measured": run_conditions(measured["cpu"]) if "cpu" in measured else "",
            }
        )
    return rows


def time_promise(profile: str, timings: dict | None = None) -> str:
    """What the lessons take in `profile`, as measured by `ftlearn run --record`: every time promise is this text.

    E.g. "measured: 0.2 to 10.9 min per lesson, 58 min for all 13 with the offline GPT-2 build, on x86_64, 2 CPU
    cores, no GPU". Lessons not measured in the profile are said to be so. The build is added unless the first
    lesson that needs GPT-2 was timed building it (its record found no build at its start).
    """
    timings = load_timings() if timings is None else timings
    entries = [timings[lesson.file][profile] for lesson in LESSONS if profile in timings.get(lesson.file, {})]
    if not entries:
        return f"not measured yet in the {profile} profile"
    build = timings.get(BUILD_TIMING_KEY, {}).get(profile)
    builder = first_lesson_needing("gpt2")
    first = timings.get(builder.file, {}).get(profile, {}) if builder else {}
    if "found_at_start" in first and not any(f.startswith("<cache>/offline-gpt2") for f in first["found_at_start"]):
        build = None  # that lesson's own time includes the build: it found none at its start
    minutes = [e["seconds"] / 60 for e in entries]
    total = sum(minutes) + (build["seconds"] / 60 if build else 0)
    count = f"all {len(LESSONS)}" if len(entries) == len(LESSONS) else f"the {len(entries)} of {len(LESSONS)} measured"
    hardware = sorted({e["hardware"] for e in entries})
    return (
        f"measured: {_minutes(min(minutes))} to {_minutes(max(minutes))} min per lesson, {_minutes(total)} min for "
        f"{count}{' with the offline GPT-2 build' if build else ''}, on {' / '.join(hardware)}"
    )


def _minutes(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def runs_dir() -> Path:
    """Where lessons save what later lessons reuse (lesson 07's BERT, lesson 10's language model): runs/ in the
    checkout, else in the current folder. `ftlearn finetune TARGET` saves to runs/TARGET-PROFILE by default."""
    return (repo_root() or Path.cwd()) / "runs"


def source_markdown(*functions: object) -> str:
    """The source of library functions as one fenced Python block (what `show_source` displays)."""
    import inspect

    return "```python\n" + "\n\n".join(inspect.getsource(f).rstrip() for f in functions) + "\n```"


def show_source(*functions: object) -> None:
    """Display library functions' source in a notebook: the lesson's hand-written code is the library's (05, 06)."""
    from IPython.display import Markdown, display

    display(Markdown(source_markdown(*functions)))
