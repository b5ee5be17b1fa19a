"""An index of a vision version's images, built once per snapshot, so that a page of images
costs the page, not the version.

Built from the images and annotations tables: the images sorted by image id, the annotations
sorted by (image, index) with each image's rows as one slice of them. A page (``after`` an id,
``limit`` images) is a binary search and two ``take``s of at most ``limit`` images and their
annotations; the rows a filter (split, class, tag) keeps are computed once per filter and kept
too. Nothing here changes once built: the snapshot it comes from never changes
(lensvault.datasets.snapshot_cache keeps it).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from lensvault.errors import NotFound, UsageError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from lensvault.annotations.model import ClassMap
    from lensvault.datasets.handle import Dataset

__all__ = ["ImageIndex", "image_index"]

FILTERS_KEPT = 64  # row sets of distinct filters kept per index


def image_index(ds: Dataset) -> ImageIndex:
    """The index of ``ds`` (made on first use, then shared by every handle of its snapshot)."""
    from lensvault.datasets.snapshot_cache import kept

    return kept(ds.snapshot_id, "image_index", lambda: ImageIndex.build(ds))


def _class_name(cm: ClassMap, cid: int) -> str:
    try:
        return str(cm.name_of(cid))
    except KeyError:
        return f"<unknown {cid}>"


class ImageIndex:
    def __init__(self, ref: str, images: pa.Table, annotations: pa.Table, ann_rows: np.ndarray, cm: ClassMap) -> None:
        """``images`` sorted by image id; ``annotations`` sorted by (image row, index), and
        ``ann_rows`` the image row of each (see :meth:`from_tables`)."""
        import numpy as np

        self.ref, self.class_map = ref, cm
        self.images, self.annotations = images, annotations
        self.ids = images["image_id"].to_numpy(zero_copy_only=False).astype(np.int64)
        self._ann_rows = np.asarray(ann_rows, dtype=np.int64)
        self._ann_class = annotations["class_id"].to_numpy(zero_copy_only=False)
        everything = np.arange(len(self.ids))
        self._starts = np.searchsorted(self._ann_rows, everything, side="left")
        self._ends = np.searchsorted(self._ann_rows, everything, side="right")
        self._filters: OrderedDict[tuple[str | None, ...], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._path_rows: dict[str, int] | None = None

    @classmethod
    def from_tables(cls, ref: str, images: pa.Table, anns: pa.Table, cm: ClassMap) -> ImageIndex:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        images = images.take(pc.sort_indices(images["image_id"]))
        # Each annotation's image as a row of the sorted images (-1: an image the table lacks).
        rows = pc.fill_null(pc.index_in(anns["image"], value_set=images["path"]), -1)
        rows_np = rows.to_numpy(zero_copy_only=False).astype(np.int64)
        keep = rows_np >= 0
        index = anns["index"].to_numpy(zero_copy_only=False)
        order = np.lexsort((index[keep], rows_np[keep]))
        kept_rows = np.flatnonzero(keep)[order]
        return cls(ref, images, anns.take(pa.array(kept_rows)), rows_np[kept_rows], cm)

    @classmethod
    def build(cls, ds: Dataset) -> ImageIndex:
        """From this machine's cache of the snapshot if it has it whole, else from the version's
        tables (then cached: lensvault.datasets.derived_files)."""
        from lensvault.datasets import derived_files

        cm = ds.class_map()
        if cm is not None and ds.is_vision:
            found = cls._cached(ds, cm)
            if found is not None:
                return found
        images, anns = ds.images(), ds.annotations()
        if images is None or anns is None or cm is None:
            raise UsageError(f"{ds.ref} has no annotations", where=ds.ref,
                             fix="images and boxes are kept for versions snapshotted with --format")
        index = cls.from_tables(ds.ref, images, anns, cm)
        import pyarrow as pa

        derived_files.write_table(ds.vault, ds.snapshot_id, "images", index.images)
        derived_files.write_table(ds.vault, ds.snapshot_id, "annotations",
                                  index.annotations.append_column("_image_row", pa.array(index._ann_rows)))
        return index

    @classmethod
    def _cached(cls, ds: Dataset, cm: ClassMap) -> ImageIndex | None:
        from lensvault.datasets import derived_files

        images = derived_files.read_table(ds.vault, ds.snapshot_id, "images")
        anns = derived_files.read_table(ds.vault, ds.snapshot_id, "annotations")
        tables = ds.manifest().tables
        if images is None or anns is None or "_image_row" not in anns.column_names or "image_id" not in \
                images.column_names or images.num_rows != tables["images"].get("rows", images.num_rows) or \
                anns.num_rows > tables["annotations"].get("rows", anns.num_rows):
            return None
        rows = anns["_image_row"].to_numpy(zero_copy_only=False)
        return cls(ds.ref, images, anns.drop_columns(["_image_row"]), rows, cm)

    # -- filters ----------------------------------------------------------------------------
    def rows(self, *, split: str | None = None, class_name: str | None = None, tag: str | None = None) -> np.ndarray:
        """The rows (ascending, so by image id) of the images the filters keep."""
        import numpy as np

        key = (split, class_name, tag)
        with self._lock:
            if key in self._filters:
                self._filters.move_to_end(key)
                return self._filters[key]
        keep = np.ones(len(self.ids), dtype=bool)
        if split:
            keep &= np.asarray(self.images["split"].to_pylist(), dtype=object) == split
        if tag:
            keep &= self._tag_mask(tag)
        if class_name:
            cm = self.class_map
            if class_name not in cm.names:
                raise NotFound(f"{self.ref} has no class {class_name!r}", where=self.ref,
                               fix=f"classes: {', '.join(cm.names)}")
            cid = cm.ids[list(cm.names).index(class_name)]
            having = np.zeros(len(self.ids), dtype=bool)
            having[self._ann_rows[self._ann_class == cid]] = True
            keep &= having
        found = np.flatnonzero(keep)
        with self._lock:
            self._filters[key] = found
            while len(self._filters) > FILTERS_KEPT:
                self._filters.popitem(last=False)
        return found

    def _tag_mask(self, tag: str) -> np.ndarray:
        """``key`` (the image has the tag) or ``key=value``; tags are a canonical JSON object."""
        import numpy as np

        key, _, value = tag.partition("=")
        keep = []
        for text in self.images["tags"].to_pylist():
            tags = json.loads(text or "{}")
            keep.append(key in tags and (not value or str(tags[key]) == value))
        return np.array(keep, dtype=bool)

    # -- reading ----------------------------------------------------------------------------
    def page(self, rows: np.ndarray, after: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """The first ``limit`` of ``rows`` whose image id is above ``after``, and whether more follow."""
        import numpy as np

        start = int(np.searchsorted(self.ids[rows], after, side="right"))
        chosen = rows[start:start + limit]
        return self.items(chosen, full=False), start + limit < len(rows)

    def row_of_id(self, image_id: int) -> int | None:
        import numpy as np

        at = int(np.searchsorted(self.ids, image_id))
        return at if at < len(self.ids) and int(self.ids[at]) == image_id else None

    def rows_of_paths(self, paths: list[str]) -> dict[str, int]:
        with self._lock:
            if self._path_rows is None:
                self._path_rows = {p: i for i, p in enumerate(self.images["path"].to_pylist())}
            found = self._path_rows
        return {p: found[p] for p in paths if p in found}

    def items(self, rows: Any, *, full: bool) -> list[dict[str, Any]]:
        """The images at ``rows`` (in that order), each with its annotations."""
        import numpy as np
        import pyarrow as pa

        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return []
        image_rows = self.images.take(pa.array(rows)).to_pylist()
        spans = [np.arange(self._starts[r], self._ends[r]) for r in rows]
        ann_rows = self.annotations.take(pa.array(np.concatenate(spans))).to_pylist()
        out, at = [], 0
        for row, span in zip(image_rows, spans):
            mine = ann_rows[at:at + len(span)]
            at += len(span)
            out.append(_image_dict(row, [self._annotation(a, full) for a in mine]))
        return out

    def _annotation(self, r: dict[str, Any], full: bool) -> dict[str, Any]:
        a: dict[str, Any] = {"index": r["index"], "class_id": r["class_id"],
                             "class": _class_name(self.class_map, r["class_id"]),
                             "kind": r["kind"], "bbox": [r["x"], r["y"], r["w"], r["h"]]}
        if r["polygon"]:
            a["polygon"] = r["polygon"]
        if r["keypoints"]:  # small, and drawn wherever the image is: with its class's skeleton
            a["keypoints"] = r["keypoints"]
            schema = self.class_map.keypoints.get(r["class_id"])
            a["skeleton"] = schema["skeleton"] if schema else []
        if full:
            a.update({k: r[k] for k in ("iscrowd", "difficult", "truncated", "occluded")})
            a["attributes"] = json.loads(r["attributes"] or "{}")
            if r["rle"]:
                a["rle"] = r["rle"]
        return a


def _image_dict(row: dict[str, Any], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"image_id": row["image_id"], "path": row["path"], "sha256": row.get("sha256"),
            "width": row["width"], "height": row["height"], "orientation": row["orientation"],
            "split": row["split"], "tags": json.loads(row["tags"] or "{}"), "annotations": annotations}
