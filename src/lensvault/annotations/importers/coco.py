"""COCO object detection / instance segmentation / keypoints JSON.

Layouts found without help: ``annotations/<task>_<split>.json`` with images under
``images/<split>/`` (datumaro, the COCO release), ``<split>/`` (mmdetection) or beside the
JSON; Roboflow's ``<split>/_annotations.coco.json``. Category ids are kept as written,
gaps included, because models and evaluation tools trained on the file use them.
"""

from __future__ import annotations

import os
import posixpath
import re
from array import array
from itertools import chain
from pathlib import Path
from typing import Any, NoReturn

from lensvault.annotations._common import (
    DirIndex,
    class_name,
    describe,
    fail,
    normalize_split,
    read_head,
    read_json,
    rel,
)
from lensvault.annotations.bad_images import image_infos
from lensvault.annotations.confine import FIX_NAME, SourceFolder
from lensvault.annotations.fields import INT32_MAX, check_json_value, finite_numbers, identifier, integer
from lensvault.annotations.importers import coco_segmentation as segmentation
from lensvault.annotations.importers import coco_stream
from lensvault.annotations.importers._base import Imported, plural
from lensvault.annotations.model import (
    AnnotationColumns,
    ClassMap,
    Finding,
    ImageColumns,
    KeypointSchema,
    canonical_json,
)

# An image's or annotation's id as the file gives it (``fields.identifier``).
_Id = int | str
# Image id → (image key, height, width), per file: what its annotations refer to.
_IdToSize = dict[_Id, tuple[str, int, int]]

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
        if not candidates:
            candidates = split_folder_files(annotations)
    else:
        candidates = sorted((root / "annotations").glob("*.json")) if (root / "annotations").is_dir() else []
        roboflow = sorted(root.glob("*/_annotations.coco.json")) + sorted(root.glob("_annotations.coco.json"))
        if roboflow:
            return [(p, split_of(p)) for p in roboflow]
        if not candidates:
            candidates = [p for p in sorted(root.glob("*.json")) if looks_like_coco(p)] or split_folder_files(root)
    by_task: dict[str, list[Path]] = {}
    for p in candidates:
        m = _TASK_FILE.match(p.name)
        by_task.setdefault(m.group("task") if m else "", []).append(p)
    for task in TASKS:
        if task in by_task:
            return [(p, split_of(p)) for p in by_task[task]]
    untyped = [p for p in by_task.get("", []) if looks_like_coco(p)]
    return [(p, split_of(p)) for p in untyped]


_SPLIT_NAMES = frozenset({"train", "val", "test"})


def split_of(path: Path) -> str | None:
    """The split a COCO file stands for: Roboflow's ``<split>/_annotations.coco.json`` by its
    folder; ``<task>_<split>.json`` (``instances_val2017.json``); a file named for its split
    (``train.json``, ``valid.json``); else a file in a split folder (``val/labels.json``)."""
    if path.name == "_annotations.coco.json":
        return normalize_split(path.parent.name)
    m = _TASK_FILE.match(path.name)
    if m:
        return normalize_split(m.group("split")) if m.group("split") not in {"all", "default"} else None
    for name in (path.stem, path.parent.name):
        split = normalize_split(name.lower())
        if split in _SPLIT_NAMES:
            return split
    return None


def split_folder_files(base: Path) -> list[Path]:
    """COCO files in split folders below ``base`` (``train/``, ``valid/``, ``test/``): Roboflow's
    ``_annotations.coco.json`` where there is one, else the JSON files that look like COCO."""
    out: list[Path] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        if normalize_split(folder.name.lower()) not in _SPLIT_NAMES:
            continue
        roboflow = folder / "_annotations.coco.json"
        out += [roboflow] if roboflow.is_file() else [p for p in sorted(folder.glob("*.json")) if looks_like_coco(p)]
    return out


def looks_like_coco(path: Path) -> bool:
    """Cheap sniff: COCO files name their top-level lists early; do not parse 1 GB to know."""
    head = read_head(path)
    return b'"images"' in head or (b'"categories"' in head and b'"annotations"' in head)


