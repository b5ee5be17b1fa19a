"""Pascal VOC XML (one XML file per image, root element ``<annotation>``).

Coordinates: the VOC devkit numbers pixels from 1 and writes inclusive corner pixels.
We keep the *extent* as written (``w = xmax - xmin``, as Ultralytics' VOC converter and
most tools do) and move the origin to 0 (``x = xmin - 1``), so a box from ``xmin=1`` to
``xmax=640`` on a 640-pixel image starts at 0 and stays inside, and a box with
``xmin == xmax`` is still reported as zero-area. The exporter writes ``xmin = x + 1``,
``xmax = x + w + 1``, so VOC → model → VOC is exact. Files written 0-based (Roboflow,
CVAT) come out shifted by one pixel; a box at ``xmin=0`` is reported as outside the image.

Where the XML files are is decided by content, not folder names: every folder whose XML
files have the root element ``<annotation>`` with VOC content (``<bndbox>``/``<size>``; MIT
LabelMe XML has polygons) — ``Annotations/``, Kaggle's ``annotations/`` + ``images/``,
``annots/``, ``xml/``, ``labels/``, XML beside the images, Roboflow's ``<split>/`` folders,
``VOCdevkit/VOC2012/Annotations``. Splits: a ``train``/``val``/``test`` folder on the XML's
path, else ``ImageSets/Main/{train,val,test,trainval}.txt`` beside the XML folder.

The image of an XML (``_image_for``): ``<filename>`` in ``JPEGImages/`` beside the XML folder,
beside the XML, in the ``<folder>`` tag's folder, in an ``images/`` folder beside the XML
folder, then by unique file name anywhere under the root; a name matching several images
is an error naming them. If ``<filename>`` is nowhere, an image named like the XML file is
used, with a ``filename-mismatch`` warning. Class ids: ``--classes`` order, else
``labelmap.txt`` order, else names sorted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypedDict

from lensvault.annotations._common import (
    IMAGE_SUFFIXES,
    fail,
    find_images,
    normalize_split,
    read_class_list,
    read_xml,
    rel,
)
from lensvault.annotations.bad_images import image_info
from lensvault.annotations.confine import reachable
from lensvault.annotations.image_lookup import ImageLookup, clean_name
from lensvault.annotations.importers._base import Imported, named_classes, plural
from lensvault.annotations.model import AnnotationColumns, Finding, ImageColumns, canonical_json
from lensvault.annotations.survey import Survey, inside, sniff_xml

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

SPLIT_FILES = ("train", "val", "test")
SPLITS = frozenset(SPLIT_FILES)
# A VOC file is a few KB; anything this big is not one, and is refused before parsing.
MAX_XML_BYTES = 64 * 1024 * 1024
_IMAGE_DIRS = ("JPEGImages", "images", "Images", "imgs", "img", "image")


class _VocObject(TypedDict):
    ordinal: int  # 1-based position among the file's <object>s
    name: str
    box: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax as written
    difficult: bool
    truncated: bool
    occluded: bool
    attributes: str  # canonical JSON


# An object's extras, kept as its attributes: pose, actions (name → done), parts, <attributes>.
_Part = dict[str, str | list[float]]  # {"name", "bbox": [xmin, ymin, xmax, ymax]}
_Attribute = str | dict[str, bool] | list[_Part]


class _VocRecord(TypedDict):
    """One XML file, parsed."""

    filename: str
    folder: str
    width: int
    height: int
    objects: list[_VocObject]


@dataclass
class VocFiles:
    """The VOC XML files of a dataset and where splits come from."""

    xmls: list[Path]
    folders: list[Path]
    split_files: dict[Path, dict[str, str]] = field(default_factory=dict)  # XML folder → stem → split
    source: str = ""


def find_voc(root: Path, survey: Survey | None = None) -> VocFiles | None:
    """Every folder under ``root`` whose XML files are Pascal VOC, by content."""
    survey = survey or Survey.of(root)
    folders = survey.where("xml", sniff_xml, "voc")
    if not folders:
        return None
    chosen = {f.path for f in folders}
    for link in survey.outside:
        if link.suffix.lower() == ".xml" and link.parent in chosen:
            fail(f"annotation file is a symlink to {os.path.realpath(link)}, outside the dataset folder",
                 rel(link, root), fix="copy the file into the dataset folder, or remove the link",
                 code="outside-root")
    xmls = [p for f in folders for p in f.xml]
    split_files = {f.path: _split_files(f.path.parent / "ImageSets" / "Main") for f in folders}
    return VocFiles(xmls, [f.path for f in folders], split_files, _folders_text([f.path for f in folders], root))


def _folders_text(folders: list[Path], root: Path) -> str:
    names = [f"{rel(f, root)}/" if f != root else "the root folder" for f in folders]
    return ", ".join(names[:5]) + (f" … and {len(names) - 5} more" if len(names) > 5 else "")


def folder_split(path: Path, root: Path) -> str | None:
    """train/val/test from the nearest folder so named on ``path`` (below the root)."""
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        return None
    for part in reversed(parts):
        split = normalize_split(part)
        if split in SPLITS:
            return split
    return None


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    survey = Survey.of(root)
    found: VocFiles | None
    if annotations is not None:
        xmls = [annotations] if annotations.is_file() else sorted(annotations.rglob("*.xml"))
        allowed = {os.path.realpath(root), os.path.realpath(annotations if annotations.is_dir() else annotations.parent)}
        for p in xmls:
            if not any(reachable(os.path.realpath(p), a) for a in allowed):
                fail(f"annotation file is a symlink to {os.path.realpath(p)}, outside the annotation folder",
                     str(p), fix="copy the file in, or remove the link", code="outside-root")
        folders = sorted({p.parent for p in xmls})
        found = VocFiles(xmls, folders, {f: _split_files(f.parent / "ImageSets" / "Main") for f in folders},
                         rel(annotations, root))
    else:
        found = find_voc(root, survey)
    if found is None or not found.xmls:
        fail("no Pascal VOC XML files found", root,
             fix="expected XML files with an <annotation> root element (Annotations/, annotations/, "
                 "or beside the images); pass --annotations to point at the XML folder")

    image_splits = _VocRootSplits(root)
    fixed = _class_order(root, found.folders, classes)
    names_seen: dict[str, None] = {}
    parsed: list[tuple[str, _VocRecord, Path | None, str | None]] = []
    lookup = ImageLookup(root, survey)
    findings: list[Finding] = []
    for xml_path in found.xmls:
        shown = rel(xml_path, root)
        record = _parse(xml_path, shown)
        image = _image_for(record, xml_path, root, lookup, shown, findings)
        beside = found.split_files.get(xml_path.parent, {})
        split = (folder_split(xml_path, root)
                 or beside.get(xml_path.stem) or beside.get(Path(record["filename"]).stem)
                 or (image_splits(image).get(image.stem) or folder_split(image, root) if image is not None else None))
        parsed.append((shown, record, image, split))
        for obj in record["objects"]:
            names_seen.setdefault(obj["name"])

    classmap, unknown = named_classes(fixed, names_seen, str(classes or "labelmap.txt"))
    findings += unknown
    class_ids = dict(zip(classmap.names, classmap.ids))

    images = ImageColumns()
    anns = AnnotationColumns()
    image_files: dict[str, str] = {}
    # Folder → list it recursively (JPEGImages/) or not. JPEGImages/ beside an XML folder
    # always counts, even when no XML names one of its images.
    image_dirs: dict[Path, bool] = {f.parent / "JPEGImages": True for f in found.folders
                                    if (f.parent / "JPEGImages").is_dir()}
    n_boxes = 0
    for shown, record, image, split in parsed:
        if image is not None:
            key = rel(image, root)
            width, height, orientation = image_info(image, key)
            if width == 0 or height == 0:  # unreadable: reported with every other bad image
                width, height = record["width"], record["height"]
            elif record["width"] > 0 and record["height"] > 0 and (width, height) != (record["width"], record["height"]):
                findings.append(Finding("warning", "size-mismatch",
                                        f"<size> says {record['width']}x{record['height']} but the image is "
                                        f"{width}x{height}; using the image's size", shown, "size"))
            jpeg_images = next((p for p in image.parents if p.name == "JPEGImages"), None)
            if jpeg_images is not None and inside(str(root), str(jpeg_images)):
                image_dirs[jpeg_images] = True
            else:
                image_dirs.setdefault(image.parent, False)
        else:
            key = _missing_key(record["filename"], Path(shown).parent, root)
            width, height, orientation = record["width"], record["height"], 1
            findings.append(Finding("warning", "missing-image",
                                    f"image {record['filename']!r} is not under the dataset folder", shown,
                                    "filename"))
        if key in image_files:
            fail(f"image {key!r} is annotated by two XML files ({image_files[key]} and {shown})", shown,
                 "filename", fix="merge the two files or correct <filename>")
        images.add(key, width, height, orientation=orientation, split=split)
        image_files[key] = shown
        fid = anns.file_id(shown)
        for obj in record["objects"]:
            xmin, ymin, xmax, ymax = obj["box"]
            anns.add(key, class_ids[obj["name"]], xmin - 1.0, ymin - 1.0, xmax - xmin, ymax - ymin,
                     difficult=obj["difficult"], truncated=obj["truncated"], occluded=obj["occluded"],
                     attributes=obj["attributes"], origin=(fid, f"object {obj['ordinal']}"))
            n_boxes += 1

    # Images without an XML in the folders the annotated images live in (JPEGImages/ and
    # below it, or the one folder) are still part of the dataset: negatives.
    if annotations is None or annotations.is_dir():
        for folder, recursive in sorted(image_dirs.items()):
            listed = find_images(folder) if recursive else sorted(
                p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            for image in listed:
                key = rel(image, root)
                if key not in image_files:
                    width, height, orientation = image_info(image, key)
                    split = (folder_split(image, root)
                             or next((s.get(image.stem) for s in found.split_files.values() if s.get(image.stem)),
                                     None)
                             or image_splits(image).get(image.stem))
                    images.add(key, width, height, orientation=orientation, split=split)
                    image_files[key] = key

    counts: dict[str | None, int] = {}
    for s in images.split:
        counts[s] = counts.get(s, 0) + 1
    split_text = ", ".join(f"{s} {n}" for s, n in counts.items() if s) or "no splits"
    description = (f"Pascal VOC: {found.source} ({plural(len(found.xmls), 'XML file')}), "
                   f"{plural(len(images), 'image')} ({split_text}), "
                   f"{plural(len(classmap), 'class').replace('classs', 'classes')}, "
                   f"{plural(n_boxes, 'box').replace('boxs', 'boxes')}")
    return Imported(images, anns, classmap, description, findings, image_files, ids_from_names=classes is None)


def _missing_key(filename: str, xml_dir: Path, root: Path) -> str:
    """Where a missing image is recorded: JPEGImages/ beside an Annotations folder, else beside the XML."""
    _, base = clean_name(filename)
    folder = root / xml_dir
    if folder.name == "Annotations" or (folder.parent / "JPEGImages").is_dir():
        return rel(folder.parent / "JPEGImages" / base, root)
    return rel(folder / base, root)


def _candidates(record: _VocRecord, xml_path: Path, root: Path, path: PurePosixPath | None, base: str
                ) -> Iterator[str]:
    """Where ``<filename>`` may be, in order (lazily, as strings: 20,000 XML files try up to ten
    places each, and pathlib objects cost more than the look-ups)."""
    join = os.path.join
    folder = str(xml_path.parent)
    parent = os.path.dirname(folder)
    names = [base] if os.path.splitext(base)[1].lower() in IMAGE_SUFFIXES else [base] + [
        base + s for s in sorted(IMAGE_SUFFIXES)]
    for n in names:
        yield join(parent, "JPEGImages", n)
    for n in names:
        yield join(folder, n)
    if path is not None and len(path.parts) > 1:
        for b in (folder, parent, str(root)):
            yield join(b, str(path))
    tag_path, _ = clean_name(record["folder"]) if record["folder"] else (None, "")
    if tag_path is not None:
        for b in (parent, str(root)):
            for n in names:
                yield join(b, str(tag_path), n)
    for d in _IMAGE_DIRS[1:]:
        for n in names:
            yield join(parent, d, n)


def _image_for(record: _VocRecord, xml_path: Path, root: Path, lookup: ImageLookup, shown: str,
               findings: list[Finding]) -> Path | None:
    path, base = clean_name(record["filename"])
    found = lookup.first(_candidates(record, xml_path, root, path, base), shown, "filename") if base else None
    if found is not None:
        return found
    if base:
        found = (lookup.anywhere(base, shown, "filename", what="<filename>")
                 if Path(base).suffix.lower() in IMAGE_SUFFIXES else
                 lookup.by_stem(base, shown, "filename", what="<filename>"))
        if found is not None:
            return found
    folder = xml_path.parent
    for stem in dict.fromkeys((Path(base).stem, xml_path.stem)):
        if not stem:
            continue
        found = lookup.first([folder / (stem + s) for s in sorted(IMAGE_SUFFIXES)], shown, "filename") \
            or lookup.by_stem(stem, shown, "filename", what="an image named")
        if found is not None:
            findings.append(Finding("warning", "filename-mismatch",
                                    f"<filename> {record['filename']!r} is not under the dataset folder; using "
                                    f"{rel(found, root)!r}, which has the same name as the XML file"
                                    if stem == xml_path.stem else
                                    f"<filename> {record['filename']!r} is not under the dataset folder; using "
                                    f"{rel(found, root)!r} (same name, other extension)",
                                    shown, "filename"))
            return found
    return None


def _class_order(root: Path, folders: list[Path], classes: Path | None) -> tuple[list[int], list[str]] | None:
    if classes is not None:
        return read_class_list(classes)
    for folder in dict.fromkeys([root, *(f.parent for f in folders)]):
        labelmap = folder / "labelmap.txt"
        if labelmap.is_file():
            names = [line.split(":")[0].strip() for line in _read_lines(labelmap, rel(labelmap, root))
                     if line.strip() and not line.startswith("#")]
            return list(range(len(names))), names
    return None


def _read_lines(path: Path, shown: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        fail(f"not UTF-8 text: {e.reason}", shown, f"byte {e.start}", fix="save the file as UTF-8")
    except OSError as e:
        fail(f"cannot read the file: {e.strerror}", shown, fix="check the path and permissions",
             code="unreadable-file")


class _VocRootSplits:
    """The ``ImageSets/Main`` split files of an image's VOC root: the nearest folder above the
    image, inside the dataset root, that has them. For XML files that are not beside the split
    files — ``--annotations`` pointing at corrected XML elsewhere, or an XML folder in another
    part of SRC — the split still comes from the dataset the images belong to."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._by_folder: dict[Path, dict[str, str]] = {}

    def __call__(self, image: Path) -> dict[str, str]:
        folder = Path(os.path.abspath(image)).parent
        walked = []
        while inside(str(self.root), str(folder)):
            if folder in self._by_folder:
                found = self._by_folder[folder]
                break
            walked.append(folder)
            main = folder / "ImageSets" / "Main"
            if main.is_dir():
                found = _split_files(main)
                break
            if folder == self.root:
                found = {}
                break
            folder = folder.parent
        else:
            found = {}
        for f in walked:
            self._by_folder[f] = found
        return found


