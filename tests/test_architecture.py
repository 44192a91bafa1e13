"""Guards on the library's shape, read from the source with `ast`: no import cycles, no environment writes, the
authoring tools out of what lessons import, nothing heavy at import time."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
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


def _inside_functions(tree: ast.AST) -> set[int]:
    """ids of the nodes inside function bodies: imports there run when the function is called, not at import."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            skipped.update(id(n) for child in ast.iter_child_nodes(node) for n in ast.walk(child))
    return skipped


def imported_names(source: str, package: str = "", module_level: bool = False) -> set[str]:
    """Every dotted name `source` imports (`from a.b import c` gives a.b.c), at every level or `module_level` only.

    `package` anchors relative imports. Imports under `if TYPE_CHECKING:` never run and are left out.
    """
    tree = ast.parse(source)
    skipped = _type_checking_only(tree) | (_inside_functions(tree) if module_level else set())
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
            wanted.update(f"{base}.{alias.name}" for alias in node.names)
    return wanted


def imported_modules(path: Path, name: str, modules: dict[str, Path], module_level: bool = False) -> set[str]:
    """The modules of the package that `name` (the module in `path`) imports, at module level or in functions
    (only at module level, what importing it runs, with `module_level`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    # `from ftlearn import models` names the module ftlearn.models; `from ftlearn.models import X` is cut back to it
    wanted = imported_names(path.read_text(encoding="utf-8"), package, module_level)
    found = set()
    for target in wanted:
        while target and target not in modules:  # ftlearn.models.ModelSource -> ftlearn.models
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def import_graph(package: Path, module_level: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (with `module_level`, those that importing it imports)."""
    modules = module_names(package)
    return {name: imported_modules(path, name, modules, module_level) for name, path in modules.items()}


def import_closure(graph: dict[str, set[str]], start: str) -> set[str]:
    """`start` and every module importing it imports in turn, parent packages included (`import a.b` runs a)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in graph:
            continue
        seen.add(name)
        todo.extend(graph[name])
        todo.extend(".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1))
    return seen


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


def test_module_level_graph_leaves_lazy_imports_out(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import pkg.b\ndef f():\n    import pkg.c\nclass K:\n    import pkg.d\n")
    for name in "bcd":
        (pkg / f"{name}.py").write_text("")
    assert import_graph(pkg, module_level=True)["pkg.a"] == {"pkg.b", "pkg.d"}  # a class body runs at import
    assert import_closure(import_graph(pkg, module_level=True), "pkg.a") == {"pkg", "pkg.a", "pkg.b", "pkg.d"}


def defined_names(path: Path) -> set[str]:
    """The names a module defines itself at module level (functions, classes, assignments), not those it imports."""
    names: set[str] = set()

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(n.id for target in node.targets for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, (ast.If, ast.Try)):
                walk(node.body)
                walk(node.orelse)
                for handler in getattr(node, "handlers", []):
                    walk(handler.body)

    walk(ast.parse(path.read_text(encoding="utf-8")).body)
    return names


def imports_through_reexports(package: Path) -> list[str]:
    """`module: from X import name` for each import, at any level, of a name that X imports rather than defines."""
    modules = module_names(package)
    defined = {name: defined_names(path) for name, path in modules.items()}
    found = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or node.module not in modules:
                continue
            for alias in node.names:  # `from ftlearn import distributed` names a module: fine
                if f"{node.module}.{alias.name}" not in modules and alias.name not in defined[node.module]:
                    found.append(f"{name}: from {node.module} import {alias.name}")
    return found


def test_the_reexport_finder_finds_a_planted_one(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "home.py").write_text("X = 1\ndef f():\n    pass\n")
    (pkg / "hub.py").write_text("from pkg.home import X, f  # noqa: F401\nY = 2\n")
    (pkg / "user.py").write_text("from pkg import home\nfrom pkg.hub import Y\ndef g():\n    from pkg.hub import f\n")
    assert imports_through_reexports(pkg) == ["pkg.user: from pkg.hub import f"]


def test_every_module_imports_each_name_from_its_home_module():
    """finetune.py re-exports the run folder's and the classifier data's names for lessons, scripts and tests; the
    package itself (cli.py above all) imports each name from the module that defines it, so a reader finds it there."""
    found = imports_through_reexports(PACKAGE)
    assert not found, "import these from the module that defines them:\n" + "\n".join(found)


# ---------------------------------------------------------------- what lessons import

NOTEBOOK_FOLDERS = ("notebooks", "solutions", "exercises")


def cell_code(source: str) -> str:
    """A code cell's Python: IPython's magics and shell lines (`%…`, `!…`) blanked."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def lesson_imports() -> dict[str, set[str]]:
    """Each `ftlearn` module a notebook's code cells import -> the notebooks that import it."""
    modules = module_names(PACKAGE)
    found: dict[str, set[str]] = {}
    for folder in NOTEBOOK_FOLDERS:
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            nb = json.loads(path.read_text(encoding="utf-8"))
            for cell in nb["cells"]:
                if cell["cell_type"] != "code":
                    continue
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                for name in imported_names(cell_code(source)):
                    while name and name not in modules:  # ftlearn.checks.check_x -> ftlearn.checks
                        name = name.rpartition(".")[0]
                    if name.startswith("ftlearn"):
                        found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_lessons_import_the_library():
    found = lesson_imports()
    assert {"ftlearn.checks", "ftlearn.runtime", "ftlearn.finetune"} <= set(found)
    assert "ftlearn.course" in found and "ftlearn.cli" in found  # lesson 00 shows the course map and the command


