"""The store interface is the only way to the bytes: outside ``lensvault/store/`` no module
calls a store method the interface (``ObjectStore``) does not declare, nor imports a
backend — so an object-storage backend can be added without touching callers.

Checked on the source (any expression ending in ``store``: ``vault.store``, ``self.store``,
a ``store`` argument), so a leak fails here, not only when the second backend meets it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lensvault
from lensvault.store.base import ObjectStore

ALLOWED = {n for n in dir(ObjectStore) if not n.startswith("_")} | {"url"}
# Backends are chosen by URL (store.open_store); their modules are the store package's own.
BACKENDS = {"lensvault.store.local", "lensvault.store.memory", "lensvault.store.staging"}


def _store_expr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "store") or (
        isinstance(node, ast.Attribute) and node.attr == "store")


def leaks(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Attribute) and _store_expr(node.value) and node.attr not in ALLOWED:
            out.append(f"{path.name}:{node.lineno}: .store.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
                and node.args and _store_expr(node.args[0]):
            out.append(f"{path.name}:{node.lineno}: {node.func.id}(store, …)")
        elif isinstance(node, ast.ImportFrom) and node.module in BACKENDS:
            out.append(f"{path.name}:{node.lineno}: imports {node.module}")
    return out


def test_nothing_outside_the_store_package_reaches_past_the_interface():
    package = Path(lensvault.__file__).resolve().parent
    found = []
    for p in sorted(package.rglob("*.py")):
        if package / "store" in p.parents:
            continue
        found += [f"{p.relative_to(package)}: {x}" for x in leaks(p)]
    assert not found, "callers reaching past ObjectStore:\n" + "\n".join(found)


def test_the_check_sees_a_leak(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f(vault):\n    x = vault.store.oid_to_path('a')\n"
                 "    y = getattr(vault.store, 'root', None)\n"
                 "    from lensvault.store.local import LocalObjectStore\n"
                 "    return vault.store.has('a'), x, y\n")
    assert sorted(x.split(": ", 1)[1] for x in leaks(p)) == [
        ".store.oid_to_path", "getattr(store, …)", "imports lensvault.store.local"]
