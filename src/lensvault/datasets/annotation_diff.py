"""What changed between two vision dataset versions: images, boxes, classes, splits.

Annotation rows are first aligned on (image, index) and compared column by column in
Arrow/numpy. Only images with some difference go through per-box matching in Python,
so diffing 200,000 boxes with a few percent edited costs little more than reading them.

Boxes are compared through a class *correspondence*, not raw ids: a class that keeps
its name (even under a new id) or keeps its id under a new name is the same class, so a
rename or reindex is reported once in ``classes`` and not as thousands of relabeled boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "AnnotationChanges",
    "AnnotationDiff",
    "BoxChange",
    "ClassChanges",
    "ImageChanges",
    "SplitMove",
    "diff_vision",
]

NO_SPLIT = "(none)"
_ATTRIBUTE_FIELDS = ("iscrowd", "difficult", "truncated", "occluded", "attributes")
_SHAPE_FIELDS = ("kind", "polygon", "rle", "keypoints")
_BULKY_FIELDS = ("polygon", "rle", "keypoints")  # named when changed, values not copied


@dataclass(frozen=True)
class BoxChange:
    """One box that differs. ``change``: added, removed, moved, relabeled, attributes_changed.

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
    attributes: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"image": self.image, "change": self.change,
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

    def to_dict(self) -> dict:
        return {"path": self.path, "from": self.from_split, "to": self.to_split}


@dataclass(frozen=True)
class ImageChanges:
    count_a: int
    count_b: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    reencoded: tuple[str, ...] = ()          # same path, different sha256
    resized: tuple[dict, ...] = ()           # {path, old: [w, h], new: [w, h]}
    reoriented: tuple[str, ...] = ()         # EXIF orientation changed
    retagged: tuple[str, ...] = ()           # image tags JSON changed
    added_by_split: dict[str, int] = field(default_factory=dict)
    removed_by_split: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.reencoded or self.resized
                    or self.reoriented or self.retagged)

    def to_dict(self) -> dict:
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

    def counts(self) -> dict[str, int]:
        out = {c: len(getattr(self, c)) for c in self.CATEGORIES}
        out.update(unchanged=self.unchanged, images_changed=self.images_changed,
                   on_added_images=self.on_added_images, on_removed_images=self.on_removed_images)
        return out

    def to_dict(self) -> dict:
        d: dict[str, Any] = {c: [x.to_dict() for x in getattr(self, c)] for c in self.CATEGORIES}
        d["counts"] = self.counts()
        d["kinds"] = {"a": list(self.kinds_a), "b": list(self.kinds_b)}
        return d


@dataclass(frozen=True)
class ClassChanges:
    added: tuple[dict, ...] = ()             # {id, name}
    removed: tuple[dict, ...] = ()           # {id, name}
    renamed: tuple[dict, ...] = ()           # {id, old, new}
    reindexed: tuple[dict, ...] = ()         # {name, old_id, new_id}

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.reindexed)

    @property
    def breaks_ids(self) -> bool:
        """True when a consumer's id → name lookup would now give a wrong or missing name."""
        return bool(self.removed or self.renamed or self.reindexed)

    def to_dict(self) -> dict:
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
    per_class: dict[str, dict]
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

    def to_dict(self) -> dict:
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


def diff_vision(a, b, *, iou_threshold: float = 0.5) -> AnnotationDiff:
    """Compare two ``VisionTables`` (ref, images, annotations, classes)."""
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    classes, code_of_a, code_of_b = _compare_classes(a.classes, b.classes)
    images, common, split_moves = _compare_images(a.images, b.images)
    annotations = _compare_annotations(a, b, common, code_of_a, code_of_b, iou_threshold)
    per_class = _per_class(a, b)
    return AnnotationDiff(str(a.ref), str(b.ref), images, annotations, classes,
                          tuple(split_moves), per_class, iou_threshold)


# --- classes -------------------------------------------------------------------------


