"""Figures quoted in prose, checked against what the code printed: the guard of issue 16.

A lesson's markdown may quote a number a cell printed ("test accuracy 0.863"). When the notebook is
executed again and the number moves, the sentence goes on saying the old one. This module finds every
*measured-looking* figure in a notebook's markdown cells (or in a README table row) and looks for it
among the numbers the notebook's code cells printed, and the numeric literals of its code (a setting the
prose names, or the bound of an `assert` that holds the range the prose relies on).

Measured-looking: a decimal (0.876, 1.2e-6), a percentage (79%), a number with thousands separators
(22,713,986), a number with a unit (435 s, 363.42 MB, 1.48x, 478 MFLOP), a multiplier (124M) or next to
"±". A bare integer ("section 7", "2 epochs", "26 reviews") is not, so it is not checked; neither are dates,
version numbers, links and file names.

A quoted figure is backed by a printed number when they agree to the quoted precision: 0.876 matches
0.8761 and 87.6%; 1,185 s matches 1185.3; 1.2e-6 matches 1.24e-06. An explicit sign (+0.009, −0.002)
must agree; without one the printed sign is ignored. Figures that no output can back (a published
result, an arithmetic example, a constant of a derivation) go in one allow-list file, one line each
with its reason: `path | figure | reason`. Only JSON parsing and regular expressions: no kernel runs.
"""

from __future__ import annotations

import io
import json
import math
import re
import tokenize
from dataclasses import dataclass, replace
from pathlib import Path

from ftlearn.course import HEADER_TAG  # the Colab header cells quote no figures

MINUS = "\u2212"

# a number: thousands-separated or plain, optional decimals and exponent; a sign is read separately
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][-+\u2212]?\d+)?|\.\d+"
_START = r"(?:(?<![\w.])|(?<=(?<!\w)x))"  # not inside a word or after a dot; "x0.34" (a ratio) is fine
NUMBER = re.compile(rf"{_START}({_NUMBER})")
UNIT = re.compile(
    r"\s?(?:%|x\b|×|ms\b|µs\b|s\b|min\b|seconds?\b|minutes?\b|hours?\b|[KMGT]i?B\b|kB\b|bytes?\b"
    r"|[KMGTP]?FLOP(?:s|S|/s)?\b|nats?\b|bits?\b|points?\b|(?:samples|tokens|steps|it)/s\b)"
)
# a multiplier glued to the number: 35k, 124M, 7B
SCALES = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9}
SCALE = re.compile(r"[kKMB](?![\w])")
# skipped before extraction: dates, versions, links' addresses, image data
_SKIP = re.compile(
    r"\d{4}-\d{2}-\d{2}|\b\d+\.\d+\.\d+\S*|\]\([^)]*\)|https?://\S+|<img[^>]*>|[\w./-]+\.(?:ipynb|py|json|md|txt|csv)"
)


@dataclass(frozen=True)
class Figure:
    """One figure quoted in prose: its text, value, precision and where it stands."""

    text: str  # as written, e.g. "+0.009", "87.6%", "1,185"
    value: float  # signed when the text carries a sign
    quantum: float  # one unit in the last quoted digit: 0.001 for "0.876"
    signed: bool
    percent: bool
    where: str  # "cell 12", "README line 202 (03 | bag of words ...)"
    context: str  # the words around it
    cell: int | None = None  # the notebook cell, to show the outputs next to it


@dataclass(frozen=True)
class Printed:
    """One number a notebook printed (or its code holds), with where it stands."""

    value: float
    where: str
    context: str
    percent: bool = False  # printed as a percentage: 87.6% may back a quoted 0.876
    code: bool = False  # a literal of the code (a setting, an assert's bound), not an output


def _blank(match: re.Match) -> str:
    return " " * len(match.group(0))


def _parse(text: str) -> float:
    return float(text.replace(",", "").replace(MINUS, "-"))