class _RowIds:
    """Each annotation row's id as its file gives it: 8 bytes a row while ids are integers (a
    list held a 36-byte Python int per row); the rare text id is kept aside by row."""

    def __init__(self) -> None:
        self._ints = array("q")
        self._other: dict[int, _Id] = {}

    def append(self, value: _Id) -> None:
        if type(value) is int and -(1 << 63) <= value < 1 << 63:
            self._ints.append(value)
        else:
            self._other[len(self._ints)] = value
            self._ints.append(0)

    def extend(self, values: list[_Id]) -> None:
        try:
            self._ints.extend(array("q", values))  # type: ignore[arg-type]  # text ids: TypeError
        except (TypeError, OverflowError):
            for value in values:
                self.append(value)

    def __getitem__(self, row: int) -> _Id:
        other = self._other.get(row)
        return self._ints[row] if other is None else other


class _Collected:
    """What the files of one import add up to: the splits' files share images, classes and findings."""

    def __init__(self, label_key: str | None = None) -> None:
        self.label_key = label_key
        # Image labels read from ``label_key``: (image key, images row, names, file, location).
        self.labels: list[tuple[str, int, list[str], str, str]] = []
        self.images = ImageColumns()
        self.anns = AnnotationColumns()
        self.findings: list[Finding] = []
        self.categories: dict[int, str] = {}
        self.keypoints: dict[int, KeypointSchema] = {}
        self.image_files: dict[str, str] = {}  # image key -> the file that listed it first
        self.ann_ids = _RowIds()  # per annotation row: its id in its file (for findings)
        self.ann_file: array[int] = array("i")  # per annotation row: its file, as ``anns.file_id`` numbers it
        self.dirs = DirIndex()


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None,
         label_key: str | None = None) -> Imported:
    """``label_key``: the image field holding image-level labels (annotations/label_keys.py)."""
    source = SourceFolder(root, annotations)
    files = find_files(root, annotations)
    if not files:
        fail("no COCO annotation file found", root,
             fix="pass --annotations path/to/instances_<split>.json")
    c = _Collected(label_key)
    for path, split in files:
        shown = rel(path, root)
        if coco_stream.streams(path):  # a big file: its boxes a chunk at a time (coco_stream.py)
            _load_streamed(path, shown, split, source, c)
            continue
        data = _read_file(path, shown, source)
        _read_categories(data.get("categories"), shown, c.categories, c.keypoints)
        id_to_size = _read_images(data.pop("images"), shown, split, source, path.parent, c)
        _read_annotations(data.pop("annotations", None), shown, id_to_size, c)
        del data

    ids = tuple(sorted(c.categories))
    classmap = ClassMap(ids, tuple(c.categories[i] for i in ids), c.keypoints)
    label_at: dict[int, str] = {}  # annotation row of an image label -> where its field is
    if label_key is not None:
        classmap, label_at = _add_labels(c, classmap)
    anns, ann_ids, ann_file = c.anns, c.ann_ids, c.ann_file

    def origin(row: int) -> tuple[str, str]:
        if row in label_at:
            return anns.files[ann_file[row]], label_at[row]
        return anns.files[ann_file[row]], f"annotation id {ann_ids[row]}"

    names = ", ".join(rel(p, root) for p, _ in files)
    description = (f"COCO: {names}, {plural(len(c.images), 'image')}, "
                   f"{plural(len(classmap), 'category').replace('categorys', 'categories')}, "
                   f"{plural(len(anns) - len(label_at), 'annotation')}"
                   + (f", {plural(len(label_at), 'image label')} from {label_key!r}" if label_key is not None else ""))
    return Imported(c.images, anns, classmap, description, c.findings, c.image_files, origin)