def test_nothing_a_lesson_imports_imports_the_authoring_tools():
    """`ftlearn/authoring/` (notebook runs, tidying, the exercise generator, headers, the guide, the prose
    checker) builds the course; importing what a lesson imports must not import any of it (the CLI's authoring
    commands import it inside their functions)."""
    graph = import_graph(PACKAGE, module_level=True)
    assert any(name.startswith("ftlearn.authoring.") for name in graph), "the authoring package moved"
    leaks = {
        module: sorted(m for m in import_closure(graph, module) if m.startswith("ftlearn.authoring"))
        for module in lesson_imports()
    }
    leaks = {module: found for module, found in leaks.items() if found}
    assert not leaks, f"lesson-imported modules that import the authoring tools: {leaks}"


# ---------------------------------------------------------------- import weight

HEAVY = ("torch", "transformers", "datasets")
# imported first by the lesson that needs no model: its checks and the course map must stay light
LIGHT = ("ftlearn", "ftlearn.checks", "ftlearn.pooling", "ftlearn.course", "ftlearn.runtime", "ftlearn.cli")


def heavy_imports_at_import_time(module: str, graph: dict[str, set[str]], modules: dict[str, Path]) -> list[str]:
    """'module: torch' for each module in `module`'s import closure whose module-level code imports a heavy one."""
    found = []
    for name in sorted(import_closure(graph, module)):
        package = name if modules[name].name == "__init__.py" else name.rpartition(".")[0]
        names = imported_names(modules[name].read_text(encoding="utf-8"), package, module_level=True)
        found += [f"{name}: {top}" for top in HEAVY if any(n == top or n.startswith(f"{top}.") for n in names)]
    return found


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_import_nothing_heavy(module):
    """docs/architecture.md: nothing heavy runs at import time; torch and friends load inside the functions (or,
    for `ftlearn.checks`, the lesson module) that need them."""
    modules = module_names(PACKAGE)
    heavy = heavy_imports_at_import_time(module, import_graph(PACKAGE, module_level=True), modules)
    assert not heavy, f"importing {module} imports, at module level: {heavy}"


