"""labelme JSON (one ``<image>.json`` per image, from the labelme annotation tool).

Shapes map to the model as: polygon → ``polygon``; rectangle → ``bbox``; circle → a
64-gon ``polygon`` (centre and radius kept in attributes, since the model has no circle);
line / linestrip → ``polygon`` with ``shape_type`` kept so nobody fills it as an area;
point / points → ``keypoints``; mask → ``mask`` (RLE of the full-size mask).
``group_id``, ``description`` and shape ``flags`` become attributes; file-level ``flags``
become image tags. Class ids: ``--classes`` order, else names sorted.
"""

from __future__ import annotations

import math
from pathlib import Path

from lensvault.annotations._common import DirIndex, fail, image_info, read_class_names, read_json, rel
from lensvault.annotations.importers._base import Imported, plural
from lensvault.annotations.model import AnnotationColumns, ClassMap, Finding, ImageColumns, canonical_json

_CIRCLE_VERTICES = 64


def is_labelme(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 14)
    except OSError:
        return False
    return b'"shapes"' in head and (b'"imagePath"' in head or b'"version"' in head)


def find_files(root: Path, annotations: Path | None) -> list[Path]:
    if annotations is not None and annotations.is_file():
        return [annotations]
    base = annotations or root
    return [p for p in sorted(base.rglob("*.json")) if is_labelme(p)]


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    files = find_files(root, annotations)
    if not files:
        fail("no labelme JSON files found", root, fix="pass --annotations to the folder of labelme .json files")
    docs = []
    names_seen: dict[str, None] = {}
    for path in files:
        data = read_json(path)
        shown = rel(path, root)
        if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
            fail("not a labelme file: no \"shapes\" list", shown, fix="pick the right --format")
        for n, shape in enumerate(data["shapes"]):
            if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
                fail("shape without a string \"label\"", shown, f"shape {n}", fix="give every shape a label")
            names_seen.setdefault(shape["label"])
        docs.append((path, shown, data))

    findings: list[Finding] = []
    if classes is not None:
        fixed = read_class_names(classes)
        ordered = fixed + [n for n in names_seen if n not in fixed]
        for n in names_seen:
            if n not in fixed:
                findings.append(Finding("warning", "unknown-class", f"class {n!r} is not in the class list",
                                        str(classes), "class list"))
    else:
        ordered = sorted(names_seen)
    class_ids = {n: i for i, n in enumerate(ordered)}

    images = ImageColumns()
    anns = AnnotationColumns()
    image_files: dict[str, str] = {}
    dirs = DirIndex()
    n_shapes = 0
    for path, shown, data in docs:
        image_path = _image_for(path, data, dirs)
        json_w, json_h = int(data.get("imageWidth") or 0), int(data.get("imageHeight") or 0)
        if image_path is not None:
            key = rel(image_path, root)
            width, height, orientation = image_info(image_path, key)
        else:
            key = rel(path.parent / (data.get("imagePath") or path.with_suffix(".jpg").name), root)
            width, height, orientation = json_w, json_h, 1
            findings.append(Finding("warning", "missing-image",
                                    f"image {data.get('imagePath')!r} is not on disk", shown, "imagePath"))
        if key in image_files:
            fail(f"image {key!r} is annotated by two labelme files ({image_files[key]} and {shown})",
                 shown, "imagePath", fix="merge the files or correct imagePath")
        flags = data.get("flags") or {}
        images.add(key, width, height, orientation=orientation, tags=canonical_json(flags) if flags else "{}")
        image_files[key] = shown
        fid = anns.file_id(shown)
        for n, shape in enumerate(data["shapes"]):
            _add_shape(shape, n, key, class_ids[shape["label"]], width, height, shown, fid, anns)
            n_shapes += 1

    description = (f"labelme: {plural(len(files), 'JSON file')}, {plural(len(images), 'image')}, "
                   f"{plural(len(ordered), 'class').replace('classs', 'classes')}, {plural(n_shapes, 'shape')}")
    return Imported(images, anns, ClassMap.from_names(ordered), description, findings, image_files,
                    ids_from_names=classes is None)


