"""A compact, JSON-able record of what a version changed, stored with it and shown by ``dataset log``.

The full ``AnnotationDiff`` can list every box of a large re-labelling; the changelog keeps
counts, the class-map changes (always complete: they decide MAJOR bumps) and a few examples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lensvault.datasets.annotation_diff import AnnotationDiff

__all__ = ["changelog_from_diff", "changelog_lines"]


def changelog_from_diff(diff: AnnotationDiff, *, examples: int = 5) -> dict[str, Any]:
    from lensvault.datasets.bump import bump_reasons, required_bump

    im, ann = diff.images, diff.annotations
    counts = {
        "images_a": im.count_a,
        "images_b": im.count_b,
        "images_added": len(im.added),
        "images_removed": len(im.removed),
        "images_reencoded": len(im.reencoded),
        "images_resized": len(im.resized),
        "images_reoriented": len(im.reoriented),
        "images_retagged": len(im.retagged),
        "images_split_moved": len(diff.split_moves),
        "boxes_moved": len(ann.moved),
        "boxes_relabeled": len(ann.relabeled),
        "boxes_added": len(ann.added),
        "boxes_removed": len(ann.removed),
        "boxes_attributes_changed": len(ann.attributes_changed),
        "boxes_unchanged": ann.unchanged,
        "boxes_on_added_images": ann.on_added_images,
        "boxes_on_removed_images": ann.on_removed_images,
        "images_with_box_changes": ann.images_changed,
    }
    classes = diff.classes.to_dict()
    classes.pop("unchanged")
    return {
        "from": diff.a,
        "to": diff.b,
        "summary": diff.summary(),
        "suggested_bump": required_bump(diff),
        "reasons": [{"bump": kind, "reason": text} for kind, text in bump_reasons(diff)],
        "counts": counts,
        "classes": classes,
        "annotation_kinds": {"from": list(ann.kinds_a), "to": list(ann.kinds_b)},
        # The counts keep their "boxes_" names (manifests are frozen); they count annotations of
        # every kind, and "unit" says what they were here (box, mask, polygon, …).
        "unit": ann.unit,
        "split_moves": diff.split_move_counts,
        "images_added_by_split": dict(im.added_by_split),
        "images_removed_by_split": dict(im.removed_by_split),
        "per_class": {name: {"from": c["a"], "to": c["b"], "delta": c["delta"]}
                      for name, c in diff.per_class.items() if c["delta"] or c["a"] != c["b"]},
        "examples": {
            "boxes": {cat: [x.to_dict() for x in getattr(ann, cat)[:examples]]
                      for cat in ann.CATEGORIES if getattr(ann, cat)},
            "images_added": list(im.added[:examples]),
            "images_removed": list(im.removed[:examples]),
            "split_moves": [m.to_dict() for m in diff.split_moves[:examples]],
        },
    }


def changelog_lines(changelog: dict[str, Any]) -> list[str]:
    """Human-readable lines for ``dataset log``: summary, then per-class deltas."""
    lines = [changelog["summary"]]
    deltas = [f"{name} {c['delta']:+d}" for name, c in changelog.get("per_class", {}).items() if c["delta"]]
    if deltas:
        lines.append("per class: " + ", ".join(deltas))
    return lines
