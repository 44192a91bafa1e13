"""`ftlearn site`: the course as a static website, built offline from the executed notebooks (issue 32).

The site holds a home page (the course map with its measured run times, `course.course_map()`), one page per
lesson with the outputs and figures of its committed run (never executed again), one page per exercise notebook as
the learner gets it, the instructors' guide and the notation (docs/*.md), full-text search, and on every lesson and
exercise page its launch links: Colab (`course.colab_url`) and the local `ftlearn lab`. The repository address is the
one the notebooks' headers carry, which `ftlearn headers --repo-url` writes (`course.REPO_URL` by default).

Why MkDocs + Material for MkDocs + mkdocs-jupyter (the `[site]` extra), and not Sphinx + MyST-NB + a book theme:
- all three are wheels on PyPI, and nothing is downloaded at build time: Material's theme, icons and search
  (lunr.js, run in the reader's browser over an index written at build time) ship inside its wheel. Jupyter Book 2
  needs Node, so it is out;
- mkdocs-jupyter renders a notebook with nbconvert, the renderer of Jupyter's own HTML export, so a page shows the
  markdown and the saved outputs as JupyterLab does. MyST-NB parses notebook markdown as MyST, a different dialect
  (its warnings on our headings and links would need a pass over every lesson), and Sphinx builds slower;
- math is turned into MathML at build time (`latex2mathml`, pure Python), which browsers draw without a script:
  no MathJax from a CDN, so the site reads offline too (the course's classroom case), and search finds its text.
  Material's Google Fonts are off and no page asks GitHub's API for repository facts: a page requests nothing
  from outside the site.

An authoring tool, like `ftlearn headers`: nothing a lesson imports imports it (the CLI imports it inside `ftlearn
site`), and mkdocs is imported inside `build_site` only.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

SITE_MANIFEST = "ftlearn_site.json"  # written last; marks a folder as a site ftlearn built (and lists its files)
DOCS = ("docs/instructors.md", "docs/notation.md")  # the guide pages, in the order the navigation shows them
EXTRA = "ftlearn_site_extra"  # the staged extras (stylesheet) folder inside the site


class SiteError(RuntimeError):
    """Something the builder cannot work around (a missing extra, a notebook that is not there); says what to do."""


@dataclass(frozen=True)
class SiteReport:
    """What one build made: where, how many pages, how long it took, and mkdocs' warnings."""

    out: Path
    pages: int
    seconds: float
    repo_url: str
    site_url: str
    warnings: tuple[str, ...]


# ---------------------------------------------------------------- math: LaTeX -> MathML at build time

_MARKDOWN_SPECIAL = {c: f"&#{ord(c)};" for c in "\\`*_[]|~$"}  # after html.escape: & < > are entities already


_VARIANTS = {  # MathML's mathvariant -> the Unicode name of its letters; browsers draw only mathvariant="normal"
    "double-struck": "DOUBLE-STRUCK",
    "script": "SCRIPT",
    "fraktur": "FRAKTUR",
    "bold": "BOLD",
    "italic": "ITALIC",
    "bold-italic": "BOLD ITALIC",
    "bold-script": "BOLD SCRIPT",
    "bold-fraktur": "BOLD FRAKTUR",
    "sans-serif": "SANS-SERIF",
    "bold-sans-serif": "SANS-SERIF BOLD",
    "monospace": "MONOSPACE",
}
_LEGACY = {"FRAKTUR": "BLACK-LETTER", "ITALIC SMALL H": "PLANCK CONSTANT"}


def _styled(char: str, variant: str) -> str:
    """`char` in a mathematical alphabet: ("R", "DOUBLE-STRUCK") -> ℝ, ("L", "SCRIPT") -> ℒ; else `char` itself."""
    import unicodedata

    if not (char.isascii() and char.isalnum()):
        return char
    kind = (
        "DIGIT " + unicodedata.name(char).split()[-1]
        if char.isdigit()
        else f"{'CAPITAL' if char.isupper() else 'SMALL'} {char.upper()}"
    )
    names = [f"MATHEMATICAL {variant} {kind}", f"{variant} {kind}", f"{_LEGACY.get(variant, variant)} {kind}"]
    names.append(_LEGACY.get(f"{variant} {kind}", ""))
    for name in names:
        try:
            return unicodedata.lookup(name)
        except KeyError:
            continue
    return char


