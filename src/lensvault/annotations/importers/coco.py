"""COCO object detection / instance segmentation / keypoints JSON.

Layouts found without help: ``annotations/<task>_<split>.json`` with images under
``images/<split>/`` (datumaro, the COCO release), ``<split>/`` (mmdetection) or beside the
JSON; Roboflow's ``<split>/_annotations.coco.json``. Category ids are kept as written,
gaps included, because models and evaluation tools trained on the file use them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lensvault.annotations._common import DirIndex, fail, normalize_split, read_json, rel
from lensvault.annotations.importers._base import Imported, plural
from lensvault.annotations.model import AnnotationColumns, ClassMap, Finding, ImageColumns, canonical_json

# Preferred first: a folder from the COCO release holds several task files per split
# describing the same images, and merging them would duplicate every box.
TASKS = ("instances", "person_keypoints", "stuff", "image_info")
UNSUPPORTED_TASKS = ("captions", "panoptic", "labels")
_TASK_FILE = re.compile(
    r"^(?P<task>" + "|".join(TASKS + UNSUPPORTED_TASKS) + r")_(?P<split>.+)\.json$")

_IMAGE_KEYS = frozenset({"id", "width", "height", "file_name", "license", "flickr_url", "coco_url",
                         "date_captured", "attributes", "tags"})
_ANN_KEYS = frozenset({"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd",
                       "keypoints", "num_keypoints", "attributes"})


def find_files(root: Path, annotations: Path | None = None) -> list[tuple[Path, str | None]]:
    """The COCO JSON files to read and the split each one stands for."""
    if annotations is not None:
        if annotations.is_file():
            return [(annotations, split_of(annotations))]
        candidates = sorted(annotations.glob("*.json"))
    else:
        candidates = sorted((root / "annotations").glob("*.json")) if (root / "annotations").is_dir() else []
        roboflow = sorted(root.glob("*/_annotations.coco.json")) + sorted(root.glob("_annotations.coco.json"))
        if roboflow:
            return [(p, split_of(p)) for p in roboflow]
        if not candidates:
            candidates = [p for p in sorted(root.glob("*.json")) if looks_like_coco(p)]
    by_task: dict[str, list[Path]] = {}
    for p in candidates:
        m = _TASK_FILE.match(p.name)
        by_task.setdefault(m.group("task") if m else "", []).append(p)
    for task in TASKS:
        if task in by_task:
            return [(p, split_of(p)) for p in by_task[task]]
    untyped = [p for p in by_task.get("", []) if looks_like_coco(p)]
    return [(p, split_of(p)) for p in untyped]


def split_of(path: Path) -> str | None:
    if path.name == "_annotations.coco.json":
        return normalize_split(path.parent.name)
    m = _TASK_FILE.match(path.name)
    if m and m.group("split") not in {"all", "default"}:
        return normalize_split(m.group("split"))
    return None


def looks_like_coco(path: Path) -> bool:
    """Cheap sniff: COCO files name their top-level lists early; do not parse 1 GB to know."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return b'"images"' in head or (b'"categories"' in head and b'"annotations"' in head)


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    files = find_files(root, annotations)
    if not files:
        fail("no COCO annotation file found", root,
             fix="pass --annotations path/to/instances_<split>.json")
    images = ImageColumns()
    anns = AnnotationColumns()
    findings: list[Finding] = []
    categories: dict[int, str] = {}
    keypoints: dict[int, dict] = {}
    image_files: dict[str, str] = {}
    ann_ids: list[int] = []
    ann_file: list[int] = []
    dirs = DirIndex()
    for path, split in files:
        _load_file(path, split, root, dirs, images, anns, findings, categories, keypoints,
                   image_files, ann_ids, ann_file)

    ids = tuple(sorted(categories))
    classmap = ClassMap(ids, tuple(categories[i] for i in ids), keypoints)

    def origin(row: int) -> tuple[str, str]:
        return anns.files[ann_file[row]], f"annotation id {ann_ids[row]}"

    names = ", ".join(rel(p, root) for p, _ in files)
    description = (f"COCO: {names}, {plural(len(images), 'image')}, "
                   f"{plural(len(classmap), 'category').replace('categorys', 'categories')}, "
                   f"{plural(len(anns), 'annotation')}")
    return Imported(images, anns, classmap, description, findings, image_files, origin)