def _quantum(text: str) -> float:
    mantissa, _, exponent = text.replace(",", "").lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent.replace(MINUS, "-") or 0) - decimals)


def _context(text: str, start: int, end: int, width: int = 60) -> str:
    left = text[max(0, start - width) : start]
    right = text[end : end + width]
    return " ".join(f"{left}[{text[start:end]}]{right}".split())


def quoted_figures(text: str, where: str) -> list[Figure]:
    """The measured-looking figures of a piece of markdown, in order."""
    clean = _SKIP.sub(_blank, text)
    found = []
    for m in NUMBER.finditer(clean):
        body, start, end = m.group(1), m.start(1), m.end(1)
        before, after = clean[max(0, start - 2) : start], clean[end : end + 12]
        unit = UNIT.match(after)
        percent_sign = bool(unit) and unit.group(0).strip() == "%"
        percent = percent_sign or (bool(unit) and unit.group(0).strip() in ("point", "points"))  # percentage points
        measured = (
            "." in body
            or "e" in body.lower()
            or "," in body
            or bool(unit)
            or "±" in clean[max(0, start - 3) : start]
            or after.lstrip().startswith("±")
            or before.endswith(("×", "x"))
        )
        scale = SCALE.match(after)
        if not (measured or scale):
            continue
        signed = before[-1:] in ("+", "-", MINUS) and not clean[max(0, start - 2) : start - 1].isalnum()
        sign = before[-1:] if signed else ""  # "+0.009", "−0.002"; not the dash of "Llama-2"
        factor = SCALES[scale.group(0)] if scale else 1.0
        value = _parse(body) * factor
        found.append(
            Figure(
                text=sign + body + (scale.group(0) if scale else "") + ("%" if percent_sign else ""),
                value=-value if sign in ("-", MINUS) else value,
                quantum=_quantum(body) * factor,
                signed=bool(sign),
                percent=percent,
                where=where,
                context=_context(text, start - len(sign), end + (len(unit.group(0)) if unit else 0)),
            )
        )
    return found


# numbers printed by code: the same shapes plus a sign, and nan/inf are not numbers here
_PRINTED = re.compile(rf"{_START}([-+\u2212]?)({_NUMBER})")


def printed_numbers(text: str, where: str) -> list[Printed]:
    """Every number in a piece of output text, signed."""
    out = []
    text = _SKIP.sub(_blank, text)
    for m in _PRINTED.finditer(text):
        value = -_parse(m.group(2)) if m.group(1) in ("-", MINUS) else _parse(m.group(2))
        percent = text[m.end() : m.end() + 2].lstrip().startswith("%")
        context = _context(text, m.start(), m.end(), 40)
        out.append(Printed(value, where, context, percent))
        scale = SCALE.match(text, m.end())
        if scale:  # "6.5M tokens" backs 6.5M and 6,500,000 alike
            out.append(Printed(value * SCALES[scale.group(0)], where, context))
    return out


def code_numbers(source: str, where: str) -> list[Printed]:
    """The numeric literals of a code cell (settings, assert bounds); strings and comments are left out."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            if tok.type == tokenize.NUMBER and not tok.string.lower().endswith("j"):
                text = tok.string.replace("_", "")
                try:
                    value = float(int(text, 0)) if text[:2].lower() in ("0x", "0o", "0b") else float(text)
                except ValueError:
                    continue
                out.append(Printed(value, where, f"code: {tok.line.strip()[:80]}", code=True))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def backs(figure: Figure, printed: Printed) -> bool:
    """True when the printed number rounds to the quoted figure (a fraction may back a quoted percentage)."""
    number = printed.value
    # a quoted percentage is backed by a fraction, or by an output's number (a table may put % in its header),
    # never by a bare integer of the code (EPOCHS = 10 does not back "10%")
    candidates = [number * 100] * figure.percent + [number] * (not (figure.percent and printed.code))
    candidates += [number / 100] * printed.percent
    tolerance = figure.quantum / 2 * (1 + 1e-9) + 1e-12 * abs(figure.value)
    for candidate in candidates:
        value = candidate if figure.signed else abs(candidate)
        target = figure.value if figure.signed else abs(figure.value)
        if math.isfinite(value) and abs(value - target) <= tolerance:
            return True
    return False


# ---------------------------------------------------------------- notebooks and sources


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _output_text(output: dict) -> str:
    parts = [output.get("text", "")]
    data = output.get("data", {})
    parts += [data.get(mime, "") for mime in ("text/plain", "text/markdown", "text/html", "text/latex")]
    return "\n".join("".join(p) if isinstance(p, list) else p for p in parts)


def notebook_backing(path: Path) -> list[Printed]:
    """Everything that can back a figure in this notebook: the numbers of its outputs and of its code."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    numbers: list[Printed] = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            numbers += printed_numbers(_output_text(output), f"cell {index} output")
        numbers += code_numbers(_source(cell), f"cell {index} code")
    return numbers


