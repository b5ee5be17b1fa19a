"""What changed between two vision dataset versions: images, boxes, classes, splits.

One step per module, in the order ``diff_vision`` runs them:

- ``classes``: the class correspondence. Boxes are compared through it, not through raw ids: a
  class that keeps its name (even under a new id) or keeps its id under a new name is the same
  class, so a rename or reindex is reported once and not as thousands of relabeled boxes.
- ``images``: images by path: added, removed, re-encoded, resized, re-oriented, re-tagged, moved
  to another split.
- ``alignment``: boxes of the images in both versions, aligned and compared column by column in
  Arrow/numpy; only images with some difference go to ``matching``, per-box matching in Python,
  so diffing 200,000 boxes with a few percent edited costs little more than reading them.
- ``class_counts``: box counts per class and split on each side.
- ``changes``: the result types, their JSON and the one-sentence summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.datasets.annotation_diff.alignment import compare_annotations
from lensvault.datasets.annotation_diff.changes import NO_SPLIT as NO_SPLIT  # importable here, as before the split
from lensvault.datasets.annotation_diff.changes import (
    AnnotationChanges,
    AnnotationDiff,
    BoxChange,
    ClassChanges,
    ImageChanges,
    SplitMove,
)
from lensvault.datasets.annotation_diff.class_counts import per_class_counts
from lensvault.datasets.annotation_diff.classes import compare_classes
from lensvault.datasets.annotation_diff.images import compare_images

if TYPE_CHECKING:
    from lensvault.datasets.vision_tables import VisionTables

__all__ = [
    "AnnotationChanges",
    "AnnotationDiff",
    "BoxChange",
    "ClassChanges",
    "ImageChanges",
    "SplitMove",
    "diff_vision",
]


def diff_vision(a: VisionTables, b: VisionTables, *, iou_threshold: float = 0.5) -> AnnotationDiff:
    """Compare two ``VisionTables`` (ref, images, annotations, classes)."""
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    classes, code_of_a, code_of_b = compare_classes(a.classes, b.classes)
    images, common, split_moves = compare_images(a.images, b.images)
    annotations = compare_annotations(a, b, common, code_of_a, code_of_b, iou_threshold)
    return AnnotationDiff(str(a.ref), str(b.ref), images, annotations, classes,
                          tuple(split_moves), per_class_counts(a, b), iou_threshold)