def _load_file(path, split, root, dirs, images, anns, findings, categories, keypoints,
               image_files, ann_ids, ann_file):
    data = read_json(path)
    shown = rel(path, root)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        fail("not a COCO file: no top-level \"images\" list", shown,
             fix="point --annotations at a COCO instances JSON, or pick the right --format")
    for n, cat in enumerate(data.get("categories") or []):
        try:
            cid, name = int(cat["id"]), str(cat["name"])
        except (KeyError, TypeError, ValueError):
            fail("category without an integer id and a name", shown, f"category {n}",
                 fix="give every category an \"id\" and a \"name\"")
        if categories.setdefault(cid, name) != name:
            fail(f"category id {cid} is {categories[cid]!r} in one file and {name!r} in this one", shown,
                 f"category id {cid}", fix="use the same categories in every split's file")
        if cat.get("keypoints") or cat.get("skeleton"):
            keypoints[cid] = {"names": list(cat.get("keypoints") or []),
                              "skeleton": [list(e) for e in cat.get("skeleton") or []]}

    ann_dir = path.parent
    bases = _bases(root, ann_dir, split)
    root_prefix = str(root) + os.sep
    id_to_path: dict = {}
    sizes: dict = {}
    for n, im in enumerate(data["images"]):
        try:
            image_id, file_name = im["id"], im["file_name"]
        except (KeyError, TypeError):
            fail("image entry without \"id\" and \"file_name\"", shown, f"image {n}",
                 fix="give every image an \"id\" and a \"file_name\"")
        found = _resolve(file_name, bases, dirs)
        if found is None:
            key = file_name.replace("\\", "/")
        elif found.startswith(root_prefix):
            key = found[len(root_prefix):].replace(os.sep, "/")
        else:
            key = rel(Path(found), root)
        if found is None:
            findings.append(Finding("warning", "missing-image",
                                    f"image file {file_name!r} is not on disk", shown, f"image id {image_id}"))
        if key in image_files:
            findings.append(Finding("warning", "duplicate-image",
                                    f"image {key!r} is listed again (first in {image_files[key]}); "
                                    "its annotations are merged", shown, f"image id {image_id}"))
        else:
            tags = {k: v for k, v in im.items() if k not in _IMAGE_KEYS}
            for extra in ("attributes", "tags"):
                if isinstance(im.get(extra), dict):
                    tags.update(im[extra])
            images.add(key, im.get("width") or 0, im.get("height") or 0, split=split,
                       tags=canonical_json(tags) if tags else "{}")
            image_files[key] = shown
        id_to_path[image_id] = key
        sizes[image_id] = (im.get("height") or 0, im.get("width") or 0)

    fid = anns.file_id(shown)
    if _load_plain_boxes(data.get("annotations") or [], id_to_path, anns, ann_ids, ann_file, fid):
        return
    next_index = anns._next_index
    # One pass with bound appends: at 200,000 annotations attribute lookups dominate.
    a_image, a_index, a_cls = anns.image.append, anns.index.append, anns.class_id.append
    a_x, a_y, a_w, a_h = anns.x.append, anns.y.append, anns.w.append, anns.h.append
    a_kind, a_poly, a_rle, a_kp = anns.kind.append, anns.polygon.append, anns.rle.append, anns.keypoints.append
    a_crowd, a_attr = anns.iscrowd.append, anns.attributes.append
    a_id, a_file = ann_ids.append, ann_file.append
    n_before = len(anns.image)
    for n, a in enumerate(data.get("annotations") or []):
        try:
            key = id_to_path[a["image_id"]]
        except KeyError:
            fail(f"annotation refers to image id {a.get('image_id')!r}, which is not in \"images\"",
                 shown, f"annotation id {a.get('id', n)}",
                 fix="add the image to \"images\" or delete the annotation")
        except TypeError:
            fail("annotation is not an object", shown, f"annotation {n}", fix="write annotations as JSON objects")
        seg = a.get("segmentation")
        bbox = a.get("bbox")
        kp = a.get("keypoints")
        polygon = rle = None
        if isinstance(seg, dict):
            rle, rle_bbox = _rle(seg, sizes[a["image_id"]], shown, a.get("id", n))
            kind = "rle"
            if not bbox:
                bbox = rle_bbox
        elif seg:
            polygon = seg if isinstance(seg[0], list) else [seg]
            kind = "polygon"
            if not bbox:
                bbox = _poly_bbox(polygon)
        elif kp:
            kind = "keypoints"
        else:
            kind = "bbox"
        if not kp:
            kp = None
        elif not bbox:
            bbox = _kp_bbox(kp)
        if not bbox or len(bbox) != 4:
            fail(f"annotation has no usable bbox (got {bbox!r})", shown, f"annotation id {a.get('id', n)}",
                 fix="give it \"bbox\": [x, y, width, height], a segmentation, or keypoints; "
                     "caption and image-label files are not instance annotations")
        try:
            cls = int(a["category_id"])
        except (KeyError, TypeError, ValueError):
            fail("annotation without an integer category_id", shown, f"annotation id {a.get('id', n)}",
                 fix="set \"category_id\" to one of the categories' ids")
        i = next_index.get(key, 0)
        next_index[key] = i + 1
        a_image(key)
        a_index(i)
        a_cls(cls)
        try:
            a_x(float(bbox[0]))
            a_y(float(bbox[1]))
            a_w(float(bbox[2]))
            a_h(float(bbox[3]))
        except (TypeError, ValueError):
            fail(f"bbox values are not numbers: {bbox!r}", shown, f"annotation id {a.get('id', n)}",
                 fix="write bbox as four numbers [x, y, width, height]")
        a_kind(kind)
        a_poly(polygon)
        a_rle(rle)
        a_kp(kp)
        a_crowd(bool(a.get("iscrowd", 0)))
        extra = a.keys() - _ANN_KEYS
        attrs = a.get("attributes")
        if extra or attrs:
            merged = {k: a[k] for k in extra}
            if isinstance(attrs, dict):
                merged.update(attrs)
            a_attr(canonical_json(merged))
        else:
            a_attr("{}")
        a_id(a.get("id", n))
        a_file(fid)
    added = len(anns.image) - n_before
    false = [False] * added
    anns.difficult.extend(false)
    anns.truncated.extend(false)
    anns.occluded.extend(false)
    anns.origin_file.extend([fid] * added)
    anns.origin_loc.extend([""] * added)