def _split_files(main: Path) -> dict[str, str]:
    """Image id → split. ``trainval.txt`` only fills in ids the specific files lack."""
    out: dict[str, str] = {}
    for name in (*SPLIT_FILES, "trainval"):
        path = main / f"{name}.txt"
        if not path.is_file():
            continue
        for line in _read_lines(path, str(path)):
            parts = line.split()
            if parts:
                out.setdefault(parts[0], name)
    return out


def _text(el: Element, tag: str) -> str:
    child = el.find(tag)
    return (child.text or "").strip() if child is not None and child.text else ""


def _flag(el: Element, tag: str) -> bool:
    # Missing and empty tags both mean "no"; labelImg writes "0"/"1", others "true".
    return _text(el, tag).lower() in {"1", "true", "yes"}


def _number(el: Element, tag: str, shown: str, where: str) -> float:
    text = _text(el, tag)
    try:
        value = float(text)
    except ValueError:
        fail(f"<{tag}> is {text!r}, not a number" if text else f"<{tag}> is missing or empty", shown, where,
             fix=f"write a numeric <{tag}>")
    if not math.isfinite(value):
        fail(f"<{tag}> is {text!r}, not a finite number", shown, where, fix=f"write a finite numeric <{tag}>")
    return value


def _size(size: Element, tag: str, shown: str) -> int:
    text = _text(size, tag)
    if not text:
        return 0
    try:
        value = float(text)
    except ValueError:
        fail(f"<size> <{tag}> is {text!r}, not a number", shown, "size", fix="write integer pixel sizes")
    if not math.isfinite(value) or value < 0 or value != int(value) or value > 2**31 - 1:
        fail(f"<size> <{tag}> is {text!r}, not a pixel count", shown, "size",
             fix="write a whole, non-negative number of pixels")
    return int(value)