def _plain_variants(mathml: str) -> str:
    """`<mi mathvariant="double-struck">R</mi>` -> `<mi>ℝ</mi>`: the letter itself, which every browser draws."""

    def swap(m: re.Match) -> str:
        variant = _VARIANTS.get(m[2])
        if variant is None:
            return m[0]
        return f"<{m[1]}{m[3]}>{''.join(_styled(c, variant) for c in html.unescape(m[4]))}</{m[1]}>"

    mathml = re.sub(r'<(mi|mn|mo|mtext) mathvariant="([a-z-]+)"([^>]*)>([^<]*)</\1>', swap, mathml)
    # latex2mathml writes \mathrm{d} as <mi>&#x00064;</mi>, which a browser draws in italics like any one-letter <mi>
    return re.sub(
        r"<mi>(&#x0*(?:4[1-9A-F]|5[0-9A]|6[1-9A-F]|7[0-9A]);)</mi>", r'<mi mathvariant="normal">\1</mi>', mathml
    )


def _escaped(text: str) -> str:
    return "".join(_MARKDOWN_SPECIAL.get(c, c) for c in html.escape(html.unescape(text), quote=False))


def _mathml(latex: str, display: bool) -> str:
    """One formula as MathML, its text escaped so that markdown reads none of it as emphasis, code or a table."""
    from latex2mathml.converter import convert

    mathml = _plain_variants(convert(latex.strip(), display="block" if display else "inline"))
    return re.sub(r">([^<]+)<", lambda m: f">{_escaped(m[1])}<", mathml)


_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?![\s$])([^$\n]+?)(?<![\\\s])\$(?!\d)")


def _math_in_prose(text: str) -> str:
    held: list[str] = []

    def hold(match: re.Match) -> str:
        held.append(match[0])
        return f"\x00{len(held) - 1}\x00"

    text = _CODE_SPAN.sub(hold, text)
    text = _DISPLAY.sub(lambda m: _mathml(m[1], display=True), text)
    text = _INLINE.sub(lambda m: _mathml(m[1], display=False), text)
    return re.sub(r"\x00(\d+)\x00", lambda m: held[int(m[1])], text)


def math_to_mathml(markdown: str) -> str:
    """Markdown with its `$...$` and `$$...$$` formulas (Jupyter's delimiters) replaced by MathML; code untouched.

    Fenced code blocks and code spans keep their dollars; `\\$` stays a literal dollar, as in Jupyter.
    """
    out, prose, fence = [], [], None
    for line in markdown.splitlines(keepends=True):
        marker = re.match(r"\s*(`{3,}|~{3,})", line)
        if fence is None and marker:
            out.append(_math_in_prose("".join(prose)))
            prose, fence = [], marker[1]
            out.append(line)
        elif fence is not None:
            out.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
        else:
            prose.append(line)
    out.append(_math_in_prose("".join(prose)))
    return "".join(out)


# ---------------------------------------------------------------- what each page is made of


def headers_repo_url(root: Path) -> str:
    """The repository address the committed notebooks' headers carry: `ftlearn headers --repo-url`'s, else REPO_URL."""
    import nbformat

    from ftlearn.course import HEADER_TAG, REPO_URL, header_is_current

    rel = "notebooks/00_welcome.ipynb"
    path = root / rel
    if path.is_file():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells[:2]:
            found = re.search(r"git\+(https://github\.com/[^@\s\"']+)@", cell.source)
            if found and HEADER_TAG in cell.metadata.get("tags", []) and header_is_current(nb, rel, found[1]):
                return found[1]
    return REPO_URL