# Keys of an annotation that is a plain box: the fast path handles exactly these.
_PLAIN_KEYS = frozenset({"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"})


def _load_plain_boxes(raw: list, id_to_path: dict, anns: AnnotationColumns, ann_ids: list, ann_file: list,
                      fid: int) -> bool:
    """Column-wise import when every annotation is a plain box (no mask, polygon, keypoints
    or extra attributes): a few comprehensions and numpy instead of a Python loop with a
    dozen appends per box. Returns False — having changed nothing — whenever anything is
    unusual, so the row-by-row path can report it with its location.
    """
    import numpy as np

    if not raw:
        return False
    try:
        if not all(a.keys() <= _PLAIN_KEYS and not a.get("segmentation") for a in raw):
            return False
        keys = [id_to_path[a["image_id"]] for a in raw]
        cls = np.asarray([a["category_id"] for a in raw])
        boxes = np.asarray([a["bbox"] for a in raw], dtype=np.float64)
        crowd = [bool(a.get("iscrowd", 0)) for a in raw]
        ids = [a.get("id", n) for n, a in enumerate(raw)]
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    n = len(raw)
    if cls.dtype.kind not in "iu" or boxes.shape != (n, 4) or not np.isfinite(boxes).all():
        return False
    # Position of each box within its image, in source order, continuing from earlier files.
    next_index = anns._next_index
    index = []
    for key in keys:
        i = next_index.get(key, 0)
        next_index[key] = i + 1
        index.append(i)
    anns.image.extend(keys)
    anns.index.extend(index)
    anns.class_id.extend(cls.astype(np.int64).tolist())
    anns.x.extend(boxes[:, 0].tolist())
    anns.y.extend(boxes[:, 1].tolist())
    anns.w.extend(boxes[:, 2].tolist())
    anns.h.extend(boxes[:, 3].tolist())
    for column, value in ((anns.kind, "bbox"), (anns.polygon, None), (anns.rle, None), (anns.keypoints, None),
                          (anns.difficult, False), (anns.truncated, False), (anns.occluded, False),
                          (anns.attributes, "{}"), (anns.origin_file, fid), (anns.origin_loc, "")):
        column.extend([value] * n)
    anns.iscrowd.extend(crowd)
    ann_ids.extend(ids)
    ann_file.extend([fid] * n)
    return True


