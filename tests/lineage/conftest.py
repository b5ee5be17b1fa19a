"""Real git repositories for lineage, why and reproduce tests.

``story`` is the quickstart story at a smaller size, built once per session through
the public Python API (the CLI is exercised by the tests themselves):

* demo@1.0.0 (60 generated images, COCO, split 70/20/10 seed 42), demo@1.0.1 (label fixes)
* C-01 (configs/detector.yaml), C-02 (configs/detector-hotfix.yaml)
* run1: C-01 on demo@1.0.0 → detector@1.0.0 (evaluated on 1.0.0 test, then on 1.0.1 test)
* run2: C-01 on demo@1.0.1 → detector@1.1.0 (data-only change)
* run3: C-02 on demo@1.0.1 → detector@1.2.0 (config-only change), promoted to production

``lab`` is a second, tiny repository with scripts that are cheap to run, for the cases
the story cannot show without being damaged (unreachable commits, missing objects,
commands that fail on rebuild, metrics that drift, code changes).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[2] / "src" / "lensvault" / "demo" / "files"
BIN = str(Path(sys.executable).parent)
GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")}
    env.update(GIT_ENV)
    # `python` in recorded commands must be this interpreter (the one with LensVault installed).
    env["PATH"] = os.pathsep.join([BIN, env.get("PATH", "")])
    env.update(extra)
    return env


@pytest.fixture(scope="session", autouse=True)
def _python_on_path():
    """Runs started in-process (vault.run, vault.reproduce) inherit os.environ."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", os.pathsep.join([BIN, os.environ.get("PATH", "")]))
        for k, v in GIT_ENV.items():
            mp.setenv(k, v)
        for k in [k for k in os.environ if k.startswith("LENSVAULT_") and k != "LENSVAULT_TEST_PG_URL"]:
            mp.delenv(k)
        yield


def git(*args, cwd: Path, check=True) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=_env(), check=check, capture_output=True, text=True).stdout


