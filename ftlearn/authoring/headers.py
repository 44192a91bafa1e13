"""`ftlearn headers`: the Colab link and install cell of every notebook, README's course map (from
`course.LESSONS`) and the generated parts of docs/instructors.md (`guide`), rewritten or only checked.

The header cells themselves are built by `ftlearn.course` (`header_cells`, `apply_header`), which the website
and the exercise generator share; this module walks the checkout and writes what is stale.
"""

from __future__ import annotations

from pathlib import Path


def refresh_headers(root: Path, repo_url: str, check: bool = False) -> list[str]:
    """Bring headers, README's course map and the instructors' guide up to date under `root`; return what was stale.

    With `check`, write nothing. Raises ValueError when README or the guide lacks its generated-section markers.
    """
    import nbformat

    from ftlearn.authoring.guide import GUIDE, with_generated_sections
    from ftlearn.authoring.nbrun import write_notebook
    from ftlearn.course import NOTEBOOK_DIRS, apply_header, header_is_current, with_course_map
    from ftlearn.files import write_text_atomic

    stale = []
    for folder in NOTEBOOK_DIRS:
        for path in sorted((root / folder).glob("*.ipynb")):
            rel = path.relative_to(root).as_posix()
            nb = nbformat.read(path, as_version=4)
            if header_is_current(nb, rel, repo_url):
                continue
            stale.append(rel)
            if not check:
                apply_header(nb, rel, repo_url)
                write_notebook(nb, path)
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    wanted = with_course_map(text)
    if wanted != text:
        stale.append("README.md (course map)")
        if not check:
            write_text_atomic(readme, wanted)  # a rename: README is never seen half-written
    guide = root / GUIDE
    text = guide.read_text(encoding="utf-8") if guide.exists() else ""  # a checkout may come without the guide
    wanted = with_generated_sections(text, root) if text else text
    if wanted != text:
        stale.append(f"{GUIDE.as_posix()} (times, plans, goals, known mistakes)")
        if not check:
            write_text_atomic(guide, wanted)
    return stale
