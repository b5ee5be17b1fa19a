"""``--format labels``: the images at their paths and ``labels.csv`` (path,label,split; several
labels of one image joined by ``;``, an unlabeled image with an empty label) — what the
``labels`` importer reads back."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lensvault.annotations.exporters._files import Link, Selection, place
from lensvault.annotations.model import AnnotationSet

__all__ = ["export"]


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, split: str | None,
           link: Link | None = None) -> Path:
    sel = Selection(aset, split, by_path=True)
    with open(dest / "labels.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label", "split"])
        for chunk in sel.chunks():
            for im, rows in chunk:
                names = [aset.classes.name_of(a["class_id"]) for a in rows if a["kind"] == "label"]
                writer.writerow([im["path"], ";".join(dict.fromkeys(names)), im["split"] or ""])
                place(im["path"], dest / im["path"], image_files, link)
    return dest
