"""What a diff of two vision versions says: the changed annotations (boxes, masks, …), images, classes and splits, each
result with its ``to_dict`` (the ``--json`` shape) and the one-sentence summary of the whole diff."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

# The split of images that have none, in counts by split and in the summary.
NO_SPLIT = "(none)"

# What one annotation of each kind is called wherever a diff speaks of it: a diff of masks
# that said "box" (the detection path's word) told a segmentation user something false.
KIND_NOUNS = {"bbox": "box", "polygon": "polygon", "rle": "mask", "mask": "mask",
              "keypoints": "keypoints annotation", "label": "image label"}


def kind_noun(kinds: Iterable[str]) -> str:
    """The noun for annotations of ``kinds`` (an iterable of kind names): the kind's own when
    they are all of one, else "annotation"."""
    nouns = {KIND_NOUNS.get(k, "annotation") for k in kinds}
    return nouns.pop() if len(nouns) == 1 else "annotation"


class ResizedImage(TypedDict):
    path: str
    old: list[int]  # [w, h]
    new: list[int]


class ClassEntry(TypedDict):
    id: int
    name: str


class ClassRename(TypedDict):
    id: int
    old: str
    new: str


class ClassReindex(TypedDict):
    name: str
    old_id: int
    new_id: int


@dataclass(frozen=True)
class BoxChange:
    """One annotation that differs. ``change``: added, removed, moved, relabeled, attributes_changed;
    ``kind``: the annotation's kind (the new one's when both exist: a kind change is also in
    ``attributes["kind"]``).

    For a matched pair, ``changed`` names every field that differs besides the class
    ("bbox", "polygon", "difficult", ...) and ``attributes`` maps each differing scalar
    field (kind, iscrowd, difficult, truncated, occluded, attributes) to ``[old, new]``.
    """

    image: str
    change: str
    old_class: str | None = None
    new_class: str | None = None
    old_bbox: tuple[float, float, float, float] | None = None
    new_bbox: tuple[float, float, float, float] | None = None
    iou: float | None = None
    old_index: int | None = None
    new_index: int | None = None
    changed: tuple[str, ...] = ()
    attributes: dict[str, list[Any]] = field(default_factory=dict)
    kind: str = "bbox"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"image": self.image, "change": self.change, "kind": self.kind,
                             "old_class": self.old_class, "new_class": self.new_class,
                             "old_bbox": list(self.old_bbox) if self.old_bbox else None,
                             "new_bbox": list(self.new_bbox) if self.new_bbox else None,
                             "old_index": self.old_index, "new_index": self.new_index}
        if self.iou is not None:
            d["iou"] = round(self.iou, 4)
        if self.changed:
            d["changed"] = list(self.changed)
        if self.attributes:
            d["attributes"] = self.attributes
        return d


@dataclass(frozen=True)
class SplitMove:
    path: str
    from_split: str | None
    to_split: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "from": self.from_split, "to": self.to_split}


@dataclass(frozen=True)
class ImageChanges:
    count_a: int
    count_b: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    reencoded: tuple[str, ...] = ()          # same path, different sha256
    resized: tuple[ResizedImage, ...] = ()
    reoriented: tuple[str, ...] = ()         # EXIF orientation changed
    retagged: tuple[str, ...] = ()           # image tags JSON changed
    added_by_split: dict[str, int] = field(default_factory=dict)
    removed_by_split: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.reencoded or self.resized
                    or self.reoriented or self.retagged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count_a": self.count_a, "count_b": self.count_b,
            "added": list(self.added), "removed": list(self.removed),
            "reencoded": list(self.reencoded), "resized": list(self.resized),
            "reoriented": list(self.reoriented), "retagged": list(self.retagged),
            "added_by_split": dict(self.added_by_split),
            "removed_by_split": dict(self.removed_by_split),
            "counts": {k: len(getattr(self, k)) for k in
                       ("added", "removed", "reencoded", "resized", "reoriented", "retagged")},
        }


@dataclass(frozen=True)
class AnnotationChanges:
    added: tuple[BoxChange, ...] = ()
    removed: tuple[BoxChange, ...] = ()
    moved: tuple[BoxChange, ...] = ()
    relabeled: tuple[BoxChange, ...] = ()
    attributes_changed: tuple[BoxChange, ...] = ()
    unchanged: int = 0
    images_changed: int = 0                  # existing images with any box change
    on_added_images: int = 0                 # boxes that came with added images
    on_removed_images: int = 0               # boxes that left with removed images
    kinds_a: tuple[str, ...] = ()
    kinds_b: tuple[str, ...] = ()

    CATEGORIES = ("moved", "relabeled", "added", "removed", "attributes_changed")

    @property
    def changed_boxes(self) -> int:
        return sum(len(getattr(self, c)) for c in self.CATEGORIES)

    @property
    def kinds_changed(self) -> bool:
        return self.kinds_a != self.kinds_b

    def by_kind(self) -> dict[str, int]:
        """Changed annotations per kind."""
        out: dict[str, int] = {}
        for c in self.CATEGORIES:
            for x in getattr(self, c):
                out[x.kind] = out.get(x.kind, 0) + 1
        return dict(sorted(out.items()))

    @property
    def unit(self) -> str:
        """What the changed annotations are called: "box", "mask", "polygon", "keypoints
        annotation", "image label", or "annotation" when they are of several kinds."""
        return kind_noun(self.by_kind() or (set(self.kinds_a) | set(self.kinds_b)))

    def counts(self) -> dict[str, int]:
        out = {c: len(getattr(self, c)) for c in self.CATEGORIES}
        out.update(unchanged=self.unchanged, images_changed=self.images_changed,
                   on_added_images=self.on_added_images, on_removed_images=self.on_removed_images)
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {c: [x.to_dict() for x in getattr(self, c)] for c in self.CATEGORIES}
        d["counts"] = self.counts()
        d["kinds"] = {"a": list(self.kinds_a), "b": list(self.kinds_b)}
        d["unit"] = self.unit
        d["by_kind"] = self.by_kind()
        return d


