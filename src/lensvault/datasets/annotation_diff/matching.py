"""Boxes matched within one image, for the few images where bulk alignment left boxes over.

Identical boxes pair first (reordering is not a change); then boxes that differ only in
attributes; then, by IoU at or above the threshold, boxes of the same class ("moved") before
boxes of another class ("relabeled"); what is left was removed or added.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, NamedTuple

from lensvault.datasets.annotation_diff.changes import BoxChange
from lensvault.datasets.annotation_diff.classes import class_name

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

    from lensvault.annotations.model import ClassMap

ATTRIBUTE_FIELDS = ("iscrowd", "difficult", "truncated", "occluded", "attributes")
SHAPE_FIELDS = ("kind", "polygon", "rle", "keypoints")
BULKY_FIELDS = ("polygon", "rle", "keypoints")  # named when changed, values not copied


class _Box(NamedTuple):
    index: int  # type: ignore[assignment]  # the box's index field, shadowing tuple.index (never called)
    code: int
    class_id: int
    bbox: tuple[float, float, float, float]
    shape: tuple[Any, ...]  # kind, polygon, rle, keypoints (hashable)
    attrs: tuple[Any, ...]  # ATTRIBUTE_FIELDS values


def _freeze(value: Any) -> Any:  # a column's value, lists made tuples
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def boxes_of(table: pa.Table, rows: npt.NDArray[np.int64], img: npt.NDArray[np.int64], code: npt.NDArray[np.int64]
             ) -> dict[int, list[_Box]]:
    """The boxes at table positions ``rows``, by image (its position among the common paths)."""
    out: dict[int, list[_Box]] = {}
    if not len(rows):
        return out
    sub = table.take(rows)
    col = {name: sub.column(name).to_pylist() for name in
           ("index", "class_id", "x", "y", "w", "h", *SHAPE_FIELDS, *ATTRIBUTE_FIELDS)}
    for name in BULKY_FIELDS:  # lists are not hashable; exact matching hashes shapes
        if any(v is not None for v in col[name]):
            col[name] = [_freeze(v) for v in col[name]]
    bboxes = zip(col["x"], col["y"], col["w"], col["h"])
    shapes = zip(*(col[f] for f in SHAPE_FIELDS))
    attrs = zip(*(col[f] for f in ATTRIBUTE_FIELDS))
    for image, *fields in zip(img[rows].tolist(), col["index"], code[rows].tolist(), col["class_id"],
                              bboxes, shapes, attrs):
        out.setdefault(image, []).append(_Box(*fields))
    return out


def _iou(p: tuple[float, float, float, float], q: tuple[float, float, float, float]) -> float:
    ax, ay, aw, ah = p
    bx, by, bw, bh = q
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    union = aw * ah + bw * bh - inter
    if union <= 0:
        return 1.0 if p == q else 0.0  # degenerate (zero-area) boxes match only themselves
    return inter / union


def _iou_pairs(left_a: list[_Box], left_b: list[_Box], thr: float) -> list[tuple[float, int, int]]:
    """(iou, i, j) for every pair at or above the threshold, best first."""
    if len(left_a) * len(left_b) <= 400:
        pairs = [(v, i, j) for i, p in enumerate(left_a) for j, q in enumerate(left_b)
                 if (v := _iou(p.bbox, q.bbox)) >= thr]
    else:
        pairs = _iou_pairs_numpy(left_a, left_b, thr)
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    return pairs


def _iou_pairs_numpy(left_a: list[_Box], left_b: list[_Box], thr: float) -> list[tuple[float, int, int]]:
    import numpy as np

    A = np.array([p.bbox for p in left_a], dtype=np.float64)
    B = np.array([q.bbox for q in left_b], dtype=np.float64)
    ax2, ay2, bx2, by2 = A[:, 0] + A[:, 2], A[:, 1] + A[:, 3], B[:, 0] + B[:, 2], B[:, 1] + B[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(A[:, 0][:, None], B[:, 0][None]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(A[:, 1][:, None], B[:, 1][None]), 0, None)
    inter = iw * ih
    union = (A[:, 2] * A[:, 3])[:, None] + (B[:, 2] * B[:, 3])[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    degenerate = np.flatnonzero(union.ravel() <= 0)
    for flat in degenerate:
        i, j = divmod(int(flat), len(left_b))
        iou[i, j] = 1.0 if left_a[i].bbox == left_b[j].bbox else 0.0
    ii, jj = np.nonzero(iou >= thr)
    return [(float(iou[i, j]), int(i), int(j)) for i, j in zip(ii, jj)]


def match_image(boxes_a: list[_Box], boxes_b: list[_Box], thr: float, path: str, classes_a: ClassMap | None,
                classes_b: ClassMap | None) -> tuple[list[BoxChange], int]:
    """Box changes in one image, and how many boxes are unchanged (reordering is not a change)."""
    free_a = list(range(len(boxes_a)))
    free_b = set(range(len(boxes_b)))
    unchanged, free_a = _pair_by(_everything, boxes_a, boxes_b, free_a, free_b)
    same_shape, free_a = _pair_by(_all_but_attributes, boxes_a, boxes_b, free_a, free_b)
    matched: list[tuple[str, int | None, int | None, float | None]] = [
        ("attributes_changed", i, j, 1.0) for i, j in same_shape]
    if free_a and free_b:
        overlapping, free_a = _pair_by_overlap(boxes_a, boxes_b, free_a, free_b, thr)
        matched += overlapping
    matched += [("removed", i, None, None) for i in free_a]
    matched += [("added", None, j, None) for j in sorted(free_b)]
    changes = [_box_change(path, kind, boxes_a[i] if i is not None else None, boxes_b[j] if j is not None else None,
                           iou, classes_a, classes_b) for kind, i, j, iou in matched]
    return changes, len(unchanged)


def _everything(box: _Box) -> tuple[Any, ...]:
    return box.code, box.bbox, box.shape, box.attrs


def _all_but_attributes(box: _Box) -> tuple[Any, ...]:
    return box.code, box.bbox, box.shape


def _pair_by(key: Callable[[_Box], Hashable], boxes_a: list[_Box], boxes_b: list[_Box], free_a: list[int], free_b: set[int]) -> tuple[list[tuple[int, int]], list[int]]:
    """Pairs of free boxes with equal ``key`` (each b-box once, lowest index first), and the
    a-boxes left unpaired; paired b-boxes leave ``free_b``."""
    index: dict[Hashable, list[int]] = {}
    for j in sorted(free_b):
        index.setdefault(key(boxes_b[j]), []).append(j)
    left: list[int] = []
    pairs: list[tuple[int, int]] = []
    for i in free_a:
        bucket = index.get(key(boxes_a[i]))
        if bucket:
            j = bucket.pop(0)
            free_b.discard(j)
            pairs.append((i, j))
        else:
            left.append(i)
    return pairs, left


def _pair_by_overlap(boxes_a: list[_Box], boxes_b: list[_Box], free_a: list[int], free_b: set[int], thr: float
                     ) -> tuple[list[tuple[str, int | None, int | None, float | None]], list[int]]:
    """``("moved" | "relabeled", i, j, iou)`` for free boxes overlapping at IoU >= ``thr``, best
    first, and the a-boxes left unpaired; paired b-boxes leave ``free_b``."""
    left_a, left_b = list(free_a), sorted(free_b)
    pairs = _iou_pairs([boxes_a[i] for i in left_a], [boxes_b[j] for j in left_b], thr)
    used_a: set[int] = set()
    matched: list[tuple[str, int | None, int | None, float | None]] = []
    # Same class first, so a box is "relabeled" only when no same-class box overlaps it.
    for same_class in (True, False):
        for v, i, j in pairs:
            ai, bj = left_a[i], left_b[j]
            if ai in used_a or bj not in free_b:
                continue
            if (boxes_a[ai].code == boxes_b[bj].code) != same_class:
                continue
            used_a.add(ai)
            free_b.discard(bj)
            matched.append(("moved" if same_class else "relabeled", ai, bj, v))
    return matched, [i for i in free_a if i not in used_a]


def _box_change(path: str, kind: str, p: _Box | None, q: _Box | None, iou: float | None, classes_a: ClassMap | None,
                classes_b: ClassMap | None) -> BoxChange:
    """The change of box ``p`` (a) into ``q`` (b); either is None for a removed or added box."""
    changed: list[str] = []
    attrs: dict[str, list[Any]] = {}
    if p and q:
        if p.code != q.code:
            changed.append("class")
        if p.bbox != q.bbox:
            changed.append("bbox")
        for f, x, y in zip(SHAPE_FIELDS + ATTRIBUTE_FIELDS, p.shape + p.attrs, q.shape + q.attrs):
            if x != y:
                changed.append(f)
                if f not in BULKY_FIELDS:
                    attrs[f] = [x, y]
    return BoxChange(
        path, kind,
        class_name(classes_a, p.class_id) if p else None,
        class_name(classes_b, q.class_id) if q else None,
        p.bbox if p else None, q.bbox if q else None, iou,
        p.index if p else None, q.index if q else None, tuple(changed), attrs,
        kind=q.shape[0] if q else p.shape[0] if p else "bbox")