def _compare_classes(ca, cb):
    """ClassChanges plus two functions mapping each side's class id to a shared code."""
    a_pairs = list(zip(ca.ids, ca.names)) if ca is not None else []
    b_pairs = list(zip(cb.ids, cb.names)) if cb is not None else []
    a_names = {n: i for i, n in a_pairs}
    b_names = {n: i for i, n in b_pairs}
    b_ids = dict(b_pairs)
    a_ids = dict(a_pairs)

    renamed, reindexed, removed, added = [], [], [], []
    a_code: dict[int, object] = {}
    b_code: dict[int, object] = {i: ("class", i) for i, _ in b_pairs}
    claimed: set[int] = set()
    for i, name in a_pairs:
        if name in b_names:
            a_code[i] = ("class", b_names[name])
            claimed.add(b_names[name])
            if b_names[name] != i:
                reindexed.append({"name": name, "old_id": i, "new_id": b_names[name]})
    for i, name in a_pairs:
        if i in a_code:
            continue
        # Same id, new name that was not already an a-class: the class was renamed.
        if i in b_ids and i not in claimed and b_ids[i] not in a_names:
            a_code[i] = ("class", i)
            claimed.add(i)
            renamed.append({"id": i, "old": name, "new": b_ids[i]})
        else:
            a_code[i] = ("gone", i)
            removed.append({"id": i, "name": name})
    for i, name in b_pairs:
        if i not in claimed:
            added.append({"id": i, "name": name})

    # Ids missing from a class map still need stable codes; equal raw ids match.
    def code_a(i: int):
        return a_code.get(i, ("unknown", i))

    def code_b(i: int):
        return b_code.get(i, ("unknown", i))

    changes = ClassChanges(tuple(added), tuple(removed), tuple(renamed), tuple(reindexed))
    return changes, code_a, code_b


def _class_name(classes, class_id: int) -> str:
    try:
        return classes.name_of(class_id)
    except (KeyError, AttributeError):
        return f"#{class_id}"


# --- images --------------------------------------------------------------------------


def _compare_images(ia, ib):
    import numpy as np

    pa_ = ia.column("path").to_pylist()
    pb_ = ib.column("path").to_pylist()
    pos_b = {p: i for i, p in enumerate(pb_)}
    set_a = set(pa_)
    common_a = [i for i, p in enumerate(pa_) if p in pos_b]
    common_b = [pos_b[pa_[i]] for i in common_a]
    added = [p for p in pb_ if p not in set_a]
    removed = [p for p in pa_ if p not in pos_b]
    common = [pa_[i] for i in common_a]

    def col(table, name, rows, fill=None):
        if name not in table.column_names:
            return None
        values = table.column(name).to_pylist()
        return [values[r] if values[r] is not None else fill for r in rows]

    sa, sb = col(ia, "split", common_a), col(ib, "split", common_b)
    split_moves = [SplitMove(p, x, y) for p, x, y in zip(common, sa or [], sb or []) if x != y]

    ha, hb = col(ia, "sha256", common_a), col(ib, "sha256", common_b)
    reencoded = [p for p, x, y in zip(common, ha, hb) if x != y] if ha and hb else []

    rows_a, rows_b = np.asarray(common_a, dtype=np.int64), np.asarray(common_b, dtype=np.int64)
    wa, wb = ia.column("width").to_numpy()[rows_a], ib.column("width").to_numpy()[rows_b]
    ha_, hb_ = ia.column("height").to_numpy()[rows_a], ib.column("height").to_numpy()[rows_b]
    resized = [{"path": common[k], "old": [int(wa[k]), int(ha_[k])], "new": [int(wb[k]), int(hb_[k])]}
               for k in np.flatnonzero((wa != wb) | (ha_ != hb_))]
    oa, ob = col(ia, "orientation", common_a), col(ib, "orientation", common_b)
    reoriented = [p for p, x, y in zip(common, oa or [], ob or []) if x != y]
    ta, tb = col(ia, "tags", common_a, "{}"), col(ib, "tags", common_b, "{}")
    retagged = [p for p, x, y in zip(common, ta or [], tb or []) if x != y]

    def by_split(table, paths):
        wanted = set(paths)
        counts: dict[str, int] = {}
        splits = table.column("split").to_pylist() if "split" in table.column_names else None
        for i, p in enumerate(table.column("path").to_pylist()):
            if p in wanted:
                s = (splits[i] if splits else None) or NO_SPLIT
                counts[s] = counts.get(s, 0) + 1
        return dict(sorted(counts.items()))

    changes = ImageChanges(
        count_a=len(pa_), count_b=len(pb_), added=tuple(added), removed=tuple(removed),
        reencoded=tuple(reencoded), resized=tuple(resized), reoriented=tuple(reoriented),
        retagged=tuple(retagged), added_by_split=by_split(ib, added), removed_by_split=by_split(ia, removed))
    return changes, common, split_moves


