"""Helpers for the registry tests: real vaults, real files, real subprocesses.

``insert_run`` stands in for ``lensvault run``: it writes a finished run into the
runs tables exactly as that command's contract (catalog/runs_schema.py) defines
them, so registry behaviour can be tested on any run shape (failed, dirty, with or
without recorded artifacts). One end-to-end test uses the real command when it exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

LV = [sys.executable, "-m", "lensvault.cli.main"]


def lv(*args, cwd=None, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "LENSVAULT_DIR"}
    e.update({"PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200", **(env or {})})
    return subprocess.run([*LV, *map(str, args)], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


def lv_json(*args, **kw):
    r = lv(*args, "--json", **kw)
    assert r.returncode == 0, r.stderr + r.stdout
    return json.loads(r.stdout)


def make_coco(root: Path, n: int, classes=("person", "cart", "shelf")) -> tuple[Path, Path]:
    """A tiny real COCO dataset: n decodable PNGs and one box each."""
    from PIL import Image

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    imgs, anns = [], []
    for i in range(n):
        Image.new("RGB", (32, 32), ((i * 37) % 255, 60, 120)).save(images / f"im{i:03d}.png")
        imgs.append({"id": i + 1, "file_name": f"im{i:03d}.png", "width": 32, "height": 32})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % len(classes),
                     "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0})
    ann = root / "instances.json"
    ann.write_text(json.dumps({"images": imgs, "annotations": anns,
                               "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)]}))
    return images, ann


def snapshot(vault, tmp: Path, version: str, n: int, classes=("person", "cart", "shelf"), name="retail"):
    images, ann = make_coco(tmp / f"{name}-{version}", n, classes)
    return vault.snapshot(name, images, version=version, format="coco", annotations=ann)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def insert_config(vault, config_id: str, values: dict) -> str:
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.runs_schema import configs
    from lensvault.configs.values import canonical_bytes

    raw = json.dumps(values).encode()
    with vault.catalog.begin() as conn:
        conn.execute(configs.insert().values(
            config_id=config_id, sha256=hashlib.sha256(raw).hexdigest(),
            canonical_sha256=hashlib.sha256(canonical_bytes(values)).hexdigest(), repo_path="configs/train.json",
            commit="0" * 40, format="json", content=canonical_bytes(values).decode(), created_at=utcnow(),
            created_by="test"))
    return config_id


def insert_run(vault, run_id: str, *, dataset: str | None = "retail@1.0.0", config_id: str | None = None,
               code_commit: str = "a" * 40, status: str = "succeeded", clean: bool = True,
               artifacts: dict[str, Path] | None = None, metrics: list[dict] | None = None,
               model: str | None = None) -> str:
    """A finished run, as ``lensvault run`` records it. ``artifacts``: path in the run's output dir -> file."""
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.runs_schema import model_reservations, run_artifacts, run_metrics, runs

    name, _, version = (model or "").partition("@")
    with vault.catalog.begin() as conn:
        conn.execute(runs.insert().values(
            run_id=run_id, status=status, kind="run", code_commit=code_commit, clean=clean, dataset=dataset,
            config_id=config_id, seeds=json.dumps({"train": 2024, "split": 42}), command=json.dumps(["train"]),
            model_name=name or None, model_version=version or None, started_at=utcnow(), ended_at=utcnow(),
            created_by="test", exit_code=0 if status == "succeeded" else 1))
        for rel, path in (artifacts or {}).items():
            data = Path(path).read_bytes()
            conn.execute(run_artifacts.insert().values(run_id=run_id, path=rel,
                                                       sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
        for _i, m in enumerate(metrics or []):
            conn.execute(run_metrics.insert().values(run_id=run_id, key=m["key"], value=m["value"],
                                                     step=m.get("step"), class_name=m.get("class_name"),
                                                     slice=m.get("slice"), at=utcnow()))
        if model:
            conn.execute(model_reservations.insert().values(name=name, version=version, run_id=run_id,
                                                            created_at=utcnow()))
    return run_id


def metrics(ap50: float, per_class: dict[str, float] | None = None, **extra) -> list[dict]:
    rows = [{"key": "AP50", "value": ap50, "step": 10}, {"key": "AP50", "value": ap50 / 2, "step": 1}]
    rows += [{"key": k, "value": v, "step": 10} for k, v in extra.items()]
    rows += [{"key": "AP50", "value": v, "class_name": c, "step": 10} for c, v in (per_class or {}).items()]
    return rows
