"""COCO's ``area`` of every annotation of a version, as ``dataset export --format coco`` writes it,
computed once per version and machine.

A polygon's area is that of its rasterized mask (pycocotools ``frPyObjects`` + ``area``): what
decides APs/APm/APl, for boxes too. Rasterizing is most of what reading a version's ground truth
costs (40,000 polygons: ~1 s on a quiet core), and it is a pure function of the version's
annotations table, which never changes. So the areas are kept beside the stat caches, named by
that table's object id: ``.lensvault/cache/areas/<oid>.npy``. A missing, damaged or foreign file
is recomputed (never trusted beyond its length and dtype); it is written whole to a temp file and
renamed, so a reader never sees half of one. Deleting the folder costs one recomputation.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

__all__ = ["annotation_areas", "compute_areas"]

CACHE_DIR = "areas"


def annotation_areas(cache_root: Path | None, oid: str | None, annotations: pa.Table, sizes: dict[str, tuple[int, int]]
                     ) -> npt.NDArray[np.float64]:
    """The area of each row of ``annotations`` (``sizes``: image path → (height, width)), from
    the cache under ``cache_root`` when it holds this table's (``oid``)."""
    import numpy as np

    path = cache_root / CACHE_DIR / f"{oid}.npy" if cache_root is not None and oid else None
    if path is not None:
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.dtype == np.float64 and cached.shape == (annotations.num_rows,):
                return cached
        except (OSError, ValueError, EOFError):
            pass  # missing or damaged: recomputed below
    areas = compute_areas(annotations, sizes)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, areas, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only vault still evaluates; it recomputes next time
    return areas


def compute_areas(annotations: pa.Table, sizes: dict[str, tuple[int, int]]) -> npt.NDArray[np.float64]:
    """Per row: an RLE's pixel count; a polygon's rasterized area (every ring of at least three
    points, its image's size known); else the box's ``w * h`` — the export's rule."""
    import json

    import numpy as np
    from pycocotools import mask as mask_utils

    t = annotations.select(["image", "w", "h", "polygon", "rle"])
    areas = (np.asarray(t.column("w").to_numpy(), dtype=np.float64)
             * np.asarray(t.column("h").to_numpy(), dtype=np.float64))
    rings: dict[tuple[int, int], list[tuple[int, list[float]]]] = {}
    for row, (image, polygon, rle) in enumerate(zip(t.column("image").to_pylist(), t.column("polygon").to_pylist(),
                                                    t.column("rle").to_pylist())):
        if rle is not None:
            r = json.loads(rle)
            areas[row] = float(mask_utils.area({"size": r["size"], "counts": r["counts"].encode("ascii")}))
            continue
        h, w = sizes.get(image, (0, 0))
        if not polygon or h <= 0 or w <= 0 or not all(len(p) >= 6 for p in polygon):
            continue
        if len(polygon) == 1:  # the common case: measured below, many rings per call
            rings.setdefault((h, w), []).append((row, polygon[0]))
        else:
            areas[row] = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygon, h, w))))
    for (h, w), items in rings.items():
        # One ring is one RLE: its area is what merge + area of that ring alone gives (the export's).
        # pycocotools' area() counts its inputs in a uint8: at most 255 per call.
        for start in range(0, len(items), 255):
            part = items[start:start + 255]
            found = mask_utils.area(mask_utils.frPyObjects([ring for _, ring in part], h, w))
            for (row, _), area in zip(part, found):
                areas[row] = float(area)
    return areas
