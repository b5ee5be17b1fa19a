"""Image-level labels (classification): the ImageFolder layout and label files.

* **ImageFolder** (``--format imagefolder``): ``CLASS/img.jpg``, or ``SPLIT/CLASS/img.jpg`` under
  ``train/``, ``val/`` (``valid``, ``validation``), ``test/``. The class is the folder name.
* **A label file** (``--format labels``, the file by ``--annotations``, else ``labels.csv`` /
  ``labels.json`` at the root): CSV ``path,label[,split]`` (a header line naming ``path`` and
  ``label``; a multi-label image has several labels joined by ``;`` or several rows) or JSON
  ``[{"path": …, "label": "cat" | ["cat", "dog"], "split": …}]`` or ``{"path": label, …}``. Paths are
  relative to the dataset root. Images below the root the file does not name are imported
  unlabeled (a warning counts them).

A label is one row of the annotations table with ``kind = "label"`` covering the whole image
(``x = y = 0``, ``w``/``h`` the image's size): the class map, the diff (a changed label is a
relabel, PATCH), the bump rules, ``dataset show`` and ``VisionDataset`` (``target["labels"]``)
treat it as any annotation. Class ids: sorted names from 0 (``--classes`` fixes them), a new
version keeping its parent's ids as VOC and labelme imports do.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from lensvault.annotations._common import fail, find_images, normalize_split, read_class_list, rel
from lensvault.annotations.bad_images import image_info
from lensvault.annotations.importers._base import Imported, named_classes, plural
from lensvault.annotations.model import AnnotationColumns, Finding, ImageColumns

__all__ = ["LABEL_KIND", "load_imagefolder", "load_label_file"]

LABEL_KIND = "label"
_SPLITS = {"train", "val", "valid", "validation", "test", "testing", "training"}
_LABEL_FILES = ("labels.csv", "labels.json")
_MAX_LABEL_FILE = 256 * 1024 * 1024


def _build(root: Path, labelled: list[tuple[Path, str | None, list[str]]], classes: Path | None,
           description: str, findings: list[Finding], source: str) -> Imported:
    given = read_class_list(classes) if classes is not None else None
    seen = sorted({name for _, _, names in labelled for name in names})
    class_map, class_findings = named_classes(given, seen, str(classes or source))
    images = ImageColumns()
    anns = AnnotationColumns()
    image_files: dict[str, str] = {}
    fid = anns.file_id(source)
    for path, split, names in labelled:
        key = rel(path, root)
        width, height, orientation = image_info(path, key)
        images.add(key, width, height, orientation=orientation, split=split)
        image_files[key] = source
        for name in dict.fromkeys(names):  # a label named twice is one label
            anns.add(key, class_map.id_of(name), 0.0, 0.0, float(width), float(height), kind=LABEL_KIND,
                     origin=(fid, key))
    return Imported(images, anns, class_map, description, findings + class_findings, image_files=image_files,
                    ids_from_names=classes is None)


def load_imagefolder(root: Path, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    base = Path(annotations) if annotations is not None else root
    labelled: list[tuple[Path, str | None, list[str]]] = []
    loose: list[str] = []
    for path in find_images(base):
        parts = path.relative_to(base).parts
        if len(parts) >= 3 and parts[0].lower() in _SPLITS:
            labelled.append((path, normalize_split(parts[0]), [parts[1]]))
        elif len(parts) >= 2 and parts[0].lower() not in _SPLITS:
            labelled.append((path, None, [parts[0]]))
        else:
            loose.append(rel(path, root))
    if not labelled:
        fail("no CLASS/image folders found", base,
             fix="lay images out as CLASS/img.jpg, or train/CLASS/img.jpg, val/CLASS/…, test/CLASS/…")
    findings = []
    if loose:
        findings.append(Finding("warning", "unlabeled-image",
                                f"{plural(len(loose), 'image')} outside a class folder, left out: "
                                + ", ".join(loose[:5]) + (f" … and {len(loose) - 5} more" if len(loose) > 5 else ""),
                                str(base)))
    n_classes = len({names[0] for _, _, names in labelled})
    description = f"ImageFolder: {plural(len(labelled), 'image')} in {plural(n_classes, 'class folder')}"
    return _build(root, labelled, classes, description, findings, str(base))


def load_label_file(root: Path, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    path = Path(annotations) if annotations is not None else next(
        (root / n for n in _LABEL_FILES if (root / n).is_file()), None)
    if path is None:
        fail("no label file", root, fix="pass --annotations labels.csv (path,label) or labels.json")
    shown = rel(path, root) if path.is_relative_to(root) else str(path)
    if path.stat().st_size > _MAX_LABEL_FILE:
        fail("the label file is too big to be one", shown, fix="write one path,label row per image")
    text = path.read_text(encoding="utf-8-sig")
    rows = _json_rows(text, shown) if path.suffix.lower() == ".json" else _csv_rows(text, shown)
    by_path: dict[str, tuple[str | None, list[str], str]] = {}
    problems: list[str] = []
    for loc, key, labels, split in rows:
        image = root / key
        if not image.is_file():
            problems.append(f"{loc}: {key!r} is not an image below the root")
            continue
        k = rel(image, root)
        prev = by_path.get(k)
        if prev is not None and prev[0] != split:
            problems.append(f"{loc}: {key!r} is in split {prev[0]!r} at {prev[2]} and {split!r} here")
            continue
        by_path[k] = (split, (prev[1] if prev else []) + labels, prev[2] if prev else loc)
    if problems:
        fail(f"{len(problems)} label row(s) cannot be used: " + "; ".join(problems[:5])
             + (f" … and {len(problems) - 5} more" if len(problems) > 5 else ""), shown,
             fix="name images by their path relative to the dataset root, one split per image")
    labelled = [(root / k, split, labels) for k, (split, labels, _) in sorted(by_path.items())]
    findings = []
    unlabeled = [root / rel(p, root) for p in find_images(root) if rel(p, root) not in by_path]
    if unlabeled:
        findings.append(Finding("warning", "unlabeled-image",
                                f"{plural(len(unlabeled), 'image')} the label file does not name, imported unlabeled",
                                shown))
        labelled += [(p, None, []) for p in unlabeled]
        labelled.sort(key=lambda item: item[0])
    n_labels = sum(len(set(x[2])) for x in labelled)
    description = f"image labels: {shown} ({plural(n_labels, 'label')} on {plural(len(by_path), 'image')})"
    return _build(root, labelled, classes, description, findings, shown)


def _labels(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def _csv_rows(text: str, shown: str) -> list[tuple[str, str, list[str], str | None]]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if "path" not in header or "label" not in header:
        fail(f"the CSV header is {','.join(header)!r}, not path,label", shown, "line 1",
             fix="start the file with a header line: path,label (and ,split if it has splits)")
    out: list[tuple[str, str, list[str], str | None]] = []
    for n, row in enumerate(reader, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            fail(f"line has {len(row)} fields, the header {len(header)}", shown, f"line {n}",
                 fix="one path,label per line (quote a path that contains a comma)")
        cells = dict(zip(header, (c.strip() for c in row)))
        labels = _labels(cells["label"]) or []
        out.append((f"line {n}", cells["path"], labels, normalize_split(cells.get("split") or None)))
    return out


def _json_rows(text: str, shown: str) -> list[tuple[str, str, list[str], str | None]]:
    try:
        data = json.loads(text)
    except ValueError as e:
        fail(f"not valid JSON: {e}", shown, fix='write [{"path": "a.jpg", "label": "cat"}, …] or {"a.jpg": "cat"}')
    items = list(data.items()) if isinstance(data, dict) else None
    out: list[tuple[str, str, list[str], str | None]] = []
    if items is not None:
        for key, value in items:
            labels = _labels(value)
            if labels is None:
                fail(f"label of {key!r} is {json.dumps(value)[:40]}, not a name or a list of names", shown, key,
                     fix='write {"a.jpg": "cat", "b.jpg": ["cat", "dog"]}')
            out.append((key, key, labels, None))
        return out
    if not isinstance(data, list):
        fail("the label file is neither a list nor an object", shown, fix='write [{"path": "a.jpg", "label": "cat"}]')
    for n, item in enumerate(data):
        labels = _labels(item.get("label", item.get("labels"))) if isinstance(item, dict) else None
        if labels is None or not isinstance(item.get("path"), str):
            fail("entry needs a path and a label (a name or a list of names)", shown, f"[{n}]",
                 fix='write {"path": "a.jpg", "label": "cat"}')
        split = item.get("split")
        out.append((f"[{n}]", item["path"], labels, normalize_split(split) if isinstance(split, str) else None))
    return out
