"""SIGKILL at seeded random moments of `dataset fix`, `model register` and `lensvault run`.

After every kill: no half-visible version, model version or run (there whole, or not at all;
a killed run is ended as crashed, its model version released); the training a killed run
started is not left running; ``verify`` passes; ``gc`` leaves no temp file, pin, scratch or
run data folder; and the command run again succeeds (or says the version exists, when the
kill came after its commit). Each scenario copies a project built once (a vault in a git
repository) into the trial's folder, so a trial costs the command and the checks.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults_harness import lv, run_trials
from invariants import after_kill, verified_and_collected, whole_or_absent
from templates import FromTemplate

import lensvault

pytestmark = pytest.mark.faults

TRIALS = 20
BUDGET_S = 240  # per scenario, as in test_kill9.py

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}

# A training script as users write them: params, metrics step by step, weights, metrics.json.
TRAIN = '''\
import json, os, time
import lensvault
out = os.environ["LENSVAULT_OUTPUT_DIR"]
lensvault.log_params({"lr": float(os.environ.get("LR", "0.01"))})
for step in range(8):
    lensvault.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    time.sleep(0.02)
with open(os.path.join(out, "model.bin"), "wb") as f:
    f.write((os.environ["LENSVAULT_RUN_ID"] * 4096).encode())
lensvault.log_artifact(os.path.join(out, "model.bin"))
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"AP50": 0.5}, f)
'''


def _git(*args, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


def _coco(root: Path, n: int, *, relabel_every: int = 0) -> Path:
    """A COCO dataset of ``n`` tiny distinct PNGs, one box each; with ``relabel_every``, only the
    annotation file, every k-th box relabeled (a correction for ``dataset fix``)."""
    from PIL import Image

    images, anns = [], []
    for i in range(n):
        name = f"img_{i:05d}.png"
        if not relabel_every:
            p = root / "images" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (i % 256, i // 256 % 256, 7)).save(p)
        images.append({"id": i + 1, "file_name": name, "width": 8, "height": 8})
        cat = 1 + i % 2
        if relabel_every and i % relabel_every == 0:
            cat = 3 - cat
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": cat, "bbox": [1, 1, 4, 4], "area": 16,
                     "iscrowd": 0})
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances.json").write_text(json.dumps(doc))
    return root


def _project(root: Path, n_images: int) -> lensvault.Vault:
    """A git repository holding a vault (ds@1.0.0: ``n_images`` images), config C-01 and train.py."""
    root.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=root)
    _coco(root / "raw", n_images)
    (root / ".gitignore").write_text("/raw/\n/fixes/\n/.lensvault/\n/runs/\n__pycache__/\n")
    (root / "configs").mkdir()
    (root / "configs" / "base.yaml").write_text("lr: 0.01\nepochs: 2\nseed: 2024\n")
    (root / "configs" / "hot.yaml").write_text("lr: 0.02\nepochs: 2\nseed: 2024\n")
    (root / "train.py").write_text(TRAIN)
    _git("add", "-A", cwd=root)
    _git("commit", "-qm", "code", cwd=root)
    vault = lensvault.init(root)
    vault.snapshot("ds", root / "raw", version="1.0.0", format="coco", split="80/20", seed=1)
    vault.add_config(root / "configs" / "base.yaml", "C-01")
    vault.add_config(root / "configs" / "hot.yaml", "C-02")
    _git("add", "-A", cwd=root)
    _git("commit", "-qm", "data", cwd=root)
    return vault


# -- dataset fix --------------------------------------------------------------------------


class FixScenario(FromTemplate):
    name = "fix"

    def build(self, root):
        # 1,600 images: the fix's checkout and ingest run in worker processes.
        vault = lensvault.init(root)
        vault.snapshot("ds", _coco(root / "raw", 1600), version="1.0.0", format="coco")
        vault.close()
        _coco(root / "fixes", 1600, relabel_every=7)

    def prepare(self, root, seed):
        repo = self.copy(root)
        return {"root": repo, "fixes": repo / "fixes" / "annotations" / "instances.json",
                "version": ["--version", "1.0.1"] if seed % 2 else []}

    def command(self, s):
        return ["--vault", s["root"], "dataset", "fix", "ds@1.0.0", "--annotations", s["fixes"], *s["version"]]

    def check(self, s, outcome):
        s["refs"] = after_kill(s["root"], ["ds@1.0.0"], "ds@1.0.1")

    def retry(self, s, outcome):
        r = lv(*self.command(s))
        committed = "ds@1.0.1" in s["refs"]
        assert r.returncode == (4 if committed else 0), f"retry: rc={r.returncode} {r.stderr}"
        with lensvault.open(s["root"]) as vault:
            fixed = vault.dataset("ds@1.0.1")
            ann = fixed.annotations()
            got = dict(zip(ann["image"].to_pylist(), ann["class_id"].to_pylist()))
            want = {f"images/img_{i:05d}.png": (2 - i % 2 if i % 7 == 0 else 1 + i % 2) for i in range(1600)}
            assert fixed.record.parent == "ds@1.0.0" and got == want  # every correction, nothing else
            assert vault.verify().ok


# -- model register -----------------------------------------------------------------------


class RegisterScenario(FromTemplate):
    name = "register"

    def build(self, root):
        vault = _project(root, 40)
        try:
            runs = []
            for config in ("C-01", "C-02"):
                res = vault.run([sys.executable, "train.py"], dataset="ds@1.0.0", config=config, cwd=root,
                                stream=io.BytesIO())
                assert res.status == "succeeded", res
                runs.append(res.run_id)
        finally:
            vault.close()
        (root / "runs.json").write_text(json.dumps(runs))

    def prepare(self, root, seed):
        repo = self.copy(root)
        runs = json.loads((repo / "runs.json").read_text())
        before = []
        if seed % 2:  # a second version, judged against the first, moving an alias on the way
            with lensvault.open(repo) as vault:
                vault.register_model("det", run=runs[0], weights=repo / "runs" / runs[0] / "model.bin",
                                     version="1.0.0")
                vault.promote("det@1.0.0", "production", new=True)
            before = ["det@1.0.0"]
        run = runs[seed % 2]
        return {"root": repo, "cwd": repo, "run": run, "before": before, "new": "det@2.0.0" if seed % 2 else "det@1.0.0",
                "args": ["--version", "2.0.0"] if seed % 2 else ["--version", "1.0.0"]}

    def command(self, s):
        return ["--vault", s["root"], "model", "register", "det", "--run", s["run"], "--weights",
                f"runs/{s['run']}/model.bin", "--threshold", "score=0.5", *s["args"]]

    def check(self, s, outcome):
        with lensvault.open(s["root"]) as vault:
            whole_or_absent(vault, ["ds@1.0.0"], None)
            now = sorted(m.ref for m in vault.models())
            assert now in (s["before"], sorted(s["before"] + [s["new"]])), f"unexpected model versions: {now}"
            for ref in now:  # whole: its bundle and every file in the store
                m = vault.model(ref)
                assert not vault.store.missing([m.bundle_oid, *(f["sha256"] for f in m.files)]), ref
            if s["before"]:
                assert vault.model("det@production").version == "1.0.0"
            verified_and_collected(vault)
            s["committed"] = s["new"] in now

    def retry(self, s, outcome):
        r = lv(*self.command(s), cwd=s["cwd"])
        assert r.returncode == (4 if s["committed"] else 0), f"retry: rc={r.returncode} {r.stderr}"
        with lensvault.open(s["root"]) as vault:
            assert sorted(m.ref for m in vault.models()) == sorted(s["before"] + [s["new"]])
            assert vault.verify().ok


# -- lensvault run ------------------------------------------------------------------------


def _trainings(vault_root: Path) -> list[int]:
    """Processes started by a run of this vault (the launcher gives them LENSVAULT_DIR), alive."""
    mark = f"LENSVAULT_DIR={vault_root}".encode()
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if mark not in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                continue
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        if stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X"):
            out.append(int(pid))
    return out


class RunScenario(FromTemplate):
    name = "run"
    links = ("auto", "copy")

    def build(self, root):
        _project(root, 200).close()

    def prepare(self, root, seed):
        repo = self.copy(root)
        return {"root": repo, "cwd": repo, "link": self.links[seed % 2], "version": "1.0.0"}

    def command(self, s):
        return ["--vault", s["root"], "run", "--dataset", "ds@1.0.0", "--config", "C-01", "--model", "det",
                "--version", s["version"], "--link", s["link"], "--", sys.executable, "train.py"]

    def check(self, s, outcome):
        # The training the killed command started dies with it (PR_SET_PDEATHSIG and the watchdog).
        deadline = time.monotonic() + 30
        while _trainings(s["root"]):
            assert time.monotonic() < deadline, f"training still running after the kill: {_trainings(s['root'])}"
            time.sleep(0.02)
        with lensvault.open(s["root"]) as vault:
            # gc first, as a user cleaning up would: it ends the dead run and removes its data folder.
            vault.gc().execute()
            whole_or_absent(vault, ["ds@1.0.0"], None)
            runs = vault.runs()  # (ends a run whose owner is dead as crashed, if gc did not)
            assert len(runs) <= 1, runs
            s["succeeded"] = False
            if runs:
                run = vault.get_run(runs[0]["run_id"])
                assert run["status"] in ("crashed", "succeeded"), run["status"]
                if run["status"] == "succeeded":  # whole: what the script logged and wrote
                    assert [a["path"] for a in run["artifacts"]] == ["metrics.json", "model.bin"], run["artifacts"]
                    s["succeeded"] = True
                else:
                    assert vault.runs(status="running") == []
            verified_and_collected(vault)

    def retry(self, s, outcome):
        if s["succeeded"]:
            s["version"] = "1.0.1"  # det@1.0.0 stays reserved for the succeeded run's weights
        r = lv(*self.command(s), cwd=s["cwd"], timeout=300)
        assert r.returncode == 0, f"retry: rc={r.returncode} {r.stderr}"
        with lensvault.open(s["root"]) as vault:
            done = [x for x in vault.runs() if x["status"] == "succeeded"]
            assert len(done) == 1 + s["succeeded"], vault.runs()
            assert vault.verify().ok and not _trainings(s["root"])


@pytest.mark.parametrize("scenario", [FixScenario(), RegisterScenario(), RunScenario()], ids=lambda s: s.name)
def test_kill9_at_random_moments(scenario, tmp_path):
    # LENSVAULT_FAULT_SEED=N LENSVAULT_FAULT_TRIALS=1 replays one trial a loss names; more trials, more seeds.
    trials = int(os.environ.get("LENSVAULT_FAULT_TRIALS", TRIALS))
    seed = int(os.environ.get("LENSVAULT_FAULT_SEED", 1300))
    tally = run_trials(scenario, tmp_path, trials=trials, base_seed=seed, budget_s=BUDGET_S * max(1, trials / TRIALS))
    assert not tally.losses, "\n".join(tally.losses)
    assert tally.trials >= min(trials, 10), f"the time budget allowed only {tally.trials} trials"
    assert tally.faults >= tally.trials // 2, f"only {tally.faults} kills landed before the command ended"
