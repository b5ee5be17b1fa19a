"""Importers: one module per format, each ``load(root, annotations=, classes=) -> Imported``."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from pathlib import Path

from lensvault.annotations._common import fail, rel
from lensvault.annotations.confine import trusting
from lensvault.annotations.importers._base import Imported
from lensvault.annotations.model import AnnotationSet
from lensvault.annotations.validate import raise_errors, raise_if_strict, validate

__all__ = ["FORMATS", "load"]

# format name → module; imported lazily so `--format yolo` never loads pycocotools.
FORMATS = {
    "coco": "lensvault.annotations.importers.coco",
    "yolo": "lensvault.annotations.importers.yolo",
    "voc": "lensvault.annotations.importers.voc",
    "labelme": "lensvault.annotations.importers.labelme",
    "masks": "lensvault.annotations.importers.masks",
    # Image-level labels (classification); named, never auto-detected: a folder of class folders
    # is also a plain folder of images.
    "imagefolder": "lensvault.annotations.importers.imagefolder",
    "labels": "lensvault.annotations.importers.labels",
}


def load(src: Path, *, format: str = "auto", annotations: Path | None = None,
         classes: Path | None = None, strict: bool = False, on_bad_image: str | None = None,
         trusted: Iterable[str | os.PathLike[str]] = (), label_key: str | None = None,
         ignore_index: int | None = None, background: str | None = None) -> AnnotationSet:
    """Read a dataset folder into the normalized model.

    ``src`` is the dataset root (image paths in the model are relative to it);
    ``annotations`` the annotation file or folder when it is not in the usual place;
    ``classes`` a file fixing class order for formats without ids (one name per line,
    or a YAML/JSON list). Findings are returned as warnings, or raised with ``strict``.
    ``on_bad_image`` (warn, fail, skip; ``strict`` makes the default fail) says what
    happens to images decoders cannot read whole: see ``annotations.bad_images``.
    Nothing is read through a symlink that leads outside ``src``, except into ``trusted``
    folders (the vault passes its object store, which a ``checkout --link symlink`` links to).
    ``label_key`` names the field holding image-level labels in COCO (an image field) or labelme
    (``flags``): see ``annotations.label_keys``. ``ignore_index`` and ``background`` (a class
    name) are the masks format's ignore pixel value and background class (importers.masks).
    """
    with trusting(src, trusted):
        return _load(src, format=format, annotations=annotations, classes=classes, strict=strict,
                     on_bad_image=on_bad_image, label_key=label_key, ignore_index=ignore_index,
                     background=background)


def _load(src: Path, *, format: str, annotations: Path | None, classes: Path | None, strict: bool,
          on_bad_image: str | None, label_key: str | None = None, ignore_index: int | None = None,
          background: str | None = None) -> AnnotationSet:
    from lensvault.annotations.bad_images import collecting, settle

    root = Path(src)
    if not root.is_dir():
        fail("dataset root is not a folder", root, fix="pass the folder that contains the images")
    ann = Path(annotations) if annotations is not None else None
    if ann is not None and not ann.is_absolute() and not ann.exists():
        ann = root / ann
    if ann is not None and not ann.exists():
        fail("annotation path does not exist", ann, fix="check the --annotations path")
    cls = Path(classes) if classes is not None else None
    if cls is not None and not cls.is_file():
        fail("class file does not exist", cls, fix="check the --classes path")
    mode = on_bad_image or ("fail" if strict else "warn")
    fmt = format.lower()
    if fmt not in FORMATS and fmt != "auto":
        fail(f"unknown annotation format {format!r}", root,
             fix=f"use one of: auto, {', '.join(sorted(FORMATS))}")
    detected = ""
    from lensvault.annotations.detect import detect

    if fmt == "auto":
        found = detect(root, annotations=ann)
        fmt, detected = found.format, found.description
        ann = ann or found.annotations
    elif ann is None and fmt == "coco":
        # --format coco alone: a COCO file of any name, found by content like auto does.
        ann = detect(root, format=fmt).annotations
    if annotations is None and ann is not None:
        # Found, not given: it is held to SRC like any file an importer finds itself (the
        # importers trust a path they are handed, as they trust the user's --annotations).
        from lensvault.annotations.confine import SourceFolder

        SourceFolder(root).check_readable(ann, rel(ann, root))
    module = importlib.import_module(FORMATS[fmt])
    extra: dict[str, object] = {}
    if label_key is not None:
        from lensvault.annotations.label_keys import LABEL_KEY_FORMATS

        if fmt not in LABEL_KEY_FORMATS or not label_key.strip():
            fail(f"--label-key {label_key!r} does not apply to {fmt}", root, "--label-key",
                 fix="image labels are read from a named field of coco (an image field) or labelme (flags); "
                     "for other formats use --format labels or imagefolder")
        extra["label_key"] = label_key
    if ignore_index is not None or background is not None:
        if fmt != "masks":
            fail(f"--ignore-index and --background-label are for segmentation masks, not {fmt}", root,
                 "--ignore-index/--background-label", fix="pass them with --format masks, or leave them out")
        extra.update(ignore_index=ignore_index, background=background)
    with collecting() as bad:
        imported: Imported = module.load(root, annotations=ann, classes=cls, **extra)
    origin = imported.origin or imported.annotations.origin
    images, annotations_table, origin, bad_findings, skipped = settle(
        bad, mode, imported.images.table(), imported.annotations.table(), origin, source=str(root))
    description = imported.description or detected
    if detected and " — chosen over: " in detected:
        description += " — chosen over: " + detected.split(" — chosen over: ", 1)[1]
    aset = AnnotationSet(
        images=images,
        annotations=annotations_table,
        classes=imported.classes,
        findings=bad_findings + list(imported.findings),
        source_format=fmt,
        description=description,
        ids_from_names=imported.ids_from_names,
        skipped=skipped,
        embedded={k: v for k, v in imported.embedded.items() if k not in {s["path"] for s in skipped}},
        label_key=label_key,
        masks=imported.masks,
    )
    image_files = imported.image_files  # every importer names the file that declared each image

    def image_origin(key: str) -> str:
        return image_files.get(key, key)

    aset.findings += validate(aset, origin=origin, image_origin=image_origin)
    raise_errors(aset.findings, source=str(root))
    raise_if_strict(aset.findings, strict=strict, source=str(root))
    return aset