def _add_labels(c: _Collected, classmap: ClassMap) -> tuple[ClassMap, dict[int, str]]:
    """Add the image labels read from the label field as label rows (after every file, so the
    categories of all files name them and every image's size is known); names that are no
    category get new ids (``label_keys.add_label_classes``)."""
    from lensvault.annotations.label_keys import add_label_classes

    classmap, found = add_label_classes(classmap, [n for _, _, names, _, _ in c.labels for n in names],
                                        c.labels[0][3] if c.labels else "")
    c.findings += found
    id_of = dict(zip(classmap.names, classmap.ids))
    label_at: dict[int, str] = {}
    for key, row, names, file, where in c.labels:
        fid = c.anns.file_id(file)
        for name in names:
            label_at[len(c.anns)] = where
            c.anns.add(key, id_of[name], 0.0, 0.0, float(c.images.width[row]), float(c.images.height[row]),
                       kind="label", origin=(fid, where))
            c.ann_ids.append(where)
            c.ann_file.append(fid)
    return classmap, label_at


def _read_file(path: Path, shown: str, source: SourceFolder) -> dict[str, Any]:
    """The file's JSON, once it is known to be a COCO file: an object with an ``images`` list."""
    source.check_readable(path, shown)
    data = read_json(path, shown)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        _not_coco(shown)
    return data


def _not_coco(shown: str) -> NoReturn:
    fail("not a COCO file: no top-level \"images\" list", shown,
         fix="point --annotations at a COCO instances JSON, or pick the right --format")


def _load_streamed(path: Path, shown: str, split: str | None, source: SourceFolder, c: _Collected) -> None:
    """What the loop in ``load`` does for one file, with the annotations read a chunk at a time."""
    source.check_readable(path, shown)
    layout = coco_stream.Layout(path, shown)
    layout.check(keep=("images", "categories", "annotations"))
    images = layout.value("images") if layout.is_object else None
    if not isinstance(images, list):
        _not_coco(shown)
    _read_categories(layout.value("categories"), shown, c.categories, c.keypoints)
    id_to_size = _read_images(images, shown, split, source, path.parent, c)
    del images
    for offset, chunk in layout.chunks("annotations"):
        _read_annotations(chunk, shown, id_to_size, c, offset=offset)
        del chunk  # else it stays alive while the next chunk is parsed: two chunks at once


def _read_categories(cats: Any, shown: str, categories: dict[int, str], keypoints: dict[int, KeypointSchema]
                     ) -> None:
    if cats is None:
        return
    if type(cats) is not list:
        fail(f"\"categories\" is {describe(cats)}, not a list", shown, "categories",
             fix="write \"categories\" as a list of {\"id\", \"name\"} objects", code="bad-value")
    fix = "give every category an integer \"id\" and a text \"name\""
    for n, cat in enumerate(cats):
        loc = f"categories[{n}]"
        if type(cat) is not dict or "id" not in cat or "name" not in cat:
            fail("category without an integer id and a name", shown, loc, fix=fix)
        cid = integer(cat["id"], shown, f"{loc}.id", what="category id", fix=fix)
        name = class_name(cat["name"], shown, f"{loc}.name", fix=fix)
        if categories.setdefault(cid, name) != name:
            fail(f"category id {cid} is {categories[cid]!r} in one file and {name!r} in this one", shown,
                 f"category id {cid}", fix="use the same categories in every split's file")
        kp_names, skeleton = cat.get("keypoints"), cat.get("skeleton")
        if kp_names or skeleton:
            keypoints[cid] = {"names": _keypoint_names(kp_names, shown, f"{loc}.keypoints"),
                              "skeleton": _skeleton(skeleton, shown, f"{loc}.skeleton")}


def _keypoint_names(names: Any, shown: str, loc: str) -> list[str]:
    if names is None:
        return []
    if type(names) is not list or not all(type(n) is str for n in names):
        bad = names if type(names) is not list else next(n for n in names if type(n) is not str)
        fail(f"keypoint names hold {describe(bad)}, not text", shown, loc,
             fix="write \"keypoints\" as a list of names", code="bad-value")
    return list(names)


