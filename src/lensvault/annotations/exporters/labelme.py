"""``--format labelme``: each image at its path with a labelme JSON beside it (``a.jpg`` →
``a.json``) and ``classes.json`` (id → name), what the labelme importer reads back with
``--classes classes.json`` (add ``--label-key flags`` for image labels).

Shapes are the inverse of the importer's: a box is a ``rectangle``, a polygon a ``polygon``
(each ring of a multi-ring polygon its own shape, with one ``group_id``), a keypoints row
``points`` (visible points only), an RLE mask a ``mask`` (a PNG of its box, as labelme 5.3+
writes it). What the importer kept of a labelme shape comes back as it was: ``shape_type``
(circle, line, linestrip, point), ``group_id``, ``description``, the shape's flags.
Image labels become the file's ``flags`` (``{"cat": true}``); an image's tags are its flags
only in a version without image labels (two meanings cannot share one field: the labels
win). What labelme has no field for — ``iscrowd``, ``difficult``, ``truncated``,
``occluded`` — is written as a shape flag when true. labelme has no splits: export one
split at a time (``--split``) to keep them apart.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lensvault.annotations.exporters._files import Link, Selection, attrs, derived, place, repeated
from lensvault.annotations.model import AnnotationRow, AnnotationSet, ImageRow

__all__ = ["export"]

LABELME_VERSION = "5.4.1"  # the file format labelme writes today; the importer reads 3.x-5.x


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, split: str | None,
           link: Link | None = None) -> Path:
    import pyarrow.compute as pc

    sel = Selection(aset, split, by_path=True)
    names = dict(zip(aset.classes.ids, aset.classes.names))
    has_labels = bool(pc.any(pc.equal(sel.annotation_column("kind"), "label")).as_py())
    names_of = JsonNames(sel.column("path"))
    for chunk in sel.chunks():
        for im, rows in chunk:
            place(im["path"], dest / im["path"], image_files, link)
            doc = _document(im, rows, names, has_labels)
            out = names_of(im["path"])
            (dest / out).parent.mkdir(parents=True, exist_ok=True)
            (dest / out).write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    classes = {str(i): n for i, n in sorted(names.items())}
    (dest / "classes.json").write_text(json.dumps(classes, indent=2, ensure_ascii=False), encoding="utf-8")
    return dest


def _json_name(image: str) -> str:
    return str(PurePosixPath(image).with_suffix(".json"))


class JsonNames:
    """Image path → its JSON's path, asked in path order: ``a.jpg`` → ``a.json``; ``a.png`` beside it →
    ``a.png.json`` (the importer finds the image by the file's ``imagePath``, not by its name). Only
    names that can be taken twice are remembered (those two images share, and the fallbacks)."""

    def __init__(self, paths: Any) -> None:
        self._shared = repeated(derived(paths, _json_name))
        self._taken: set[str] = set()

    def __call__(self, image: str) -> str:
        path = _json_name(image)
        if path in self._taken:
            path = image + ".json"
            self._taken.add(path)
        elif path in self._shared:
            self._taken.add(path)
        return path


def _document(im: ImageRow, rows: list[AnnotationRow], names: dict[int, str], has_labels: bool) -> dict[str, Any]:
    labels = [names.get(a["class_id"], f"class_{a['class_id']}") for a in rows if a["kind"] == "label"]
    flags: dict[str, Any] = dict.fromkeys(labels, True) if has_labels else attrs(im["tags"])
    shapes: list[dict[str, Any]] = []
    for a in rows:
        if a["kind"] != "label":
            shapes += _shapes(a, names.get(a["class_id"], f"class_{a['class_id']}"))
    return {"version": LABELME_VERSION, "flags": flags, "shapes": shapes,
            "imagePath": PurePosixPath(im["path"]).name, "imageData": None,
            "imageHeight": im["height"], "imageWidth": im["width"]}


def _shapes(a: AnnotationRow, label: str) -> list[dict[str, Any]]:
    extra = attrs(a["attributes"])
    stype = extra.pop("shape_type", None)
    group_id = extra.pop("group_id", None)
    description = extra.pop("description", "")
    center, radius = extra.pop("center", None), extra.pop("radius", None)
    columns = {"iscrowd": a["iscrowd"], "difficult": a["difficult"], "truncated": a["truncated"],
               "occluded": a["occluded"]}
    flags = {**extra, **{c: True for c, on in columns.items() if on and c not in extra}}

    def shape(shape_type: str, points: list[list[float]], **more: Any) -> dict[str, Any]:
        return {"label": label, "points": points, "group_id": group_id, "description": description,
                "shape_type": shape_type, "flags": flags, **more}

    if a["kind"] == "keypoints" and a["keypoints"]:
        kp = a["keypoints"]
        pts = [[kp[i], kp[i + 1]] for i in range(0, len(kp), 3) if kp[i + 2] > 0]
        return [shape(stype if stype in ("point", "points") and pts else "points", pts)] if pts else []
    if a["rle"]:
        return [_mask_shape(a, shape)]
    if a["polygon"]:
        if stype == "circle" and center is not None and radius is not None:
            return [shape("circle", [list(center), [center[0] + radius, center[1]]])]
        rings = [r for r in a["polygon"] if len(r) >= 4]
        if len(rings) > 1 and group_id is None:  # one object in several parts: labelme groups its shapes
            group_id = a["index"]
        kind = stype if stype in ("line", "linestrip") else "polygon"
        return [shape(kind, [[r[i], r[i + 1]] for i in range(0, len(r) - 1, 2)]) for r in rings]
    x, y, w, h = a["x"], a["y"], a["w"], a["h"]
    return [shape("rectangle", [[x, y], [x + w, y + h]])]


def _mask_shape(a: AnnotationRow, shape: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """labelme 5.3+: the mask's box as two points and a PNG of the mask inside that box."""
    import numpy as np
    from PIL import Image

    from lensvault.annotations.painting import decode_rle

    full = decode_rle(a["rle"] or "{}")
    ys, xs = np.nonzero(full)
    if not len(xs):  # an empty mask: its box, and nothing painted
        x0, y0, x1, y1 = int(a["x"]), int(a["y"]), int(a["x"]), int(a["y"])
    else:
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    crop = (full[y0:y1 + 1, x0:x1 + 1] > 0).astype(np.uint8) * 255
    buf = io.BytesIO()
    Image.fromarray(crop).convert("1").save(buf, format="PNG")
    return shape("mask", [[float(x0), float(y0)], [float(x1), float(y1)]],
                 mask=base64.b64encode(buf.getvalue()).decode("ascii"))