def launch_bar(rel: str, repo_url: str, what: str) -> str:
    """The launch links at the top of a lesson or exercise page: Colab, the local command, the file on GitHub."""
    from ftlearn.course import BRANCH, colab_url

    colab, source = html.escape(colab_url(rel, repo_url)), html.escape(f"{repo_url}/blob/{BRANCH}/{rel}")
    return (
        f'<div class="ftlearn-launch"><strong>Run {what}:</strong> '
        f'<a class="ftlearn-colab" href="{colab}">Open in Colab</a> · on your machine, in the course folder: '
        f"<code>ftlearn lab</code>, then open <code>{rel}</code> (first time: the setup command on the "
        f'<a href="{"../" * rel.count("/")}index.html#run-the-course">home page</a>) · '
        f'<a href="{source}">the notebook on GitHub</a></div>'
    )


def _outputs_text(outputs: list) -> str:
    """What a cell printed, as plain text: its streams and the text form of its results."""
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output and "text/plain" in output["data"]:
            parts.append(output["data"]["text/plain"])
    return "".join(parts).strip()


def _for_the_page(nb, rel: str, repo_url: str, what: str, note: str = ""):
    """A notebook as a page shows it: the header cells (Colab link, Colab install) replaced by the launch bar under
    the title (and `note`, markdown, under it), math as MathML, no cell tags on show."""
    import nbformat

    from ftlearn.course import HEADER_TAG

    nb.cells = [c for c in nb.cells if HEADER_TAG not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("tags", None)  # parameters, nbval-check-output...: for tools, not for readers
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
        for output in cell.get("outputs", []):
            if "text/markdown" in output.get("data", {}):
                output["data"]["text/markdown"] = math_to_mathml(output["data"]["text/markdown"])
    top = launch_bar(rel, repo_url, what) + (f"\n\n{note}" if note else "")
    title = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if title is not None and title.source.startswith("# "):  # under the title line, above the introduction
        heading, _, rest = title.source.partition("\n")
        title.source = f"{heading}\n\n{top}\n\n{rest.lstrip()}"
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(top))
    return nb


def lesson_page(root: Path, rel: str, repo_url: str):
    """A lesson notebook as its page: its committed outputs, as saved."""
    import nbformat

    return _for_the_page(nbformat.read(root / rel, as_version=4), rel, repo_url, "this lesson")


CHECK_CALL = re.compile(r"\bcheck_\w+\(")


def exercise_page(root: Path, rel: str, repo_url: str):
    """An exercise notebook as the learner gets it (stubs, no outputs), and under each check a closed box with what
    that check prints for a correct answer: the output of the same cell in solutions/, labelled as such."""
    import nbformat

    name = PurePosixPath(rel).name
    exercise = nbformat.read(root / rel, as_version=4)
    solution_path = root / "solutions" / name
    solved = {}
    if solution_path.is_file():
        solved = {c.get("id"): c for c in nbformat.read(solution_path, as_version=4).cells if c.cell_type == "code"}
    cells = []
    for cell in exercise.cells:
        cells.append(cell)
        answer = solved.get(cell.get("id"))
        text = _outputs_text(answer.outputs) if answer is not None else ""
        if cell.cell_type == "code" and CHECK_CALL.search(cell.source) and text:
            cells.append(
                nbformat.v4.new_markdown_cell(
                    '<details class="ftlearn-check" data-search-exclude><summary>What this check prints for a correct '
                    f"answer (the output of the same cell in <code>solutions/{name}</code>; open it after your own try)"
                    "</summary>"
                    f"<pre>{html.escape(text)}</pre></details>"
                )
            )
    exercise.cells = cells
    note = (
        "*This page is the exercise notebook as you get it: each answer is a stub that raises `NotImplementedError`, "
        "and nothing has run. Run it in Colab or on your machine (the links above) to write the answers; the check "
        "under each one answers ✅ correct, ❌ wrong with a hint, or ⏳ not attempted. The closed boxes under the "
        f"checks show what each check prints when the answer is right, taken from `solutions/{name}`.*"
    )
    return _for_the_page(exercise, rel, repo_url, "these exercises", note)