@dataclass(frozen=True)
class ClassChanges:
    added: tuple[ClassEntry, ...] = ()
    removed: tuple[ClassEntry, ...] = ()
    renamed: tuple[ClassRename, ...] = ()
    reindexed: tuple[ClassReindex, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.reindexed)

    @property
    def breaks_ids(self) -> bool:
        """True when a consumer's id → name lookup would now give a wrong or missing name."""
        return bool(self.removed or self.renamed or self.reindexed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": list(self.added), "removed": list(self.removed),
                "renamed": list(self.renamed), "reindexed": list(self.reindexed),
                "unchanged": not self.changed}


@dataclass(frozen=True)
class AnnotationDiff:
    a: str
    b: str
    images: ImageChanges
    annotations: AnnotationChanges
    classes: ClassChanges
    split_moves: tuple[SplitMove, ...]
    per_class: dict[str, dict[str, Any]]  # see class_counts.per_class_counts
    iou_threshold: float = 0.5

    @property
    def split_move_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.split_moves:
            key = f"{m.from_split or NO_SPLIT}→{m.to_split or NO_SPLIT}"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def changed(self) -> bool:
        return bool(self.images.changed or self.annotations.changed_boxes or self.classes.changed
                    or self.split_moves or self.annotations.kinds_changed)

    @property
    def suggested_bump(self) -> str | None:
        from lensvault.datasets.bump import required_bump

        return required_bump(self)

    def summary(self) -> str:
        return _summary(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "iou_threshold": self.iou_threshold,
            "images": self.images.to_dict(),
            "annotations": self.annotations.to_dict(),
            "classes": self.classes.to_dict(),
            "split_moves": {"count": len(self.split_moves), "by_move": self.split_move_counts,
                            "items": [m.to_dict() for m in self.split_moves]},
            "per_class": self.per_class,
            "summary": self.summary(),
            "suggested_bump": self.suggested_bump,
        }


# --- the summary ----------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("x") else "s")


def _by_split_text(counts: dict[str, int], preposition: str) -> str:
    if len(counts) == 1:
        (split, _), = counts.items()
        return f" {preposition} {split}" if split != NO_SPLIT else ""
    return " (" + ", ".join(f"{s} {n}" for s, n in counts.items()) + ")"


def _summary(d: AnnotationDiff) -> str:
    """One sentence: boxes, images, splits and annotation types that changed; then the class map
    and the suggested bump."""
    if not d.changed:
        return f"No changes between {d.a} and {d.b}; class map unchanged."
    parts = _box_text(d.annotations) + _image_text(d.images)
    if d.split_moves:
        moves = ", ".join(f"{k} {n}" for k, n in d.split_move_counts.items())
        parts.append(f"{_plural(len(d.split_moves), 'image')} changed split ({moves})")
    ann = d.annotations
    if ann.kinds_changed:
        parts.append(f"annotation types changed from {', '.join(ann.kinds_a) or 'none'} "
                     f"to {', '.join(ann.kinds_b) or 'none'}")
    parts.append(_class_text(d.classes))
    text = ", ".join(parts[:-1]) + ("; " if len(parts) > 1 else "") + parts[-1]
    bump = d.suggested_bump
    return text[0].upper() + text[1:] + "." + (f" Suggested bump: {bump.upper()}." if bump else "")


def _box_text(ann: AnnotationChanges) -> list[str]:
    if not ann.changed_boxes:
        return []
    detail = ", ".join(f"{len(getattr(ann, c))} {c.replace('_', ' ')}" for c in ann.CATEGORIES if getattr(ann, c))
    return [f"{_plural(ann.changed_boxes, ann.unit)} changed in {_plural(ann.images_changed, 'image')} ({detail})"]


def _image_text(im: ImageChanges) -> list[str]:
    parts = []
    if im.added:
        parts.append(f"{_plural(len(im.added), 'image')} added{_by_split_text(im.added_by_split, 'to')}")
    if im.removed:
        parts.append(f"{_plural(len(im.removed), 'image')} removed{_by_split_text(im.removed_by_split, 'from')}")
    for label, items in (("re-encoded", im.reencoded), ("resized", im.resized),
                         ("re-oriented", im.reoriented), ("re-tagged", im.retagged)):
        if items:
            parts.append(f"{_plural(len(items), 'image')} {label}")
    return parts


def _class_text(c: ClassChanges) -> str:
    if not c.changed:
        return "class map unchanged"
    bits = [f"added '{x['name']}'" for x in c.added]
    bits += [f"removed '{x['name']}'" for x in c.removed]
    bits += [f"renamed '{x['old']}' to '{x['new']}' (id {x['id']})" for x in c.renamed]
    bits += [f"reindexed '{x['name']}' from id {x['old_id']} to {x['new_id']}" for x in c.reindexed]
    return "class map changed: " + ", ".join(bits)
