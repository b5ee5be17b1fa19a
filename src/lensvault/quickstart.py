"""``lensvault quickstart``: the whole product in one guided story, on a fresh folder.

Each step prints the command a user would type and runs exactly that command
(the real CLI, in a subprocess, in the quickstart folder), so the output is a
tutorial that can be replayed by hand. Nothing is downloaded: the dataset is
generated, the model is a small numpy detector that trains in seconds.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from lensvault.errors import InputError, LensVaultError

__all__ = ["Quickstart", "QuickstartSummary", "run_quickstart"]

EXAMPLES = Path(__file__).resolve().parent / "demo" / "files"
# Enough images that the 10% test split holds several night-time frames.
QUICKSTART_IMAGES = 200


class QuickstartFailed(LensVaultError):
    exit_code = 1


@dataclass(frozen=True)
class QuickstartSummary:
    """``quickstart --json``: what the story left behind, as recorded."""

    root: str
    steps: int
    seconds: float
    datasets: list[str]
    runs: list[str]
    models: list[str]
    production: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Quickstart:
    root: Path
    echo: Callable[[str], object] = print
    env: dict[str, str] = field(default_factory=dict)
    out: IO[str] | None = None  # where the commands' output goes (None: our stdout)
    steps: int = 0
    started: float = field(default_factory=time.monotonic)

    def train(self, dataset: str, config: str, model: tuple[str, str] | None = None) -> str:
        """``lensvault run … -- python src/train.py``; returns the new run id."""
        args = ["run", "--dataset", dataset, "--config", config]
        if model:
            args += ["--model", model[0], "--version", model[1]]
        self.lv(*args, "--", "python", "src/train.py")
        run_id: str = self.lv("runs", "show", "latest", "--json", json_out=True)["run_id"]
        self.echo(f'  … "run_id": "{run_id}", …   (the story reads the new run\'s id from this JSON)')
        return run_id

    # -- running commands ------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.echo(f"\n# {text}")

    def sh(self, *args: str, ok: tuple[int, ...] = (0,), capture: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a shell-level command (git, python) in the quickstart folder."""
        self.echo("$ " + " ".join(shlex.quote(a) for a in args))
        r = subprocess.run(args, cwd=self.root, env=self.env, text=True,
                           stdout=subprocess.PIPE if capture else self.out, stderr=subprocess.STDOUT if capture else None)
        if r.returncode not in ok:
            raise QuickstartFailed(f"step failed with exit code {r.returncode}: {' '.join(args)}",
                                   where=str(self.root), fix="read the output above; the folder is left for inspection")
        if capture and r.stdout:
            self.echo(r.stdout.rstrip("\n"))
        return r

    def lv(self, *args: str, ok: tuple[int, ...] = (0,), json_out: bool = False) -> Any:  # the JSON, or the process
        """Run ``lensvault ARGS`` exactly as a user would type it."""
        self.steps += 1
        shown = "lensvault " + " ".join(shlex.quote(a) for a in args)
        self.echo(f"$ {shown}")
        cmd = [sys.executable, "-m", "lensvault.cli.main", *args]
        if json_out:
            r = subprocess.run(cmd, cwd=self.root, env=self.env, text=True, capture_output=True)
        else:
            r = subprocess.run(cmd, cwd=self.root, env=self.env, text=True, stdout=self.out)
        if r.returncode not in ok:
            if json_out:
                self.echo(r.stdout + r.stderr)
            raise QuickstartFailed(f"step failed with exit code {r.returncode}: {shown}", where=str(self.root),
                                   fix="read the output above; the folder is left for inspection")
        if json_out:
            return json.loads(r.stdout)
        return r


def _one_stored_image(root: Path, ref: str) -> str:
    """The store path (relative to ``root``) of one image object of ``ref``."""
    from lensvault.vault import open_vault

    with open_vault(root) as vault:
        row = next(f for f in vault.dataset(ref).file_list() if f["path"].endswith(".png"))
        return os.path.relpath(vault.store.location(row["sha256"]), root)  # a file: the store is local


def _prepare_folder(root: Path) -> None:
    if root.exists() and any(root.iterdir()):
        raise InputError("the quickstart folder is not empty", where=str(root),
                         fix="pass a new or empty folder: `lensvault quickstart DIR`")
    root.mkdir(parents=True, exist_ok=True)


