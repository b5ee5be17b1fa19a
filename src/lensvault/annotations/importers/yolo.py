"""YOLO text labels: detect (``class cx cy w h``), segment (``class x1 y1 x2 y2 ...``) and,
when data.yaml has ``kpt_shape``, pose.

Where images and splits come from, first match wins:
1. a ``data.yaml`` (or other YAML with ``names``) whose ``train``/``val``/``test`` name
   image folders or list files (Roboflow writes ``../train/images``; a path that does not
   exist is retried without the leading ``../``);
2. a darknet ``obj.data`` with ``train = data/train.txt`` lists;
3. the Ultralytics layout ``images/<split>/`` + ``labels/<split>/``;
4. every image below the root.
The label of ``.../images/x.jpg`` is ``.../labels/x.txt`` (the Ultralytics rule), else the
``.txt`` beside the image.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Final

from lensvault.annotations._common import (
    IMAGE_SUFFIXES,
    class_names,
    describe,
    fail,
    find_images,
    normalize_split,
    read_class_list,
    read_head,
    read_yaml,
    rel,
)
from lensvault.annotations.bad_images import image_info
from lensvault.annotations.confine import FIX_NAME, Outside, SourceFolder
from lensvault.annotations.fields import INT32_MAX, integer, is_finite_numbers
from lensvault.annotations.importers._base import Imported, plural
from lensvault.annotations.model import AnnotationColumns, ClassMap, Finding, ImageColumns

SPLIT_KEYS = ("train", "val", "valid", "test")
_IMAGE_DIRS = ("images", "Images", "JPEGImages")
_LABEL_DIRS = ("labels", "Labels", "annotations", "Annotations")
_CONFIG_KEYS = frozenset({"path", "names", "nc", "download", "kpt_shape", "flip_idx"})
_NAME_FILES = ("obj.names", "classes.txt", "classes.names", "coco.names")


def find_yaml(root: Path) -> Path | None:
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        if (root / name).is_file():
            return root / name
    for p in sorted(root.glob("*.y*ml")):
        if b"names" in read_head(p):
            return p
    return None


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    findings: list[Finding] = []
    source = SourceFolder(root, annotations)
    yaml_path = annotations if annotations is not None and annotations.suffix in {".yaml", ".yml"} else None
    if yaml_path is None and annotations is None:
        yaml_path = find_yaml(root)
    config: dict[str, Any] = {}  # data.yaml
    shown_yaml = ""
    if yaml_path is not None:
        shown_yaml = rel(yaml_path, root)
        source.check_readable(yaml_path, shown_yaml)
        config = read_yaml(yaml_path, shown_yaml)
        if config is None:
            config = {}
        if not isinstance(config, dict):
            fail(f"data.yaml is {describe(config)}, not a mapping", shown_yaml,
                 fix="write `names:` and `train:` keys", code="bad-value")
    names = _names(root, config, shown_yaml, classes, source)
    kpt_shape = _kpt_shape(config.get("kpt_shape"), shown_yaml)
    split_images, described = _split_images(root, config, yaml_path, annotations, findings, source)

    images = ImageColumns()
    anns = AnnotationColumns()
    image_files: dict[str, str] = {}
    counts = {"bbox": 0, "polygon": 0, "keypoints": 0}
    seen: set[str] = set()
    for image, split in split_images:
        key = rel(image, root)
        if key in seen:
            continue
        seen.add(key)
        width, height, orientation = image_info(image, key)
        images.add(key, width, height, orientation=orientation, split=split)
        label = label_path(image, annotations if annotations is not None and annotations.is_dir() else None)
        image_files[key] = rel(label, root) if label else key
        if label is not None:
            shown = rel(label, root)
            source.check_readable(label, shown)
            _read_label(label, shown, key, width, height, kpt_shape, anns, findings, counts)

    if names is None:
        ids = sorted(anns.class_ids())
        classmap = ClassMap(tuple(ids), tuple(str(i) for i in ids))
    else:
        classmap = ClassMap(tuple(names[0]), tuple(names[1]))
    splits: dict[str | None, int] = {}
    for s in images.split:
        splits[s] = splits.get(s, 0) + 1
    split_text = ", ".join(f"{s} {n}" for s, n in splits.items() if s) or "no splits"
    description = (f"YOLO: {described}, {plural(len(images), 'image')} ({split_text}), "
                   f"{plural(len(classmap), 'class').replace('classs', 'classes')}, "
                   f"{plural(counts['bbox'], 'box').replace('boxs', 'boxes')}, "
                   f"{plural(counts['polygon'], 'polygon')}"
                   + (f", {counts['keypoints']:,} poses" if counts["keypoints"] else ""))
    return Imported(images, anns, classmap, description, findings, image_files)


def _kpt_shape(value: Any, shown: str) -> tuple[int, int] | None:
    if value is None:
        return None
    fix = "write `kpt_shape: [number of keypoints, 2 or 3]`"
    if type(value) is not list or len(value) != 2:
        fail(f"kpt_shape is {describe(value)}, not [keypoints, dimensions]", shown, "kpt_shape", fix=fix,
             code="bad-value")
    n = integer(value[0], shown, "kpt_shape[0]", what="number of keypoints", fix=fix, lo=1, hi=10_000)
    dim = integer(value[1], shown, "kpt_shape[1]", what="keypoint dimensions", fix=fix, lo=2, hi=3)
    return n, dim


# More classes than any real label map; `nc: 10**12` must not build a trillion names.
_MAX_CLASSES = 1_000_000


def _names(root: Path, config: dict[str, Any], shown_yaml: str, classes: Path | None,
           source: SourceFolder) -> tuple[list[int], list[str]] | None:
    """(ids, names): ``--classes`` (ids as given: a label line's first number is its class id),
    data.yaml's ``names`` (0..n-1), a names file, or ``nc``."""
    if classes is not None:
        return read_class_list(classes, labelme_ignore=False)
    names = config.get("names")
    if isinstance(names, (dict, list)):
        return _numbered(class_names(names, shown_yaml, "names"))
    if names is not None:
        fail(f"`names` is {describe(names)}, not a list or an id → name mapping", shown_yaml, "names",
             fix="write `names: [cat, dog]`", code="bad-value")
    found = [root / name for name in _NAME_FILES if (root / name).is_file()] or sorted(root.glob("*.names"))
    if found:
        shown = rel(found[0], root)
        source.check_readable(found[0], shown)
        return _numbered(read_class_list(found[0], shown, labelme_ignore=False)[1])
    nc = config.get("nc")
    if nc is not None:
        nc = integer(nc, shown_yaml, "nc", what="nc (number of classes)", lo=0, hi=_MAX_CLASSES,
                     fix="write `nc:` as the number of classes, or list them in `names:`")
        return _numbered([str(i) for i in range(nc)])
    return None


def _numbered(names: list[str]) -> tuple[list[int], list[str]]:
    return list(range(len(names))), names


def _split_images(root: Path, config: dict[str, Any], yaml_path: Path | None, annotations: Path | None,
                  findings: list[Finding], source: SourceFolder) -> tuple[list[tuple[Path, str | None]], str]:
    """[(image path, split)] and a note on where splits came from."""
    if annotations is not None and annotations.is_dir():
        return [(p, None) for p in find_images(root)], rel(annotations, root)
    # split → [(entry, the file naming it)]; a split key of only spaces normalizes to None.
    listed: dict[str | None, list[tuple[str, str]]] = {}
    if yaml_path is not None:
        shown = rel(yaml_path, root)
        base = _yaml_base(config, yaml_path, shown, findings, source)
        for key, value in config.items():
            # Beyond train/val/test, any other key naming an images/ folder is a split
            # (our exporter writes e.g. `trainval: images/trainval`).
            custom = isinstance(value, str) and value.startswith("images/") and key not in _CONFIG_KEYS
            if not (key in SPLIT_KEYS or custom) or value is None or value == "":
                continue
            entries = [value] if isinstance(value, str) else value
            if type(entries) is not list:
                fail(f"`{key}` is {describe(value)}, not a path or a list of paths", shown, f"key {key}",
                     fix=f"write `{key}: images/{key}` (a folder or a .txt list of images)", code="bad-value")
            for i, entry in enumerate(entries):
                if type(entry) is not str:
                    fail(f"`{key}` entry is {describe(entry)}, not a path", shown, f"key {key}[{i}]",
                         fix=f"write `{key}: images/{key}` (a folder or a .txt list of images)", code="bad-value")
                listed.setdefault(normalize_split(key), []).append((entry, shown))
        described = shown
    else:
        base, described = root, ""
        obj_data = root / "obj.data"
        if obj_data.is_file():
            described = "obj.data"
            source.check_readable(obj_data, "obj.data")
            for line in _read_text(obj_data, "obj.data").splitlines():
                k, _, v = line.partition("=")
                if k.strip() in SPLIT_KEYS and v.strip():
                    listed.setdefault(normalize_split(k.strip()), []).append((v.strip(), "obj.data"))

    resolved: dict[str | None, list[Path]] = {}
    for split, entries in listed.items():
        for entry, shown in entries:
            target = _resolve(entry, base, root, source)
            if target is _OUTSIDE:
                findings.append(Finding("warning", "outside-root",
                                        f"{split} path {entry!r} leads outside the dataset folder; it is not read "
                                        "(looking for the usual layout instead)", shown, f"key {split}"))
                continue
            if target is None:
                findings.append(Finding("warning", "split-path-missing",
                                        f"{split} path {entry!r} does not exist; looking for the usual layout",
                                        shown, f"key {split}"))
                continue
            resolved.setdefault(split, []).append(target)
    if not resolved:
        resolved = _layout_splits(root)
        described = described or ("images/<split>/" if resolved else "")
    if not resolved:
        return [(p, None) for p in find_images(root)], described or "images below the root"

    # A folder listed under two splits (our unsplit export writes train and val to the
    # same folder, as Ultralytics needs both keys) says nothing about split membership.
    owners: dict[Path, set[str | None]] = {}
    for split, targets in resolved.items():
        for t in targets:
            owners.setdefault(t, set()).add(split)
    out: list[tuple[Path, str | None]] = []
    for target in owners:
        split = next(iter(owners[target])) if len(owners[target]) == 1 else None
        images = _list_file(target, root, source) if os.path.isfile(target) else find_images(target)
        out += [(p, split) for p in images]
    return out, described


def _yaml_base(config: dict[str, Any], yaml_path: Path, shown: str, findings: list[Finding], source: SourceFolder) -> Path:
    """The folder split paths are relative to: data.yaml's ``path:`` when it stays inside the
    dataset folder, else data.yaml's own folder. Ultralytics files often carry a ``path:`` from
    the machine that wrote them (``../datasets/coco128``, ``/content/...``): that is reported
    and never looked at."""
    base = yaml_path.parent
    value = config.get("path")
    if value is None or value == "":
        return base
    if type(value) is not str:
        fail(f"`path` is {describe(value)}, not a folder path", shown, "key path",
             fix="write `path:` as the dataset folder (or remove it)", code="bad-value")
    p = Path(value)
    candidate = Path(os.path.normpath(p if p.is_absolute() else base / p))
    if not source.contains(candidate):
        findings.append(Finding("warning", "outside-root",
                                f"`path: {value}` leads outside the dataset folder; it is not read, and split "
                                "paths are taken relative to data.yaml instead", shown, "key path"))
        return base
    return candidate if os.path.isdir(candidate) else base  # os.path: False, not OSError, on a 300-char name


def _layout_splits(root: Path) -> dict[str | None, list[Path]]:
    out: dict[str | None, list[Path]] = {}
    for base in (root / "images", root):
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            split = normalize_split(child.name)
            if child.is_dir() and split in {"train", "val", "test"}:
                target = child / "images" if (child / "images").is_dir() else child
                out.setdefault(split, []).append(target)
        if out:
            return out
    return out


_OUTSIDE: Final = Outside.OUTSIDE  # _resolve's answer for an entry whose every reading leaves the folder


def _resolve(entry: str, base: Path, root: Path, source: SourceFolder) -> Path | Outside | None:
    """The existing path ``entry`` names, None, or _OUTSIDE. Paths that leave the dataset
    folder are never tried (nor their existence checked); the rest are normalized first so
    the file system sees the same path the check saw."""
    p = Path(entry)
    if p.is_absolute():
        tries = [p]
    else:
        tries = [base / p, root / p]
        stripped = Path(*[part for part in p.parts if part not in {"..", "."}]) if p.parts else p
        tries += [base / stripped, root / stripped]
        if stripped.parts and stripped.parts[0] == "data":  # darknet paths start at its cwd
            tries.append(root / Path(*stripped.parts[1:]))
        raw_alias = {"valid": "val", "val": "valid"}
        if stripped.parts and stripped.parts[0] in raw_alias:
            tries.append(root / raw_alias[stripped.parts[0]] / Path(*stripped.parts[1:]))
    inside = [Path(os.path.normpath(t)) for t in tries if source.contains(t)]
    if not inside:
        return _OUTSIDE
    for t in inside:
        if os.path.exists(t):  # os.path: False, not OSError, on a name too long or with a NUL byte
            return t
    return None


def _read_text(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        fail(f"not UTF-8 text: {e.reason}", shown, f"byte {e.start}", fix="save the file as UTF-8",
             code="bad-value")
    except OSError as e:
        fail(f"cannot read file: {e.strerror}", shown, fix="check the file is readable", code="unreadable-file")


def _list_file(path: Path, root: Path, source: SourceFolder) -> list[Path]:
    shown = rel(path, root)
    source.check_readable(path, shown)
    out: list[Path] = []
    for n, line in enumerate(_read_text(path, shown).splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        target = _resolve(entry, path.parent, root, source) if "\0" not in entry else None
        if target is _OUTSIDE:
            fail(f"listed image {entry!r} leads outside the dataset folder; it is not read", shown, f"line {n}",
                 fix=FIX_NAME, code="outside-root")
        if target is None or target.suffix.lower() not in IMAGE_SUFFIXES:
            fail(f"listed image {entry!r} does not exist", shown, f"line {n}",
                 fix="correct the path (relative to the list file or the dataset root) or remove the line")
        out.append(target)
    return out


def label_path(image: Path, label_dir: Path | None = None) -> Path | None:
    if label_dir is not None:
        p = label_dir / (image.stem + ".txt")
        return p if p.is_file() else None
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in _IMAGE_DIRS:
            for lab in _LABEL_DIRS:
                cand = Path(*parts[:i], lab, *parts[i + 1:]).with_suffix(".txt")
                if cand.is_file():
                    return cand
            break
    beside = image.with_suffix(".txt")
    return beside if beside.is_file() else None


def _read_label(path: Path, shown: str, key: str, width: int, height: int, kpt_shape: tuple[int, int] | None,
                anns: AnnotationColumns, findings: list[Finding], counts: dict[str, int]) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read label file: {e}", shown, fix="check the file is readable UTF-8 text")
    fid = anns.file_id(shown)
    n_pose = 5 + kpt_shape[0] * kpt_shape[1] if kpt_shape else None
    kdim = kpt_shape[1] if kpt_shape else 0
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        n = len(parts)
        if not (n == 5 or n == n_pose or (n >= 7 and n % 2 == 1)):
            fail(f"a YOLO line has {n} values; expected 5 (class cx cy w h), or class plus 3 or "
                 f"more x y pairs for a polygon" + (f", or {n_pose} for pose" if n_pose else ""),
                 shown, f"line {lineno}",
                 fix="rewrite the line in YOLO format (predictions with a confidence column are not labels)")
        try:
            cls = int(parts[0])
            values = [float(v) for v in parts[1:]]
        except ValueError:
            fail(f"a YOLO line has non-numeric values: {line.strip()[:200]!r}", shown, f"line {lineno}",
                 fix="the first value is an integer class id, the rest are numbers")
        if not -INT32_MAX - 1 <= cls <= INT32_MAX:
            fail(f"class id {parts[0][:30]} is out of range", shown, f"line {lineno}",
                 fix="class ids are 0..n-1", code="bad-value")
        if not is_finite_numbers(values):
            bad_text = next(v for v in parts[1:] if not math.isfinite(float(v)))
            fail(f"a YOLO line has the value {bad_text!r}, not a finite number", shown, f"line {lineno}",
                 fix="write coordinates as numbers between 0 and 1", code="bad-value")
        geometry = values if n != n_pose else values[:4] + [v for i, v in enumerate(values[4:]) if i % kdim != 2]
        bad = [v for v in geometry if not 0.0 <= v <= 1.0]
        if bad:
            findings.append(Finding("warning", "yolo-value-out-of-range",
                                    f"normalized value(s) {bad[:4]} outside [0, 1] (pixel coordinates "
                                    "instead of normalized ones?)", shown, f"line {lineno}"))
        origin = (fid, f"line {lineno}")
        if n == 5 or n == n_pose:
            cx, cy, bw, bh = values[:4]
            x, y, w, h = (cx - bw / 2) * width, (cy - bh / 2) * height, bw * width, bh * height
            if n == 5:
                anns.add(key, cls, x, y, w, h, origin=origin)
                counts["bbox"] += 1
            else:
                kp: list[float] = []
                for i in range(4, len(values), kdim):
                    kp += [values[i] * width, values[i + 1] * height, values[i + 2] if kdim == 3 else 2.0]
                anns.add(key, cls, x, y, w, h, kind="keypoints", keypoints=kp, origin=origin)
                counts["keypoints"] += 1
        else:
            xs = [v * width for v in values[0::2]]
            ys = [v * height for v in values[1::2]]
            flat = [c for pair in zip(xs, ys) for c in pair]
            x0, y0 = min(xs), min(ys)
            anns.add(key, cls, x0, y0, max(xs) - x0, max(ys) - y0, kind="polygon", polygon=[flat], origin=origin)
            counts["polygon"] += 1