# --- annotations: vectorized alignment -----------------------------------------------


def _codes(class_ids, code_of, registry: dict):
    """Map class ids to small ints shared by both sides (via ``registry``)."""
    import numpy as np

    uniq, inverse = np.unique(class_ids, return_inverse=True)
    lut = np.array([registry.setdefault(code_of(int(u)), len(registry)) for u in uniq], dtype=np.int64)
    return lut[inverse] if len(uniq) else np.zeros(0, dtype=np.int64)


def _values_equal(x, y):
    """Row-wise equality of two equal-length Arrow arrays, null == null, lists compared deeply."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    x = x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x
    y = y.combine_chunks() if isinstance(y, pa.ChunkedArray) else y
    n = len(x)
    if x.null_count == n and y.null_count == n:
        return np.ones(n, dtype=bool)
    null_x = x.is_null().to_numpy(zero_copy_only=False)
    null_y = y.is_null().to_numpy(zero_copy_only=False)
    if not pa.types.is_list(x.type):
        eq = pc.fill_null(pc.equal(x, y), False).to_numpy(zero_copy_only=False)
        return eq | (null_x & null_y)
    len_x = pc.fill_null(pc.list_value_length(x), -1).to_numpy(zero_copy_only=False)
    len_y = pc.fill_null(pc.list_value_length(y), -1).to_numpy(zero_copy_only=False)
    eq = (null_x == null_y) & (len_x == len_y)
    both = eq & ~null_x
    if not both.any():
        return eq
    rows = np.flatnonzero(both)
    sub_x, sub_y = x.take(rows), y.take(rows)
    # Equal lengths row by row, so the flattened children line up element by element.
    child_eq = _values_equal(sub_x.flatten(), sub_y.flatten())
    parent = pc.list_parent_indices(sub_x).to_numpy(zero_copy_only=False)
    bad = np.zeros(len(rows), dtype=bool)
    bad[parent[~child_eq]] = True
    eq[rows[bad]] = False
    return eq


def _position_in(values, value_set):
    import numpy as np
    import pyarrow.compute as pc

    pos = pc.fill_null(pc.index_in(values, value_set=value_set), -1)
    return pos.to_numpy().astype(np.int64) if len(values) else np.zeros(0, dtype=np.int64)


_COMPARED = ("x", "y", "w", "h", "kind", "polygon", "rle", "keypoints") + _ATTRIBUTE_FIELDS


def _compare_annotations(a, b, common, code_of_a, code_of_b, thr):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ta, tb = a.annotations, b.annotations
    kinds_a = tuple(sorted(pc.unique(ta.column("kind")).to_pylist())) if ta.num_rows else ()
    kinds_b = tuple(sorted(pc.unique(tb.column("kind")).to_pylist())) if tb.num_rows else ()
    common_arr = pa.array(common, pa.string())
    # -1: the box's image is not in both versions (it came or went with its image).
    img_a = _position_in(ta.column("image"), common_arr)
    img_b = _position_in(tb.column("image"), common_arr)
    valid_a, valid_b = img_a >= 0, img_b >= 0
    on_removed, on_added = int((~valid_a).sum()), int((~valid_b).sum())

    registry: dict = {}
    code_a = _codes(ta.column("class_id").to_numpy(), code_of_a, registry)
    code_b = _codes(tb.column("class_id").to_numpy(), code_of_b, registry)
    idx_a = ta.column("index").to_numpy().astype(np.int64)
    idx_b = tb.column("index").to_numpy().astype(np.int64)

    stride = int(max(idx_a.max(initial=0), idx_b.max(initial=0))) + 1
    rows_a, rows_b = np.flatnonzero(valid_a), np.flatnonzero(valid_b)
    key_a = img_a[rows_a] * stride + idx_a[rows_a]
    key_b = img_b[rows_b] * stride + idx_b[rows_b]
    # A repeated (image, index) aligns only its first row; the rest go to box matching.
    _, pos_a, pos_b = np.intersect1d(key_a, key_b, assume_unique=False, return_indices=True)
    ra, rb = rows_a[pos_a], rows_b[pos_b]

    same = code_a[ra] == code_b[rb]
    for name in _COMPARED:
        col_a, col_b = ta.column(name), tb.column(name)
        if name in ("x", "y", "w", "h"):
            same &= col_a.to_numpy()[ra] == col_b.to_numpy()[rb]
        else:
            same &= _values_equal(col_a.take(ra), col_b.take(rb))
    # Identical rows at the same (image, index) are unchanged whatever else happened in
    # their image: identical boxes are interchangeable, so pairing them up front gives
    # the same result as matching them in Python, at a fraction of the cost.
    unchanged = int(same.sum())
    left_a, left_b = valid_a.copy(), valid_b.copy()
    left_a[ra[same]] = False
    left_b[rb[same]] = False
    # A box removed or added mid-image shifts every later index; pair what is left by
    # content, so Python sees only boxes that really changed.
    pa_rows, pb_rows = _pair_identical(ta, tb, np.flatnonzero(left_a), np.flatnonzero(left_b),
                                       img_a, img_b, code_a, code_b)
    unchanged += len(pa_rows)
    left_a[pa_rows] = False
    left_b[pb_rows] = False

    items = {c: [] for c in AnnotationChanges.CATEGORIES}
    images_changed = 0
    boxes_a = _boxes_of(ta, np.flatnonzero(left_a), img_a, code_a)
    boxes_b = _boxes_of(tb, np.flatnonzero(left_b), img_b, code_b)
    for img in sorted(boxes_a.keys() | boxes_b.keys()):
        found, same_count = _match_image(boxes_a.get(img, []), boxes_b.get(img, []), thr, common[img],
                                         a.classes, b.classes)
        unchanged += same_count
        if found:
            images_changed += 1
            for change in found:
                items[change.change].append(change)
    return AnnotationChanges(**{c: tuple(v) for c, v in items.items()}, unchanged=unchanged,
                             images_changed=images_changed, on_added_images=on_added,
                             on_removed_images=on_removed, kinds_a=kinds_a, kinds_b=kinds_b)


def _pair_identical(ta, tb, rows_a, rows_b, img_a, img_b, code_a, code_b):
    """Rows of a and b (by table position) paired one to one when every field is equal.

    Rows are sorted by a numeric key of all scalar fields; within each run of equal keys
    the k-th a-row pairs with the k-th b-row. Rows with polygons or keypoints stay
    unpaired (their lists have no cheap numeric key) and are matched in Python.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def plain(t, rows):
        keep = np.ones(len(rows), dtype=bool)
        for name in ("polygon", "keypoints"):
            col = t.column(name)
            if col.null_count != len(col):
                keep &= col.take(rows).is_null().to_numpy(zero_copy_only=False)
        return rows[keep]

    rows_a, rows_b = plain(ta, rows_a), plain(tb, rows_b)
    n_a, n_b = len(rows_a), len(rows_b)
    if not n_a or not n_b:
        return rows_a[:0], rows_b[:0]
    columns = [np.r_[img_a[rows_a], img_b[rows_b]], np.r_[code_a[rows_a], code_b[rows_b]]]
    for name in ("x", "y", "w", "h", "iscrowd", "difficult", "truncated", "occluded"):
        columns.append(np.r_[ta.column(name).to_numpy()[rows_a], tb.column(name).to_numpy()[rows_b]])
    for name in ("kind", "rle", "attributes"):
        both = pa.chunked_array(ta.column(name).take(rows_a).chunks + tb.column(name).take(rows_b).chunks)
        codes = pc.dictionary_encode(both, null_encoding="encode").combine_chunks().indices
        columns.append(codes.to_numpy())
    keys = np.column_stack([c.astype(np.float64) for c in columns])
    order = np.lexsort(keys.T[::-1])  # stable: within a run, a-rows come before b-rows
    sk = keys[order]
    new_run = np.r_[True, np.any(sk[1:] != sk[:-1], axis=1)]
    run = np.cumsum(new_run) - 1
    is_b = order >= n_a
    pos = np.arange(len(order))
    group_start = np.maximum.accumulate(np.where(new_run | np.r_[True, is_b[1:] != is_b[:-1]], pos, 0))
    rank_key = run * (n_a + n_b) + (pos - group_start)
    _, ia, ib = np.intersect1d(rank_key[~is_b], rank_key[is_b], assume_unique=True, return_indices=True)
    return rows_a[order[~is_b][ia]], rows_b[order[is_b][ib] - n_a]


