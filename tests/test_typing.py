"""The package ships its types (PEP 561) and says which parts are checked strictly."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

import lensvault

ROOT = Path(lensvault.__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_py_typed_is_in_the_package_and_in_its_package_data():
    assert files("lensvault").joinpath("py.typed").is_file()
    assert "py.typed" in _pyproject()["tool"]["setuptools"]["package-data"]["lensvault"]


def test_the_layers_others_build_on_are_checked_strictly():
    overrides = _pyproject()["tool"]["mypy"]["overrides"]
    strict = next(o for o in overrides if o.get("disallow_untyped_defs"))
    for package in ("store", "catalog", "datasets", "annotations"):
        assert f"lensvault.{package}.*" in strict["module"]
    # Every module named there exists (a renamed module would silently drop out of the check).
    src = ROOT / "src"
    for name in strict["module"]:
        path = src / name.removesuffix(".*").replace(".", "/")
        assert path.is_dir() or path.with_suffix(".py").is_file(), name


def test_make_test_runs_the_whole_lint_first():
    """`make test` depends on `make lint` (ruff over src, tests, benchmarks; mypy over the package),
    not on a list of the parts that happen to be clean."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_rule = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert "lint" in test_rule.split(":", 1)[1].split()
    assert "LINT_CLEAN" not in makefile and "lint-clean" not in makefile
    lint_paths = next(line for line in makefile.splitlines() if line.startswith("RUFF_PATHS"))
    assert lint_paths.split("?=", 1)[1].split() == ["src", "tests", "benchmarks"]
    assert _pyproject()["tool"]["mypy"]["files"] == ["src/lensvault"]


def test_every_vault_parameter_is_typed_as_a_vault():
    """A function that takes the vault says so (``vault: Vault``, or ``Vault | None`` where it may
    open one itself), in every layer: positional, keyword-only, and in methods."""
    import ast

    untyped, mistyped = [], []
    for path in sorted((ROOT / "src" / "lensvault").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
                if arg.arg != "vault":
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                if arg.annotation is None:
                    untyped.append(where)
                elif ast.unparse(arg.annotation) not in ("Vault", "Vault | None"):
                    mistyped.append(f"{where}: {ast.unparse(arg.annotation)}")
    assert not untyped, "vault parameters without a type:\n" + "\n".join(untyped)
    assert not mistyped, "vault parameters typed as something else:\n" + "\n".join(mistyped)
