"""labelme JSON (one ``<image>.json`` per image, from the labelme annotation tool).

Shapes map to the model as: polygon → ``polygon``; rectangle → ``bbox``; circle → a
64-gon ``polygon`` (centre and radius kept in attributes, since the model has no circle);
line / linestrip → ``polygon`` with ``shape_type`` kept so nobody fills it as an area;
point / points → ``keypoints``; mask → ``mask`` (RLE of the full-size mask).
``group_id``, ``description`` and shape ``flags`` become attributes; file-level ``flags``
become image tags. Class ids: ``--classes`` (its ids when it maps id → name), else names
sorted. Shapes labelled ``__ignore__`` (labelme2voc's "ignore this region") are not objects:
they give no annotation and no class.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import warnings
from pathlib import Path
from typing import Any

from lensvault.annotations._common import IGNORE_LABEL, IMAGE_SUFFIXES, fail, read_class_list, read_json, rel
from lensvault.annotations.bad_images import image_info
from lensvault.annotations.confine import reachable
from lensvault.annotations.fields import check_json_value
from lensvault.annotations.image_lookup import ImageLookup, clean_name
from lensvault.annotations.importers._base import Imported, named_classes, plural
from lensvault.annotations.label_keys import label_names
from lensvault.annotations.model import AnnotationColumns, EmbeddedImage, Finding, ImageColumns, canonical_json
from lensvault.annotations.survey import Survey, inside, sniff_json

_CIRCLE_VERTICES = 64
# A labelme file with its image embedded is a few MB; a file this big is refused unread.
MAX_JSON_BYTES = 256 * 1024 * 1024
# A labelme file as read: JSON whose fields ``_check_fields`` checks before anything uses them.
LabelmeDoc = dict[str, Any]
_SUFFIX_OF_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}


def is_labelme(path: Path) -> bool:
    return sniff_json(path) == "labelme"


def find_files(root: Path, annotations: Path | None, survey: Survey | None = None) -> list[Path]:
    """labelme JSON files: every JSON whose head has a ``"shapes"`` list, in folders that hold them."""
    if annotations is not None and annotations.is_file():
        return [annotations]
    base = annotations or root
    survey = survey if survey is not None and annotations is None else Survey.of(base)
    folders = survey.where("json", sniff_json, "labelme")
    chosen = {f.path for f in folders}
    for link in survey.outside:
        if link.suffix.lower() == ".json" and link.parent in chosen:
            fail(f"annotation file is a symlink to {os.path.realpath(link)}, outside the dataset folder",
                 rel(link, root), fix="copy the file into the dataset folder, or remove the link", code="outside-root")
    return [p for f in folders for p in f.json if is_labelme(p)]


def read_labelme(path: Path, shown: str) -> LabelmeDoc:
    """A labelme file as a dict, with bounded work: size checked before reading, nesting
    depth bounded by the parser (``read_json`` locates that error)."""
    try:
        size = path.stat().st_size
    except OSError as e:
        fail(f"cannot read annotation file: {e.strerror}", shown, fix="check the path and permissions",
             code="unreadable-file")
    if size > MAX_JSON_BYTES:
        fail(f"the file is {size:,} bytes, more than any labelme file ({MAX_JSON_BYTES >> 20} MB)", shown,
             fix="check the file; labelme writes one small JSON per image", code="bad-json")
    data = read_json(path, shown)  # nesting too deep to parse is its located too-deep error
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        fail("not a labelme file: no \"shapes\" list", shown, fix="pick the right --format")
    doc: LabelmeDoc = data
    return doc


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None,
         label_key: str | None = None) -> Imported:
    """``label_key="flags"``: the file's true flags are image labels (not tags)."""
    if label_key not in (None, "flags"):
        fail(f"labelme files keep image labels in \"flags\", not {label_key!r}", root, "--label-key",
             fix="pass --label-key flags (its true flags become labels), or leave --label-key out")
    survey = Survey.of(root)
    files = find_files(root, annotations, survey)
    if not files:
        fail("no labelme JSON files found", root, fix="pass --annotations to the folder of labelme .json files")
    docs: list[tuple[Path, str, LabelmeDoc]] = []
    names_seen: dict[str, None] = {}
    real_root = os.path.realpath(root)
    for path in files:
        shown = rel(path, root)
        if annotations is None and not reachable(os.path.realpath(path), real_root):
            fail(f"annotation file is a symlink to {os.path.realpath(path)}, outside the dataset folder", shown,
                 fix="copy the file into the dataset folder, or remove the link", code="outside-root")
        data = read_labelme(path, shown)
        _check_fields(data, shown)
        if label_key is not None:
            for name in label_names(data.get("flags"), shown, "flags"):
                names_seen.setdefault(name)
        for shape in data["shapes"]:
            if shape["label"] != IGNORE_LABEL:
                names_seen.setdefault(shape["label"])
        docs.append((path, shown, data))

    classmap, findings = named_classes(read_class_list(classes) if classes is not None else None, names_seen,
                                       str(classes))
    class_ids = dict(zip(classmap.names, classmap.ids))

    images = ImageColumns()
    anns = AnnotationColumns()
    image_files: dict[str, str] = {}
    embedded: dict[str, EmbeddedImage] = {}
    lookup = ImageLookup(root, survey)
    n_shapes = n_ignored = n_labels = 0
    for path, shown, data in docs:
        json_w, json_h = int(data.get("imageWidth") or 0), int(data.get("imageHeight") or 0)
        image_path = _image_for(path, data, lookup, shown, findings, root)
        if image_path is not None:
            key = rel(image_path, root)
            width, height, orientation = image_info(image_path, key)
            if width == 0 or height == 0:  # unreadable: reported with every other bad image
                width, height = json_w, json_h
        elif data.get("imageData"):
            key, width, height, orientation, embedded[key] = _embedded(path, data, shown, root, real_root)
        else:
            key = _missing_key(path, data, root)
            width, height, orientation = json_w, json_h, 1
            findings.append(Finding("warning", "missing-image",
                                    f"image {data.get('imagePath')!r} is not under the dataset folder and the file "
                                    "has no imageData", shown, "imagePath"))
        if key in image_files:
            fail(f"image {key!r} is annotated by two labelme files ({image_files[key]} and {shown})",
                 shown, "imagePath", fix="merge the files or correct imagePath")
        flags = data.get("flags") or {}
        labels = label_names(flags, shown, "flags") if label_key is not None else []
        if label_key is not None:
            flags = {}  # they are the image's labels, not its tags
        images.add(key, width, height, orientation=orientation, tags=canonical_json(flags) if flags else "{}")
        image_files[key] = shown
        fid = anns.file_id(shown)
        for name in labels:
            anns.add(key, class_ids[name], 0.0, 0.0, float(width), float(height), kind="label", origin=(fid, "flags"))
        n_labels += len(labels)
        for n, shape in enumerate(data["shapes"]):
            if shape["label"] == IGNORE_LABEL:  # a region to ignore, not an object (labelme2voc paints it 255)
                n_ignored += 1
                continue
            _add_shape(shape, n, key, class_ids[shape["label"]], width, height, shown, fid, anns)
            n_shapes += 1

    description = (f"labelme: {plural(len(files), 'JSON file')}, {plural(len(images), 'image')}"
                   + (f" ({len(embedded):,} stored in their JSON as imageData)" if embedded else "")
                   + f", {plural(len(classmap), 'class').replace('classs', 'classes')}, {plural(n_shapes, 'shape')}"
                   + (f", {plural(n_labels, 'image label')} from flags" if label_key is not None else "")
                   + (f" ({n_ignored:,} {IGNORE_LABEL} shape{'s' if n_ignored != 1 else ''} not imported: "
                      "regions to ignore, not objects)" if n_ignored else ""))
    return Imported(images, anns, classmap, description, findings, image_files,
                    ids_from_names=classes is None, embedded=embedded)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_fields(data: LabelmeDoc, shown: str) -> None:
    """Every field the importer uses has the type labelme writes; else a located error."""
    kinds: tuple[type, ...]
    for field, kinds, text in (("imagePath", (str,), "a string"), ("imageData", (str,), "a base64 string"),
                               ("flags", (dict,), "an object"), ("version", (str,), "a string")):
        if data.get(field) is not None and not isinstance(data[field], kinds):
            fail(f"{field} is {type(data[field]).__name__}, not {text}", shown, field,
                 fix=f"write {field} as {text} (or null)")
    for field in ("imageWidth", "imageHeight"):
        v = data.get(field)
        if v is not None and not (_is_number(v) and 0 <= v < 2**31 and v == int(v)):
            fail(f"{field} is {v!r}, not a pixel count", shown, field, fix=f"write {field} as a whole number")
    if data.get("flags"):
        check_json_value(data["flags"], shown, "flags")
    for n, shape in enumerate(data["shapes"]):
        where = f"shape {n}"
        if isinstance(shape, dict) and isinstance(shape.get("flags"), dict) and shape["flags"]:
            check_json_value(shape["flags"], shown, f"{where} flags")
        if not isinstance(shape, dict):
            fail("shape is not an object", shown, where, fix="each entry of \"shapes\" is an object with a label")
        if not isinstance(shape.get("label"), str):
            fail("shape without a string \"label\"", shown, where, fix="give every shape a label")
        for field, kinds, text in (("shape_type", (str,), "a string"), ("flags", (dict,), "an object"),
                                   ("description", (str,), "a string"), ("mask", (str,), "a base64 PNG string"),
                                   ("group_id", (int,), "an integer")):
            v = shape.get(field)
            if v is not None and (not isinstance(v, kinds) or isinstance(v, bool)):
                fail(f"shape {field} is {type(v).__name__}, not {text}", shown, f"{where} {field}",
                     fix=f"write {field} as {text} (or null)")
        points = shape.get("points")
        if points is None:
            points = []
        if not isinstance(points, list):
            fail("shape points are not a list", shown, where, fix="write \"points\" as a list of [x, y] pairs")
        for i, p in enumerate(points):
            if not (isinstance(p, list) and len(p) >= 2 and _is_number(p[0]) and _is_number(p[1])):
                fail(f"point {i} is {str(p)[:60]}, not an [x, y] pair of finite numbers", shown, f"{where} point {i}",
                     fix="correct the \"points\" list")