def _skeleton(edges: Any, shown: str, loc: str) -> list[list[int]]:
    if edges is None:
        return []
    fix = "write \"skeleton\" as a list of [a, b] keypoint-number pairs"
    if type(edges) is not list:
        fail(f"skeleton is {describe(edges)}, not a list of pairs", shown, loc, fix=fix, code="bad-value")
    out: list[list[int]] = []
    for i, edge in enumerate(edges):
        if type(edge) is not list or len(edge) != 2:
            fail(f"skeleton edge is {describe(edge)}, not a pair [a, b]", shown, f"{loc}[{i}]", fix=fix,
                 code="bad-value")
        out.append([integer(v, shown, f"{loc}[{i}][{j}]", what="skeleton keypoint number", fix=fix, lo=0)
                    for j, v in enumerate(edge)])
    return out


def _read_images(raw: list[Any], shown: str, split: str | None, source: SourceFolder, ann_dir: Path,
                 c: _Collected) -> _IdToSize:
    """Add the file's images; return image id -> (path key, height, width).

    Each entry is checked, its file located, and the image recorded (listed again: its
    annotations are merged); the files found are judged by decoders at the end, all together.
    The common case is inline: at 20,000 images a call per field shows.
    """
    bases = _bases(Path(source.root), ann_dir, split, source)
    root_prefix = source.root.rstrip(os.sep) + os.sep
    dirs, images, findings, image_files = c.dirs, c.images, c.findings, c.image_files
    id_to_size: _IdToSize = {}
    outside: list[tuple[int, str]] = []
    to_judge: list[tuple[str, str, int, _Id]] = []  # (file, key, images row, image id)
    for n, im in enumerate(raw):
        if type(im) is not dict or "id" not in im or "file_name" not in im:
            fail("image entry without \"id\" and \"file_name\"", shown, f"images[{n}]",
                 fix="give every image an \"id\" and a \"file_name\"")
        image_id = im["id"]
        if type(image_id) is not int:
            image_id = identifier(image_id, shown, f"images[{n}].id", what="image id",
                                  fix="give every image an integer \"id\"")
        file_name = im["file_name"]
        if type(file_name) is not str or not file_name.strip() or "\0" in file_name:
            fail(f"file_name is {describe(file_name)}, not a file path", shown, f"images[{n}].file_name",
                 fix="write file_name as the image's path relative to the dataset folder", code="bad-value")
        width, height = im.get("width"), im.get("height")
        if not (type(width) is int and 0 <= width <= INT32_MAX):
            width = _image_size(width, shown, n, "width")
        if not (type(height) is int and 0 <= height <= INT32_MAX):
            height = _image_size(height, shown, n, "height")

        found, key = _locate(file_name, bases, dirs, source, root_prefix)
        if key is None:
            outside.append((n, file_name))
            continue
        if found is None:
            findings.append(Finding("warning", "missing-image",
                                    f"image file {file_name!r} is not on disk", shown, f"image id {image_id}"))
        if key in image_files:
            findings.append(Finding("warning", "duplicate-image",
                                    f"image {key!r} is listed again (first in {image_files[key]}); "
                                    "its annotations are merged", shown, f"image id {image_id}"))
        else:
            if found is not None:
                to_judge.append((found, key, len(images), image_id))
            tags = {k: v for k, v in im.items() if k not in _IMAGE_KEYS}
            if tags and any(type(v) in (dict, list, float) for v in tags.values()):
                check_json_value(tags, shown, f"images[{n}]")
            if "attributes" in im or "tags" in im:
                _merge_tag_objects(im, tags, shown, f"images[{n}]")
            if c.label_key is not None:
                _take_labels(im, tags, c, key, len(images), shown, f"images[{n}]")
            images.add(key, width, height, split=split, tags=canonical_json(tags) if tags else "{}")
            image_files[key] = shown
        known = id_to_size.get(image_id)
        if known is not None and known[0] != key:
            fail(f"image id {image_id!r} names two files, {known[0]!r} and {key!r}", shown, f"images[{n}].id",
                 fix="give every image its own id (annotations would go to the wrong image)")
        id_to_size[image_id] = (key, height, width)
    if outside:
        _fail_outside(outside, shown)
    _judge(to_judge, images, id_to_size)
    return id_to_size