@pytest.mark.slow  # a subprocess
def test_importing_the_checks_loads_no_torch_until_a_check_needs_it():
    code = (
        "import sys, ftlearn.checks, ftlearn.pooling, ftlearn.course, ftlearn.cli\n"
        "before = sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules)\n"
        "from ftlearn.checks import check_mean_length\n"
        "light = 'torch' not in sys.modules\n"
        "from ftlearn.checks import check_cross_entropy\n"
        "print(before, light, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["[]", "True", "True"], out.stdout + out.stderr


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


# ---------------------------------------------------------------- docs/architecture.md, as the code has it

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def documented_layers(text: str, modules: dict[str, Path]) -> dict[str, int]:
    """Module -> its layer number, from the layer table of docs/architecture.md (`checks/` is the whole package)."""
    import re

    layers: dict[str, int] = {}
    for number, cell in re.findall(r"^\| (\d+)\. [^|]+\| ([^|]+) \|", text, flags=re.MULTILINE):
        for entry in re.findall(r"`([^`]+)`", cell):
            if entry.endswith("/"):
                prefix = "ftlearn." + entry.strip("/").replace("/", ".")
                names = [name for name in modules if name == prefix or name.startswith(prefix + ".")]
            else:
                names = ["ftlearn." + entry.removesuffix(".py").replace("/", ".")]
            for name in names:
                assert name not in layers, f"{name} is in two layers of {ARCHITECTURE.name}"
                layers[name] = int(number)
    return layers


def test_the_layer_table_places_every_module_once():
    modules = module_names(PACKAGE)
    layers = documented_layers(ARCHITECTURE.read_text(encoding="utf-8"), modules)
    unknown = sorted(set(layers) - set(modules))
    missing = sorted(set(modules) - set(layers) - {"ftlearn"})
    assert not unknown, f"{ARCHITECTURE.name} names modules that do not exist: {unknown}"
    assert not missing, f"add these modules to a layer of {ARCHITECTURE.name}: {missing}"


def test_each_layer_builds_only_on_the_layers_above_it():
    """docs/architecture.md: each layer imports only from itself and the layers above (lazy imports included)."""
    modules = module_names(PACKAGE)
    layers = documented_layers(ARCHITECTURE.read_text(encoding="utf-8"), modules)
    upward = [
        f"{name} (layer {layers[name]}) imports {target} (layer {layers[target]})"
        for name, targets in import_graph(PACKAGE).items()
        for target in sorted(targets)
        if name in layers and target in layers and layers[target] > layers[name]
    ]
    assert not upward, "imports against the layer order of docs/architecture.md:\n" + "\n".join(upward)


def test_the_layer_checker_sees_an_upward_import():
    modules = {"ftlearn.a": Path("a.py"), "ftlearn.b": Path("b.py"), "ftlearn.checks": Path("checks/__init__.py")}
    table = "| 1. low | `a.py`, `checks/` | x |\n| 2. high | `b.py` | y |\n"
    assert documented_layers(table, modules) == {"ftlearn.a": 1, "ftlearn.checks": 1, "ftlearn.b": 2}


def test_the_library_modules_name_the_lesson_that_introduces_them():
    """docs/architecture.md: layers 2 to 5 (the library the lessons use) name their lesson in the docstring."""
    import re

    modules = module_names(PACKAGE)
    layers = documented_layers(ARCHITECTURE.read_text(encoding="utf-8"), modules)
    silent = [
        name
        for name, layer in sorted(layers.items())
        if 2 <= layer <= 5
        and not re.search(
            r"(?i)(notebook|lesson)s?\s+\d\d", ast.get_docstring(ast.parse(modules[name].read_text())) or ""
        )
    ]
    assert not silent, f"say which lesson (notebook NN) introduces: {silent}"


# the modules that are about torch tensors: the only ones that may import torch, transformers or datasets at module
# level (docs/architecture.md names them in its opening paragraph)
TENSOR_MODULES = {
    "ftlearn.losses",
    "ftlearn.optim",
    "ftlearn.transformer",
    "ftlearn.lora",
    "ftlearn.checks.losses",
    "ftlearn.checks.optim",
    "ftlearn.checks.transformer",
    "ftlearn.checks.lora",
}


def test_only_the_tensor_modules_import_something_heavy_at_module_level():
    modules = module_names(PACKAGE)
    graph = {name: set() for name in modules}  # each module on its own: what its own module-level code imports
    heavy = {line.split(":")[0] for name in modules for line in heavy_imports_at_import_time(name, graph, modules)}
    assert heavy == TENSOR_MODULES, (
        f"heavy at import, not listed: {sorted(heavy - TENSOR_MODULES)}; listed, no longer heavy: "
        f"{sorted(TENSOR_MODULES - heavy)} (update TENSOR_MODULES and docs/architecture.md)"
    )
    text = " ".join(ARCHITECTURE.read_text(encoding="utf-8").split())
    for name in TENSOR_MODULES:
        assert f"`{name.removeprefix('ftlearn.').replace('.', '/')}.py`" in text, name


def test_the_documented_run_tasks_are_the_runs():
    from ftlearn import finetune

    assert set(finetune.TASKS) == {"bert", "gpt2-cls", "gpt2-lm", "distill"}
    assert set(finetune.RUNS) == set(finetune.TASKS)  # `ftlearn finetune TARGET`; `ftlearn distill` is distill's
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert all(f"`{task}`" in text for task in finetune.TASKS)
    assert "finetune.run(task, profile, out, seed, recipe, resume, init, method)" in text
    assert list(inspect_parameters(finetune.run))[:8] == [
        "task", "profile", "out", "seed", "recipe", "resume", "init", "method",
    ]  # fmt: skip


def inspect_parameters(function) -> list[str]:
    import inspect

    return list(inspect.signature(function).parameters)
