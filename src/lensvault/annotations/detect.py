"""``--format auto``: look at file names and a few bytes, never parse a whole dataset.

Order matters where layouts overlap: a VOC folder may also hold SegmentationClass masks
(it is VOC), and a Roboflow export may carry a data.yaml beside COCO JSON.
Formats we recognise but do not import are named in the error, so the user learns what
the folder is instead of "nothing found".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lensvault.annotations._common import fail, rel

__all__ = ["Detection", "detect"]


@dataclass(frozen=True)
class Detection:
    format: str
    description: str

    def to_dict(self) -> dict:
        return {"format": self.format, "description": self.description}


def detect(src: Path, *, annotations: Path | None = None) -> Detection:
    root = Path(src)
    if annotations is not None:
        return _detect_path(root, Path(annotations))
    for probe in (_coco, _voc, _yolo, _masks, _labelme):
        found = probe(root)
        if found is not None:
            return found
    _unsupported(root)
    fail("no known annotation format found", root,
         fix="expected COCO JSON, YOLO labels, Pascal VOC XML, labelme JSON or PNG masks; "
             "pass --format and --annotations to say where they are")


def _detect_path(root: Path, ann: Path) -> Detection:
    from lensvault.annotations.importers import coco, labelme

    shown = rel(ann, root)
    if ann.is_file():
        suffix = ann.suffix.lower()
        if suffix == ".json":
            if labelme.is_labelme(ann):
                return Detection("labelme", f"labelme: {shown}")
            if coco.looks_like_coco(ann):
                return Detection("coco", f"COCO: {shown}")
        if suffix == ".xml":
            return Detection("voc", f"Pascal VOC: {shown}")
        if suffix in {".yaml", ".yml"}:
            return Detection("yolo", f"YOLO: {shown}")
        fail("cannot tell the annotation format of this file", shown,
             fix="pass --format coco|yolo|voc|labelme|masks")
    if any(ann.glob("*.xml")):
        return Detection("voc", f"Pascal VOC: {shown}/")
    if any(ann.glob("*.txt")):
        return Detection("yolo", f"YOLO: labels in {shown}/")
    if any(ann.rglob("*.png")):
        return Detection("masks", f"segmentation masks: {shown}/")
    jsons = list(ann.glob("*.json"))
    if any(labelme.is_labelme(p) for p in jsons[:5]):
        return Detection("labelme", f"labelme: {shown}/")
    if jsons:
        return Detection("coco", f"COCO: {shown}/")
    fail("cannot tell the annotation format of this folder", shown, fix="pass --format")


def _coco(root: Path) -> Detection | None:
    from lensvault.annotations.importers import coco

    files = coco.find_files(root)
    if not files:
        return None
    size = sum(p.stat().st_size for p, _ in files)
    names = ", ".join(rel(p, root) for p, _ in files)
    return Detection("coco", f"COCO: {names} ({size / 1e6:.1f} MB)" if size > 1e6 else f"COCO: {names}")


def _voc(root: Path) -> Detection | None:
    from lensvault.annotations.importers import voc

    base = voc.voc_root(root)
    if base is not None:
        xmls = list((base / "Annotations").rglob("*.xml"))
        if xmls and _is_voc_xml(xmls):
            images = (base / "JPEGImages")
            n_images = sum(1 for _ in images.iterdir()) if images.is_dir() else 0
            splits = sorted(p.stem for p in (base / "ImageSets" / "Main").glob("*.txt")
                            if p.stem in {"train", "val", "test", "trainval"})
            return Detection("voc", f"Pascal VOC: {rel(base / 'Annotations', root)}/ ({len(xmls):,} XML file{'' if len(xmls) == 1 else 's'}), "
                                    f"{n_images:,} files in JPEGImages/, splits: {', '.join(splits) or 'none'}")
    dirs = voc.roboflow_split_dirs(root)
    xmls = [p for d in dirs for p in d.glob("*.xml")] or list(root.glob("*.xml"))
    if xmls and _is_voc_xml(xmls):
        where = ", ".join(f"{d.name}/" for d in dirs) or "root"
        return Detection("voc", f"Pascal VOC: {len(xmls):,} XML files beside their images in {where}")
    return None


def _is_voc_xml(xmls: list[Path]) -> bool:
    """VOC and MIT LabelMe XML both start with <annotation>; VOC objects have <bndbox>,
    LabelMe objects <polygon>. An empty file decides nothing (datumaro issue 658)."""
    for p in sorted(xmls)[:20]:
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "<annotation" not in text:
            return False
        if "<bndbox>" in text:
            return True
        if "<polygon>" in text:
            return False
    return "<annotation" in text


def _yolo(root: Path) -> Detection | None:
    from lensvault.annotations.importers import yolo

    if any(root.glob("*/labelTxt")) or (root / "labelTxt").is_dir():
        return None  # oriented boxes (DOTA / YOLO-OBB): not ours, reported as unsupported
    data = yolo.find_yaml(root)
    if data is not None:
        return Detection("yolo", f"YOLO: {rel(data, root)}")
    if (root / "obj.data").is_file():
        return Detection("yolo", "YOLO (darknet): obj.data")
    names = [n for n in ("obj.names", "classes.txt") if (root / n).is_file()]
    label_dirs = [d for d in ("labels", "Labels", "Annotations", "annotations") if (root / d).is_dir()
                  and next((root / d).rglob("*.txt"), None) is not None]
    if label_dirs and (names or (root / "images").is_dir()):
        return Detection("yolo", f"YOLO: {label_dirs[0]}/" + (f" with {names[0]}" if names else ""))
    return None


def _masks(root: Path) -> Detection | None:
    from lensvault.annotations.importers import masks

    folder = masks.mask_dir(root)
    if folder is None:
        return None
    if not ((root / "dataset_meta.json").is_file() or (root / "labelmap.txt").is_file()
            or folder.name == "SegmentationClass"):
        return None
    n = sum(1 for _ in folder.rglob("*.png"))
    return Detection("masks", f"segmentation masks: {rel(folder, root)}/ ({n:,} PNG files)")


def _labelme(root: Path) -> Detection | None:
    from lensvault.annotations.importers import labelme

    checked = 0
    for p in sorted(root.rglob("*.json")):
        if labelme.is_labelme(p):
            n = sum(1 for q in root.rglob("*.json") if labelme.is_labelme(q))
            return Detection("labelme", f"labelme: {n:,} JSON files, first {rel(p, root)}")
        checked += 1
        if checked > 50:
            break
    return None


_UNSUPPORTED = (
    ("*/_annotations.createml.json", "Roboflow CreateML JSON"),
    ("*/_classes.csv", "Roboflow multi-label classification CSV"),
    ("*/*.tfrecord", "TFRecord"),
    ("*/labelTxt", "YOLO-OBB / DOTA oriented boxes"),
    ("annotations/captions_*.json", "COCO captions"),
    ("annotations/panoptic_*.json", "COCO panoptic segmentation"),
    ("annotations/labels_*.json", "COCO image-level labels"),
    ("Annotations/**/*.xml", "MIT LabelMe XML"),
)


def _unsupported(root: Path) -> None:
    for pattern, name in _UNSUPPORTED:
        hit = next(iter(root.glob(pattern)), None)
        if hit is not None:
            fail(f"this looks like {name}, which LensVault does not import", rel(hit, root),
                 fix="convert it to COCO, YOLO, Pascal VOC, labelme or PNG masks first "
                     "(e.g. with Roboflow or datumaro)", code="unsupported-format")
