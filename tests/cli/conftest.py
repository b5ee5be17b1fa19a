"""Fixtures for the CLI tests: a real project (git repository, vault, a vision dataset, a
registered config) and a helper that runs a printed command exactly as a user would."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runs.conftest import GIT_ENV, Project, make_project

BIN = str(Path(sys.executable).parent)  # where the `lensvault` entry point is installed


def shell_env(extra: dict | None = None, columns: int = 200) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LENSVAULT_DIR"}
    env.update(GIT_ENV)
    env.update({"PATH": BIN + os.pathsep + env.get("PATH", ""), "COLUMNS": str(columns), "PYTHONDONTWRITEBYTECODE": "1",
                "GIT_EDITOR": "false"})  # a hint that opens an editor does not work as printed
    env.update(extra or {})
    return env


def sh(command: str, cwd: Path, *, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run a command line as printed (bash: `&&`, quotes) in ``cwd``."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=shell_env(env), capture_output=True, text=True,
                          timeout=timeout)


def lv(*args, cwd: Path, env: dict | None = None, columns: int = 200, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", *map(str, args)], cwd=cwd,
                          env=shell_env(env, columns), capture_output=True, text=True, timeout=timeout)


def lv_json(*args, cwd: Path, **kw):
    r = lv(*args, "--json", cwd=cwd, **kw)
    assert r.returncode == 0, r.stderr + r.stdout
    return json.loads(r.stdout)


def quoted(*words) -> str:
    return shlex.join(map(str, words))


@pytest.fixture
def proj(sqlite_vault) -> Project:
    """shapes@1.0.0 (12 images, COCO, split 70/20/10 seed 42) and C-01, in a committed git repo."""
    return make_project(sqlite_vault)
