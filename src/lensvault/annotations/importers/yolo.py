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

from pathlib import Path

from lensvault.annotations._common import (IMAGE_SUFFIXES, fail, find_images, image_info,
                                           normalize_split, read_class_names, read_yaml, rel)
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
        try:
            head = p.read_text(encoding="utf-8", errors="replace")[:65536]
        except OSError:
            continue
        if "names" in head:
            return p
    return None


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    findings: list[Finding] = []
    yaml_path = annotations if annotations is not None and annotations.suffix in {".yaml", ".yml"} else None
    if yaml_path is None and annotations is None:
        yaml_path = find_yaml(root)
    config: dict = {}
    if yaml_path is not None:
        config = read_yaml(yaml_path) or {}
        if not isinstance(config, dict):
            fail("data.yaml is not a mapping", rel(yaml_path, root), fix="write `names:` and `train:` keys")
    names = _names(root, config, yaml_path, classes)
    kpt_shape = config.get("kpt_shape")
    split_images, source = _split_images(root, config, yaml_path, annotations, findings)

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
            _read_label(label, rel(label, root), key, width, height, kpt_shape, anns, findings, counts)

    if names is None:
        ids = sorted(set(anns.class_id))
        classmap = ClassMap(tuple(ids), tuple(str(i) for i in ids))
    else:
        classmap = ClassMap.from_names(names)
    splits = {}
    for s in images.split:
        splits[s] = splits.get(s, 0) + 1
    split_text = ", ".join(f"{s} {n}" for s, n in splits.items() if s) or "no splits"
    description = (f"YOLO: {source}, {plural(len(images), 'image')} ({split_text}), "
                   f"{plural(len(classmap), 'class').replace('classs', 'classes')}, "
                   f"{plural(counts['bbox'], 'box').replace('boxs', 'boxes')}, "
                   f"{plural(counts['polygon'], 'polygon')}"
                   + (f", {counts['keypoints']:,} poses" if counts["keypoints"] else ""))
    return Imported(images, anns, classmap, description, findings, image_files)


def _names(root: Path, config: dict, yaml_path: Path | None, classes: Path | None) -> list[str] | None:
    if classes is not None:
        return read_class_names(classes)
    names = config.get("names")
    if isinstance(names, dict):
        try:
            order = sorted(names, key=int)
        except (TypeError, ValueError):
            fail("`names` keys must be integer class ids", rel(yaml_path, root), fix="write `names: {0: cat, 1: dog}`")
        if [int(k) for k in order] != list(range(len(order))):
            fail(f"`names` ids must be 0..{len(order) - 1} without gaps, got {order}", rel(yaml_path, root),
                 fix="number YOLO classes from 0 without gaps")
        return [str(names[k]) for k in order]
    if isinstance(names, list):
        return [str(n) for n in names]
    if names is not None:
        fail("`names` must be a list or an id → name mapping", rel(yaml_path, root),
             fix="write `names: [cat, dog]`")
    for name in _NAME_FILES:
        if (root / name).is_file():
            return read_class_names(root / name)
    found = sorted(root.glob("*.names"))
    if found:
        return read_class_names(found[0])
    if isinstance(config.get("nc"), int):
        return [str(i) for i in range(config["nc"])]
    return None


def _split_images(root, config, yaml_path, annotations, findings):
    """[(image path, split)] and a note on where splits came from."""
    if annotations is not None and annotations.is_dir():
        return [(p, None) for p in find_images(root)], rel(annotations, root)
    listed: dict[str, list[str]] = {}
    if yaml_path is not None:
        base = yaml_path.parent
        if config.get("path"):
            p = Path(str(config["path"]))
            base = p if p.is_absolute() else yaml_path.parent / p
            if not base.is_dir():
                base = yaml_path.parent
        for key, value in config.items():
            # Beyond train/val/test, any other key naming an images/ folder is a split
            # (our exporter writes e.g. `trainval: images/trainval`).
            custom = isinstance(value, str) and value.startswith("images/") and key not in _CONFIG_KEYS
            if value and (key in SPLIT_KEYS or custom) and isinstance(value, (str, list)):
                listed.setdefault(normalize_split(key), []).extend(
                    [value] if isinstance(value, str) else [str(v) for v in value])
        source = rel(yaml_path, root)
    else:
        base, source = root, ""
        obj_data = root / "obj.data"
        if obj_data.is_file():
            source = "obj.data"
            for line in obj_data.read_text(encoding="utf-8").splitlines():
                k, _, v = line.partition("=")
                if k.strip() in SPLIT_KEYS and v.strip():
                    listed.setdefault(normalize_split(k.strip()), []).append(v.strip())

    resolved: dict[str, list[Path]] = {}
    for split, entries in listed.items():
        for entry in entries:
            target = _resolve(entry, base, root)
            if target is None:
                findings.append(Finding("warning", "split-path-missing",
                                        f"{split} path {entry!r} does not exist; looking for the usual layout",
                                        source, f"key {split}"))
                continue
            resolved.setdefault(split, []).append(target)
    if not resolved:
        resolved = _layout_splits(root)
        source = source or ("images/<split>/" if resolved else "")
    if not resolved:
        return [(p, None) for p in find_images(root)], source or "images below the root"

    # A folder listed under two splits (our unsplit export writes train and val to the
    # same folder, as Ultralytics needs both keys) says nothing about split membership.
    owners: dict[Path, set[str]] = {}
    for split, targets in resolved.items():
        for t in targets:
            owners.setdefault(t, set()).add(split)
    out: list[tuple[Path, str | None]] = []
    for target in owners:
        split = next(iter(owners[target])) if len(owners[target]) == 1 else None
        images = _list_file(target, root) if target.is_file() else find_images(target)
        out += [(p, split) for p in images]
    return out, source


def _layout_splits(root: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
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


def _resolve(entry: str, base: Path, root: Path) -> Path | None:
    p = Path(entry)
    if p.is_absolute():
        return p if p.exists() else None
    tries = [base / p, root / p]
    stripped = Path(*[part for part in p.parts if part not in {"..", "."}]) if p.parts else p
    tries += [base / stripped, root / stripped]
    if stripped.parts and stripped.parts[0] == "data":  # darknet paths start at its cwd
        tries.append(root / Path(*stripped.parts[1:]))
    raw_alias = {"valid": "val", "val": "valid"}
    if stripped.parts and stripped.parts[0] in raw_alias:
        tries.append(root / raw_alias[stripped.parts[0]] / Path(*stripped.parts[1:]))
    for t in tries:
        if t.exists():
            return t.resolve() if not t.is_relative_to(root) else t
    return None


def _list_file(path: Path, root: Path) -> list[Path]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        target = _resolve(entry, path.parent, root)
        if target is None or target.suffix.lower() not in IMAGE_SUFFIXES:
            fail(f"listed image {entry!r} does not exist", rel(path, root), f"line {n}",
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


def _read_label(path: Path, shown: str, key: str, width: int, height: int, kpt_shape,
                anns: AnnotationColumns, findings: list[Finding], counts: dict) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read label file: {e}", shown, fix="check the file is readable UTF-8 text")
    fid = anns.file_id(shown)
    n_pose = 5 + int(kpt_shape[0]) * int(kpt_shape[1]) if kpt_shape else None
    kdim = int(kpt_shape[1]) if kpt_shape else 0
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
            fail(f"a YOLO line has non-numeric values: {line.strip()!r}", shown, f"line {lineno}",
                 fix="the first value is an integer class id, the rest are numbers")
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
                kp = []
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