def _resolve(file_name: str, bases: list[str], dirs: DirIndex) -> str | None:
    """The first existing ``base/file_name``; plain strings, as pathlib costs ~10 µs a join."""
    if os.path.isabs(file_name):
        return file_name if dirs.exists_str(file_name) else None
    for i, base in enumerate(bases):
        candidate = os.path.join(base, file_name)
        if dirs.exists_str(candidate):
            if i:  # images of one file share a folder: try this one first next time
                bases.insert(0, bases.pop(i))
            return candidate
    return None


def _bases(root: Path, ann_dir: Path, split: str | None) -> list[str]:
    """Folders a COCO ``file_name`` may be relative to, most specific first."""
    bases = [ann_dir, root]
    for folder in {split, *(_RAW_SPLITS.get(split, ()))} - {None}:
        bases += [root / "images" / folder, root / folder]
    bases += [root / "images", ann_dir.parent / "images"]
    out: list[str] = []
    for b in bases:
        # A folder that does not exist cannot hold the image: drop it once, not per image.
        if str(b) not in out and b.is_dir():
            out.append(str(b))
    return out


# Folder names that normalize to a split name (we look for the image under both).
_RAW_SPLITS = {"val": ("valid", "validation"), "train": ("training",), "test": ("testing",)}


def _rle(seg: dict, size_hw, file: str, ann_id) -> tuple[str, list[float]]:
    """Compressed RLE as canonical JSON, and its bbox. Uncompressed counts are encoded."""
    from pycocotools import mask as mask_utils

    try:
        h, w = (int(v) for v in seg.get("size") or size_hw)
        counts = seg["counts"]
        if isinstance(counts, list):
            encoded = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        else:
            encoded = {"size": [h, w], "counts": counts.encode() if isinstance(counts, str) else counts}
        bbox = mask_utils.toBbox(encoded).tolist()
    except Exception as e:  # pycocotools raises bare exceptions for malformed counts
        fail(f"invalid RLE segmentation: {e}", file, f"annotation id {ann_id}",
             fix="write RLE as {\"size\": [height, width], \"counts\": ...} with counts summing to height*width")
    counts_out = encoded["counts"]
    if isinstance(counts_out, bytes):
        counts_out = counts_out.decode("ascii")
    return canonical_json({"counts": counts_out, "size": [h, w]}), bbox


def _poly_bbox(polygon) -> list[float]:
    xs = [v for p in polygon for v in p[0::2]]
    ys = [v for p in polygon for v in p[1::2]]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)] if xs else []


def _kp_bbox(kp) -> list[float]:
    pts = [(kp[i], kp[i + 1]) for i in range(0, len(kp) - 2, 3) if kp[i + 2] > 0]
    if not pts:
        return [0.0, 0.0, 0.0, 0.0]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
