"""What every importer returns before validation turns it into an AnnotationSet."""

from __future__ import annotations

from collections.abc import Callable
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


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"