# --- annotations: per-image box matching ---------------------------------------------


class _Box(NamedTuple):
    index: int
    code: int
    class_id: int
    bbox: tuple[float, float, float, float]
    shape: tuple          # kind, polygon, rle, keypoints (hashable)
    attrs: tuple          # _ATTRIBUTE_FIELDS values


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _boxes_of(table, rows, img, code) -> dict[int, list[_Box]]:
    out: dict[int, list[_Box]] = {}
    if not len(rows):
        return out
    sub = table.take(rows)
    col = {name: sub.column(name).to_pylist() for name in
           ("index", "class_id", "x", "y", "w", "h") + _SHAPE_FIELDS + _ATTRIBUTE_FIELDS}
    for name in _BULKY_FIELDS:  # lists are not hashable; exact matching hashes shapes
        if any(v is not None for v in col[name]):
            col[name] = [_freeze(v) for v in col[name]]
    bboxes = zip(col["x"], col["y"], col["w"], col["h"])
    shapes = zip(*(col[f] for f in _SHAPE_FIELDS))
    attrs = zip(*(col[f] for f in _ATTRIBUTE_FIELDS))
    for image, *fields in zip(img[rows].tolist(), col["index"], code[rows].tolist(), col["class_id"],
                              bboxes, shapes, attrs):
        out.setdefault(image, []).append(_Box(*fields))
    return out


