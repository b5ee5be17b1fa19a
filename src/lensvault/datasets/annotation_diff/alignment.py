"""Box changes, the bulk of them found without a Python loop per box.

Annotation rows are first aligned on (image, index) and compared column by column in
Arrow/numpy; what is left is paired by content, so a box removed mid-image does not shift every
later box into a change. Only images with some box still unpaired go through per-box matching
in Python (matching.py), so diffing 200,000 boxes with a few percent edited costs little more
than reading them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from lensvault.datasets.annotation_diff.changes import AnnotationChanges
from lensvault.datasets.annotation_diff.matching import ATTRIBUTE_FIELDS, boxes_of, match_image

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

    from lensvault.datasets.annotation_diff.changes import BoxChange
    from lensvault.datasets.annotation_diff.classes import ClassCode
    from lensvault.datasets.vision_tables import VisionTables

    _Ints = npt.NDArray[np.int64]
    _Bools = npt.NDArray[np.bool_]
    _CodeOf = Callable[[int], ClassCode]

_COMPARED = ("x", "y", "w", "h", "kind", "polygon", "rle", "keypoints", *ATTRIBUTE_FIELDS)


def compare_annotations(a: VisionTables, b: VisionTables, common: list[str], code_of_a: _CodeOf, code_of_b: _CodeOf,
                        thr: float) -> AnnotationChanges:
    """The box changes between two ``VisionTables``; ``common``: the image paths in both."""
    import numpy as np
    import pyarrow.compute as pc

    ta, tb = a.annotations, b.annotations
    kinds_a = tuple(sorted(pc.unique(ta.column("kind")).to_pylist())) if ta.num_rows else ()
    kinds_b = tuple(sorted(pc.unique(tb.column("kind")).to_pylist())) if tb.num_rows else ()
    al = _align(ta, tb, common, code_of_a, code_of_b)
    unchanged = al.unchanged
    items: dict[str, list[BoxChange]] = {c: [] for c in AnnotationChanges.CATEGORIES}
    images_changed = 0
    boxes_a = boxes_of(ta, np.flatnonzero(al.left_a), al.img_a, al.code_a)
    boxes_b = boxes_of(tb, np.flatnonzero(al.left_b), al.img_b, al.code_b)
    for img in sorted(boxes_a.keys() | boxes_b.keys()):
        found, same_count = match_image(boxes_a.get(img, []), boxes_b.get(img, []), thr, common[img],
                                        a.classes, b.classes)
        unchanged += same_count
        if found:
            images_changed += 1
            for change in found:
                items[change.change].append(change)
    # -1: the box's image is not in both versions (it came or went with its image).
    on_removed, on_added = int((al.img_a < 0).sum()), int((al.img_b < 0).sum())
    return AnnotationChanges(**{c: tuple(v) for c, v in items.items()}, unchanged=unchanged,
                             images_changed=images_changed, on_added_images=on_added,
                             on_removed_images=on_removed, kinds_a=kinds_a, kinds_b=kinds_b)


class _Alignment(NamedTuple):
    img_a: _Ints     # per row: position of the row's image among the common paths, -1 if not common
    img_b: _Ints
    code_a: _Ints    # per row: the class as a code shared by both sides
    code_b: _Ints
    left_a: _Bools   # per row: True while the row is still unpaired (a box to match in Python)
    left_b: _Bools
    unchanged: int   # rows paired with an identical row


def _align(ta: pa.Table, tb: pa.Table, common: list[str], code_of_a: _CodeOf, code_of_b: _CodeOf) -> _Alignment:
    """Pair identical rows of the common images in bulk: first at the same (image, index), then
    by content."""
    import numpy as np
    import pyarrow as pa

    common_arr = pa.array(common, pa.string())
    img_a = _position_in(ta.column("image"), common_arr)
    img_b = _position_in(tb.column("image"), common_arr)
    valid_a, valid_b = img_a >= 0, img_b >= 0

    registry: dict[ClassCode, int] = {}
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
    return _Alignment(img_a, img_b, code_a, code_b, left_a, left_b, unchanged)


def _codes(class_ids: npt.NDArray[Any], code_of: _CodeOf, registry: dict[ClassCode, int]) -> _Ints:
    """Map class ids to small ints shared by both sides (via ``registry``)."""
    import numpy as np

    uniq, inverse = np.unique(class_ids, return_inverse=True)
    lut = np.array([registry.setdefault(code_of(int(u)), len(registry)) for u in uniq], dtype=np.int64)
    return lut[inverse] if len(uniq) else np.zeros(0, dtype=np.int64)


def _values_equal(x: Any, y: Any) -> _Bools:  # x, y: pyarrow arrays (untyped)
    """Row-wise equality of two equal-length Arrow arrays, null == null, lists compared deeply."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    x = x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x
    y = y.combine_chunks() if isinstance(y, pa.ChunkedArray) else y
    n = len(x)
    if x.null_count == n and y.null_count == n:
        return np.ones(n, dtype=bool)
    null_x: _Bools = x.is_null().to_numpy(zero_copy_only=False)
    null_y: _Bools = y.is_null().to_numpy(zero_copy_only=False)
    if not pa.types.is_list(x.type):
        same: _Bools = pc.fill_null(pc.equal(x, y), False).to_numpy(zero_copy_only=False)
        return same | (null_x & null_y)
    len_x = pc.fill_null(pc.list_value_length(x), -1).to_numpy(zero_copy_only=False)
    len_y = pc.fill_null(pc.list_value_length(y), -1).to_numpy(zero_copy_only=False)
    eq: _Bools = (null_x == null_y) & (len_x == len_y)
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


def _position_in(values: pa.ChunkedArray, value_set: pa.Array) -> _Ints:
    import numpy as np
    import pyarrow.compute as pc

    pos = pc.fill_null(pc.index_in(values, value_set=value_set), -1)
    return pos.to_numpy().astype(np.int64) if len(values) else np.zeros(0, dtype=np.int64)


def _pair_identical(ta: pa.Table, tb: pa.Table, rows_a: _Ints, rows_b: _Ints, img_a: _Ints, img_b: _Ints,
                    code_a: _Ints, code_b: _Ints) -> tuple[_Ints, _Ints]:
    """Rows of a and b (by table position) paired one to one when every field is equal.

    Rows are sorted by a numeric key of all scalar fields; within each run of equal keys
    the k-th a-row pairs with the k-th b-row. Rows with polygons or keypoints stay
    unpaired (their lists have no cheap numeric key) and are matched in Python.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def plain(t: pa.Table, rows: _Ints) -> _Ints:
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
    columns.extend(np.r_[ta.column(name).to_numpy()[rows_a], tb.column(name).to_numpy()[rows_b]]
                   for name in ("x", "y", "w", "h", "iscrowd", "difficult", "truncated", "occluded"))
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
