"""Architecture check for a Python package: no import cycles between its modules, MLflow behind one door.

Usage: ``python tools/archcheck.py [PACKAGE_DIR] [--list-lazy]`` (PACKAGE_DIR defaults to ``pipeline``).

Fails (exit 1) when
- the package's modules import each other in a cycle. Every import statement counts wherever it sits: at
  the top, inside a function (a lazy import hides a cycle, it does not remove it), under ``if
  TYPE_CHECKING``, in a ``try``. ``from pkg.a import b`` is an edge to ``pkg.a.b`` when that is a module,
  else to ``pkg.a``; a package's ``__init__`` is not implied by importing one of its modules;
- ``mlflow`` is imported, in any form (``import mlflow.x``, ``from mlflow... import``,
  ``importlib.import_module("mlflow...")``, ``__import__("mlflow...")``), by a module other than
  ``tracking.py`` and ``pyfunc.py`` at the package root.

``--list-lazy`` also lists the imports of the package's own modules that sit inside functions (not a
failure; ``cli.py`` imports its stage modules lazily on purpose and is left out). Exit 2: no such package.
Uses only the standard library, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MLFLOW_DOORS = frozenset({"tracking.py", "pyfunc.py"})
LAZY_ON_PURPOSE = frozenset({"cli.py"})


@dataclass(frozen=True)
class Import:
    """One import of a module: who imports what, where, and whether inside a function."""

    source: str  # importing module, dotted
    target: str  # imported module, dotted (relative imports made absolute)
    name: str | None  # ``from target import name``: a submodule or an attribute of target
    path: Path
    line: int
    function: str | None  # enclosing function, None at module or class level
    text: str


def module_name(package: Path, path: Path) -> str:
    """The dotted name of a file of the package (``pkg/a/__init__.py`` -> ``pkg.a``)."""
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class _Collector(ast.NodeVisitor):
    """Every import in one file, with the function it sits in."""

    def __init__(self, module: str, is_package: bool, path: Path, source: str) -> None:
        self.module, self.is_package, self.path = module, is_package, path
        self.lines = source.splitlines()
        self.functions: list[str] = []
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt | ast.expr, name: str | None = None) -> None:
        text = self._segment(node) or target
        function = self.functions[-1] if self.functions else None
        self.found.append(Import(self.module, target, name, self.path, node.lineno, function, text))

    def _segment(self, node: ast.stmt | ast.expr) -> str:
        """The node's source on one line (``ast.get_source_segment`` re-splits the file at every call)."""
        end = node.end_lineno or node.lineno
        lines = self.lines[node.lineno - 1 : end]
        if not lines:
            return ""
        lines[-1] = lines[-1][: node.end_col_offset]
        lines[0] = lines[0][node.col_offset :]
        return " ".join(" ".join(lines).split())

    def _in_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.functions.append(getattr(node, "name", "<lambda>"))
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _in_function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node.module, node.level)
        for alias in node.names:
            self._add(base, node, alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        first = node.args[0] if node.args else None
        if name in ("import_module", "__import__") and isinstance(getattr(first, "value", None), str):
            self._add(first.value, node)
        self.generic_visit(node)

    def _absolute(self, module: str | None, level: int) -> str:
        if not level:
            return module or ""
        package = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
        base = package[: len(package) - (level - 1)]
        return ".".join([*base, module] if module else base)


def collect(package: Path) -> tuple[set[str], list[Import]]:
    """(the package's module names, every import statement in it)."""
    modules, imports = set(), []
    for path in sorted(package.rglob("*.py")):
        name = module_name(package, path)
        modules.add(name)
        source = path.read_text(encoding="utf-8")
        collector = _Collector(name, path.name == "__init__.py", path, source)
        collector.visit(ast.parse(source, filename=str(path)))
        imports += collector.found
    return modules, imports


def resolve(imp: Import, modules: set[str]) -> str:
    """The module an import loads: ``from a import b`` is ``a.b`` when that is a module, else ``a``."""
    submodule = f"{imp.target}.{imp.name}"
    return submodule if imp.name and submodule in modules else imp.target


def internal_edges(modules: set[str], imports: list[Import]) -> dict[str, dict[str, list[Import]]]:
    """source -> target -> the imports making that edge, between modules of the package only."""
    graph: dict[str, dict[str, list[Import]]] = {m: {} for m in modules}
    for imp in imports:
        target = resolve(imp, modules)
        if target in modules and target != imp.source:
            graph[imp.source].setdefault(target, []).append(imp)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """The groups of two or more modules that import each other, directly or not (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def one_cycle(graph: dict[str, dict[str, list[Import]]], group: list[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected group, as a module path."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*paths[node], start]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return group  # unreachable for a strongly connected group


def _unique(lines: Iterable[str]) -> list[str]:
    """The lines in order, each once (one statement importing two names is one line)."""
    return list(dict.fromkeys(lines))


def _where(imp: Import, root: Path) -> str:
    inside = f" in {imp.function}()" if imp.function else ""
    return f"{imp.path.relative_to(root)}:{imp.line}{inside}: {imp.text}"


def cycle_report(graph: dict[str, dict[str, list[Import]]], root: Path) -> list[str]:
    """One paragraph per import cycle: the modules in it and the import statements closing it."""
    lines = []
    for group in strongly_connected(graph):
        path = one_cycle(graph, group)
        lines.append(f"import cycle among {', '.join(group)}: {' -> '.join(path)}")
        for a, b in itertools.pairwise(path):
            lines += [f"    {where}" for where in _unique(_where(imp, root) for imp in graph[a][b])]
    return lines


def mlflow_report(package: Path, imports: list[Import], root: Path) -> list[str]:
    """The imports of mlflow outside the modules allowed to make them."""
    doors = {package / name for name in MLFLOW_DOORS}
    return _unique(
        f"mlflow imported outside {' and '.join(sorted(MLFLOW_DOORS))}: {_where(imp, root)}"
        for imp in imports
        if imp.path not in doors and resolve(imp, set()).split(".")[0] == "mlflow"
    )


def lazy_report(package: Path, modules: set[str], imports: list[Import], root: Path) -> list[str]:
    """The package's own modules imported inside functions (cli.py left out)."""
    on_purpose = {package / name for name in LAZY_ON_PURPOSE}
    return _unique(
        f"lazy import: {_where(imp, root)}"
        for imp in imports
        if imp.function and imp.path not in on_purpose and resolve(imp, modules) in modules
    )


def main(argv: list[str] | None = None) -> int:
    """Check the package; print what fails (and the lazy imports with --list-lazy); 0 clean, 1 not."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default="pipeline", help="the package folder")
    parser.add_argument("--list-lazy", action="store_true", help="list own-module imports inside functions")
    args = parser.parse_args(argv)
    package = Path(args.package).resolve()
    if not (package / "__init__.py").is_file():
        print(f"archcheck: {args.package} is not a package folder", file=sys.stderr)
        return 2
    root = package.parent
    modules, imports = collect(package)
    failures = cycle_report(internal_edges(modules, imports), root) + mlflow_report(package, imports, root)
    if args.list_lazy:
        lazy = lazy_report(package, modules, imports, root)
        print("\n".join(lazy) if lazy else "no lazy imports of the package's own modules")
    for line in failures:
        print(line)
    summary = f"{len(modules)} modules, {len(imports)} imports"
    print(
        f"archcheck {package.name}: {summary}: "
        + ("FAILED" if failures else "no cycle, mlflow behind its door")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