def notebook_figures(path: Path) -> list[Figure]:
    """The measured-looking figures of a notebook's markdown cells (header cells left out)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    figures = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown" and HEADER_TAG not in cell.get("metadata", {}).get("tags", []):
            figures += [replace(f, cell=index) for f in quoted_figures(_source(cell), f"cell {index}")]
    return figures


def json_backing(path: Path) -> list[Printed]:
    """Every number in a JSON file (values, and numbers inside its strings)."""

    def walk(node, key: str) -> list[Printed]:
        if isinstance(node, dict):
            return [p for k, v in node.items() for p in walk(v, f"{key}.{k}" if key else str(k))]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in walk(v, f"{key}[{i}]")]
        if isinstance(node, bool) or node is None:
            return []
        if isinstance(node, (int, float)):
            return [Printed(float(node), f"{path.name}:{key}", f"{key} = {node}")]
        return printed_numbers(str(node), f"{path.name}:{key}")

    return walk(json.loads(Path(path).read_text(encoding="utf-8")), "")


def source_backing(path: Path) -> list[Printed]:
    """The numbers a source file holds: a notebook's outputs and code, a JSON file's values, a text file's numbers."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return notebook_backing(path)
    if path.suffix == ".json":
        return json_backing(path)
    return printed_numbers(path.read_text(encoding="utf-8"), path.name)


# ---------------------------------------------------------------- the allow-list


@dataclass(frozen=True)
class Allowed:
    """One allow-list line: a figure in a file that no output backs, and why that is fine."""

    path: str
    figure: str
    reason: str
    line: int


def read_allowlist(path: Path) -> list[Allowed]:
    """Parse `path | figure | reason` lines (# starts a comment); a line without a reason is an error."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|", 2)]
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{path}:{number}: write `path | figure | reason`, got {line!r}")
        entries.append(Allowed(parts[0], parts[1], parts[2], number))
    return entries


# ---------------------------------------------------------------- the check


@dataclass(frozen=True)
class Unbacked:
    """A quoted figure that nothing printed backs, with the printed numbers closest to it."""

    figure: Figure
    nearest: tuple[Printed, ...]  # the printed numbers closest in value
    around: tuple[str, ...] = ()  # the outputs of the code cells on either side of the figure's cell

    def message(self, path: str, around: bool = True) -> str:
        """What the next author needs: file, cell, figure, sentence, and what the outputs hold nearby."""
        lines = [f"{path}, {self.figure.where}: {self.figure.text!r} is printed nowhere: ...{self.figure.context}..."]
        lines += [f"    closest printed value: {p.value:g} ({p.where}: {p.context})" for p in self.nearest]
        lines += [f"    {text}" for text in self.around] if around else []
        return "\n".join(lines)


def report(path: str, found: list[Unbacked]) -> str:
    """The messages of `found`, the outputs around a cell shown once, after its last figure."""
    return "\n".join(
        u.message(path, around=i + 1 == len(found) or found[i + 1].figure.where != u.figure.where)
        for i, u in enumerate(found)
    )


def _nearest(figure: Figure, backing: list[Printed], k: int = 3) -> tuple[Printed, ...]:
    def distance(p: Printed) -> float:
        target = abs(figure.value) / 100 if figure.percent else abs(figure.value)
        return abs(math.log((abs(p.value) + 1e-30) / (target + 1e-30)))

    unique = {(p.value, p.where): p for p in backing if not p.code}  # a table printed as text and html: once
    return tuple(sorted(unique.values(), key=distance)[:k])


def _around(path: Path, index: int, width: int = 160) -> tuple[str, ...]:
    """The start of the outputs of the nearest code cells before and after markdown cell `index`."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    found = []
    for step, label in ((-1, "output above"), (1, "output below")):
        j = index + step
        while 0 <= j < len(cells) and not (cells[j]["cell_type"] == "code" and cells[j].get("outputs")):
            j += step
        if 0 <= j < len(cells):
            text = " ".join(" ".join(_output_text(o) for o in cells[j]["outputs"]).split())
            found.append(f"{label} (cell {j}): {text[:width]}")
    return tuple(found)