def _readme_parts(root: Path) -> tuple[str, str]:
    """README's opening (the pitch, who it is for), and its setup commands as lines to copy: the CPU build of
    torch (for machines without an NVIDIA GPU) and the setup command, one step a line."""
    readme = (root / "README.md").read_text(encoding="utf-8") if (root / "README.md").is_file() else ""
    opening = readme.split("\n## ", 1)[0].split("\n", 1)[-1].strip()  # after the title, up to the first section

    def block(marker: str) -> str:
        found = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n\s*```", readme, re.S)
        return found[1].strip() if found else ""

    setup = block("setup-command") or "pip install -e . && ftlearn lab"
    lines = [" && \\\n    ".join(setup.split(" && "))]
    if block("cpu-torch"):
        lines.insert(
            0, f"# without an NVIDIA GPU (most laptops; not on macOS), PyTorch's CPU build first:\n{block('cpu-torch')}"
        )
    return opening, "\n".join(lines)


def _minutes(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else "–"


def home_page(root: Path, repo_url: str) -> str:
    """The home page: what the course is, how to run it, and the course map with its measured run times."""
    from ftlearn.course import LESSONS, colab_url, course_map, load_timings

    opening, setup = _readme_parts(root)
    opening = re.sub(r"\]\((?!https?:)([^)#]+)", lambda m: f"]({repo_url}/blob/main/{m[1]}", opening)
    teaches = {lesson.file: lesson.teaches for lesson in LESSONS}
    rows = [
        "| # | lesson | what it teaches | exercises | smoke, min | cpu, min | gpu, min |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in course_map():
        stem = row["notebook"].removesuffix(".ipynb")
        lesson = f"[{row['title']}](notebooks/{row['notebook']})"
        exercises = (
            f"[exercises](exercises/{row['notebook']})" if (root / "exercises" / row["notebook"]).is_file() else ""
        )
        times = " | ".join(_minutes(row[f"{p} (min)"]) for p in ("smoke", "cpu", "gpu"))
        rows.append(f"| {stem[:2]} | {lesson} | {teaches[row['notebook']]} | {exercises} | {times} |")
    measured = [entry for runs in load_timings().values() for entry in runs.values() if isinstance(entry, dict)]
    hardware = sorted({e.get("hardware", "") for e in measured if e.get("hardware")})
    dates = sorted(e["date"] for e in measured if e.get("date"))
    when = f", {dates[0]} to {dates[-1]}" if dates and dates[0] != dates[-1] else (f", {dates[0]}" if dates else "")
    slug = repo_url.rstrip("/").rsplit("/", 1)[-1]
    return f"""# ftlearn — full-parameter fine-tuning, from first principles

{math_to_mathml(opening)}

## Run the course

Every page of this site is a notebook of the course, shown with the outputs of a real run. To run one, open it in
Colab from the link at its top (start with [the welcome notebook]({colab_url("notebooks/00_welcome.ipynb", repo_url)})),
or set the course up on your own machine (Python ≥ 3.10; no GPU needed) and open JupyterLab on it:

```bash
git clone {repo_url} && cd {slug}
{setup}
```

`ftlearn lab` opens JupyterLab at the welcome notebook; every page's own notebook is named at its top.

## The course map

Minutes for a notebook to run from top to bottom, headless, per profile: `smoke` (a quick pass, CI), `cpu` (a
laptop, real results), `gpu` (one CUDA GPU). Measured by `ftlearn run --record` on {"; ".join(hardware) or "—"}{when};
a dash is a profile not measured yet.

<div class="ftlearn-map" markdown>

{chr(10).join(rows)}

</div>

Also here: the [notation](docs/notation.md), one set of letters for the whole course, and the
[instructors' guide](docs/instructors.md), for running it as a workshop.
"""


STYLESHEET = """\
/* ftlearn's site: the launch bar, the check boxes of the exercises, formulas drawn as MathML */
.ftlearn-launch { margin: 0.6em 0 1.2em; padding: 0.6em 0.9em; border-left: 4px solid var(--md-primary-fg-color);
  background: var(--md-code-bg-color); font-size: 0.8rem; line-height: 1.6; }
.ftlearn-check { margin: 0.3em 0 1em; padding: 0.3em 0.8em; border: 1px solid var(--md-default-fg-color--lightest);
  border-radius: 0.2rem; font-size: 0.8rem; }
.ftlearn-check summary { cursor: pointer; color: var(--md-default-fg-color--light); }
.ftlearn-check pre { white-space: pre-wrap; margin: 0.5em 0; }
math { font-family: "STIX Two Math", "Latin Modern Math", "Cambria Math", math; font-size: 1.08em; }
math[display="block"] { margin: 0.6em 0; overflow-x: auto; }
.md-grid { max-width: 72rem; }
.ftlearn-map td:nth-child(n+4), .ftlearn-map th:nth-child(n+4) { white-space: nowrap; width: 1%; min-width: 0; }
.ftlearn-map td:nth-child(2) { min-width: 9em; }
.jupyter-wrapper .jp-RenderedText pre { word-break: normal; overflow-wrap: anywhere; }  /* wrap at spaces first */
"""


# ---------------------------------------------------------------- mkdocs: configuration, a page hook, the build


def _nav(root: Path) -> list:
    from ftlearn.course import LESSONS

    lessons = [{f"{lesson.file[:2]} · {lesson.title}": f"notebooks/{lesson.file}"} for lesson in LESSONS]
    exercises = [
        {f"{lesson.file[:2]} · {lesson.title}": f"exercises/{lesson.file}"}
        for lesson in LESSONS
        if (root / "exercises" / lesson.file).is_file()
    ]
    return [
        {"Home": "index.md"},
        {"Lessons": lessons},
        {"Exercises": exercises},
        {"Notation": DOCS[1]},
        {"Instructors' guide": DOCS[0]},
    ]


def pages_url(repo_url: str) -> str:
    """Where GitHub Pages publishes the repository's site: https://OWNER.github.io/NAME/."""
    owner, name = repo_url.removeprefix("https://github.com/").strip("/").split("/")[:2]
    return f"https://{owner.lower()}.github.io/{name}/"


def mkdocs_config(docs_dir: Path, site_dir: Path, root: Path, site_url: str) -> dict:
    """The mkdocs.yml of the site, as a dict."""
    return {
        "site_name": "ftlearn",
        "site_url": site_url,  # the 404 page's links start with its path; sitemap.xml names its pages with it
        "site_description": "Full-parameter fine-tuning of language models, from first principles.",
        "docs_dir": str(docs_dir),
        "site_dir": str(site_dir),
        "use_directory_urls": False,  # notebooks/06_transformer.html: reads from any static server, or from disk
        "nav": _nav(root),
        "theme": {
            "name": "material",
            "font": False,  # Material's default loads Google Fonts: a request outside the site
            "palette": {"primary": "indigo", "accent": "indigo"},
            "features": ["navigation.top", "navigation.footer", "search.highlight", "toc.follow"],
        },
        "extra_css": [f"{EXTRA}/ftlearn.css"],
        "extra": {"generator": False},
        "copyright": "ftlearn · MIT licence",
        "markdown_extensions": ["tables", "admonition", "attr_list", "md_in_html", {"toc": {"permalink": True}}],
        "plugins": [
            "search",
            {
                "mkdocs-jupyter": {
                    "execute": False,  # the committed outputs, never a new run
                    "include": ["*.ipynb"],
                    "include_requirejs": False,
                    "cache": False,  # its cache folder would land in the current directory
                    "theme": "light",
                }
            },
        ],
        "validation": {"links": {"not_found": "info", "unrecognized_links": "info", "absolute_links": "info"}},
    }


_ATTR = re.compile(r"""(\s(?:href|src)=)(["'])(.*?)\2""")
_CDN_SCRIPTS = re.compile(
    r"<script[^>]*\ssrc=\"(?:https?://[^\"]*mathjax[^\"]*)?\"[^>]*>\s*</script>"
    r"|<script type=\"text/x-mathjax-config\">.*?</script>"
    r"|<script type=\"module\">(?:(?!</script>).)*?cdnjs(?:(?!</script>).)*?</script>",
    re.S,
)


class _CoursePages:
    """An mkdocs event handler: every page's local links made to resolve, and nbconvert's CDN scripts removed.

    A link in a lesson's markdown names a file of the repository (`../docs/notation.md`, `07_bert_finetune_loop.ipynb`,
    `../ftlearn/train.py`): a file that is a page of the site becomes a link to that page; any other file of the
    repository becomes a link to it on GitHub. nbconvert's MathJax and mermaid loaders go (math is MathML already).
    """

    def __init__(self, root: Path, repo_url: str, branch: str) -> None:
        self.root, self.repo_url, self.branch = root, repo_url, branch
        self.styles: dict[str, str] = {}  # file name -> css: nbconvert's stylesheets, once for the whole site

    def _shared_style(self, match: re.Match, page) -> str:
        """A large inline stylesheet (JupyterLab's, 0.6 MB on every notebook page) as one file the pages share."""
        import hashlib

        from mkdocs.utils import get_relative_url

        css = match[1]
        if len(css) < 2000:
            return match[0]
        name = f"{EXTRA}/notebook-{hashlib.sha256(css.encode()).hexdigest()[:12]}.css"
        self.styles[name] = css
        return f'<link rel="stylesheet" href="{get_relative_url(name, page.url)}">'

    def on_post_build(self, config) -> None:
        for name, css in self.styles.items():
            (Path(config["site_dir"]) / name).write_text(css, encoding="utf-8")

    def on_page_content(self, html_text: str, page, config, files) -> str:
        from mkdocs.utils import get_relative_url

        html_text = _CDN_SCRIPTS.sub("", html_text)
        html_text = re.sub(
            r'<style type="text/css">(.*?)</style>', lambda m: self._shared_style(m, page), html_text, flags=re.S
        )
        here = PurePosixPath(page.file.src_uri).parent
        urls = {f.url for f in files}

        def fix(match: re.Match) -> str:
            value = html.unescape(match[3])
            parts = urlsplit(value)
            if parts.scheme or value.startswith(("//", "#", "data:")) or not parts.path:
                return match[0]
            target = os.path.normpath((here / parts.path).as_posix()).replace(os.sep, "/")
            anchor = f"#{parts.fragment}" if parts.fragment else ""
            if target in urls:
                return match[0]
            page_file = files.get_file_from_path(target)
            if page_file is not None:
                new = get_relative_url(page_file.url, page.url) + anchor
            elif not target.startswith("..") and (self.root / target).exists():
                kind = "tree" if (self.root / target).is_dir() else "blob"
                new = f"{self.repo_url}/{kind}/{self.branch}/{target}{anchor}"
            else:
                return match[0]  # a broken link stays broken, for the site's test to name
            return f"{match[1]}{match[2]}{html.escape(new)}{match[2]}"

        return _ATTR.sub(fix, html_text)


def stage(root: Path, docs_dir: Path, repo_url: str) -> None:
    """Write the site's sources into `docs_dir`: the home page, the lessons and exercises as pages show them, the
    guide and the notation with their math as MathML, and the stylesheet."""
    import nbformat

    from ftlearn.course import LESSONS

    for folder, make in (("notebooks", lesson_page), ("exercises", exercise_page)):
        (docs_dir / folder).mkdir(parents=True, exist_ok=True)
        for lesson in LESSONS:
            rel = f"{folder}/{lesson.file}"
            if (root / rel).is_file():
                nbformat.write(make(root, rel, repo_url), docs_dir / rel)
            elif folder == "notebooks":
                raise SiteError(f"{rel} is missing: every lesson of ftlearn.course.LESSONS needs its notebook.")
    for rel in DOCS:
        (docs_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        source = (root / rel).read_text(encoding="utf-8") if (root / rel).is_file() else f"# {rel}\n\nNot written yet."
        (docs_dir / rel).write_text(math_to_mathml(source), encoding="utf-8")
    (docs_dir / "index.md").write_text(home_page(root, repo_url), encoding="utf-8")
    (docs_dir / EXTRA).mkdir(exist_ok=True)
    (docs_dir / EXTRA / "ftlearn.css").write_text(STYLESHEET, encoding="utf-8")


def _site_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _check_out(out: Path) -> None:
    """Refuse an --out that is not empty and not a site this command built, naming what would be lost."""
    from ftlearn.files import check_output_folder

    manifest = out / SITE_MANIFEST
    ours, foreign = manifest.is_file(), []
    if ours:
        try:
            listed = set(json.loads(manifest.read_text(encoding="utf-8"))["files"])
        except (ValueError, KeyError, TypeError):
            listed = set()
        foreign = [name for name in _site_files(out) if name not in listed and name != SITE_MANIFEST]
    check_output_folder(out, is_ours=ours, foreign=foreign)


class _Warnings:
    """Collects mkdocs' warnings during a build (a logging handler)."""

    def __init__(self) -> None:
        import logging

        self.seen: list[str] = []
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = lambda record: self.seen.append(record.getMessage())
        self.logger = logging.getLogger("mkdocs")

    def __enter__(self) -> _Warnings:
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self.handler)


def build_site(
    out: str | Path, root: Path | None = None, repo_url: str | None = None, site_url: str | None = None
) -> SiteReport:
    """Build the site into `out`: staged in a temporary folder, built beside `out`, then renamed into place.

    `out` may be missing, empty or a site built before (it is replaced whole); any other folder is refused.
    """
    try:
        import latex2mathml  # noqa: F401
        import material  # noqa: F401
        import mkdocs_jupyter  # noqa: F401
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
    except ImportError as exc:
        raise SiteError(
            f'ftlearn site needs the [site] extra ({exc.name} is not installed): pip install -e ".[site]"'
        ) from None
    import yaml

    from ftlearn.course import BRANCH, repo_root
    from ftlearn.files import remove_stale_temporaries, replace_folder, temporary_sibling, writer_lock

    root = Path(root) if root is not None else repo_root()
    if root is None or not (root / "notebooks").is_dir():
        raise SiteError("run ftlearn site inside the course folder (the one with notebooks/ and ftlearn/).")
    repo_url = (repo_url or headers_repo_url(root)).rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo_url):
        raise SiteError(
            f"--repo-url must be https://github.com/OWNER/NAME (Colab opens GitHub notebooks), not {repo_url!r}"
        )
    site_url = site_url or pages_url(repo_url)
    out = Path(out).expanduser().resolve()
    start = time.perf_counter()
    with writer_lock(out), tempfile.TemporaryDirectory(prefix="ftlearn-site-") as tmp:
        _check_out(out)
        remove_stale_temporaries(out)
        built = temporary_sibling(out)
        docs_dir = Path(tmp) / "src"
        stage(root, docs_dir, repo_url)
        config_file = Path(tmp) / "mkdocs.yml"
        config_file.write_text(
            yaml.safe_dump(mkdocs_config(docs_dir, built, root, site_url), allow_unicode=True), "utf-8"
        )
        try:
            with _Warnings() as warnings:
                config = load_config(str(config_file))
                config.plugins["ftlearn-course-pages"] = _CoursePages(root, repo_url, BRANCH)
                config.plugins.on_startup(command="build", dirty=False)
                try:
                    build(config)
                finally:
                    config.plugins.on_shutdown()
            pages = sum(1 for p in built.rglob("*.html") if p.name != "404.html")
            manifest = {"repo_url": repo_url, "site_url": site_url, "pages": pages, "files": _site_files(built)}
            (built / SITE_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
            replace_folder(built, out)
        except BaseException:
            shutil.rmtree(built, ignore_errors=True)
            raise
    seconds = time.perf_counter() - start
    return SiteReport(out, pages, seconds, repo_url, site_url, tuple(warnings.seen))
