"""Painting a version's annotations into a class-index map: what semantic evaluation scores
against and what the masks export writes (one rule for both)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["BACKGROUND_NAMES", "background_id", "rasterize_ground_truth"]

DEFAULT_IGNORE_INDEX = 255
BACKGROUND_NAMES = frozenset({"background", "_background_", "__background__"})


def background_id(class_ids: Sequence[int], names: Sequence[str]) -> int | None:
    found = [cid for cid, name in zip(class_ids, names) if name.lower() in BACKGROUND_NAMES]
    return found[0] if len(found) == 1 else None


def decode_rle(text: str) -> npt.NDArray[np.uint8]:
    """The mask of an ``rle`` cell (canonical JSON of COCO's compressed RLE), height x width."""
    from pycocotools import mask as mask_utils

    rle = json.loads(text)
    decoded: npt.NDArray[np.uint8] = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
    return decoded


def rasterize_ground_truth(image: Mapping[str, Any], annotations: Sequence[Mapping[str, Any]],
                           fill: int, ignore_index: int = DEFAULT_IGNORE_INDEX) -> npt.NDArray[np.int64]:
    """An image's index map from its annotations (rows of the normalized annotations table):
    masks, RLE and polygons painted in order over ``fill``; crowd regions painted ``ignore_index``.
    Boxes, keypoints and image labels carry no pixels and are skipped."""
    import numpy as np
    from pycocotools import mask as mask_utils

    h, w = int(image["height"]), int(image["width"])
    out = np.full((h, w), fill, dtype=np.int64)
    for a in annotations:
        if a["rle"] is not None:
            decoded = decode_rle(a["rle"])
        elif a["polygon"] and all(len(p) >= 6 for p in a["polygon"]):
            decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(a["polygon"], h, w)))
        else:
            continue
        if decoded.shape != (h, w):
            continue  # a mask of another frame cannot be placed; validate reports it at import
        out[decoded.astype(bool)] = ignore_index if a["iscrowd"] else int(a.get("class_id", a.get("category_id")))
    return out
