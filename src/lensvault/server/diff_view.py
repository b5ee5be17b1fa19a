"""What the diff page and the HTML report draw: the changed images of two versions, each with the
marks of its before and after overlays (added, removed, moved, relabeled, attributes changed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["changed_images"]


def changed_images(vault: Vault, ra: str, rb: str, d: dict, start: int, stop: int) -> tuple[list[dict], int]:
    """The changed images ``start:stop`` (by path) of the diff ``d`` of RA and RB, each with the
    marks of its before and after overlays; and how many images changed in all."""
    by_image: dict[str, list[dict]] = {}
    for category in ("moved", "relabeled", "added", "removed", "attributes_changed"):
        for c in d["annotations"][category]:
            by_image.setdefault(c["image"], []).append(c)
    paths = sorted(by_image)
    total = len(paths)
    paths = paths[start:stop]
    before = vault.images_at(ra, paths).items
    after = vault.images_at(rb, paths).items
    out = []
    for p in paths:
        marks_a, marks_b = [], []
        for c in by_image[p]:
            kind = c["change"]
            old = f'{c["old_class"]}' if c["old_class"] else ""
            new = f'{c["new_class"]}' if c["new_class"] else ""
            if kind == "added":
                marks_b.append({"bbox": c["new_bbox"], "change": kind, "label": f"{new} (added)", "short": f"+{new}",
                                "index": c["new_index"]})
            elif kind == "removed":
                marks_a.append({"bbox": c["old_bbox"], "change": kind, "label": f"{old} (removed)", "short": f"−{old}",
                                "index": c["old_index"]})
            else:
                also = [f for f in c.get("changed") or [] if f not in ("class", "bbox")]
                moved_too = kind == "relabeled" and "bbox" in (c.get("changed") or [])
                label = {"moved": f"{new} (moved, IoU {c.get('iou', '')}{'; ' + ', '.join(also) + ' changed' if also else ''})",
                         "relabeled": f"{old} → {new} (relabeled{', moved' if moved_too else ''}"
                                      f"{'; ' + ', '.join(also) + ' changed' if also else ''})",
                         "attributes_changed": f"{new} ({', '.join(c.get('changed') or ['attributes'])} changed)"}[kind]
                short = {"moved": "moved", "relabeled": f"{old}→{new}", "attributes_changed": f"{new} *"}[kind]
                marks_a.append({"bbox": c["old_bbox"], "change": kind, "label": label, "short": short,
                                "index": c["old_index"]})
                marks_b.append({"bbox": c["new_bbox"], "change": kind, "label": label, "short": short,
                                "index": c["new_index"]})
                if kind == "moved" or moved_too:  # where it was, dashed, on the after side too
                    marks_b.append({"bbox": c["old_bbox"], "change": kind, "label": f"{new} (was here)", "ghost": True})
        out.append({"path": p, "before": before.get(p), "after": after.get(p), "marks_a": marks_a,
                    "marks_b": marks_b, "changes": by_image[p]})
    return out, total
