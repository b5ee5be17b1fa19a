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

from tests.runs.conftest import GIT_ENV, TRAIN_SCRIPT, Project, git, make_project

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


def lv_out(*args, cwd: Path, **kw) -> str:
    """What a command that must succeed prints on stdout."""
    r = lv(*args, cwd=cwd, **kw)
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


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


@pytest.fixture(scope="package")
def world(tmp_path_factory):
    """A git repo with a vault: shapes@1.0.0 → 1.0.1 (label fix), files@1.0.0 → 1.1.0 (file
    changes), config C-01, runs on both shapes versions, det@1.0.0 and det@1.1.0 promoted."""
    import lensvault
    from lensvault.demo.shapes import generate_shapes

    root = tmp_path_factory.mktemp("world") / "repo"
    vault = lensvault.init(root)
    git("init", "-q", ".", cwd=root)
    generate_shapes(root / "raw", n_images=16, seed=3)
    (root / "raw" / "corrections").rename(root / "fixed")
    (root / ".gitignore").write_text("/raw/\n/fixed/\n/files/\n/out/\n/.lensvault/\n/runs/\n")
    vault.snapshot("shapes", root / "raw", version="1.0.0", format="coco", split="70/20/10", seed=42)
    files = root / "files"
    for i in range(30):
        (files / f"part-{i // 10}").mkdir(parents=True, exist_ok=True)
        (files / f"part-{i // 10}" / f"file-with-a-long-name-{i:03d}.txt").write_text(f"content {i}\n")
    vault.snapshot("files", files, version="1.0.0")
    (files / "part-0" / "file-with-a-long-name-000.txt").write_text("changed\n")
    (files / "part-1" / "file-with-a-long-name-010.txt").unlink()
    (files / "part-2" / "file-with-a-long-name-020.txt").rename(files / "part-2" / "renamed-020.txt")
    for i in range(25):
        (files / "new" / f"added-{i:02d}.txt").parent.mkdir(exist_ok=True)
        (files / "new" / f"added-{i:02d}.txt").write_text(f"added {i}\n")
    vault.snapshot("files", files, version="1.1.0")
    (root / "configs").mkdir()
    (root / "configs" / "base.yaml").write_text("lr: 0.01\nseed: 2024\nmodel:\n  depth: 3\n")
    (root / "configs" / "deeper.yaml").write_text("lr: 0.01\nseed: 2024\nmodel:\n  depth: 5\n")
    (root / "train.py").write_text(TRAIN_SCRIPT)
    git("add", "-A", cwd=root)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=root, env={**__import__("os").environ, **GIT_ENV}, check=True)
    vault.add_config(root / "configs" / "base.yaml", "C-01")
    vault.add_config(root / "configs" / "deeper.yaml", "C-02")
    vault.fix("shapes@1.0.0", root / "fixed" / "instances.json")
    vault.close()
    return root


@pytest.fixture(scope="package")
def runs(world):
    subprocess.run("git add -A && git commit -qm 'manifests and configs'", shell=True, cwd=world,
                   env={**__import__("os").environ, **GIT_ENV}, check=True)
    ids = []
    for ds, cfg, model in (("shapes@1.0.0", "C-01", ("det", "1.0.0")), ("shapes@1.0.1", "C-02", None)):
        r = lv("run", "--dataset", ds, "--config", cfg, *(["--model", model[0], "--version", model[1]] if model else []),
               "--json", "--", sys.executable, "train.py", cwd=world, env={"STEPS": "3"})
        assert r.returncode == 0, r.stderr
        ids.append(json.loads(r.stdout)["run_id"])
    for run, v in zip(ids, ("1.0.0", "1.1.0")):
        assert lv("model", "register", "det", "--run", run, "--weights", f"runs/{run}/model.npz", "--version", v,
                  "--threshold", "score=0.5", "--caveat", "tiny test model", cwd=world).returncode == 0
    assert lv("model", "promote", "det@1.0.0", "production", "--new", cwd=world).returncode == 0
    assert lv("model", "promote", "det@1.1.0", "production", "--reason", "label fixes", cwd=world).returncode == 0
    return ids