def _image_for(path: Path, data: dict, dirs: DirIndex) -> Path | None:
    name = data.get("imagePath")
    candidates = []
    if name:
        # labelme on Windows writes backslashes.
        candidates.append(path.parent / name.replace("\\", "/"))
    candidates += [path.with_suffix(s) for s in (".jpg", ".jpeg", ".png", ".bmp")]
    for c in candidates:
        if dirs.exists(c):
            return c
    return None


def _add_shape(shape: dict, n: int, key: str, class_id: int, width: int, height: int, shown: str,
               fid: int, anns: AnnotationColumns) -> None:
    where = f"shape {n}"
    stype = shape.get("shape_type") or "polygon"
    try:
        points = [(float(p[0]), float(p[1])) for p in shape.get("points") or []]
    except (TypeError, ValueError, IndexError):
        fail("shape points must be [x, y] number pairs", shown, where, fix="correct the \"points\" list")
    attrs: dict = {}
    if shape.get("group_id") is not None:
        attrs["group_id"] = shape["group_id"]
    if shape.get("description"):
        attrs["description"] = shape["description"]
    attrs.update(shape.get("flags") or {})
    need = {"rectangle": 2, "circle": 2, "line": 2, "point": 1, "mask": 2, "polygon": 3, "linestrip": 2,
            "points": 1}
    if stype not in need:
        fail(f"unknown labelme shape_type {stype!r}", shown, where,
             fix="use polygon, rectangle, circle, line, linestrip, point, points or mask")
    if len(points) < need[stype]:
        fail(f"a {stype} needs at least {need[stype]} points, got {len(points)}", shown, where,
             fix="redraw the shape or delete it")
    origin = (fid, where)
    if stype not in {"polygon", "rectangle"}:
        attrs["shape_type"] = stype
    attributes = canonical_json(attrs) if attrs else "{}"
    if stype == "rectangle":
        (x1, y1), (x2, y2) = points[0], points[1]
        anns.add(key, class_id, min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1),
                 attributes=attributes, origin=origin)
    elif stype == "circle":
        (cx, cy), (px, py) = points[0], points[1]
        r = math.hypot(px - cx, py - cy)
        attrs.update(center=[cx, cy], radius=r)
        flat = []
        for i in range(_CIRCLE_VERTICES):
            a = 2 * math.pi * i / _CIRCLE_VERTICES
            flat += [cx + r * math.cos(a), cy + r * math.sin(a)]
        anns.add(key, class_id, cx - r, cy - r, 2 * r, 2 * r, kind="polygon", polygon=[flat],
                 attributes=canonical_json(attrs), origin=origin)
    elif stype in {"point", "points"}:
        kp = [c for x, y in points for c in (x, y, 2.0)]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        anns.add(key, class_id, min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), kind="keypoints",
                 keypoints=kp, attributes=attributes, origin=origin)
    elif stype == "mask":
        rle, bbox = _mask_rle(shape.get("mask"), points, width, height, shown, where)
        anns.add(key, class_id, *bbox, kind="mask", rle=rle, attributes=attributes, origin=origin)
    else:  # polygon, line, linestrip
        flat = [c for p in points for c in p]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        anns.add(key, class_id, min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), kind="polygon",
                 polygon=[flat], attributes=attributes, origin=origin)


def _mask_rle(encoded: str | None, points, width: int, height: int, shown: str, where: str):
    """labelme stores a PNG of the box region (base64); place it in a full-size mask."""
    import base64
    import io

    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    if not encoded:
        fail("mask shape without \"mask\" data", shown, where, fix="re-save the file with labelme 5.3 or later")
    try:
        small = np.array(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("L")) > 0
    except Exception as e:  # base64 or PNG damage
        fail(f"mask data cannot be decoded: {e}", shown, where, fix="re-save the mask in labelme")
    x0, y0 = int(round(min(p[0] for p in points))), int(round(min(p[1] for p in points)))
    full = np.zeros((height, width), dtype=np.uint8, order="F")
    h, w = small.shape
    full[y0:y0 + h, x0:x0 + w] = small[: max(0, height - y0), : max(0, width - x0)]
    rle = mask_utils.encode(full)
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    return canonical_json({"counts": rle["counts"].decode("ascii"), "size": [height, width]}), bbox
