"""A real project for run tests: a git repo holding a vault, a small vision dataset with a
seeded split, a committed config registered as C-01, and training scripts to run."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}

TRAIN_SCRIPT = '''\
import json, os, sys
import lensvault
data = os.environ["LENSVAULT_DATA_DIR"]
coco = json.load(open(os.path.join(data, "annotations", "instances.json")))
splits = json.load(open(os.path.join(data, "splits.json")))
print("images", len(coco["images"]), "train", len(splits["train"]), "seed", os.environ["LENSVAULT_SEED"], flush=True)
lensvault.log_params({"lr": 0.01, "model": {"depth": 3}})
for step in range(int(os.environ.get("STEPS", "50"))):
    lensvault.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 100}, step=step)
lensvault.log_metrics({"AP50": 0.61}, class_name="circle")
lensvault.log_metrics({"AP50": 0.42}, class_name="circle", slice="time_of_day=night")
out = os.environ["LENSVAULT_OUTPUT_DIR"]
with open(os.path.join(out, "model.npz"), "wb") as f:
    f.write(b"weights" * 100)
lensvault.log_artifact(os.path.join(out, "model.npz"))
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"AP50": 0.75, "per_class": {"square": {"AP50": 0.5}}}, f)
print("to stderr", file=sys.stderr)
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
'''


def git(*args, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True).stdout


@dataclass
class Project:
    vault: object
    root: Path

    def git(self, *args) -> str:
        return git(*args, cwd=self.root)

    def commit_all(self, msg="change") -> None:
        self.git("add", "-A")
        self.git("commit", "-qm", msg)

    def lensvault(self, *args, env=None, timeout=120, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lensvault.cli.main", *args], cwd=self.root,
                              env={**os.environ, **GIT_ENV, "LENSVAULT_DIR": str(self.root), **(env or {})},
                              capture_output=True, text=True, timeout=timeout, **kw)


def make_project(vault) -> Project:
    from lensvault.demo.shapes import generate_shapes

    root = Path(vault.root)
    git("init", "-q", ".", cwd=root)
    generate_shapes(root / "raw", n_images=12, seed=3)
    (root / ".gitignore").write_text("raw/\n.lensvault/\nruns/\n")
    vault.snapshot("shapes", root / "raw", version="1.0.0", format="coco", split="70/20/10", seed=42)
    (root / "configs").mkdir()
    (root / "configs" / "base.yaml").write_text("lr: 0.01\nepochs: 2\nseed: 2024\nmodel:\n  depth: 3\n")
    (root / "train.py").write_text(TRAIN_SCRIPT)
    p = Project(vault, root)
    p.commit_all("init")
    vault.add_config(root / "configs" / "base.yaml", "C-01")
    return p


@pytest.fixture
def project(vault) -> Project:
    return make_project(vault)


@pytest.fixture
def sqlite_project(sqlite_vault) -> Project:
    return make_project(sqlite_vault)