def _iou(p, q) -> float:
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


def _iou_pairs_numpy(left_a, left_b, thr):
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


def _match_image(boxes_a, boxes_b, thr, path, classes_a, classes_b):
    """Box changes in one image, and how many boxes are unchanged (reordering is not a change)."""
    free_a = list(range(len(boxes_a)))
    free_b = set(range(len(boxes_b)))
    changes: list[BoxChange] = []

    def change(kind, i=None, j=None, iou=None):
        p = boxes_a[i] if i is not None else None
        q = boxes_b[j] if j is not None else None
        changed, attrs = [], {}
        if p and q:
            if p.code != q.code:
                changed.append("class")
            if p.bbox != q.bbox:
                changed.append("bbox")
            for f, x, y in zip(_SHAPE_FIELDS + _ATTRIBUTE_FIELDS, p.shape + p.attrs, q.shape + q.attrs):
                if x != y:
                    changed.append(f)
                    if f not in _BULKY_FIELDS:
                        attrs[f] = [x, y]
        changes.append(BoxChange(
            path, kind,
            _class_name(classes_a, p.class_id) if p else None,
            _class_name(classes_b, q.class_id) if q else None,
            p.bbox if p else None, q.bbox if q else None, iou,
            p.index if p else None, q.index if q else None, tuple(changed), attrs))

    def pair_by(key):
        nonlocal free_a
        index: dict = {}
        for j in sorted(free_b):
            index.setdefault(key(boxes_b[j]), []).append(j)
        left, pairs = [], []
        for i in free_a:
            bucket = index.get(key(boxes_a[i]))
            if bucket:
                j = bucket.pop(0)
                free_b.discard(j)
                pairs.append((i, j))
            else:
                left.append(i)
        free_a = left
        return pairs

    unchanged = len(pair_by(lambda box: (box.code, box.bbox, box.shape, box.attrs)))
    for i, j in pair_by(lambda box: (box.code, box.bbox, box.shape)):
        change("attributes_changed", i, j, 1.0)
    if free_a and free_b:
        left_a, left_b = list(free_a), sorted(free_b)
        pairs = _iou_pairs([boxes_a[i] for i in left_a], [boxes_b[j] for j in left_b], thr)
        used_a: set[int] = set()
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
                change("moved" if same_class else "relabeled", ai, bj, v)
        free_a = [i for i in free_a if i not in used_a]
    for i in free_a:
        change("removed", i=i)
    for j in sorted(free_b):
        change("added", j=j)
    return changes, unchanged


# --- per-class counts ----------------------------------------------------------------


