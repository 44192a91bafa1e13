"""The course as a website (issue 32): `ftlearn site` built, served and read as a reader would.

Fast tests check the pieces (formulas to MathML, the exercise pages' check boxes, the repository address, the output
folder's guard). The slow ones build the whole site into a temporary folder (its build time and page count are
printed), crawl its HTML (every local link and image must exist), serve it on 127.0.0.1 from an `http.server` thread
and open every page in Debian's headless Chromium through playwright, as tests/test_jupyterlab_browser.py does: no
console error, no request leaving 127.0.0.1, search finds "cross-entropy", and screenshots of the home page and
lesson 06 go to artifacts/screenshots/ (CI keeps that folder). Without the [site] extra, Chromium or playwright the
slow tests are skipped with the reason, unless FTLEARN_REQUIRE_BROWSER=1 (.ci/run), where they fail.
"""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from ftlearn import course

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("FTLEARN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("FTLEARN_REQUIRE_BROWSER") == "1"  # .ci/run: there, a skip would hide a failure
SITE_EXTRA = ("mkdocs", "material", "mkdocs_jupyter", "latex2mathml")
MISSING_EXTRA = [name for name in SITE_EXTRA if importlib.util.find_spec(name) is None]


def needs(what: list[str], reason: str) -> None:
    if what:
        message = f"{reason}: {', '.join(what)} missing"
        if REQUIRED:
            pytest.fail(f"{message} (FTLEARN_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(message)


# ---------------------------------------------------------------- fast: the pieces


def test_formulas_become_mathml_and_code_keeps_its_dollars():
    pytest.importorskip("latex2mathml")
    from ftlearn.authoring.site import math_to_mathml

    text = (
        "Softmax $p_i = e^{z_i}/\\sum_j e^{z_j}$ costs `$HOME` and \\$5.\n\n"
        "$$\\mathcal{L} = -\\log p_y$$\n\n"
        "| letter | meaning |\n|---|---|\n| $\\|x\\|_2$ | a norm, $\\mathbb{R}^C$ |\n\n"
        "```bash\necho $PATH and $HOME\n```\n"
    )
    out = math_to_mathml(text)
    assert out.count('display="inline"') == 3
    assert 'display="block"' in out and "ℒ" in out  # \mathcal{L} as the letter itself: browsers draw no mathvariant
    assert "ℝ" in out  # \mathbb{R}, likewise
    assert "`$HOME`" in out and "\\$5" in out and "echo $PATH and $HOME" in out  # code and escaped dollars untouched
    table_row = next(line for line in out.splitlines() if line.startswith("| <math"))
    assert table_row.count("|") == 3, table_row  # the norm's bars are entities: the row keeps its two cells
    assert "_" not in re.sub(r"<[^>]+>", "", out.split("```")[0]), "an underscore left for markdown to read as emphasis"


def test_every_formula_of_the_course_converts():
    pytest.importorskip("latex2mathml")
    from ftlearn.authoring.site import math_to_mathml

    sources = [(ROOT / rel).read_text(encoding="utf-8") for rel in ("docs/notation.md", "docs/instructors.md")]
    for folder in ("notebooks", "exercises"):
        for lesson in course.LESSONS:
            path = ROOT / folder / lesson.file
            if path.is_file():
                nb = nbformat.read(path, as_version=4)
                sources += [c.source for c in nb.cells if c.cell_type == "markdown"]
    for source in sources:
        out = math_to_mathml(source)
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", out, flags=re.S)
        assert not re.search(r"(?<!\\)\$[^$\s][^$\n]*\$", prose), f"a formula left as TeX: {prose[:300]}"


def test_an_exercise_page_is_the_learners_notebook_with_the_checks_messages_labelled():
    pytest.importorskip("latex2mathml")
    from ftlearn.authoring.site import exercise_page

    rel = "exercises/02_cross_entropy.ipynb"
    page = exercise_page(ROOT, rel, course.REPO_URL)
    code = [c for c in page.cells if c.cell_type == "code"]
    assert code and all(not c.outputs for c in code), "the learner's notebook has no outputs"
    assert any("raise NotImplementedError(" in c.source for c in code), "the answers are stubs"
    boxes = [c.source for c in page.cells if "ftlearn-check" in c.source]
    checks = [c for c in code if re.search(r"\bcheck_\w+\(", c.source)]
    assert len(boxes) == len(checks) >= 5
    assert all("solutions/02_cross_entropy.ipynb" in b and "correct answer" in b for b in boxes)
    assert "✅ log_softmax: correct." in boxes[0]
    assert not any(course.HEADER_TAG in c.metadata.get("tags", []) for c in page.cells)  # the Colab install cell
    assert course.colab_url(rel, course.REPO_URL) in page.cells[0].source + page.cells[1].source


def test_the_repository_address_is_the_one_the_headers_carry(tmp_path):
    from ftlearn.authoring.site import headers_repo_url

    assert headers_repo_url(ROOT) == course.REPO_URL
    other = "https://github.com/someone/ftlearn-fork"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 00 · Welcome")])
    course.apply_header(nb, "notebooks/00_welcome.ipynb", other)  # what `ftlearn headers --repo-url` writes
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "00_welcome.ipynb")
    assert headers_repo_url(tmp_path) == other


def test_no_module_of_the_course_imports_the_site_builder_but_the_cli():
    from test_architecture import PACKAGE, import_graph  # tests/ is on the path, as for toy_classifier

    importers = sorted(name for name, imported in import_graph(PACKAGE).items() if "ftlearn.authoring.site" in imported)
    assert importers == ["ftlearn.cli"], importers


def test_the_site_command_refuses_a_bad_address_and_a_folder_it_did_not_write(tmp_path, capsys):
    from ftlearn.cli import main

    assert main(["site", "--out", str(tmp_path / "site"), "--repo-url", "http://example.org/x"]) == 2
    assert "--repo-url must be https://github.com/OWNER/NAME" in capsys.readouterr().err
    if MISSING_EXTRA:
        pytest.skip(f"the [site] extra is not installed ({', '.join(MISSING_EXTRA)})")
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.md").write_text("mine")
    assert main(["site", "--out", str(mine)]) == 2
    assert "ftlearn did not write" in capsys.readouterr().err
    assert (mine / "thesis.md").read_text() == "mine"  # refused before anything was written


# ---------------------------------------------------------------- slow: the built site


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site, built once for this module; yields (folder, report)."""
    needs(MISSING_EXTRA, 'the site test needs the [site] extra (pip install -e ".[site]")')
    from ftlearn.authoring.site import SITE_MANIFEST, build_site

    out = tmp_path_factory.mktemp("site") / "site"
    report = build_site(out, root=ROOT)
    print(f"\nftlearn site: {report.pages} pages built in {report.seconds:.1f} s into {out}")
    assert json.loads((out / SITE_MANIFEST).read_text())["pages"] == report.pages
    yield out, report


def local_references(folder: Path, site_path: str) -> list[tuple[Path, str, Path]]:
    """Every local href/src of every HTML page: (page, as written, the file it names)."""
    found = []
    for page in sorted(folder.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"""\s(?:href|src)=(["'])(.*?)\1""", text):
            value = html.unescape(match[2])
            parts = urlsplit(value)
            if parts.scheme or value.startswith(("//", "#", "data:")) or not parts.path:
                continue
            path = unquote(parts.path)
            if path.startswith("/"):  # the 404 page's links are absolute: under the site's published path
                assert path.startswith(site_path), f"{page.name}: {value} is outside {site_path}"
                target = folder / path.removeprefix(site_path)
            else:
                target = (page.parent / path).resolve()
            found.append((page, value, target / "index.html" if path.endswith("/") else target))
    return found


@pytest.mark.slow
def test_every_local_link_and_image_resolves(built):
    folder, report = built
    references = local_references(folder, urlsplit(report.site_url).path)
    broken = sorted({f"{p.relative_to(folder)}: {v}" for p, v, target in references if not target.is_file()})
    assert len(references) > 1000
    assert not broken, f"{len(broken)} local links or images that do not exist: {broken[:20]}"
    assert report.warnings == (), report.warnings


@pytest.mark.slow
def test_the_site_holds_the_course(built):
    folder, report = built
    home = (folder / "index.html").read_text(encoding="utf-8")
    for row in course.course_map():  # every lesson, with its measured minutes
        stem = row["notebook"].removesuffix(".ipynb")
        assert f'href="notebooks/{stem}.html"' in home and f'href="exercises/{stem}.html"' in home, stem
        line = re.search(rf"<tr>\s*<td>{stem[:2]}</td>.*?</tr>", home, re.S)[0]
        for profile in ("smoke", "cpu", "gpu"):
            minutes = row[f"{profile} (min)"]
            assert f"<td>{minutes:g}</td>" in line if minutes != "" else "<td>–</td>" in line, (stem, profile)
    for lesson in course.LESSONS:
        stem = lesson.file.removesuffix(".ipynb")
        nb = nbformat.read(ROOT / "notebooks" / lesson.file, as_version=4)
        figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
        page = (folder / "notebooks" / f"{stem}.html").read_text(encoding="utf-8")
        assert page.count('src="data:image/png;base64,') >= figures, f"{stem}: a saved figure is missing"
        rel = f"notebooks/{lesson.file}"
        assert html.escape(course.colab_url(rel, report.repo_url)) in page and "<code>ftlearn lab</code>" in page
        assert "$$" not in re.sub(r"<pre.*?</pre>|<code.*?</code>", "", page, flags=re.S), f"{stem}: TeX left"
        assert not re.search(r"""src=["']https?://""", page), f"{stem}: a script or image from outside the site"
        assert "cdnjs" not in page and "mathjax-config" not in page, f"{stem}: nbconvert's CDN loaders are left"
        raw = [r for r in ("interactive(children=", "HBox(children=", "Error displaying widget") if r in page]
        assert not raw, f"{stem}: a slider shows as raw widget text, not its saved figure: {raw}"
        exercise = (folder / "exercises" / f"{stem}.html").read_text(encoding="utf-8")
        assert "What this check prints for a correct answer" in exercise and "✅" in exercise, stem
    index = (folder / "search" / "search_index.json").read_text(encoding="utf-8")
    assert "What this check prints" not in index  # the answers' messages stay out of search results (spoilers)
    for guide in ("docs/instructors.html", "docs/notation.html"):
        assert (folder / guide).is_file(), guide
    assert "<math" in (folder / "docs" / "notation.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def served(built):
    """The site on 127.0.0.1, from an http.server thread: yields its base address."""
    folder, _ = built

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture(scope="module")
def browser_page(served):
    """A headless Chromium tab; yields (tab, the console's errors, requests that left 127.0.0.1)."""
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
    missing = ["the playwright package (the [test] extra)"] if sync_api is None else []
    missing += ["Chromium (apt-get install chromium, or FTLEARN_CHROMIUM)"] if CHROMIUM is None else []
    needs(missing, "the site's browser test needs a browser")
    errors: list[str] = []
    outside: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        tab.on("console", lambda m: errors.append(f"{tab.url}: {m.text}") if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(f"{tab.url}: {e}"))
        tab.on("requestfailed", lambda r: errors.append(f"{tab.url}: failed {r.url}"))
        tab.on("request", lambda r: outside.append(r.url) if urlsplit(r.url).hostname not in ("127.0.0.1", None) else 0)
        yield tab, errors, outside
        browser.close()


@pytest.mark.slow
@pytest.mark.browser
def test_every_page_loads_without_a_console_error(built, served, browser_page):
    folder, _ = built
    tab, errors, outside = browser_page
    pages = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.html") if p.name != "404.html")
    assert len(pages) == built[1].pages
    for page in pages:
        tab.goto(served + page, wait_until="load")
        tab.wait_for_load_state("networkidle")
        assert tab.locator("article h1").count() >= 1, f"{page}: no title"
    assert not errors, f"console errors: {errors[:10]}"
    assert not outside, f"requests left 127.0.0.1: {sorted(set(outside))[:10]}"


@pytest.mark.slow
@pytest.mark.browser
def test_search_finds_cross_entropy(served, browser_page):
    tab, errors, _ = browser_page
    tab.goto(served + "index.html", wait_until="networkidle")
    tab.locator(".md-search__input").first.click()
    tab.keyboard.type("cross-entropy")  # typed, as a reader does: Material searches on key events
    results = tab.locator(".md-search-result__item a")
    results.first.wait_for(timeout=30_000)
    hrefs = [results.nth(i).get_attribute("href") for i in range(results.count())]
    assert any("notebooks/02_cross_entropy.html" in h for h in hrefs), hrefs
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / "site-search-cross-entropy.png"))
    assert not errors, errors[:10]


@pytest.mark.slow
@pytest.mark.browser
def test_screenshots_of_the_home_page_and_lesson_06(served, browser_page):
    tab, errors, _ = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.goto(served + "index.html", wait_until="networkidle")
    tab.screenshot(path=str(SHOTS / "site-home.png"), full_page=False)
    tab.evaluate("document.getElementById('the-course-map').scrollIntoView()")
    tab.wait_for_timeout(300)
    tab.screenshot(path=str(SHOTS / "site-home-course-map.png"))
    tab.goto(served + "notebooks/06_transformer.html", wait_until="networkidle")
    assert tab.locator(".ftlearn-launch a.ftlearn-colab").count() == 1
    tab.screenshot(path=str(SHOTS / "site-lesson-06.png"))
    tab.locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
    tab.wait_for_timeout(300)
    tab.screenshot(path=str(SHOTS / "site-lesson-06-figure.png"))
    assert not errors, errors[:10]
    for name in ("site-home", "site-lesson-06"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000, name
