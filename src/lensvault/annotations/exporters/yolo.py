"""YOLO export in the Ultralytics layout: ``data.yaml``, ``images/<split>/``,
``labels/<split>/``. Class ids become 0..n-1 in class-map order (YOLO has no gaps).
Boxes are ``class cx cy w h``; polygons become segment lines (several rings are
concatenated, as Ultralytics' converter does); masks, keypoints, lines and points are
written as their boxes. Images of unknown size cannot be normalized and are refused."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lensvault.annotations.exporters._files import FlatNames, Link, Selection, attrs, place
from lensvault.annotations.model import AnnotationRow, AnnotationSet
from lensvault.errors import InputError


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, split: str | None,
           link: Link | None) -> Path:
    import pyarrow.compute as pc
    import yaml

    sel = Selection(aset, split)
    yolo_id = {cid: i for i, cid in enumerate(aset.classes.ids)}
    splits = sorted(s for s in pc.unique(sel.column("split")).to_pylist() if s)
    flat = FlatNames(sel.column("path"))
    for chunk in sel.chunks():
        for im, rows in chunk:
            if im["width"] <= 0 or im["height"] <= 0:
                raise InputError(f"image {im['path']!r} has no known size, so YOLO coordinates cannot be normalized",
                                 where=im["path"], fix="add the image file (or its size) before exporting to YOLO")
            sub = im["split"] or ""
            name = flat(im["path"])
            place(im["path"], dest / "images" / sub / name, image_files, link)
            lines = []
            for a in rows:
                if a["class_id"] not in yolo_id:
                    continue  # reported as unknown-class on import; YOLO has no id to give it
                lines.append(_line(a, yolo_id[a["class_id"]], im["width"], im["height"]))
            label = dest / "labels" / sub / PurePosixPath(name).with_suffix(".txt").name
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    config: dict[str, str | dict[int, str]] = {"path": "."}
    if splits:
        for s in splits:
            config[s] = f"images/{s}"
    else:
        # Ultralytics needs train and val; pointing both at one folder means "no split".
        config["train"] = config["val"] = "images"
    config["names"] = dict(enumerate(aset.classes.names))
    (dest / "images").mkdir(parents=True, exist_ok=True)
    (dest / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


def _line(a: AnnotationRow, cls: int, width: int, height: int) -> str:
    shape = attrs(a["attributes"]).get("shape_type")
    if a["kind"] == "polygon" and a["polygon"] and shape not in {"line", "linestrip"}:
        coords = [v for ring in a["polygon"] for v in ring]
        if len(coords) >= 6:
            values = [coords[i] / (width if i % 2 == 0 else height) for i in range(len(coords))]
            return f"{cls} " + " ".join(f"{v:.6f}" for v in values)
    cx = (a["x"] + a["w"] / 2) / width
    cy = (a["y"] + a["h"] / 2) / height
    return f"{cls} {cx:.6f} {cy:.6f} {a['w'] / width:.6f} {a['h'] / height:.6f}"
