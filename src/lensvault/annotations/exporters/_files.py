"""Selecting rows and placing image files, shared by the exporters."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lensvault.annotations.model import AnnotationRow, AnnotationSet, ImageRow

Link = Callable[[Any, Path], None]


IGNORE_REGION = '{"ignore":true}'  # the attributes of a masks import's ignore pixels (importers.masks)


# Images (with their annotations) made Python rows at a time: an export holds the version's
# tables as Arrow columns and this many rows as objects, not an object per image and box.
CHUNK_IMAGES = 1024


class Selection:
    """The images an export writes (optionally one ``split``, in table order or by path) and their
    annotations sorted by index, walked a chunk of images at a time (:meth:`chunks`).

    Held for the whole version: the tables (Arrow) and, per annotation, its row (8 bytes); per
    image where its annotations start and end (16 bytes). The ignore regions of a masks import
    are no objects: left out unless ``ignore_regions`` (the masks export paints them the ignore
    index)."""

    def __init__(self, aset: AnnotationSet, split: str | None, *, ignore_regions: bool = False,
                 by_path: bool = False) -> None:
        import numpy as np
        import pyarrow.compute as pc

        images = aset.images
        if "image_id" not in images.column_names:  # (the ids every export uses: annotations.image_ids)
            from lensvault.annotations.image_ids import with_image_ids

            images = with_image_ids(images)
        if split is not None:
            images = images.filter(pc.fill_null(pc.equal(images["split"], split), False))
        if by_path:
            images = images.take(pc.sort_indices(images["path"]))
        self.images = images = images.combine_chunks()
        anns = aset.annotations
        rows = pc.fill_null(pc.index_in(anns["image"], value_set=images["path"]), -1)
        rows_np = rows.to_numpy(zero_copy_only=False).astype(np.int64)
        keep = rows_np >= 0
        if not ignore_regions and anns.num_rows:
            region = pc.and_(pc.equal(anns["attributes"], IGNORE_REGION), anns["iscrowd"])
            keep &= ~pc.fill_null(region, False).to_numpy(zero_copy_only=False)
        kept = np.flatnonzero(keep)
        index = anns["index"].to_numpy(zero_copy_only=False)[kept]
        self._ann_rows = kept[np.lexsort((index, rows_np[kept]))]  # by (image, index), ties in table order
        self._annotations = anns
        image_of = rows_np[self._ann_rows]
        everything = np.arange(images.num_rows)
        self._starts = np.searchsorted(image_of, everything, side="left")
        self._ends = np.searchsorted(image_of, everything, side="right")

    def __len__(self) -> int:
        return len(self._starts)

    def column(self, name: str) -> Any:
        """A column of the selected images (a pyarrow Array)."""
        return self.images[name].combine_chunks()

    def annotation_column(self, name: str) -> Any:
        """A column of the selected images' annotations, in walking order (a pyarrow Array)."""
        import pyarrow as pa

        return self._annotations[name].take(pa.array(self._ann_rows)).combine_chunks()

    def annotation_image_rows(self) -> Any:
        """The selected image row of each annotation, in walking order (numpy int64)."""
        import numpy as np

        return np.repeat(np.arange(len(self)), self._ends - self._starts)

    def chunks(self, rows: Any = None) -> Iterator[list[tuple[ImageRow, list[AnnotationRow]]]]:
        """(image row, its annotation rows) for every selected image (or those at ``rows``, in that order),
        ``CHUNK_IMAGES`` at a time."""
        import numpy as np
        import pyarrow as pa

        at = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        for lo in range(0, len(at), CHUNK_IMAGES):
            part = at[lo:lo + CHUNK_IMAGES]
            images: list[ImageRow] = self.images.take(pa.array(part)).to_pylist()
            spans = [self._ann_rows[self._starts[r]:self._ends[r]] for r in part.tolist()]
            wanted = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
            anns: list[AnnotationRow] = self._annotations.take(pa.array(wanted)).to_pylist()
            out, k = [], 0
            for im, span in zip(images, spans):
                out.append((im, anns[k:k + len(span)]))
                k += len(span)
            yield out

    def rows_where(self, mask: Any) -> Any:
        """The selected image rows where ``mask`` (a boolean Arrow array over them) holds."""
        import numpy as np
        import pyarrow.compute as pc

        return np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))


def derived(values: Any, fn: Callable[[str], str]) -> Any:
    """``fn`` of each string of ``values`` (an Arrow array) as an Arrow array, computed a chunk at a time."""
    import pyarrow as pa

    parts = [pa.array([fn(v) for v in values.slice(lo, CHUNK_IMAGES).to_pylist()], pa.string())
             for lo in range(0, len(values), CHUNK_IMAGES)]
    return pa.chunked_array(parts, pa.string()).combine_chunks()


def repeated(values: Any) -> set[str]:
    """The strings that occur more than once in ``values`` (an Arrow array)."""
    import pyarrow.compute as pc

    if not len(values):
        return set()
    counts = pc.value_counts(values)
    found: set[str] = set(counts.field("values").filter(pc.greater(counts.field("counts"), 1)).to_pylist())
    return found


def file_name(path: str) -> str:
    """``PurePosixPath(path).name``, without making a path object for a plain ``a/b/c.jpg``."""
    name = path.rpartition("/")[2]
    return name if name not in ("", ".", "..") and "//" not in path else PurePosixPath(path).name


class FlatNames:
    """Path → file name for formats with one image folder (or one per ``group``); a name used by two
    images of a folder is made unique from its folders (``train/a.jpg`` → ``train__a.jpg``).
    Holds the names that repeat, not a name per image."""

    def __init__(self, paths: Any, groups: Any = None) -> None:
        import pyarrow.compute as pc

        names = derived(paths, file_name)
        if groups is not None:
            names = pc.binary_join_element_wise(pc.fill_null(groups, ""), names, "\x00")
        self._repeated = repeated(names)
        self._grouped = groups is not None

    def __call__(self, path: str, group: str | None = None) -> str:
        name = file_name(path)
        key = f"{group or ''}\x00{name}" if self._grouped else name
        return path.replace("/", "__") if key in self._repeated else name


def place(key: str, dst: Path, image_files: Mapping[str, Any], link: Link | None) -> bool:
    """Copy (or ``link``) the image behind ``key`` to ``dst``; False if we have no file.

    ``link`` gets the mapping's value as it is (a dataset export maps to store objects)."""
    src = image_files.get(key)
    if src is None:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if link is not None:
        link(src, dst)
    else:
        shutil.copyfile(src, dst)
    return True


def attrs(text: str) -> dict[str, Any]:
    """An ``attributes``/``tags`` cell: a JSON object of whatever the source wrote."""
    value: dict[str, Any] = json.loads(text) if text and text != "{}" else {}
    return value


def num(value: float) -> str:
    """Shortest exact text: ``12`` for whole numbers, ``repr`` otherwise (round-trips)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