def _image_for(path: Path, data: LabelmeDoc, lookup: ImageLookup, shown: str, findings: list[Finding],
               root: Path) -> Path | None:
    """The image file of a labelme JSON: ``imagePath`` beside the JSON, its last part beside
    the JSON, the JSON's name with an image suffix, then the name anywhere under the root."""
    name = data.get("imagePath") or ""
    relative, base = clean_name(name) if name else (None, "")
    candidates: list[Path] = []
    if relative is not None:
        candidates.append(path.parent / relative)
    if base:
        candidates.append(path.parent / base)
    candidates += [path.with_suffix(s) for s in (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".PNG")]
    found = lookup.first(candidates, shown, "imagePath")
    if found is None and base and Path(base).suffix.lower() in IMAGE_SUFFIXES:
        found = lookup.anywhere(base, shown, "imagePath", what="imagePath")
    if found is None and not data.get("imageData"):
        found = lookup.by_stem(path.stem, shown, "imagePath", what="an image named like the JSON file")
        if found is not None:
            findings.append(Finding("warning", "filename-mismatch",
                                    f"imagePath {name!r} is not under the dataset folder; using {rel(found, root)!r}, "
                                    "which has the same name as the JSON file", shown, "imagePath"))
    return found


def _missing_key(path: Path, data: LabelmeDoc, root: Path) -> str:
    _, base = clean_name(data.get("imagePath") or "")
    return rel(path.parent / (base or path.with_suffix(".jpg").name), root)


