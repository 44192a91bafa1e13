"""Guards on the library's shape, read from the source with `ast`: no import cycles, no environment writes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ftlearn"

# ---------------------------------------------------------------- the import graph


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name -> file for every module of `package`; a package's __init__.py is the package itself."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks: imports there never run, so they make no cycle."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    return skipped


def imported_modules(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that `name` (the module in `path`) imports, at module level or in functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: set[str] = set()
    for node in ast.walk(tree):  # every level: module, class, function bodies
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            wanted.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from ftlearn import models` imports the module ftlearn.models
                wanted.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    found = set()
    for target in wanted:
        while target and target not in modules:  # ftlearn.models.ModelSource -> ftlearn.models
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = module_names(package)
    return {name: imported_modules(path, name, modules) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) for each group of modules that import one another (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for group in groups:  # a shortest way back to the start, inside the group
        start = min(group)
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt_frontier = []
            for node in frontier:
                for nxt in sorted(graph[node] & group):
                    if nxt == start:
                        cycle = paths[node] + [start]
                        break
                    if nxt not in paths:
                        paths[nxt] = paths[node] + [nxt]
                        nxt_frontier.append(nxt)
                if cycle:
                    break
            frontier = nxt_frontier
        cycles.append(cycle)
    return sorted(cycles)


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph(PACKAGE)
    assert "ftlearn.checks" in graph and "ftlearn.checks.core" in graph  # __init__ is its package
    assert "ftlearn.models" in graph["ftlearn.cli"]  # imported inside a function
    assert "ftlearn.evaluation" in graph["ftlearn.train"]  # imported at module level
    assert "ftlearn.distributed" in graph["ftlearn.finetune"]  # `from ftlearn import distributed`, in a function


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text(
        "import pkg.a\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n"
    )
    (pkg / "d.py").write_text("import pkg.sub.c\n")  # c imports d only for type checking: no cycle
    graph = import_graph(pkg)
    assert graph["pkg.b"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]


def test_no_import_cycles():
    cycles = import_cycles(import_graph(PACKAGE))
    assert not cycles, "import cycles in ftlearn/:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


# ---------------------------------------------------------------- environment writes

ENVIRON = ("os.environ", "environ")
WRITING_METHODS = {"setdefault", "update", "pop", "popitem", "clear", "__setitem__", "__delitem__"}
WRITING_FUNCTIONS = {"os.putenv", "os.unsetenv", "putenv", "unsetenv"}
# (file, function, variable): each write here is allowed, and why.
ALLOWED_WRITES = {
    # Python reads PYTHONHASHSEED only when it starts: setting it here seeds the child processes (DataLoader
    # workers, torchrun ranks, notebook kernels) that the seeded run starts; a default, never an override.
    ("runtime.py", "seed_everything", "PYTHONHASHSEED"),
    # cuBLAS reads it when CUDA starts; deterministic CUDA matmuls need it set before then; a default too.
    ("runtime.py", "seed_everything", "CUBLAS_WORKSPACE_CONFIG"),
}


def environment_writes(source: str) -> list[tuple[int, str, str]]:
    """(line, enclosing function, variable or '?') for each statement in `source` that changes the environment."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def function_of(node: ast.AST) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node.name
        return "<module>"

    def key(node: ast.AST | None) -> str:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "?"

    def is_environ_item(node: ast.AST) -> bool:
        return isinstance(node, ast.Subscript) and ast.unparse(node.value) in ENVIRON

    found = []
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if is_environ_item(target):
                found.append((node.lineno, function_of(node), key(target.slice)))
        if isinstance(node, ast.Call):
            func = node.func
            writes = (
                isinstance(func, ast.Attribute) and func.attr in WRITING_METHODS and ast.unparse(func.value) in ENVIRON
            ) or ast.unparse(func) in WRITING_FUNCTIONS
            if writes:
                found.append((node.lineno, function_of(node), key(node.args[0] if node.args else None)))
    return sorted(found)


def test_the_detector_sees_every_kind_of_write():
    source = (
        "import os\nfrom os import environ\n"
        "os.environ['A'] = '1'\n"
        "def f():\n    os.environ.setdefault('B', '1')\n    environ.update(C='1')\n    os.environ.pop('D', None)\n"
        "    os.environ.clear()\n    del os.environ['E']\n    os.putenv('F', '1')\n    os.unsetenv('G')\n"
        "os.environ['H'] += 'x'\n"
        "x = os.environ.get('I')\ny = os.environ['J']\nz = dict(os.environ)\n"  # reads are fine
    )
    assert [(f, k) for _, f, k in environment_writes(source)] == [
        ("<module>", "A"),
        ("f", "B"),
        ("f", "?"),
        ("f", "D"),
        ("f", "?"),
        ("f", "E"),
        ("f", "F"),
        ("f", "G"),
        ("<module>", "H"),
    ]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_library_code_does_not_write_the_environment(path):
    """Settings travel as parameters and return values; the environment is the user's, read but not written."""
    rel = path.relative_to(PACKAGE).as_posix()
    writes = [
        f"{rel}:{line} in {function}() writes {variable}"
        for line, function, variable in environment_writes(path.read_text(encoding="utf-8"))
        if (rel, function, variable) not in ALLOWED_WRITES
    ]
    assert not writes, "pass a parameter instead of writing os.environ:\n" + "\n".join(writes)


def test_the_allowlist_is_still_needed():
    seen = {
        (path.relative_to(PACKAGE).as_posix(), function, variable)
        for path in PACKAGE.rglob("*.py")
        for _, function, variable in environment_writes(path.read_text(encoding="utf-8"))
    }
    assert ALLOWED_WRITES <= seen, f"no longer written, drop from ALLOWED_WRITES: {ALLOWED_WRITES - seen}"