def unbacked(figures: list[Figure], backing: list[Printed], allowed: set[str]) -> list[Unbacked]:
    """The figures that no backing number rounds to and the allow-list does not name."""
    return [
        Unbacked(f, _nearest(f, backing))
        for f in figures
        if f.text not in allowed and not any(backs(f, p) for p in backing)
    ]


# ---------------------------------------------------------------- README tables


@dataclass(frozen=True)
class TableRow:
    """One row of a markdown table with a `source` column."""

    cells: dict[str, str]
    line: int

    @property
    def label(self) -> str:
        """A short name for messages: the row's first cells."""
        first = [v for k, v in self.cells.items() if k != "source"][:2]
        return " | ".join(first)[:70]

    def sources(self) -> list[str]:
        """The files named in the source column, in backticks or bare, separated by commas or semicolons."""
        return [s.strip(" `") for s in re.split(r"[,;]", self.cells.get("source", "")) if s.strip(" `")]


def markdown_tables(text: str, section: str) -> list[list[TableRow]]:
    """The tables under the `## section` heading of a markdown text, as rows keyed by header."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == f"## {section}"), None)
    if start is None:
        raise ValueError(f"no '## {section}' heading")
    tables, header = [], None
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            tables.append([])
        elif not all(set(c) <= set("-: ") for c in cells):
            tables[-1].append(TableRow(dict(zip(header, cells, strict=False)), number))
    return tables


def row_figures(row: TableRow) -> list[Figure]:
    """The measured-looking figures of every cell of a table row except its source."""
    where = f"README line {row.line} ({row.label})"
    return [f for k, v in row.cells.items() if k != "source" for f in quoted_figures(v, where)]


# ---------------------------------------------------------------- whole files


def check_notebook(path: Path, allowed: set[str]) -> list[Unbacked]:
    """The figures of a notebook's markdown that neither its outputs, its code nor the allow-list back."""
    found = unbacked(notebook_figures(path), notebook_backing(path), allowed)
    return [replace(u, around=_around(path, u.figure.cell)) for u in found]


def check_row(row: TableRow, root: Path, allowed: set[str]) -> list[Unbacked]:
    """The figures of a README table row that the files named in its source column do not back."""
    backing = [p for name in row.sources() if (root / name).is_file() for p in source_backing(root / name)]
    return unbacked(row_figures(row), backing, allowed)


def prose_figures(text: str, label: str) -> list[Figure]:
    """The figures of a markdown text outside its tables (code blocks included: their comments quote timings)."""
    return [
        f
        for number, line in enumerate(text.splitlines(), start=1)
        if not line.lstrip().startswith("|")
        for f in quoted_figures(line, f"{label} line {number}")
    ]