def _image_size(value: Any, shown: str, n: int, side: str) -> int:
    """An image's width or height that is not a plain int: 0 when missing (the image header
    fills it in), else a whole number of pixels."""
    if value is None:
        return 0
    return integer(value, shown, f"images[{n}].{side}", what=f"image {side}",
                   fix="write width and height as whole numbers of pixels", lo=0)


def _merge_tag_objects(im: dict[str, Any], tags: dict[str, Any], shown: str, loc: str) -> None:
    """An image's ``attributes`` and ``tags`` objects (CVAT, Datumaro) join its other extra keys."""
    for extra in ("attributes", "tags"):
        if isinstance(im.get(extra), dict):
            check_json_value(im[extra], shown, f"{loc}.{extra}")
            tags.update(im[extra])


def _take_labels(im: dict[str, Any], tags: dict[str, Any], c: _Collected, key: str, row: int, shown: str,
                 loc: str) -> None:
    """The image's labels from its ``label_key`` field — a top-level key, else one of its
    ``attributes``/``tags`` object — taken out of its tags (a label is not kept twice)."""
    from lensvault.annotations.label_keys import label_names

    name = c.label_key
    assert name is not None
    where = f"{loc}.{name}"
    for extra in ("attributes", "tags"):
        if name not in im and isinstance(im.get(extra), dict) and name in im[extra]:
            where = f"{loc}.{extra}.{name}"
    tags.pop(name, None)
    value = im.get(name) if name in im else next(
        (im[e][name] for e in ("attributes", "tags") if isinstance(im.get(e), dict) and name in im[e]), None)
    names = label_names(value, shown, where)
    if names:
        c.labels.append((key, row, names, shown, where))


def _fail_outside(outside: list[tuple[int, str]], shown: str) -> None:
    """Refuse the file for its first image outside the dataset folder, counting the others."""
    n, name = outside[0]
    more = f" (and {len(outside) - 1:,} more images)" if len(outside) > 1 else ""
    fail(f"image file_name {name!r} leads outside the dataset folder{more}; it is not read", shown,
         f"images[{n}].file_name", fix=FIX_NAME, code="outside-root")


def _judge(to_judge: list[tuple[str, str, int, _Id]], images: ImageColumns, id_to_size: _IdToSize) -> None:
    """Judge the listed images by decoders (a bad one is collected and settled by
    --on-bad-image). The JSON's size is the annotations' frame and is kept; the header's
    fills in a size the JSON leaves out."""
    sizes = image_infos([(found, key) for found, key, _, _ in to_judge])
    for (_, key, row, image_id), (w, h, _) in zip(to_judge, sizes):
        if images.width[row] and images.height[row]:
            continue
        images.width[row] = width = images.width[row] or w
        images.height[row] = height = images.height[row] or h
        if id_to_size.get(image_id, (None,))[0] == key:
            id_to_size[image_id] = (key, height, width)


def _read_annotations(raw: Any, shown: str, id_to_size: _IdToSize, c: _Collected, *, offset: int = 0) -> None:
    """Add the file's annotations (or a chunk of them, the first at ``offset`` in the file):
    column-wise when all are plain boxes, else row by row."""
    if raw is None:
        raw = []
    elif type(raw) is not list:
        fail(f"\"annotations\" is {describe(raw)}, not a list", shown, "annotations",
             fix="write \"annotations\" as a list of objects", code="bad-value")
    fid = c.anns.file_id(shown)
    if not _load_plain_boxes(raw, id_to_size, c, fid, offset):
        _load_rows(raw, shown, id_to_size, c, fid, offset)
    c.anns.flush()  # this chunk's rows as compact columns before the next chunk is read


