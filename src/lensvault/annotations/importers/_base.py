"""What every importer returns before validation turns it into an AnnotationSet."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lensvault.annotations.model import AnnotationColumns, ClassMap, EmbeddedImage, Finding, ImageColumns


@dataclass
class Imported:
    images: ImageColumns
    annotations: AnnotationColumns
    classes: ClassMap
    description: str
    findings: list[Finding] = field(default_factory=list)
    # Which file declared each image, for findings about the image as a whole.
    image_files: dict[str, str] = field(default_factory=dict)
    # (file, location) of annotation row i; defaults to the columns' own origin record.
    origin: Callable[[int], tuple[str, str]] | None = None
    # True when the importer numbered the classes itself (names only, no --classes): a new
    # version then keeps its parent's ids for the same names (lensvault.datasets.class_map).
    ids_from_names: bool = False
    # Images that exist only inside an annotation file (labelme imageData), by image key.
    embedded: dict[str, EmbeddedImage] = field(default_factory=dict)
    # Segmentation masks: {"background_class": id or None, "ignore_index": n} (importers.masks).
    masks: dict[str, int | None] | None = None


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def named_classes(given: tuple[list[int], list[str]] | None, seen: Iterable[str], source: str) -> tuple[ClassMap, list[Finding]]:
    """The class map of a names-only import (VOC, labelme): the given ``(ids, names)`` —
    ``--classes`` or a labelmap, ids kept as given, gaps included — plus names the files use
    that the list lacks (ids after the highest, with an ``unknown-class`` warning); without
    a list, the names seen, sorted, numbered from 0."""
    if given is None:
        return ClassMap.from_names(sorted(seen)), []
    ids, names = list(given[0]), list(given[1])
    findings = []
    next_id = max(ids, default=-1) + 1
    for name in seen:
        if name not in names:
            findings.append(Finding("warning", "unknown-class",
                                    f"class {name!r} is not in the class list; given id {next_id}", source,
                                    "class list"))
            ids.append(next_id)
            names.append(name)
            next_id += 1
    return ClassMap(tuple(ids), tuple(names)), findings
