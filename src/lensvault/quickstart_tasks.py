"""``lensvault quickstart --task segmentation|classification``: the versioning loop on another task.

The same story as the detection quickstart, shorter: generated data is snapshotted, a model is
trained under ``lensvault run`` and evaluated per class, a wrong label is fixed (a PATCH
version, with its diff), the model is retrained and evaluated on the fixed labels, both are
registered (the task in the bundle) and ``why`` names the data change. Every step prints and
runs the command a user would type. No network; a few seconds.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
from pathlib import Path

from lensvault.quickstart import EXAMPLES, Quickstart, QuickstartSummary, _prepare_folder

__all__ = ["QUICKSTART_TASKS", "run_any_quickstart", "run_task_quickstart"]

QUICKSTART_TASKS = ("segmentation", "classification")


def run_any_quickstart(root: Path, task: str = "detection", *, echo=print, out=None) -> QuickstartSummary:
    """The detection story (lensvault.quickstart), or the demo of another task."""
    if task == "detection":
        from lensvault.quickstart import run_quickstart

        return run_quickstart(root, echo=echo, out=out)
    return run_task_quickstart(root, task, echo=echo, out=out)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_")}
    env.update({"LENSVAULT_USER": env.get("USER", "quickstart"), "GIT_AUTHOR_NAME": "LensVault Quickstart",
                "GIT_AUTHOR_EMAIL": "quickstart@example.com", "GIT_COMMITTER_NAME": "LensVault Quickstart",
                "GIT_COMMITTER_EMAIL": "quickstart@example.com", "PYTHONUNBUFFERED": "1",
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])})
    return env


def run_task_quickstart(root: Path, task: str, *, echo=print, out=None) -> QuickstartSummary:
    """Run the ``task`` demo (segmentation or classification) in ``root``."""
    from lensvault.errors import UsageError

    if task not in QUICKSTART_TASKS:
        raise UsageError(f"no quickstart for task {task!r}", where="--task",
                         fix=f"use one of: detection, {', '.join(QUICKSTART_TASKS)}")
    root = Path(root).absolute()
    _prepare_folder(root)
    q = Quickstart(root, echo=echo, env=_env(), out=out)
    echo(f"LensVault {task} quickstart in {root}")
    q.say(f"A new {task} repo: code and config in git, data versioned by LensVault")
    q.sh("git", "init", "-q", "-b", "main")
    (root / "src").mkdir()
    (root / "configs").mkdir()
    (root / ".gitignore").write_text("/.lensvault/\n/data/raw/\n/runs/\n/labels-fixed/\n__pycache__/\n")
    story = _segmentation if task == "segmentation" else _classification
    datasets, runs, models = story(q, root, echo)
    with _open(root) as vault:
        summary = QuickstartSummary(root=str(root), steps=q.steps, seconds=round(time.monotonic() - q.started, 1),
                                    datasets=datasets, runs=runs, models=models,
                                    production=vault.model(f"{models[-1].split('@')[0]}@production").ref)
    echo(f"\nQuickstart ({task}) finished: {summary.steps} commands in {summary.seconds} s.")
    echo(f"  datasets {', '.join(datasets)}; runs {', '.join(runs)}; models {', '.join(models)}; "
         f"production is {summary.production}")
    return summary


def _open(root: Path):
    from lensvault.vault import open_vault

    return open_vault(root)


def _common(q: Quickstart, name: str, script: str, config: str) -> None:
    shutil.copy(EXAMPLES / script, q.root / "src" / "train.py")
    (q.root / "configs" / f"{name}.yaml").write_text(config)
    q.sh("git", "add", "-A")
    q.sh("git", "commit", "-qm", f"{name} training code and config")
    q.lv("init")


def _train_eval_register(q: Quickstart, dataset: str, eval_on: str, split: str, model: str, task: str,
                         predictions: str, version_args: list[str]) -> str:
    run = q.train(dataset, "C-01")
    extra = ["--top-k", "2"] if task == "classification" else []  # three classes: top-5 says nothing
    q.lv("eval", "--run", run, "--dataset", eval_on, "--split", split, "--task", task, *extra,
         "--predictions", f"runs/{run}/{predictions}")
    q.lv("model", "register", model, "--run", run, "--weights", f"runs/{run}/model.npz", *version_args)
    return run


def _segmentation(q: Quickstart, root: Path, echo) -> tuple[list[str], list[str], list[str]]:
    from lensvault.demo.task_data import generate_scenes

    _common(q, "segmenter", "train_segmenter.py", "seed: 42\nmodel:\n  arch: nearest-colour\n")
    made = generate_scenes(root / "data" / "raw", root / "labels-fixed", n_images=24, seed=7)
    echo(f"generated {made['images']} street scenes with masks ({', '.join(made['classes'])}); "
         f"{made['mislabeled']} has its cars painted as road")
    q.say("Snapshot the masks: every class region is an annotation; split 60/20/20 with seed 42")
    q.lv("dataset", "snapshot", "streets", "data/raw", "--format", "masks", "--split", "60/20/20", "--seed", "42",
         "--version", "1.0.0", "--notes", "first labelled batch")
    q.sh("git", "add", "data/manifests")
    q.sh("git", "commit", "-qm", "Dataset streets@1.0.0")
    q.lv("dataset", "show", "streets@1.0.0")
    q.lv("config", "add", "configs/segmenter.yaml", "--id", "C-01")
    q.say("Train, evaluate per class (IoU, mIoU, pixel accuracy) and register")
    run1 = _train_eval_register(q, "streets@1.0.0", "streets@1.0.0", "test", "segmenter", "semantic-segmentation",
                                "predictions", ["--version", "1.0.0"])
    q.lv("model", "promote", "segmenter@1.0.0", "production", "--new", "--reason", "first model")
    q.say(f"{made['mislabeled']}: its cars were painted as road. Repaint the mask: a PATCH version")
    shutil.copy(root / "labels-fixed" / f"{made['mislabeled']}.png", root / "data" / "raw" / "masks")
    q.lv("dataset", "snapshot", "streets", "data/raw", "--format", "masks", "--bump", "auto",
         "--notes", f"cars of {made['mislabeled']} were labelled road")
    q.lv("dataset", "diff", "streets@1.0.0", "streets@1.0.1")
    q.sh("git", "add", "data/manifests")
    q.sh("git", "commit", "-qm", "Dataset streets@1.0.1 (label fix)")
    q.say("Retrain on the fixed masks; evaluate and register (the dataset changed: MINOR)")
    run2 = _train_eval_register(q, "streets@1.0.1", "streets@1.0.1", "test", "segmenter", "semantic-segmentation",
                                "predictions", ["--bump", "auto"])
    q.lv("eval", "--model", "segmenter@1.0.0", "--dataset", "streets@1.0.1", "--split", "test",
         "--task", "semantic-segmentation", "--predictions", f"runs/{run1}/predictions")
    q.lv("why", "segmenter@1.0.0", "segmenter@1.1.0")
    q.lv("model", "promote", "segmenter@1.1.0", "production", "--reason", "label fix")
    return ["streets@1.0.0", "streets@1.0.1"], [run1, run2], ["segmenter@1.0.0", "segmenter@1.1.0"]


def _classification(q: Quickstart, root: Path, echo) -> tuple[list[str], list[str], list[str]]:
    from lensvault.demo.task_data import generate_swatches

    _common(q, "classifier", "train_classifier.py", "seed: 42\nmodel:\n  arch: nearest-colour\n")
    made = generate_swatches(root / "data" / "raw", per_class=12, seed=11)
    echo(f"generated {made['images']} colour swatches ({', '.join(made['classes'])}) in train/ and val/ class "
         f"folders; {made['misfiled']} is filed under the wrong class")
    q.say("Snapshot the ImageFolder: the folder names are the image labels, train/ and val/ the splits")
    q.lv("dataset", "snapshot", "swatches", "data/raw", "--format", "imagefolder", "--version", "1.0.0",
         "--notes", "first labelled batch")
    q.sh("git", "add", "data/manifests")
    q.sh("git", "commit", "-qm", "Dataset swatches@1.0.0")
    q.lv("dataset", "show", "swatches@1.0.0")
    q.lv("config", "add", "configs/classifier.yaml", "--id", "C-01")
    q.say("Train, evaluate per class (precision, recall, F1, confusion matrix) and register")
    run1 = _train_eval_register(q, "swatches@1.0.0", "swatches@1.0.0", "val", "classifier", "classification",
                                "predictions.csv", ["--version", "1.0.0"])
    q.lv("model", "promote", "classifier@1.0.0", "production", "--new", "--reason", "first model")
    q.say(f"{made['misfiled']} is really {made['true_class']}: fix its label in a label file — a PATCH version")
    raw = root / "data" / "raw"
    with open(raw / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label", "split"])
        for p in sorted(raw.rglob("*.png")):
            rel = p.relative_to(raw).as_posix()
            split, folder = p.relative_to(raw).parts[:2]
            writer.writerow([rel, made["true_class"] if rel == made["misfiled"] else folder, split])
    q.lv("dataset", "snapshot", "swatches", "data/raw", "--format", "labels", "--bump", "auto",
         "--notes", f"{made['misfiled']} relabelled {made['true_class']}")
    q.lv("dataset", "diff", "swatches@1.0.0", "swatches@1.0.1")
    q.sh("git", "add", "data/manifests")
    q.sh("git", "commit", "-qm", "Dataset swatches@1.0.1 (label fix)")
    q.say("Retrain on the fixed labels; evaluate and register (the dataset changed: MINOR)")
    run2 = _train_eval_register(q, "swatches@1.0.1", "swatches@1.0.1", "val", "classifier", "classification",
                                "predictions.csv", ["--bump", "auto"])
    q.lv("eval", "--model", "classifier@1.0.0", "--dataset", "swatches@1.0.1", "--split", "val",
         "--task", "classification", "--top-k", "2", "--predictions", f"runs/{run1}/predictions.csv")
    q.lv("why", "classifier@1.0.0", "classifier@1.1.0")
    q.lv("model", "promote", "classifier@1.1.0", "production", "--reason", "label fix")
    return ["swatches@1.0.0", "swatches@1.0.1"], [run1, run2], ["classifier@1.0.0", "classifier@1.1.0"]