def _load_rows(raw: list[Any], shown: str, id_to_size: _IdToSize, c: _Collected, fid: int, offset: int = 0) -> None:
    """Row-by-row import with a type check of every field (the plain-box path declined)."""
    anns, findings = c.anns, c.findings
    next_index = anns._next_index
    # One pass with bound appends: at 200,000 annotations attribute lookups dominate.
    a_image, a_index, a_cls = anns.image.append, anns.index.append, anns.class_id.append
    a_x, a_y, a_w, a_h = anns.x.append, anns.y.append, anns.w.append, anns.h.append
    a_kind, a_poly, a_rle, a_kp = anns.kind.append, anns.polygon.append, anns.rle.append, anns.keypoints.append
    a_crowd, a_attr = anns.iscrowd.append, anns.attributes.append
    a_id, a_file = c.ann_ids.append, c.ann_file.append
    n_before = len(anns.image)
    for n, a in enumerate(raw, offset):
        loc = f"annotations[{n}]"
        if type(a) is not dict:
            fail(f"annotation is {describe(a)}, not an object", shown, loc, fix="write annotations as JSON objects")
        ann_id = a.get("id", n)
        if type(ann_id) is not int:
            ann_id = identifier(ann_id, shown, f"{loc}.id", what="annotation id",
                                fix="give every annotation an integer \"id\"")
        image_id = a.get("image_id")
        if type(image_id) is not int:
            image_id = identifier(image_id, shown, f"{loc}.image_id", what="image_id",
                                  fix="set \"image_id\" to the id of an entry in \"images\"")
        target = id_to_size.get(image_id)
        if target is None:
            fail(f"annotation refers to image id {image_id!r}, which is not in \"images\"",
                 shown, f"annotation id {ann_id}",
                 fix="add the image to \"images\" or delete the annotation")
        key, height, width = target
        cls = integer(a.get("category_id"), shown, f"{loc}.category_id", what="category_id",
                      fix="set \"category_id\" to one of the categories' ids")
        seg, bbox, kp = a.get("segmentation"), a.get("bbox"), a.get("keypoints")
        polygon = rle = None
        derived = None
        if seg is None or seg == []:
            kind = "keypoints" if kp else "bbox"
        elif type(seg) is dict:
            rle, derived = _rle_mask(seg, height, width, shown, loc, findings)
            kind = "rle"
        elif type(seg) is list:
            polygon = segmentation.polygon(seg, shown, f"{loc}.segmentation")
            derived = segmentation.poly_bbox(polygon)
            kind = "polygon"
        else:
            fail(f"segmentation is {describe(seg)}, not polygons or an RLE object", shown, f"{loc}.segmentation",
                 fix="write segmentation as [[x1, y1, x2, y2, ...]] or {\"size\": [h, w], \"counts\": ...}",
                 code="bad-value")
        if kp is None or kp == []:
            kp = None
        else:
            kp = finite_numbers(kp, shown, f"{loc}.keypoints", what="keypoints",
                                fix="write keypoints as x, y, visibility triples of numbers")
            if len(kp) % 3:
                fail(f"keypoints has {len(kp)} values, not x, y, visibility triples", shown, f"{loc}.keypoints",
                     fix="write keypoints as x, y, visibility triples of numbers", code="bad-value")
            if derived is None:
                derived = segmentation.kp_bbox(kp)
        if bbox is None or bbox == []:
            bbox = _derived_bbox(derived, a, ann_id, shown)
        else:
            bbox = finite_numbers(bbox, shown, f"{loc}.bbox", what="bbox",
                                  fix="write bbox as four numbers [x, y, width, height]")
            if len(bbox) != 4:
                fail(f"bbox has {len(bbox)} values, not four [x, y, width, height]", shown, f"{loc}.bbox",
                     fix="write bbox as four numbers [x, y, width, height]", code="bad-value")
        crowd = a.get("iscrowd", 0)
        if crowd not in (0, 1) or type(crowd) not in (int, bool):
            fail(f"iscrowd is {describe(crowd)}, not 0 or 1", shown, f"{loc}.iscrowd",
                 fix="write iscrowd as 0 or 1", code="bad-value")
        extra = a.keys() - _ANN_KEYS
        attrs = a.get("attributes")
        if attrs is not None and type(attrs) is not dict:
            fail(f"attributes is {describe(attrs)}, not an object", shown, f"{loc}.attributes",
                 fix="write attributes as an object of name: value", code="bad-value")
        if polygon is not None:
            finding = segmentation.short_ring(polygon, a, attrs, shown, loc)
            if finding is not None:
                findings.append(finding)
        i = next_index.get(key, 0)
        next_index[key] = i + 1
        a_image(key)
        a_index(i)
        a_cls(cls)
        a_x(bbox[0])
        a_y(bbox[1])
        a_w(bbox[2])
        a_h(bbox[3])
        a_kind(kind)
        a_poly(polygon)
        a_rle(rle)
        a_kp(kp)
        a_crowd(bool(crowd))
        if extra or attrs:
            merged = {k: a[k] for k in extra}
            check_json_value(merged, shown, loc)
            if attrs:
                check_json_value(attrs, shown, f"{loc}.attributes")
                merged.update(attrs)
            a_attr(canonical_json(merged))
        else:
            a_attr("{}")
        a_id(ann_id)
        a_file(fid)
    added = len(anns.image) - n_before
    false = [False] * added
    anns.difficult.extend(false)
    anns.truncated.extend(false)
    anns.occluded.extend(false)
    anns.origin_file.extend(array("i", [fid]) * added)
    anns.origin_loc.extend([""] * added)