def _decode(data: LabelmeDoc, shown: str) -> bytes:
    try:
        raw = base64.b64decode(data["imageData"], validate=False)
    except (binascii.Error, ValueError) as e:
        fail(f"imageData is not base64: {e}", shown, "imageData", fix="re-save the file in labelme")
    if not raw:
        fail("imageData decodes to no bytes", shown, "imageData", fix="re-save the file in labelme")
    return raw


def _embedded(path: Path, data: LabelmeDoc, shown: str, root: Path, real_root: str
              ) -> tuple[str, int, int, int, EmbeddedImage]:
    """(key, width, height, orientation, EmbeddedImage) of an image stored only as imageData.

    Its key is where labelme would look for it: ``imagePath`` beside the JSON if that is
    a free place for an image inside the root, else the JSON's name with the suffix of the
    image's format. The snapshot stores the bytes there (see ``datasets/embedded.py``).
    """
    from lensvault.media import inspect_image

    raw = _decode(data, shown)
    report = inspect_image(raw)
    relative, _ = clean_name(data.get("imagePath") or "")
    places = []
    if relative is not None and relative.suffix.lower() in IMAGE_SUFFIXES:
        places.append(path.parent / relative)
    places.append(path.parent / (path.stem + _SUFFIX_OF_FORMAT.get(report.format or "", ".png")))
    for place in places:
        parent = place.parent
        if (not os.path.lexists(place) and parent.is_dir() and inside(real_root, os.path.realpath(parent))):
            key = rel(place, root)
            break
    else:
        fail("the image embedded as imageData has no free place beside the JSON file "
             f"({', '.join(rel(p, root) for p in places)} exist)", shown, "imageData",
             fix="put the image file beside the JSON, or rename what occupies that name")
    width, height, orientation = image_info(raw, key)
    return key, width, height, orientation, EmbeddedImage(str(path.absolute()), hashlib.sha256(raw).hexdigest(),
                                                          len(raw))


