"""Images compared by path: added and removed (counted per split), and for the images in both
versions what changed about the file itself: bytes, size, EXIF orientation, tags, split."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lensvault.datasets.annotation_diff.changes import NO_SPLIT, ImageChanges, ResizedImage, SplitMove

if TYPE_CHECKING:
    import pyarrow as pa


def compare_images(ia: pa.Table, ib: pa.Table) -> tuple[ImageChanges, list[str], list[SplitMove]]:
    """The changes, the paths in both versions (in a's order) and the images that changed split."""
    pa_ = ia.column("path").to_pylist()
    pb_ = ib.column("path").to_pylist()
    pos_b = {p: i for i, p in enumerate(pb_)}
    set_a = set(pa_)
    common_a = [i for i, p in enumerate(pa_) if p in pos_b]
    common_b = [pos_b[pa_[i]] for i in common_a]
    added = [p for p in pb_ if p not in set_a]
    removed = [p for p in pa_ if p not in pos_b]
    common = [pa_[i] for i in common_a]

    def differing(name: str, fill: str | None = None) -> list[tuple[str, Any, Any]]:
        return _differing(ia, ib, name, common, common_a, common_b, fill)

    split_moves = [SplitMove(p, x, y) for p, x, y in differing("split")]
    reencoded = [p for p, _, _ in differing("sha256")]
    reoriented = [p for p, _, _ in differing("orientation")]
    retagged = [p for p, _, _ in differing("tags", "{}")]

    changes = ImageChanges(
        count_a=len(pa_), count_b=len(pb_), added=tuple(added), removed=tuple(removed),
        reencoded=tuple(reencoded), resized=tuple(_resized(ia, ib, common, common_a, common_b)),
        reoriented=tuple(reoriented), retagged=tuple(retagged),
        added_by_split=_count_by_split(ib, added), removed_by_split=_count_by_split(ia, removed))
    return changes, common, split_moves


def _differing(ia: pa.Table, ib: pa.Table, name: str, common: list[str], common_a: list[int], common_b: list[int],
               fill: str | None = None) -> list[tuple[str, Any, Any]]:  # values: any column's
    """``(path, value in a, value in b)`` for the common images whose ``name`` differs (None read
    as ``fill``); none when either side has no such column."""
    xs, ys = _column(ia, name, common_a, fill), _column(ib, name, common_b, fill)
    return [(p, x, y) for p, x, y in zip(common, xs or [], ys or []) if x != y]


def _column(table: pa.Table, name: str, rows: list[int], fill: str | None = None) -> list[Any] | None:
    """The column's values at ``rows`` (None read as ``fill``); None when the table has no such column."""
    if name not in table.column_names:
        return None
    values = table.column(name).to_pylist()
    return [values[r] if values[r] is not None else fill for r in rows]


def _resized(ia: pa.Table, ib: pa.Table, common: list[str], common_a: list[int], common_b: list[int]
             ) -> list[ResizedImage]:
    """``{path, old: [w, h], new: [w, h]}`` for each common image whose size changed."""
    import numpy as np

    rows_a, rows_b = np.asarray(common_a, dtype=np.int64), np.asarray(common_b, dtype=np.int64)
    wa, wb = ia.column("width").to_numpy()[rows_a], ib.column("width").to_numpy()[rows_b]
    ha, hb = ia.column("height").to_numpy()[rows_a], ib.column("height").to_numpy()[rows_b]
    return [{"path": common[k], "old": [int(wa[k]), int(ha[k])], "new": [int(wb[k]), int(hb[k])]}
            for k in np.flatnonzero((wa != wb) | (ha != hb))]


def _count_by_split(table: pa.Table, paths: list[str]) -> dict[str, int]:
    """How many of ``paths`` each split of ``table`` holds, by split name."""
    wanted = set(paths)
    counts: dict[str, int] = {}
    splits = table.column("split").to_pylist() if "split" in table.column_names else None
    for i, p in enumerate(table.column("path").to_pylist()):
        if p in wanted:
            s = (splits[i] if splits else None) or NO_SPLIT
            counts[s] = counts.get(s, 0) + 1
    return dict(sorted(counts.items()))