def _rle_mask(seg: dict[str, Any], height: int, width: int, shown: str, loc: str, findings: list[Finding]
              ) -> tuple[str, list[float]]:
    """An RLE mask as stored, and its bbox; a mask sized unlike its image is kept, with a finding."""
    rle, derived, size = segmentation.rle(seg, (height, width), shown, f"{loc}.segmentation")
    if height and width and size != [height, width]:
        findings.append(Finding("warning", "size-mismatch",
                                f"RLE mask size {size} differs from the image's [height, width] "
                                f"{[height, width]}", shown, f"{loc}.segmentation.size"))
    return rle, derived


def _derived_bbox(derived: list[float] | None, a: dict[str, Any], ann_id: _Id, shown: str) -> list[float]:
    """The bbox of an annotation that gives none: the one its mask or keypoints imply."""
    if not derived:
        fail(f"annotation has no usable bbox (got {a.get('bbox')!r})", shown, f"annotation id {ann_id}",
             fix="give it \"bbox\": [x, y, width, height], a segmentation, or keypoints; "
                 "caption and image-label files are not instance annotations")
    return derived


# Keys of an annotation that is a plain box: the fast path handles exactly these.
_PLAIN_KEYS = frozenset({"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"})


def _load_plain_boxes(raw: list[Any], id_to_size: _IdToSize, c: _Collected, fid: int, offset: int = 0) -> bool:
    """Column-wise import when every annotation is a plain box (no mask, polygon, keypoints
    or extra attributes): a few comprehensions and numpy instead of a Python loop with a
    dozen appends per box. Returns False — having changed nothing — whenever anything is
    unusual, so the row-by-row path can report it with its location.
    """
    columns = _plain_box_columns(raw, id_to_size, offset)
    if columns is None:
        return False
    keys, cls, boxes, crowd, ids = columns
    c.anns.add_boxes(keys, cls, boxes, [bool(v) for v in crowd], origin_file=fid)
    c.ann_ids.extend(ids)
    c.ann_file.extend(array("i", [fid]) * len(raw))
    return True


