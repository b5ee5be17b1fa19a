"""Imports point down: no module of the package imports, directly or through others, a module
that imports it back — counting imports inside functions, which hide a cycle from Python
(it only fails when the function runs) but not from a reader. Imports under ``if TYPE_CHECKING:``
do not count: they never run (annotations name ``Vault`` that way from below it).

A cycle that is known and being fixed elsewhere is listed in KNOWN_CYCLES; the test also
fails when a listed cycle is gone, so the list never outlives the problem.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lensvault

# Each entry: the exact set of modules of one known cycle (a strongly connected component).
KNOWN_CYCLES: list[frozenset[str]] = []


def modules(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of the package under ``src``."""
    out = {}
    for p in sorted((src / package).rglob("*.py")):
        parts = list(p.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the package modules it names in any import statement, at any depth of the file.

    ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``. The
    implicit import of a parent package's ``__init__`` is not an edge (every package would
    otherwise be a cycle with the modules its ``__init__`` re-exports). Nor is an import under
    ``if TYPE_CHECKING:``: it never runs, and names a type for annotations only.
    """
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        for node in run_time_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name in mods)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in mods:
                        edges[name].add(sub)
                    elif target in mods:
                        edges[name].add(target)
    return edges


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (any module's attribute of that name)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def run_time_nodes(tree: ast.AST):
    """Every node of the tree except those only a type checker reads: the body of an
    ``if TYPE_CHECKING:`` (its ``else:`` runs, and is kept)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.append(node.test)
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        # Iterative Tarjan: (node, iterator over its successors).
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in edges[node]:
                        found.append(frozenset(component))
    return found


def describe(component: frozenset[str], edges: dict[str, set[str]]) -> str:
    arrows = sorted(f"{a} -> {b}" for a in component for b in edges[a] if b in component)
    return "; ".join(arrows)


def test_the_package_has_no_import_cycle_beyond_the_known_ones():
    src = Path(lensvault.__file__).resolve().parents[1]
    edges = import_edges(modules(src, "lensvault"))
    found = cycles(edges)
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "import cycles (make the arrows point down):\n" + "\n".join(describe(c, edges) for c in new)
    stale = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not stale, f"these known cycles are gone: remove them from KNOWN_CYCLES: {stale}"


def test_the_output_layers_sit_on_top():
    """cli → render → the library: a renderer never reaches for a command, the library for either
    (a server renders the same results without the CLI; the library prints nothing itself)."""
    src = Path(lensvault.__file__).resolve().parents[1]
    edges = import_edges(modules(src, "lensvault"))

    def layer(m: str) -> int:
        return 2 if m.startswith("lensvault.cli") else 1 if m.startswith("lensvault.render") else 0

    upward = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets if layer(b) > layer(a))
    assert upward == []


# The entry points above the Vault (the package's lazy names, the CLI, the server, the tracking API for
# training code, the quickstart): only they open one; anything below gets it passed in.
ENTRY_POINTS = ("lensvault.cli", "lensvault.tracking", "lensvault.quickstart", "lensvault.quickstart_tasks", "lensvault.server")


def _entry_point(module: str) -> bool:
    return module == "lensvault" or any(module == e or module.startswith(e + ".") for e in ENTRY_POINTS)


def test_only_the_entry_points_import_the_vault():
    src = Path(lensvault.__file__).resolve().parents[1]
    edges = import_edges(modules(src, "lensvault"))
    up = sorted(m for m, targets in edges.items() if "lensvault.vault" in targets and not _entry_point(m))
    assert not up, f"modules below the Vault importing it (pass the vault down instead): {up}"


def test_runs_and_evaluations_import_neither_the_registry_nor_lineage():
    """Runs and their evaluations are below the registry (which registers a run's weights with its
    metrics) and lineage (which reads all of them)."""
    src = Path(lensvault.__file__).resolve().parents[1]
    edges = import_edges(modules(src, "lensvault"))
    up = sorted(f"{m} -> {t}" for m, targets in edges.items()
                if m.startswith(("lensvault.runs", "lensvault.evaluations"))
                for t in targets if t.startswith(("lensvault.registry", "lensvault.lineage")))
    assert not up, up


def test_the_annotation_layer_has_model_at_the_bottom():
    src = Path(lensvault.__file__).resolve().parents[1]
    edges = import_edges(modules(src, "lensvault"))
    assert not {e for e in edges["lensvault.annotations.model"] if e.startswith("lensvault.annotations")}


def _package(root: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return import_edges(modules(root, "pkg"))


def test_the_checker_sees_cycles_through_function_bodies_and_relative_imports(tmp_path):
    edges = _package(tmp_path, {
        "pkg/__init__.py": "from pkg.a import x\n",
        "pkg/a.py": "from .sub import b\nx = 1\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "def f():\n    from ..c import y\n    return y\n",
        "pkg/c.py": "import pkg.a\ny = 2\n",
        "pkg/d.py": "from pkg import c\n",  # imports a cycle member, is not part of it
        "pkg/e.py": "from . import e\n",  # imports itself
    })
    found = cycles(edges)
    assert frozenset({"pkg.a", "pkg.sub.b", "pkg.c"}) in found
    assert frozenset({"pkg.e"}) in found
    assert len(found) == 2
    assert "pkg.sub.b -> pkg.c" in describe(frozenset({"pkg.a", "pkg.sub.b", "pkg.c"}), edges)


def test_the_checker_skips_imports_only_a_type_checker_reads(tmp_path):
    edges = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/top.py": "from pkg.low import base\n",
        "pkg/low.py": (
            "import typing\n"
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from pkg.top import Top\n"
            "if typing.TYPE_CHECKING:\n"
            "    import pkg.top\n"
            "else:\n"
            "    from pkg import other\n"  # runs: an edge
            "def f():\n"
            "    if TYPE_CHECKING:\n"
            "        from pkg.top import Top\n"
            "    return 1\n"
            "base = 0\n"
        ),
        "pkg/other.py": "",
    })
    assert edges["pkg.low"] == {"pkg.other"}
    assert cycles(edges) == []
    # The same import outside the guard is an upward arrow and closes a cycle.
    edges = _package(tmp_path, {"pkg/low.py": "if True:\n    from pkg.top import Top\nbase = 0\n"})
    assert cycles(edges) == [frozenset({"pkg.low", "pkg.top"})]


def test_the_checker_passes_a_package_whose_imports_point_down(tmp_path):
    edges = _package(tmp_path, {
        "pkg/__init__.py": "from pkg.top import run\n",  # a package re-exporting its modules is fine
        "pkg/top.py": "from pkg import low\ndef run():\n    from pkg.mid import m\n    return m\n",
        "pkg/mid.py": "from pkg.low import base as m\n",
        "pkg/low.py": "base = 0\n",
    })
    assert cycles(edges) == []
