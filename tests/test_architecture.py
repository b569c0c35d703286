"""Architecture rules that import-linter cannot state (pure: no database, no import of the code).

- No module-level import cycle among the project's own modules. Every import counts: at
  module level, inside functions, under ``if TYPE_CHECKING``; ``from x import y`` where
  ``x.y`` is a module counts as importing ``x.y``; relative imports are resolved. An import
  points at the deepest project module it names (``import a.b.c`` -> ``a.b.c``), as in
  import-linter's graph; the implicit import of the parent packages' ``__init__`` is not an
  edge, nor is a dotted string (``include("orders.api.urls")``, ``import_module(...)``).
- Names of the deleted send/mark machinery appear nowhere in the production packages.

The import-linter contracts themselves ([tool.importlinter] in pyproject.toml) are run by
``make lint`` (``lint-imports``), which CI runs before the tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The production packages; those that do not exist (yet) are skipped.
PACKAGES = (
    "omsweb",
    "audit",
    "orders",
    "risk",
    "routing",
    "venues",
    "blotter",
    "bench",
    "marketdata",
    "backtest",
)
EXCLUDED_DIRS = {"tests", "migrations", "__pycache__"}

DELETED_NAMES = ("PendingMark", "before_send", "SendWithdrawn", "_MarkGate", "last_guard")
TEXT_SUFFIXES = {".py", ".html", ".js", ".css", ".txt", ".md", ".toml", ".json"}


def _production_files(root: Path, suffixes: set[str]) -> Iterable[Path]:
    for package in PACKAGES:
        pkg_dir = root / package
        if not (pkg_dir / "__init__.py").is_file():
            continue
        for path in sorted(pkg_dir.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and path.suffix in suffixes and not EXCLUDED_DIRS & set(rel.parts):
                yield path


def find_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the production packages under root."""
    modules: dict[str, Path] = {}
    for path in _production_files(root, {".py"}):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int


def _deepest_module(name: str, modules: Mapping[str, Path]) -> str | None:
    """The deepest project module that the dotted name is or lies in (None: not ours)."""
    while name not in modules:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name


def module_imports(name: str, path: Path, modules: Mapping[str, Path]) -> list[Edge]:
    """Every import of a project module by module `name` (file `path`), anywhere in it."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    edges: list[Edge] = []

    def add(target: str | None, line: int) -> None:
        if target is not None and target != name:
            edges.append(Edge(name, target, line))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_deepest_module(alias.name, modules), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            for alias in node.names:
                submodule = f"{base_name}.{alias.name}" if base_name else alias.name
                if submodule in modules:  # from x import y, y a module: imports x.y
                    add(submodule, node.lineno)
                else:
                    add(_deepest_module(base_name, modules), node.lineno)
    return edges


def import_graph(root: Path) -> tuple[dict[str, set[str]], list[Edge]]:
    modules = find_modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    edges: list[Edge] = []
    for name, path in modules.items():
        for edge in module_imports(name, path, modules):
            graph[name].add(edge.imported)
            edges.append(edge)
    return graph, edges


def strongly_connected_components(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative). Returns the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, iter(sorted(graph[start]))))
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def describe_cycles(components: list[list[str]], edges: list[Edge]) -> str:
    lines = [f"{len(components)} import cycle(s) between the project's modules:"]
    for number, component in enumerate(components, 1):
        members = set(component)
        lines.append(f"cycle {number}: {', '.join(component)}")
        inner: dict[tuple[str, str], list[int]] = {}
        for e in edges:
            if e.importer in members and e.imported in members:
                inner.setdefault((e.importer, e.imported), []).append(e.line)
        for (importer, imported), numbers in sorted(inner.items()):
            where = ", ".join(f"l.{n}" for n in sorted(set(numbers)))
            lines.append(f"    {importer} -> {imported} ({where})")
    return "\n".join(lines)


# --- the rules -------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    graph, edges = import_graph(ROOT)
    assert graph, "no production modules found"
    components = strongly_connected_components(graph)
    if components:
        pytest.fail(describe_cycles(components, edges), pytrace=False)


def test_deleted_names_are_gone() -> None:
    found = []
    for path in _production_files(ROOT, TEXT_SUFFIXES):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for word in DELETED_NAMES:
                if word in line:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {word}")
    if found:
        pytest.fail(f"{len(found)} use(s) of deleted names:\n" + "\n".join(found), pytrace=False)


# --- the cycle counter itself, on a made-up tree ---------------------------------------


def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_cycle_counter_sees_relative_function_level_and_submodule_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "orders/__init__.py": "",
            "orders/a.py": "from . import b\n",  # submodule via `from package import`
            "orders/b.py": "def f():\n    from .sub.c import x\n",  # relative, in a function
            "orders/sub/__init__.py": "",
            "orders/sub/c.py": "x = 1\nimport orders.a\n",  # absolute, closes a -> b -> c -> a
            "orders/d.py": "import orders.sub\n",  # a package's __init__
            "orders/tests/t.py": "import orders.d\n",  # tests are not counted
            "orders/migrations/m.py": "import orders.d\n",  # nor migrations
            "risk/__init__.py": "",
            "risk/x.py": "from orders.sub import c\nimport risk.y\n",
            "risk/y.py": "from risk import x\n",  # x <-> y
            "routing/__init__.py": "",
            "routing/z.py": "import os\nfrom routing import missing_name\n",  # no cycle
        },
    )
    graph, edges = import_graph(tmp_path)
    assert "orders.tests.t" not in graph and "orders.migrations.m" not in graph
    assert graph["orders.a"] == {"orders.b"}
    assert graph["orders.b"] == {"orders.sub.c"}
    assert graph["orders.sub.c"] == {"orders.a"}
    assert graph["orders.d"] == {"orders.sub"}
    assert graph["routing.z"] == {"routing"}
    components = strongly_connected_components(graph)
    assert components == [["orders.a", "orders.b", "orders.sub.c"], ["risk.x", "risk.y"]]
    message = describe_cycles(components, edges)
    assert "orders.b -> orders.sub.c (l.2)" in message


def test_cycle_counter_follows_long_chains_without_recursion(tmp_path: Path) -> None:
    n = 3000  # deeper than Python's default recursion limit
    files = {"orders/__init__.py": ""}
    for i in range(n):
        files[f"orders/m{i}.py"] = f"from orders import m{(i + 1) % n}\n"
    _write(tmp_path, files)
    graph, _ = import_graph(tmp_path)
    assert [len(c) for c in strongly_connected_components(graph)] == [n]