def _plain_box_columns(raw: list[Any], id_to_size: _IdToSize, offset: int = 0
                       ) -> tuple[list[str], Any, Any, list[Any], list[_Id]] | None:
    """``(image keys, class ids, boxes as an (n, 4) array, iscrowd, annotation ids)`` when every
    annotation is a plain box with well-typed fields on a listed image; else None.

    The type checks are whole-column (``set(map(type, ...))``): numpy alone would turn
    ``"1.5"`` and ``true`` into numbers.
    """
    import numpy as np

    if not raw:
        return None
    try:
        if not all(a.keys() <= _PLAIN_KEYS and a.get("segmentation") in _NO_SEGMENTATION for a in raw):
            return None
        image_ids = [a["image_id"] for a in raw]
        class_ids = [a["category_id"] for a in raw]
        bboxes = [a["bbox"] for a in raw]
        crowd = [a.get("iscrowd", 0) for a in raw]
        ids = [a.get("id", n) for n, a in enumerate(raw, offset)]
        if not (set(map(type, image_ids)) <= _ID_TYPES and set(map(type, ids)) <= _ID_TYPES
                and set(map(type, class_ids)) <= {int} and set(map(type, crowd)) <= {int, bool}
                and set(crowd) <= {0, 1} and set(map(type, chain.from_iterable(bboxes))) <= _NUMBER_TYPES):
            return None
        keys = [id_to_size[i][0] for i in image_ids]
        cls = np.asarray(class_ids)
        boxes = np.asarray(bboxes, dtype=np.float64)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None
    if (cls.dtype.kind not in "iu" or cls.min() < -INT32_MAX - 1 or cls.max() > INT32_MAX
            or boxes.shape != (len(raw), 4) or not np.isfinite(boxes).all()):
        return None
    return keys, cls, boxes, crowd, ids


_NO_SEGMENTATION: tuple[None, list[Any]] = (None, [])
_ID_TYPES = frozenset({int, str})
_NUMBER_TYPES = frozenset({int, float})


def _locate(file_name: str, bases: list[str], dirs: DirIndex, source: SourceFolder,
            root_prefix: str) -> tuple[str | None, str | None]:
    """Where an image is: the first existing ``base/file_name`` (None when it is not on disk)
    and the path key it is recorded under; the key is None when every reading of the name
    leaves the dataset folder (nothing outside is looked up). Plain strings, as pathlib costs
    ~10 µs a join; names without ``..`` skip normalizing (bases are inside the folder)."""
    found = None
    if os.path.isabs(file_name):
        candidate = os.path.normpath(file_name)
        if not source.contains(candidate):
            return None, None
        if dirs.exists_str(candidate):
            found = candidate
    else:
        climbs = ".." in file_name
        for i, base in enumerate(bases):
            candidate = os.path.join(base, file_name)
            if climbs:
                candidate = os.path.normpath(candidate)
                if not source.contains(candidate):
                    continue
            if dirs.exists_str(candidate):
                if i:  # images of one file share a folder: try this one first next time
                    bases.insert(0, bases.pop(i))
                found = candidate
                break
    if found is None:
        return None, _missing_key(file_name, bases, source)
    if found.startswith(root_prefix):
        return found, found[len(root_prefix):].replace(os.sep, "/")
    return found, rel(Path(found), Path(source.root))


def _missing_key(file_name: str, bases: list[str], source: SourceFolder) -> str | None:
    """The path a missing image is recorded under: its name, normalized, when that stays in
    the folder; else where the first folder that keeps it inside puts it; None if none does.
    Backslashes count as separators here (a Windows-made file), so ``..\\x`` cannot escape."""
    posix = posixpath.normpath(file_name.replace("\\", "/"))
    if not posix.startswith("/") and posix != ".." and not posix.startswith("../"):
        return posix
    for base in bases:
        candidate = os.path.normpath(os.path.join(base, posix))
        if source.contains(candidate):
            return Path(os.path.relpath(candidate, source.root)).as_posix()
    return None


def _bases(root: Path, ann_dir: Path, split: str | None, source: SourceFolder) -> list[str]:
    """Folders a COCO ``file_name`` may be relative to, most specific first; only folders
    inside the dataset folder (an ``--annotations`` file elsewhere brings no images)."""
    bases = [ann_dir, root]
    for folder in {split, *_RAW_SPLITS.get(split, ())} if split is not None else ():
        bases += [root / "images" / folder, root / folder]
    bases += [root / "images", ann_dir.parent / "images"]
    out: list[str] = []
    for base in bases:
        b = os.path.normpath(os.path.abspath(base))
        # A folder that does not exist cannot hold the image: drop it once, not per image.
        if b not in out and source.contains(b) and os.path.isdir(b):
            out.append(b)
    return out


# Folder names that normalize to a split name (we look for the image under both).
_RAW_SPLITS = {"val": ("valid", "validation"), "train": ("training",), "test": ("testing",)}
