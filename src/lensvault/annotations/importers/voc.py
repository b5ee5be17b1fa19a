"""Pascal VOC XML (one ``Annotations/<id>.xml`` per image).

Coordinates: the VOC devkit numbers pixels from 1 and writes inclusive corner pixels.
We keep the *extent* as written (``w = xmax - xmin``, as Ultralytics' VOC converter and
most tools do) and move the origin to 0 (``x = xmin - 1``), so a box from ``xmin=1`` to
``xmax=640`` on a 640-pixel image starts at 0 and stays inside, and a box with
``xmin == xmax`` is still reported as zero-area. The exporter writes ``xmin = x + 1``,
``xmax = x + w + 1``, so VOC → model → VOC is exact. Files written 0-based (Roboflow,
CVAT) come out shifted by one pixel; a box at ``xmin=0`` is reported as outside the image.

Layouts: ``Annotations/`` + ``JPEGImages/`` + ``ImageSets/Main/{train,val,test,trainval}.txt``
at the root or one folder below it (``BCCD/``), or Roboflow's ``<split>/`` folders with
each XML beside its image. Class ids: ``--classes`` order, else ``labelmap.txt`` order,
else names sorted.
"""

from __future__ import annotations

from pathlib import Path

from lensvault.annotations._common import (IMAGE_SUFFIXES, DirIndex, fail, find_images, image_info,
                                           normalize_split, read_class_names, read_xml, rel)
from lensvault.annotations.importers._base import Imported, plural
from lensvault.annotations.model import AnnotationColumns, ClassMap, Finding, ImageColumns, canonical_json

SPLIT_FILES = ("train", "val", "test")


def voc_root(root: Path) -> Path | None:
    """The folder holding ``Annotations/``: the root itself or one child (``BCCD/``)."""
    if (root / "Annotations").is_dir():
        return root
    children = [c for c in sorted(root.iterdir()) if c.is_dir() and (c / "Annotations").is_dir()]
    return children[0] if len(children) == 1 else None


def roboflow_split_dirs(root: Path) -> list[Path]:
    return [c for c in sorted(root.iterdir())
            if c.is_dir() and normalize_split(c.name) in {"train", "val", "test"} and any(c.glob("*.xml"))]


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    base = voc_root(root)
    xml_files: list[tuple[Path, str | None]] = []
    split_of: dict[str, str] = {}
    if annotations is not None:
        xmls = [annotations] if annotations.is_file() else sorted(annotations.rglob("*.xml"))
        xml_files = [(p, None) for p in xmls]
        source = rel(annotations, root)
    elif base is not None:
        xml_files = [(p, None) for p in sorted((base / "Annotations").rglob("*.xml"))]
        split_of = _split_files(base / "ImageSets" / "Main")
        source = rel(base / "Annotations", root)
    else:
        dirs = roboflow_split_dirs(root)
        for d in dirs:
            xml_files += [(p, normalize_split(d.name)) for p in sorted(d.glob("*.xml"))]
        if not xml_files:
            xml_files = [(p, None) for p in sorted(root.glob("*.xml"))]
        source = ", ".join(f"{rel(d, root)}/" for d in dirs) or "*.xml"
    if not xml_files:
        fail("no Pascal VOC XML files found", root,
             fix="expected Annotations/*.xml; pass --annotations to point at the XML folder")

    fixed = _class_order(root, base, classes)
    names_seen: dict[str, None] = {}
    parsed = []
    dirs = DirIndex()
    for xml_path, folder_split in xml_files:
        shown = rel(xml_path, root)
        record = _parse(xml_path, shown)
        image = _find_image(record["filename"], xml_path, base or root, root, record["folder"], dirs)
        stem = xml_path.stem
        split = folder_split or split_of.get(stem) or split_of.get(Path(record["filename"]).stem)
        parsed.append((shown, record, image, split))
        for obj in record["objects"]:
            names_seen.setdefault(obj["name"])

    findings: list[Finding] = []
    if fixed is not None:
        ordered = list(fixed) + [n for n in names_seen if n not in fixed]
        for n in names_seen:
            if n not in fixed:
                findings.append(Finding("warning", "unknown-class",
                                        f"class {n!r} is not in the class list; given id {ordered.index(n)}",
                                        str(classes or "labelmap.txt"), "class list"))
    else:
        ordered = sorted(names_seen)
    classmap = ClassMap.from_names(ordered)
    class_ids = {n: i for i, n in enumerate(ordered)}

    images = ImageColumns()
    anns = AnnotationColumns()
    image_files: dict[str, str] = {}
    n_boxes = 0
    for shown, record, image, split in parsed:
        if image is not None:
            key = rel(image, root)
            width, height, orientation = image_info(image, key)
            if record["width"] > 0 and record["height"] > 0 and (width, height) != (record["width"], record["height"]):
                findings.append(Finding("warning", "size-mismatch",
                                        f"<size> says {record['width']}x{record['height']} but the image is "
                                        f"{width}x{height}; using the image's size", shown, "size"))
        else:
            key = rel((base or root) / "JPEGImages" / record["filename"], root)
            width, height, orientation = record["width"], record["height"], 1
            findings.append(Finding("warning", "missing-image",
                                    f"image {record['filename']!r} is not on disk", shown, "filename"))
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

    # Images that have no XML are still part of the dataset (negatives).
    if base is not None and annotations is None and (base / "JPEGImages").is_dir():
        stem_split = split_of
        for image in find_images(base / "JPEGImages"):
            key = rel(image, root)
            if key not in image_files:
                width, height, orientation = image_info(image, key)
                images.add(key, width, height, orientation=orientation, split=stem_split.get(image.stem))
                image_files[key] = key

    counts: dict[str | None, int] = {}
    for s in images.split:
        counts[s] = counts.get(s, 0) + 1
    split_text = ", ".join(f"{s} {n}" for s, n in counts.items() if s) or "no splits"
    description = (f"Pascal VOC: {source} ({plural(len(xml_files), 'file')}), {plural(len(images), 'image')} "
                   f"({split_text}), {plural(len(classmap), 'class').replace('classs', 'classes')}, "
                   f"{plural(n_boxes, 'box').replace('boxs', 'boxes')}")
    return Imported(images, anns, classmap, description, findings, image_files, ids_from_names=classes is None)


