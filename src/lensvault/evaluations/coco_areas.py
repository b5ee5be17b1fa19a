"""COCO's ``area`` and mask of every annotation of a version, as ``dataset export --format coco``
writes them, computed once per version and machine.

A polygon's area is that of its rasterized mask (pycocotools ``frPyObjects`` + ``area``): what
decides APs/APm/APl, for boxes too; its mask, as COCO's compressed RLE, is what mask AP compares.
Rasterizing is most of what reading a version's ground truth costs (40,000 polygons: ~1 s on a
quiet core), and both are pure functions of the version's annotations and image sizes, which never
change. So they are kept beside the stat caches, named by the object ids (content hashes) of the
version's annotations and images tables: ``.lensvault/cache/areas/<key>.npy`` and
``.lensvault/cache/masks/<key>.json`` (one rasterization fills both). A missing, damaged or foreign
file is recomputed: an areas file is trusted no further than its length and dtype, a masks file no
further than the SHA-256 it starts with and its length. Each is written whole to a temp file and
renamed, so a reader never sees half of one. Deleting the folders costs one recomputation.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

__all__ = ["annotation_areas", "annotation_masks", "cache_key", "compute_masks"]

CACHE_DIR = "areas"
MASKS_DIR = "masks"

Masks = list[str | None]


def cache_key(tables: Mapping[str, Any]) -> str | None:
    """The cache name of a version's areas and masks: its annotations and images tables' object ids
    (a polygon is clipped to its image's frame, so the same annotations on other image sizes are
    other masks). None (nothing cached) when either is unknown."""
    ann, img = (tables.get("annotations") or {}).get("oid"), (tables.get("images") or {}).get("oid")
    return f"{ann}-{img}" if ann and img else None


def annotation_areas(cache_root: Path | None, key: str | None, annotations: pa.Table,
                     sizes: dict[str, tuple[int, int]]) -> npt.NDArray[np.float64]:
    """The area of each row of ``annotations`` (``sizes``: image path → (height, width)), from
    the cache under ``cache_root`` when it holds this version's (``key``, see ``cache_key``)."""
    cached = _read_areas(cache_root, key, annotations.num_rows)
    if cached is not None:
        return cached
    areas, masks = compute_masks(annotations, sizes)
    _write(cache_root, key, areas, masks)
    return areas


def annotation_masks(cache_root: Path | None, key: str | None, annotations: pa.Table,
                     sizes: dict[str, tuple[int, int]]) -> tuple[npt.NDArray[np.float64], Masks]:
    """The area of each row and, for each polygon row, its mask's compressed RLE ``counts`` in its
    image's frame (None for other rows: an RLE row's mask is its own, a row without a polygon or a
    frame has none) — from the cache when it holds both, else rasterized once and cached."""
    areas = _read_areas(cache_root, key, annotations.num_rows)
    masks = _read_masks(cache_root, key, annotations.num_rows) if areas is not None else None
    if areas is not None and masks is not None:
        return areas, masks
    areas, masks = compute_masks(annotations, sizes)
    _write(cache_root, key, areas, masks)
    return areas, masks


def compute_masks(annotations: pa.Table, sizes: dict[str, tuple[int, int]]
                  ) -> tuple[npt.NDArray[np.float64], Masks]:
    """Per row: an RLE's pixel count; a polygon's rasterized area (every ring of at least three
    points, its image's size known) and that mask's RLE counts; else the box's ``w * h`` — the
    export's rule."""
    import json

    import numpy as np
    from pycocotools import mask as mask_utils

    t = annotations.select(["image", "w", "h", "polygon", "rle"])
    areas = (np.asarray(t.column("w").to_numpy(), dtype=np.float64)
             * np.asarray(t.column("h").to_numpy(), dtype=np.float64))
    masks: Masks = [None] * t.num_rows
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
        if len(polygon) == 1:  # the common case: rasterized below, many rings per call
            rings.setdefault((h, w), []).append((row, polygon[0]))
        else:
            merged = mask_utils.merge(mask_utils.frPyObjects(polygon, h, w))
            areas[row] = float(mask_utils.area(merged))
            masks[row] = merged["counts"].decode("ascii")
    for (h, w), items in rings.items():
        # One ring is one RLE: its area is what merge + area of that ring alone gives (the export's).
        # pycocotools' area() counts its inputs in a uint8: at most 255 per call.
        for start in range(0, len(items), 255):
            part = items[start:start + 255]
            found = mask_utils.frPyObjects([ring for _, ring in part], h, w)
            for (row, _), area, rle in zip(part, mask_utils.area(found), found):
                areas[row] = float(area)
                masks[row] = rle["counts"].decode("ascii")
    return areas, masks


def _paths(cache_root: Path | None, key: str | None) -> tuple[Path, Path] | None:
    if cache_root is None or not key:
        return None
    return cache_root / CACHE_DIR / f"{key}.npy", cache_root / MASKS_DIR / f"{key}.json"


def _read_areas(cache_root: Path | None, key: str | None, rows: int) -> npt.NDArray[np.float64] | None:
    import numpy as np

    paths = _paths(cache_root, key)
    if paths is None:
        return None
    try:
        cached = np.load(paths[0], allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # missing or damaged: recomputed
    return cached if cached.dtype == np.float64 and cached.shape == (rows,) else None


def _read_masks(cache_root: Path | None, key: str | None, rows: int) -> Masks | None:
    import orjson

    paths = _paths(cache_root, key)
    if paths is None:
        return None
    try:
        data = paths[1].read_bytes()
    except OSError:
        return None
    digest, _, body = data.partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode("ascii") != digest:
        return None  # damaged or half-written by something else: recomputed
    try:
        masks = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(masks, list) or len(masks) != rows:
        return None
    return masks


def _write(cache_root: Path | None, key: str | None, areas: npt.NDArray[np.float64], masks: Masks) -> None:
    import numpy as np
    import orjson

    paths = _paths(cache_root, key)
    if paths is None:
        return
    body = orjson.dumps(masks)
    try:
        for path, write in ((paths[0], lambda f: np.save(f, areas, allow_pickle=False)),
                            (paths[1], lambda f: f.write(hashlib.sha256(body).hexdigest().encode("ascii")
                                                         + b"\n" + body))):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            with open(tmp, "wb") as f:
                write(f)
            os.replace(tmp, path)
    except OSError:
        pass  # a read-only vault still evaluates; it recomputes next time
