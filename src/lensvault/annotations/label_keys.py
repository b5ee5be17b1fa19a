"""Image-level labels held in a field of a detection/segmentation format, read when the user names
the field (``--label-key KEY``): a COCO image's ``KEY`` (a top-level field of the image entry, or
a key of its ``attributes``/``tags`` object), labelme's file ``flags`` (``--label-key flags``).

A field's value is a class name, a list of names, or an object of ``{name: true|false}`` (labelme
flags, CVAT checkbox attributes): the true ones are labels. Null or missing: no label. Anything
else is a located ``bad-value`` error. The field becomes label rows (``kind = "label"``, see
importers/image_labels.py) and leaves the image's tags, so a label is never held twice.
"""

from __future__ import annotations

from typing import Any

from lensvault.annotations._common import describe, fail
from lensvault.annotations.model import ClassMap, Finding

__all__ = ["LABEL_KEY_FORMATS", "add_label_classes", "label_names"]

# The importers that read image labels from a named field, and what that field may be.
LABEL_KEY_FORMATS = {"coco": "any field of the image entries", "labelme": "flags"}


def label_names(value: Any, shown: str, where: str) -> list[str]:
    """The class names a label field holds (see the module docstring), in order, each once."""
    fix = 'write the field as a class name, a list of names, or {"name": true, …}'
    if value is None:
        return []
    if isinstance(value, str):
        names = [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = list(value)
    elif isinstance(value, dict) and all(isinstance(v, bool) for v in value.values()):
        names = [k for k, v in value.items() if v]
    else:
        fail(f"image label field is {describe(value)}, not a class name, a list of names or "
             "an object of true/false", shown, where, fix=fix, code="bad-value")
    out = [n.strip() for n in names]
    if any(not n for n in out):
        fail("image label field holds an empty class name", shown, where, fix=fix, code="bad-value")
    return list(dict.fromkeys(out))


def add_label_classes(classes: ClassMap, names: list[str], source: str) -> tuple[ClassMap, list[Finding]]:
    """``classes`` plus label names it lacks (ids after its highest, sorted by name), each with an
    ``unknown-class`` warning: a COCO file's categories fix its ids, a label outside them gets one."""
    missing = sorted({n for n in names if n not in classes.names})
    if not missing:
        return classes, []
    start = max(classes.ids, default=-1) + 1
    findings = [Finding("warning", "unknown-class",
                        f"image label {n!r} is not a category; given id {start + i}", source, "categories")
                for i, n in enumerate(missing)]
    return ClassMap(classes.ids + tuple(range(start, start + len(missing))), classes.names + tuple(missing),
                    classes.keypoints), findings
