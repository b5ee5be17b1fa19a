"""``--format auto``: find every annotation format in a folder by content, choose one, say so.

One walk of the folder (``survey.Survey``) and a look at the first bytes of a sample of
files in each folder — never a whole file (a 1 GB COCO file is not parsed to detect it):

* COCO: the usual names (``annotations/instances_*.json``, Roboflow's
  ``_annotations.coco.json``), else any JSON whose head has top-level ``"images"`` (or
  ``"annotations"`` and ``"categories"``) lists, whatever its name or folder;
* Pascal VOC: folders of XML files whose root element is ``<annotation>`` with VOC content,
  wherever they are (``Annotations/``, ``annotations/``, ``annots/``, ``xml/``, ``labels/``,
  beside the images);
* YOLO: ``data.yaml``/``obj.data``, or a ``labels/`` folder of ``.txt`` label lines;
* segmentation masks: ``masks/``, ``SegmentationClass(PNG)/``, ``SegmentationObject(PNG)/``
  with a class map (``dataset_meta.json``, ``labelmap.txt``, labelme's ``class_names.txt``,
  or VOC's palette);
* labelme: folders of JSON files with a ``"shapes"`` list.

When several are present, all are listed with their counts, the first in that order is
chosen (a COCO file found only by content, under no COCO name, comes last), and the
description says how to choose another (``--format``, ``--annotations``).
Formats we recognise but do not import are named in the error, so the user learns what the
folder is instead of "nothing found".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from lensvault.annotations._common import fail, read_head, rel
from lensvault.annotations.survey import Survey, sniff_json, sniff_xml

__all__ = ["Candidate", "Detection", "detect"]

ORDER = ("coco", "voc", "yolo", "masks", "labelme")


class CandidateDict(TypedDict):
    format: str
    description: str
    files: int
    annotations: str | None


class DetectionDict(TypedDict):
    """``Detection.to_dict()``: the ``--json`` shape of a detection."""

    format: str
    description: str
    annotations: str | None
    found: list[CandidateDict]


@dataclass(frozen=True)
class Candidate:
    """One format found in the folder. ``annotations`` is what to pass as ``--annotations``
    (relative to the root) when the importer would not find these files by itself."""

    format: str
    description: str
    files: int
    annotations: str | None = None

    def hint(self) -> str:
        return f"--format {self.format}" + (f" --annotations {self.annotations}" if self.annotations else "")

    def to_dict(self) -> CandidateDict:
        return {"format": self.format, "description": self.description, "files": self.files,
                "annotations": self.annotations}


@dataclass(frozen=True)
class Detection:
    format: str
    description: str
    annotations: Path | None = None  # where the chosen importer should read, if not its own layout
    found: tuple[Candidate, ...] = field(default=())

    def to_dict(self) -> DetectionDict:
        return {"format": self.format, "description": self.description,
                "annotations": None if self.annotations is None else str(self.annotations),
                "found": [c.to_dict() for c in self.found]}


def detect(src: Path, *, annotations: Path | None = None, format: str | None = None) -> Detection:
    """What annotation format ``src`` holds. With ``format``, where that format's files are
    (a ``Detection`` whose ``annotations`` may be None: the importer finds them itself)."""
    root = Path(src)
    if annotations is not None:
        return _detect_path(root, Path(annotations))
    survey = Survey.of(root)
    probes = {"coco": _coco, "voc": _voc, "yolo": _yolo, "masks": _masks, "labelme": _labelme}
    if format is not None:
        found = probes[format](root, survey) if format in probes else None
        if found is None:
            return Detection(format, "")
        return Detection(format, found.description, _abs(root, found.annotations), (found,))
    candidates = [c for c in (probes[f](root, survey) for f in ORDER) if c is not None]
    # A COCO file found only by content (no COCO name or place) may be a side file — an export,
    # a stats dump — while per-image annotation files describe every image: it comes last.
    candidates.sort(key=lambda c: c.format == "coco" and c.annotations is not None)
    if not candidates:
        _unsupported(root)
        fail("no known annotation format found", root,
             fix="expected COCO JSON, YOLO labels, Pascal VOC XML, labelme JSON or PNG masks; "
                 "pass --format and --annotations to say where they are")
    chosen = candidates[0]
    description = chosen.description
    if len(candidates) > 1:
        others = "; ".join(f"{c.description} (to use it: {c.hint()})" for c in candidates[1:])
        description += f" — chosen over: {others}"
    return Detection(chosen.format, description, _abs(root, chosen.annotations), tuple(candidates))


def _abs(root: Path, annotations: str | None) -> Path | None:
    return None if annotations is None else root / annotations


def _detect_path(root: Path, ann: Path) -> Detection:
    shown = rel(ann, root)
    if ann.is_file():
        suffix = ann.suffix.lower()
        if suffix == ".json":
            kind = sniff_json(ann)
            if kind in ("labelme", "coco"):
                return Detection(kind, f"{'labelme' if kind == 'labelme' else 'COCO'}: {shown}")
        if suffix == ".xml":
            kind = sniff_xml(ann)
            if kind == "labelme-xml":
                fail("this looks like MIT LabelMe XML, which LensVault does not import", shown,
                     fix="convert it to COCO, YOLO, Pascal VOC, labelme or PNG masks first", code="unsupported-format")
            return Detection("voc", f"Pascal VOC: {shown}")
        if suffix in {".yaml", ".yml"}:
            return Detection("yolo", f"YOLO: {shown}")
        fail("cannot tell the annotation format of this file", shown,
             fix="pass --format coco|yolo|voc|labelme|masks")
    survey = Survey.of(ann)
    if survey.where("xml", sniff_xml, "voc"):
        return Detection("voc", f"Pascal VOC: {shown}/")
    if any(f.txt for f in survey.folders):
        return Detection("yolo", f"YOLO: labels in {shown}/")
    if any(f.png for f in survey.folders):
        return Detection("masks", f"segmentation masks: {shown}/")
    if survey.where("json", sniff_json, "labelme"):
        return Detection("labelme", f"labelme: {shown}/")
    if survey.where("json", sniff_json, "coco"):
        return Detection("coco", f"COCO: {shown}/")
    fail("cannot tell the annotation format of this folder", shown, fix="pass --format")


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _coco(root: Path, survey: Survey) -> Candidate | None:
    from lensvault.annotations.importers import coco

    files = [p for p, _ in coco.find_files(root)]
    annotations = None
    if not files:
        # Any JSON of any name whose head says COCO, outside labelme folders.
        folders = survey.where("json", sniff_json, "coco")
        files = [p for f in folders for p in f.json
                 if not p.name.startswith(tuple(f"{t}_" for t in coco.UNSUPPORTED_TASKS)) and sniff_json(p) == "coco"]
        if not files:
            return None
        parents = sorted({p.parent for p in files})
        mine = [p for p in files if p.parent == parents[0]]
        annotations = rel(mine[0], root) if len(mine) == 1 else rel(parents[0], root)
        # Split folders side by side (``export/train/``, ``export/valid/``): one dataset, every split.
        together = coco.split_folder_files(parents[0].parent) if parents[0] != root else []
        if len(together) > 1 and parents[0] in {p.parent for p in together}:
            mine = together
            annotations = rel(parents[0].parent, root)
        elsewhere = [p for p in files if p.parent != parents[0]]
        files = mine
    else:
        elsewhere = []
    size = sum(p.stat().st_size for p in files)
    names = ", ".join(rel(p, root) for p in files[:5]) + (f" … and {len(files) - 5} more" if len(files) > 5 else "")
    text = f"COCO: {names}" + (f" ({size / 1e6:.1f} MB)" if size > 1e6 else "")
    if elsewhere:
        text += (f" (more COCO JSON elsewhere, e.g. {rel(elsewhere[0], root)}: pass --annotations to "
                 "import those instead)")
    return Candidate("coco", text, len(files), annotations)


def _voc(root: Path, survey: Survey) -> Candidate | None:
    from lensvault.annotations.importers import voc

    found = voc.find_voc(root, survey)
    if found is None:
        return None
    text = f"Pascal VOC: {found.source} ({_count(len(found.xmls), 'XML file')})"
    jpeg = [f.parent / "JPEGImages" for f in found.folders if (f.parent / "JPEGImages").is_dir()]
    if jpeg:
        n_images = sum(len(f.images) for f in survey.folders if f.path == jpeg[0] or jpeg[0] in f.path.parents)
        splits = sorted({s for split_of in found.split_files.values() for s in split_of.values()})
        text += f", {n_images:,} images in {rel(jpeg[0], root)}/, splits: {', '.join(splits) or 'none'}"
    return Candidate("voc", text, len(found.xmls))


def _yolo(root: Path, survey: Survey) -> Candidate | None:
    from lensvault.annotations.importers import yolo

    if any(root.glob("*/labelTxt")) or (root / "labelTxt").is_dir():
        return None  # oriented boxes (DOTA / YOLO-OBB): not ours, reported as unsupported
    n_labels = sum(len(f.txt) for f in survey.folders if _is_label_dir(f.path, root))
    data = yolo.find_yaml(root)
    if data is not None:
        return Candidate("yolo", f"YOLO: {rel(data, root)} ({_count(n_labels, 'label file')})", n_labels)
    if (root / "obj.data").is_file():
        return Candidate("yolo", "YOLO (darknet): obj.data", n_labels)
    names = [n for n in ("obj.names", "classes.txt") if (root / n).is_file()]
    label_dirs = [d for d in ("labels", "Labels", "Annotations", "annotations") if (root / d).is_dir()
                  and next((root / d).rglob("*.txt"), None) is not None and _has_yolo_lines(root / d)]
    if label_dirs and (names or (root / "images").is_dir()):
        n = sum(len(f.txt) for f in survey.folders if f.path == root / label_dirs[0]
                or root / label_dirs[0] in f.path.parents)
        return Candidate("yolo", f"YOLO: {label_dirs[0]}/ ({_count(n, 'label file')})"
                         + (f" with {names[0]}" if names else ""), n)
    return None


def _is_label_dir(path: Path, root: Path) -> bool:
    return any(part.lower() in {"labels", "obj_train_data"} for part in path.relative_to(root).parts)


def _has_yolo_lines(folder: Path) -> bool:
    """Most sampled .txt files start with a ``class x y …`` line (or are empty: negatives).
    A few broken files still make a YOLO folder (the importer reports them by line)."""
    votes = {True: 0, False: 0}
    for p in sorted(folder.rglob("*.txt"))[:20]:
        head = read_head(p, 4096)  # regular files only: a pipe named x.txt would block
        first = next((line.split() for line in head.decode("utf-8", "replace").splitlines() if line.strip()), None)
        if first is None:
            continue
        try:
            int(first[0])
            [float(v) for v in first[1:]]
            votes[len(first) >= 5] += 1
        except ValueError:
            votes[False] += 1
    return votes[True] >= votes[False]


def _masks(root: Path, survey: Survey) -> Candidate | None:
    from lensvault.annotations.importers import masks

    layout = masks.find_masks(root)
    if layout is None:
        return None
    n = sum(1 for _ in layout.class_dir.rglob("*.png")) if layout.class_dir else 0
    n_obj = sum(1 for _ in layout.object_dir.rglob("*.png")) if layout.object_dir else 0
    parts = []
    if layout.class_dir:
        parts.append(f"{rel(layout.class_dir, root)}/ ({_count(n, 'PNG file')})")
    if layout.object_dir:
        parts.append(f"instances in {rel(layout.object_dir, root)}/ ({_count(n_obj, 'PNG file')})")
    return Candidate("masks", f"segmentation masks: {', '.join(parts)}", n + n_obj)


def _labelme(root: Path, survey: Survey) -> Candidate | None:
    folders = survey.where("json", sniff_json, "labelme")
    if not folders:
        return None
    n = sum(len(f.json) for f in folders)
    where = ", ".join(f"{rel(f.path, root)}/" if f.path != root else "the root folder" for f in folders[:5])
    if len(folders) > 5:
        where += f" … and {len(folders) - 5} more"
    return Candidate("labelme", f"labelme: {_count(n, 'JSON file')} in {where}", n)


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