def _per_class(a, b) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for side, t in (("a", a), ("b", b)):
        for (name, split), n in _class_split_counts(t).items():
            entry = out.setdefault(name, {"a": 0, "b": 0, "delta": 0, "splits": {}})
            entry[side] += n
            s = entry["splits"].setdefault(split, {"a": 0, "b": 0, "delta": 0})
            s[side] += n
        for name in (t.classes.names if t.classes is not None else ()):
            out.setdefault(name, {"a": 0, "b": 0, "delta": 0, "splits": {}})
    for entry in out.values():
        entry["delta"] = entry["b"] - entry["a"]
        for s in entry["splits"].values():
            s["delta"] = s["b"] - s["a"]
        entry["splits"] = dict(sorted(entry["splits"].items()))
    return dict(sorted(out.items()))


def _class_split_counts(t) -> dict[tuple[str, str], int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    ann = t.annotations
    if ann.num_rows == 0:
        return {}
    row = pc.index_in(ann.column("image"), value_set=t.images.column("path"))
    split = pc.take(t.images.column("split"), row) if "split" in t.images.column_names else None
    split = pc.fill_null(split, NO_SPLIT) if split is not None else pa.array([NO_SPLIT] * ann.num_rows)
    # No Arrow thread pool: its threads, alive at exit, can abort the process (files_table.read).
    grouped = (pa.table({"c": ann.column("class_id"), "s": split})
               .group_by(["c", "s"], use_threads=False).aggregate([("c", "count")]))
    out: dict[tuple[str, str], int] = {}
    for c, s, n in zip(grouped["c"].to_pylist(), grouped["s"].to_pylist(), grouped["c_count"].to_pylist()):
        key = (_class_name(t.classes, c), s)
        out[key] = out.get(key, 0) + n
    return out


# --- summary -------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("x") else "s")


def _by_split_text(counts: dict[str, int], preposition: str) -> str:
    if len(counts) == 1:
        (split, _), = counts.items()
        return f" {preposition} {split}" if split != NO_SPLIT else ""
    return " (" + ", ".join(f"{s} {n}" for s, n in counts.items()) + ")"


def _summary(d: AnnotationDiff) -> str:
    parts: list[str] = []
    ann = d.annotations
    if ann.changed_boxes:
        detail = ", ".join(f"{len(getattr(ann, c))} {c.replace('_', ' ')}"
                           for c in ann.CATEGORIES if getattr(ann, c))
        parts.append(f"{_plural(ann.changed_boxes, 'box')} changed in "
                     f"{_plural(ann.images_changed, 'image')} ({detail})")
    im = d.images
    if im.added:
        parts.append(f"{_plural(len(im.added), 'image')} added{_by_split_text(im.added_by_split, 'to')}")
    if im.removed:
        parts.append(f"{_plural(len(im.removed), 'image')} removed{_by_split_text(im.removed_by_split, 'from')}")
    for label, items in (("re-encoded", im.reencoded), ("resized", im.resized),
                         ("re-oriented", im.reoriented), ("re-tagged", im.retagged)):
        if items:
            parts.append(f"{_plural(len(items), 'image')} {label}")
    if d.split_moves:
        moves = ", ".join(f"{k} {n}" for k, n in d.split_move_counts.items())
        parts.append(f"{_plural(len(d.split_moves), 'image')} changed split ({moves})")
    if ann.kinds_changed:
        parts.append(f"annotation types changed from {', '.join(ann.kinds_a) or 'none'} "
                     f"to {', '.join(ann.kinds_b) or 'none'}")
    parts.append(_class_text(d.classes))
    if not d.changed:
        return f"No changes between {d.a} and {d.b}; class map unchanged."
    text = ", ".join(parts[:-1]) + ("; " if len(parts) > 1 else "") + parts[-1]
    bump = d.suggested_bump
    return text[0].upper() + text[1:] + "." + (f" Suggested bump: {bump.upper()}." if bump else "")


def _class_text(c: ClassChanges) -> str:
    if not c.changed:
        return "class map unchanged"
    bits = [f"added '{x['name']}'" for x in c.added]
    bits += [f"removed '{x['name']}'" for x in c.removed]
    bits += [f"renamed '{x['old']}' to '{x['new']}' (id {x['id']})" for x in c.renamed]
    bits += [f"reindexed '{x['name']}' from id {x['old_id']} to {x['new_id']}" for x in c.reindexed]
    return "class map changed: " + ", ".join(bits)
