"""The studio's packages (studio/, compute/, render/, export/) have no module-level import cycle,
within a package or across them, counting imports under ``if TYPE_CHECKING:`` (a cycle
there still ties two modules' designs together, and breaks as soon as one import becomes real).
Imports inside functions do not count: they run after every module has loaded."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def module_name(root: Path, f: Path) -> str:
    parts = f.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(tree: ast.Module, name: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """What a module imports at module level (in ``if``/``try`` blocks too): (module, names) for
    ``from module import names``, (module, []) for ``import module``."""
    out: list[tuple[str, list[str]]] = []

    def visit(body):
        for n in body:
            if isinstance(n, ast.Import):
                out.extend((a.name, []) for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(here[:len(here) - n.level + 1] + ([n.module] if n.module else []))
                out.append((base, [a.name for a in n.names]))
            elif isinstance(n, (ast.If, ast.Try)):
                visit(n.body)
                visit(n.orelse)
                for h in getattr(n, "handlers", []):
                    visit(h.body)
    visit(tree.body)
    return out


def import_graph(*roots: Path) -> dict[str, set[str]]:
    """Module -> the packages' modules it needs loaded at module level.  ``import a.b.c`` runs the
    packages ``a`` and ``a.b`` too, except those the importer lies inside (they are running
    already, whoever imported first).  ``from p import x`` needs the submodule ``p.x`` where there
    is one, else ``p`` itself, ancestor or not: ``x`` must already be defined there."""
    files = {module_name(root, f): f for root in roots for f in root.rglob("*.py")}
    graph = {}
    for name, f in files.items():
        deps = set()
        for base, names in top_level_imports(ast.parse(f.read_text(encoding="utf-8")), name,
                                             f.name == "__init__.py"):
            parts = base.split(".")
            deps.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts)))
                        if p in files and not name.startswith(p + "."))
            subs = [f"{base}.{x}" for x in names if f"{base}.{x}" in files]
            deps.update(subs)
            if len(subs) < len(names) or not names:
                deps.add(base)
        graph[name] = deps & files.keys() - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_through_type_checking(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import B\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n")
    (pkg / "c.py").write_text("def f():\n    from pkg.a import A\n")       # inside a function: no cycle
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b"]]


def test_the_checker_tells_a_submodule_from_a_name_of_the_package(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import A\nfrom pkg.b import B\n")
    (pkg / "a.py").write_text("from pkg import c\nA = 1\n")          # the submodule c: fine
    (pkg / "c.py").write_text("")
    (pkg / "b.py").write_text("from pkg import A\nB = 2\n")          # a name of the half-run __init__
    assert cycles(import_graph(pkg)) == [["pkg", "pkg.b"]]


def test_the_studio_has_no_module_level_import_cycle():
    graph = import_graph(*(ROOT / p for p in ("studio", "compute", "render", "export")))
    assert len(graph) > 100 and any(d.startswith("studio.") for d in graph["compute.pipeline"])
    assert cycles(graph) == []
