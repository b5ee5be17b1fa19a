from __future__ import annotations

import json
import subprocess
import sys

MODULES = ["lensvault.gitinfo", "lensvault.environment", "lensvault.configs.values", "lensvault.evaluations.coco_metrics"]
HEAVY = ["numpy", "yaml", "pycocotools"]


def test_importing_run_parts_stays_light():
    # A fresh interpreter: this test process has long since imported numpy.
    code = (
        "import sys, json, importlib\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        f"print(json.dumps([h for h in {HEAVY!r} if h in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_each_module_exports_what_it_defines():
    import importlib

    for name in MODULES:
        module = importlib.import_module(name)
        assert module.__all__ == sorted(module.__all__)
        for export in module.__all__:
            assert hasattr(module, export), f"{name}.{export}"