def run_quickstart(root: Path, *, echo=print, out=None) -> QuickstartSummary:
    """Run the story in ``root``; ``echo`` prints its narration, ``out`` receives the commands'
    output (None: this process's stdout). Returns a summary (root, steps, seconds, runs, ...)."""
    from lensvault.demo.shapes import generate_shapes

    root = Path(root).absolute()
    _prepare_folder(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")}
    env.update({"LENSVAULT_USER": env.get("USER", "quickstart"), "GIT_AUTHOR_NAME": "LensVault Quickstart",
                "GIT_AUTHOR_EMAIL": "quickstart@example.com", "GIT_COMMITTER_NAME": "LensVault Quickstart",
                "GIT_COMMITTER_EMAIL": "quickstart@example.com", "PYTHONUNBUFFERED": "1",
                # `python` in the printed commands is this interpreter (the one with LensVault installed).
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])})
    q = Quickstart(root, echo=echo, env=env, out=out)
    echo(f"LensVault quickstart in {root}")

    # 1. a vision repo -----------------------------------------------------------------------
    q.say("A new vision repo: code and configs in git, data versioned by LensVault")
    q.sh("git", "init", "-q", "-b", "main")
    (root / "src").mkdir()
    (root / "configs").mkdir()
    shutil.copy(EXAMPLES / "train_detector.py", root / "src" / "train.py")
    for name in ("detector.yaml", "detector-hotfix.yaml"):
        shutil.copy(EXAMPLES / name, root / "configs" / name)
    (root / ".gitignore").write_text("/.lensvault/\n/data/raw/\n/runs/\n/labels-fixed/\n__pycache__/\n"
                                     "/team-remote/\n/teammate/\n")
    shapes = generate_shapes(root / "data" / "raw", n_images=QUICKSTART_IMAGES, seed=42)
    fixed = root / "labels-fixed"
    fixed.mkdir()
    shutil.move(str(root / "data" / "raw" / "corrections" / "instances.json"), fixed / "instances.json")
    (root / "data" / "raw" / "corrections").rmdir()
    echo(f"generated {shapes['images']} images, {shapes['boxes']} boxes, {shapes['wrong_labels']} of them "
         f"deliberately mislabeled, {shapes['night_images']} night-time images")
    q.sh("git", "add", "-A")
    q.sh("git", "commit", "-qm", "Detector training code and configs")
    q.lv("init")

    # 2. dataset 1.0.0 --------------------------------------------------------------------------
    q.say("Snapshot the dataset: COCO layout, split 70/20/10 with seed 42")
    q.lv("dataset", "snapshot", "demo", "data/raw", "--format", "coco", "--split", "70/20/10", "--seed", "42",
         "--version", "1.0.0", "--notes", "first labelled batch")
    q.say("The manifest is a frozen text file: commit it with the code")
    q.sh("git", "add", "data/manifests")
    q.sh("git", "commit", "-qm", "Dataset demo@1.0.0")
    q.lv("dataset", "show", "demo@1.0.0")

    # 3. config, preflight, run, eval, register, promote --------------------------------------------
    q.say("Register the training config under an ID (it must be committed: it is)")
    q.lv("config", "add", "configs/detector.yaml", "--id", "C-01")
    q.say("The preflight gate: clean code, pinned data and config, fixed seeds, a free model version")
    q.lv("preflight", "--dataset", "demo@1.0.0", "--config", "C-01", "--model", "detector", "--version", "1.0.0")
    q.say("Train under `lensvault run`: commit, data, config, seeds, environment, log, metrics, artifacts recorded")
    run1 = q.train("demo@1.0.0", "C-01", model=("detector", "1.0.0"))
    q.lv("eval", "--run", run1, "--dataset", "demo@1.0.0", "--split", "test", "--predictions", f"runs/{run1}/predictions.json")
    q.say("Register the weights as a model version, with label map, metrics and release notes")
    q.lv("model", "register", "detector", "--run", run1, "--weights", f"runs/{run1}/model.npz", "--version", "1.0.0",
         "--threshold", "score=0.5")
    q.lv("model", "promote", "detector@1.0.0", "production", "--new", "--reason", "first model")

    # 4. fix labels → PATCH dataset, retrain → MINOR model -------------------------------------------
    q.say("Some labels were wrong. Fix them: a PATCH dataset version with a changelog")
    q.lv("dataset", "fix", "demo@1.0.0", "--annotations", "labels-fixed/instances.json",
         "--notes", "relabelled mislabeled shapes")
    q.lv("dataset", "diff", "demo@1.0.0", "demo@1.0.1")
    q.sh("git", "add", "data/manifests")
    q.sh("git", "commit", "-qm", "Dataset demo@1.0.1 (label fixes)")
    q.say("Retrain on the fixed data: only the dataset version changes")
    run2 = q.train("demo@1.0.1", "C-01")
    q.say("Judge both models on the corrected test labels")
    q.lv("eval", "--model", "detector@1.0.0", "--dataset", "demo@1.0.1", "--split", "test",
         "--predictions", f"runs/{run1}/predictions.json")
    q.lv("eval", "--run", run2, "--dataset", "demo@1.0.1", "--split", "test", "--predictions", f"runs/{run2}/predictions.json")
    q.lv("model", "register", "detector", "--run", run2, "--weights", f"runs/{run2}/model.npz", "--bump", "auto",
         "--threshold", "score=0.5")
    q.lv("runs", "compare", run1, run2)
    q.lv("why", "detector@1.0.0", "detector@1.1.0")
    q.lv("model", "promote", "detector@1.1.0", "production", "--reason", "label fixes: better AP50")

    # 5. a hotfix that hurts night-time images, why, rollback --------------------------------------
    q.say("A preprocessing 'hotfix' ships: new config, new run, promoted to production")
    q.lv("config", "add", "configs/detector-hotfix.yaml", "--id", "C-02")
    q.lv("config", "diff", "C-01", "C-02")
    run3 = q.train("demo@1.0.1", "C-02")
    q.lv("eval", "--run", run3, "--dataset", "demo@1.0.1", "--split", "test", "--predictions", f"runs/{run3}/predictions.json")
    q.lv("model", "register", "detector", "--run", run3, "--weights", f"runs/{run3}/model.npz", "--bump", "auto",
         "--threshold", "score=0.5", "--caveat", "brightness threshold tuned on daytime images only")
    q.lv("model", "promote", "detector@1.2.0", "production", "--reason", "preprocessing hotfix")
    q.say("Production regressed on night-time images. What changed?")
    q.lv("why", "detector@1.1.0", "detector@production")
    q.lv("model", "rollback", "detector", "production", "--reason", "night-time regression")
    q.lv("model", "history", "detector")

    # 6. lineage and reproduce ----------------------------------------------------------------------
    q.say("Which data, code and config made the production model — and can we rebuild it?")
    q.lv("lineage", "detector@production")
    q.lv("lineage", "demo@1.0.1", "--down")
    q.lv("reproduce", "detector@production")
    q.lv("dataset", "check", "demo@1.0.1", ok=(0, 1))
    q.lv("verify")
    q.lv("events", "--limit", "12")

    # 7. nothing lost: a lost object, a lost catalog --------------------------------------------------
    q.say("A disk loses one stored image: verify names it and what needs it, --repair puts it back")
    q.sh("rm", _one_stored_image(root, "demo@1.0.1"))
    q.lv("verify", ok=(1,))
    q.lv("verify", "--repair")
    q.say("The catalog is lost: every command stops (nothing is taken for a new vault), and the store rebuilds it")
    q.sh("mv", ".lensvault/catalog.db", ".lensvault/catalog.db.lost")
    q.lv("model", "show", "detector@production", ok=(10,))
    q.lv("catalog", "rebuild")
    q.lv("lineage", "detector@production")
    q.sh("rm", ".lensvault/catalog.db.lost")

    # 8. share with your team ---------------------------------------------------------------------
    q.say("Share with your team: push to a remote (a folder here; s3://BUCKET/PREFIX works the same way) "
          "and a teammate clones it: the code by git, the data, runs and models by LensVault")
    remote = f"file://{root / 'team-remote'}"
    q.sh("mkdir", "team-remote")  # a remote's folder must exist, as a bucket must
    q.lv("remote", "add", "origin", remote)
    q.lv("push", "--all")
    q.sh("git", "clone", "-q", ".", "teammate")
    q.lv("clone", remote, "teammate")
    q.lv("--vault", "teammate", "model", "show", "detector@production")
    from lensvault.vault import open_vault

    with open_vault(root) as vault:  # what the story left behind, as recorded
        summary = QuickstartSummary(
            root=str(root), steps=q.steps, seconds=round(time.monotonic() - q.started, 1),
            datasets=[v.ref for v in vault.versions("demo")], runs=[run1, run2, run3],
            models=[m.ref for m in vault.models("detector")], production=vault.model("detector@production").ref)
    echo("\nSee it in a browser (versions, the label-fix diff with its boxes, runs, models, lineage):\n"
         f"  lensvault serve --vault {shlex.quote(str(root))} --public-read     # then open http://127.0.0.1:8470")
    echo(f"\nQuickstart finished: {summary.steps} commands in {summary.seconds} s. Everything above can be "
         f"typed by hand in {root} (with this virtual environment's bin/ on PATH).")
    echo(f"  datasets {', '.join(summary.datasets)}; runs {', '.join(summary.runs)}; "
         f"models {', '.join(summary.models)}; production is {summary.production}")
    return summary