def _parse(path: Path, shown: str) -> _VocRecord:
    try:
        too_big = path.stat().st_size > MAX_XML_BYTES
    except OSError as e:
        fail(f"cannot read annotation file: {e.strerror}", shown, fix="check the path and permissions",
             code="unreadable-file")
    if too_big:
        fail(f"the file is larger than {MAX_XML_BYTES >> 20} MB, which no Pascal VOC file is", shown,
             fix="point the import at the per-image VOC XML files", code="bad-xml")
    root = read_xml(path, shown)
    if root.tag != "annotation":
        fail(f"root element is <{root.tag}>, not <annotation>", shown, "line 1",
             fix="this is not a Pascal VOC file; pick the right --format")
    filename = _text(root, "filename") or path.stem
    size = root.find("size")
    width = height = 0
    if size is not None:
        width, height = _size(size, "width", shown), _size(size, "height", shown)
    objects: list[_VocObject] = []
    for ordinal, obj in enumerate(root.findall("object"), 1):
        where = f"object {ordinal}"
        name = _text(obj, "name")
        if not name:
            fail("object without a <name>", shown, where, fix="give every <object> a class <name>")
        box = obj.find("bndbox")
        if box is None:
            fail("object without a <bndbox>", shown, where,
                 fix="add <bndbox> with xmin/ymin/xmax/ymax (polygons belong in a LabelMe or COCO file)")
        xmin, ymin, xmax, ymax = (_number(box, k, shown, f"{where} ({name})") for k in ("xmin", "ymin", "xmax", "ymax"))
        if xmax < xmin or ymax < ymin:
            fail(f"box corners are swapped: xmin={xmin:g} xmax={xmax:g} ymin={ymin:g} ymax={ymax:g}",
                 shown, f"{where} ({name})",
                 fix="swap the corners so xmin <= xmax and ymin <= ymax")
        attrs: dict[str, _Attribute] = {}
        pose = _text(obj, "pose")
        if pose and pose != "Unspecified":
            attrs["pose"] = pose
        actions = obj.find("actions")
        if actions is not None:
            attrs["actions"] = {a.tag: _text(actions, a.tag) == "1" for a in actions}
        parts: list[_Part] = []
        for n, part in enumerate(obj.findall("part"), 1):
            part_box = part.find("bndbox")
            if part_box is not None:
                part_where = f"{where} part {n}"
                parts.append({"name": _text(part, "name"),
                              "bbox": [_number(part_box, k, shown, part_where) for k in ("xmin", "ymin", "xmax", "ymax")]})
        if parts:
            attrs["parts"] = parts
        extra = obj.find("attributes")
        if extra is not None:
            for a in extra.findall("attribute"):
                attrs[_text(a, "name")] = _text(a, "value")
        objects.append({
            "ordinal": ordinal, "name": name, "box": (xmin, ymin, xmax, ymax),
            "difficult": _flag(obj, "difficult"), "truncated": _flag(obj, "truncated"),
            "occluded": _flag(obj, "occluded"), "attributes": canonical_json(attrs) if attrs else "{}",
        })
    return {"filename": filename, "folder": _text(root, "folder"), "width": width, "height": height,
            "objects": objects}