def tree_fingerprint(root: Path) -> dict:
    """`git status --porcelain`, HEAD, branch list and a hash of every file outside .lensvault/."""
    files = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] in (".lensvault", ".git") or not p.is_file() or p.is_symlink():
            continue
        files[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return {"status": git("status", "--porcelain", "--ignored", cwd=root),
            "head": git("rev-parse", "HEAD", cwd=root).strip(),
            "branches": git("branch", "--list", cwd=root), "files": files}


def worktrees(root: Path) -> list[str]:
    return [ln for ln in git("worktree", "list", "--porcelain", cwd=root).splitlines() if ln.startswith("worktree ")]


@dataclass
class Project:
    root: Path
    vault: object
    ids: dict = field(default_factory=dict)

    def git(self, *args, check=True) -> str:
        return git(*args, cwd=self.root, check=check)

    def commit_all(self, msg: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-qm", msg)
        return self.git("rev-parse", "HEAD").strip()

    def lv(self, *args, env=None, timeout=180) -> subprocess.CompletedProcess:
        """``lensvault ARGS`` in a subprocess, in the project folder, exactly as a user types it."""
        return subprocess.run([sys.executable, "-m", "lensvault.cli.main", *args], cwd=self.root,
                              env=_env(**(env or {})), capture_output=True, text=True, timeout=timeout)

    def lv_json(self, *args, ok=(0,)):
        r = self.lv(*args, "--json")
        assert r.returncode in ok, r.stdout + r.stderr
        return json.loads(r.stdout)

    def run(self, command, *, dataset: str, config: str, **kw):
        """A recorded run, in-process; its output is captured, not printed."""
        import io

        sink = io.BytesIO()
        res = self.vault.run(list(command), dataset=dataset, config=config, cwd=self.root, stream=sink, **kw)
        assert res.status == "succeeded", sink.getvalue().decode(errors="replace")
        return res.run_id


def _build_story(root: Path) -> Project:
    import lensvault
    from lensvault.demo.shapes import generate_shapes

    root.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root)
    (root / "src").mkdir()
    (root / "configs").mkdir()
    shutil.copy(FILES / "train_detector.py", root / "src" / "train.py")
    for name in ("detector.yaml", "detector-hotfix.yaml"):
        shutil.copy(FILES / name, root / "configs" / name)
    (root / ".gitignore").write_text("/.lensvault/\n/data/raw/\n/runs/\n/labels-fixed/\n__pycache__/\n")
    generate_shapes(root / "data" / "raw", n_images=60, seed=42)
    (root / "labels-fixed").mkdir()
    shutil.move(str(root / "data" / "raw" / "corrections" / "instances.json"), root / "labels-fixed" / "instances.json")
    (root / "data" / "raw" / "corrections").rmdir()
    p = Project(root, None)
    p.ids["commit0"] = p.commit_all("Detector training code and configs")
    vault = lensvault.init(root)
    p.vault = vault
    vault.snapshot("demo", root / "data" / "raw", version="1.0.0", format="coco", split="70/20/10", seed=42,
                   notes="first labelled batch")
    p.commit_all("Dataset demo@1.0.0")
    vault.add_config(root / "configs" / "detector.yaml", "C-01")
    train = ["python", "src/train.py"]

    run1 = p.run(train, dataset="demo@1.0.0", config="C-01", model="detector", version="1.0.0")
    vault.evaluate(run=run1, dataset="demo@1.0.0", split="test", predictions=root / "runs" / run1 / "predictions.json")
    vault.register_model("detector", run=run1, weights=root / "runs" / run1 / "model.npz", version="1.0.0",
                         thresholds=["score=0.5"])
    vault.promote("detector@1.0.0", "production", reason="first model", new=True)

    vault.fix("demo@1.0.0", root / "labels-fixed" / "instances.json", notes="relabelled mislabeled shapes")
    p.commit_all("Dataset demo@1.0.1 (label fixes)")
    run2 = p.run(train, dataset="demo@1.0.1", config="C-01")
    vault.evaluate(model="detector@1.0.0", dataset="demo@1.0.1", split="test",
                   predictions=root / "runs" / run1 / "predictions.json")
    vault.evaluate(run=run2, dataset="demo@1.0.1", split="test", predictions=root / "runs" / run2 / "predictions.json")
    vault.register_model("detector", run=run2, weights=root / "runs" / run2 / "model.npz", bump="auto",
                         thresholds=["score=0.5"])
    vault.promote("detector@1.1.0", "production", reason="label fixes")

    vault.add_config(root / "configs" / "detector-hotfix.yaml", "C-02")
    run3 = p.run(train, dataset="demo@1.0.1", config="C-02")
    vault.evaluate(run=run3, dataset="demo@1.0.1", split="test", predictions=root / "runs" / run3 / "predictions.json")
    vault.register_model("detector", run=run3, weights=root / "runs" / run3 / "model.npz", bump="auto",
                         thresholds=["score=0.5"], caveats=["brightness threshold tuned on daytime images only"])
    vault.promote("detector@1.2.0", "production", reason="preprocessing hotfix")
    p.ids.update(run1=run1, run2=run2, run3=run3, head=p.git("rev-parse", "HEAD").strip())
    return p


@pytest.fixture(scope="session")
def story(tmp_path_factory) -> Project:
    p = _build_story(tmp_path_factory.mktemp("story") / "repo")
    yield p
    p.vault.close()


# -- the lab: tiny scripts -------------------------------------------------------------------

# Logs AP50 from an input outside the repo (LAB_SIGNAL, a file path): the command succeeds
# as long as the file exists, and its metric follows the file's content.
SIGNAL_SCRIPT = '''\
import json, os, sys
signal = os.environ.get("LAB_SIGNAL")
if signal and not os.path.exists(signal):
    print("missing input", signal, file=sys.stderr)
    sys.exit(3)
value = float(open(signal).read()) if signal else 0.5
out = os.environ["LENSVAULT_OUTPUT_DIR"]
with open(os.path.join(out, "weights.bin"), "wb") as f:
    f.write(b"w" * 64)
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"AP50": value}, f)
print("AP50", value)
'''

TRAIN_V1 = '''\
import json, os
out = os.environ["LENSVAULT_OUTPUT_DIR"]
with open(os.path.join(out, "weights.bin"), "wb") as f:
    f.write(b"v1" * 32)
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"AP50": 0.60}, f)
'''

TRAIN_V2 = TRAIN_V1.replace("0.60", "0.65") + "# v2: a better feature extractor\n"


def _build_lab(root: Path) -> Project:
    import lensvault
    from lensvault.demo.shapes import generate_shapes

    root.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root)
    generate_shapes(root / "raw", n_images=8, seed=3)
    shutil.rmtree(root / "raw" / "corrections")
    (root / ".gitignore").write_text("/raw/\n/.lensvault/\n/runs/\n__pycache__/\n")
    (root / "configs").mkdir()
    (root / "configs" / "base.yaml").write_text("seed: 7\nlr: 0.1\n")
    (root / "probe.py").write_text(SIGNAL_SCRIPT)
    (root / "train.py").write_text(TRAIN_V1)
    p = Project(root, None)
    p.commit_all("lab")
    vault = lensvault.init(root)
    p.vault = vault
    vault.snapshot("lab", root / "raw", version="1.0.0", format="coco", split="70/20/10", seed=1)
    vault.add_config(root / "configs" / "base.yaml", "C-L1")
    p.ids["commit0"] = p.commit_all("lab@1.0.0")
    return p


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Project:
    p = _build_lab(tmp_path_factory.mktemp("lab") / "repo")
    yield p
    p.vault.close()
