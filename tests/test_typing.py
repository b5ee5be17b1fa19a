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