def _class_order(root: Path, base: Path | None, classes: Path | None) -> list[str] | None:
    if classes is not None:
        return read_class_names(classes)
    for folder in {root, base} - {None}:
        labelmap = folder / "labelmap.txt"
        if labelmap.is_file():
            return [line.split(":")[0].strip() for line in labelmap.read_text(encoding="utf-8").splitlines()
                    if line.strip() and not line.startswith("#")]
    return None


def _split_files(main: Path) -> dict[str, str]:
    """Image id → split. ``trainval.txt`` only fills in ids the specific files lack."""
    out: dict[str, str] = {}
    for name in (*SPLIT_FILES, "trainval"):
        path = main / f"{name}.txt"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts:
                out.setdefault(parts[0], name)
    return out


def _text(el, tag: str) -> str:
    child = el.find(tag)
    return (child.text or "").strip() if child is not None and child.text else ""


def _flag(el, tag: str) -> bool:
    # Missing and empty tags both mean "no"; labelImg writes "0"/"1", others "true".
    return _text(el, tag).lower() in {"1", "true", "yes"}


def _parse(path: Path, shown: str) -> dict:
    root = read_xml(path)
    if root.tag != "annotation":
        fail(f"root element is <{root.tag}>, not <annotation>", shown, "line 1",
             fix="this is not a Pascal VOC file; pick the right --format")
    filename = _text(root, "filename") or path.stem
    size = root.find("size")
    width = height = 0
    if size is not None:
        try:
            width = int(float(_text(size, "width") or 0))
            height = int(float(_text(size, "height") or 0))
        except ValueError:
            fail("<size> width/height are not numbers", shown, "size", fix="write integer pixel sizes")
    objects = []
    for ordinal, obj in enumerate(root.findall("object"), 1):
        name = _text(obj, "name")
        if not name:
            fail("object without a <name>", shown, f"object {ordinal}", fix="give every <object> a class <name>")
        box = obj.find("bndbox")
        if box is None:
            fail("object without a <bndbox>", shown, f"object {ordinal}",
                 fix="add <bndbox> with xmin/ymin/xmax/ymax (polygons belong in a LabelMe or COCO file)")
        try:
            xmin, ymin, xmax, ymax = (float(_text(box, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            fail("bndbox corner missing or not a number", shown, f"object {ordinal}",
                 fix="write numeric <xmin>, <ymin>, <xmax>, <ymax>")
        if xmax < xmin or ymax < ymin:
            fail(f"box corners are swapped: xmin={xmin:g} xmax={xmax:g} ymin={ymin:g} ymax={ymax:g}",
                 shown, f"object {ordinal} ({name})",
                 fix="swap the corners so xmin <= xmax and ymin <= ymax")
        attrs: dict = {}
        pose = _text(obj, "pose")
        if pose and pose != "Unspecified":
            attrs["pose"] = pose
        actions = obj.find("actions")
        if actions is not None:
            attrs["actions"] = {a.tag: _text(actions, a.tag) == "1" for a in actions}
        parts = [{"name": _text(p, "name"),
                  "bbox": [float(_text(p.find("bndbox"), k) or 0) for k in ("xmin", "ymin", "xmax", "ymax")]}
                 for p in obj.findall("part") if p.find("bndbox") is not None]
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


def _find_image(filename: str, xml_path: Path, base: Path, root: Path, folder: str, dirs: DirIndex) -> Path | None:
    name = Path(filename)
    candidates = [base / "JPEGImages" / name, xml_path.parent / name, root / name]
    if folder:
        candidates += [base / folder / name, root / folder / name]
    if not name.suffix:
        candidates += [base / "JPEGImages" / (filename + s) for s in sorted(IMAGE_SUFFIXES)]
    for c in candidates:
        if dirs.exists(c):
            return c
    return None