def embedded_bytes(image: EmbeddedImage) -> bytes:
    """The decoded imageData of ``image.source``, checked against the hash taken at import."""
    from lensvault.errors import InputError

    path = Path(image.source)
    raw = _decode(read_labelme(path, str(path)), str(path))
    if hashlib.sha256(raw).hexdigest() != image.sha256:
        raise InputError("a labelme file changed while it was being snapshotted", where=str(path),
                         fix="wait for whatever is writing to the folder to finish, then run the command again")
    return raw


def _add_shape(shape: dict[str, Any], n: int, key: str, class_id: int, width: int, height: int, shown: str,
               fid: int, anns: AnnotationColumns) -> None:
    where = f"shape {n}"
    stype = shape.get("shape_type") or "polygon"
    points = [(float(p[0]), float(p[1])) for p in shape.get("points") or []]  # types checked on load
    attrs: dict[str, Any] = {}  # group_id, description, the shape's flags (any JSON): its attributes
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

    def add(x: float, y: float, w: float, h: float, **kw: Any) -> None:
        # Finite points can still make an infinite extent (1e308 - -1e308): not storable.
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            fail("shape coordinates are too large to give a finite box", shown, where,
                 fix="correct the \"points\" of this shape")
        anns.add(key, class_id, x, y, w, h, origin=origin, **kw)

    if stype == "rectangle":
        (x1, y1), (x2, y2) = points[0], points[1]
        add(min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1), attributes=attributes)
    elif stype == "circle":
        (cx, cy), (px, py) = points[0], points[1]
        r = math.hypot(px - cx, py - cy)
        attrs.update(center=[cx, cy], radius=r)
        flat: list[float] = []
        for i in range(_CIRCLE_VERTICES):
            a = 2 * math.pi * i / _CIRCLE_VERTICES
            flat += [cx + r * math.cos(a), cy + r * math.sin(a)]
        add(cx - r, cy - r, 2 * r, 2 * r, kind="polygon", polygon=[flat],
            attributes=canonical_json(attrs) if math.isfinite(r) else "{}")
    elif stype in {"point", "points"}:
        kp = [c for x, y in points for c in (x, y, 2.0)]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        add(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), kind="keypoints", keypoints=kp,
            attributes=attributes)
    elif stype == "mask":
        rle, bbox = _mask_rle(shape.get("mask"), points, width, height, shown, where)
        add(*bbox, kind="mask", rle=rle, attributes=attributes)
    else:  # polygon, line, linestrip
        flat = [c for p in points for c in p]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        add(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), kind="polygon", polygon=[flat],
            attributes=attributes)


def _mask_rle(encoded: str | None, points: list[tuple[float, float]], width: int, height: int, shown: str,
              where: str) -> tuple[str, list[float]]:
    """labelme stores a PNG of the box region (base64); place it in a full-size mask."""
    import io

    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    if not encoded:
        fail("mask shape without \"mask\" data", shown, where, fix="re-save the file with labelme 5.3 or later")
    if width <= 0 or height <= 0:
        fail("a mask shape needs the image's size, which is unknown (no image, no imageWidth/imageHeight)",
             shown, where, fix="put the image beside the JSON file")
    try:
        with warnings.catch_warnings():
            # The size is checked against the image's before anything is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(base64.b64decode(encoded)))
        with im:
            if im.size[0] * im.size[1] > width * height:
                fail(f"the mask is {im.size[0]}x{im.size[1]}, larger than its {width}x{height} image", shown, where,
                     fix="re-save the mask in labelme")
            small = np.array(im.convert("L")) > 0
    except Exception as e:  # base64 or PNG damage; hostile bytes reach any plugin
        from lensvault.errors import LensVaultError

        if isinstance(e, LensVaultError):
            raise
        fail(f"mask data cannot be decoded: {e}", shown, where, fix="re-save the mask in labelme")
    x0, y0 = round(min(p[0] for p in points)), round(min(p[1] for p in points))
    full = np.zeros((height, width), dtype=np.uint8, order="F")
    h, w = small.shape
    # The part of the mask that falls on the image (a mask may start left of or above it).
    sx, sy = max(0, -x0), max(0, -y0)
    dx, dy = max(0, x0), max(0, y0)
    ww, hh = min(w - sx, width - dx), min(h - sy, height - dy)
    if ww > 0 and hh > 0:
        full[dy:dy + hh, dx:dx + ww] = small[sy:sy + hh, sx:sx + ww]
    rle = mask_utils.encode(full)
    bbox = [float(v) for v in mask_utils.toBbox(rle)]
    return canonical_json({"counts": rle["counts"].decode("ascii"), "size": [height, width]}), bbox
