"""Mask annotations (RLE or bitmap, stored as COCO RLE) as pictures to lay over their image: a
PNG the size of the image, the mask in one colour, half transparent, everything else clear.

Each is made once with Pillow and kept in the vault's cache under the annotations table it
comes from (``lensvault.image_cache``: gc removes it with that table). The page draws it as an
SVG ``<image>`` over the photo, so a page with many masks costs one small request each and no
RLE ever travels to the browser.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import TYPE_CHECKING

from lensvault.server.errors import HTTPProblem

if TYPE_CHECKING:
    from pathlib import Path

    from lensvault.vault import Vault

__all__ = ["MASK_KINDS", "TINTS", "mask_file", "mask_response", "mask_src", "mask_url", "render_mask"]

MASK_KINDS = ("rle", "mask")
ALPHA = 115  # of 255: the photo stays visible under the mask
TINTS = ("class", "unchanged", "added", "removed", "moved", "relabeled", "attributes_changed")
_DRAWING = "1"  # bump when the drawing changes: cached pictures of the old drawing are not reused


def mask_url(name: str, version: str, image_id: int, index: int, tint: str = "class") -> str:
    base = f"/api/v1/datasets/{name}/versions/{version}/images/{image_id}/masks/{index}"
    return base if tint == "class" else f"{base}?tint={tint}"


def mask_src(ref: str, image_id: int):
    """What the templates give ``svg.image_overlay``/``diff_overlay``: ``(index, tint)`` → the URL
    of that mask's picture, for image ``image_id`` of REF (``name@version``)."""
    name, _, version = ref.rpartition("@")
    return lambda index, tint="class": mask_url(name, version, image_id, index, tint)


def _colour(tint: str, class_id: int) -> tuple[int, int, int]:
    from lensvault.server.svg import CHANGE_COLOURS, class_colour

    hexa = class_colour(class_id) if tint == "class" else CHANGE_COLOURS[tint]
    return int(hexa[1:3], 16), int(hexa[3:5], 16), int(hexa[5:7], 16)


def render_mask(rle_json: str, colour: tuple[int, int, int], width: int, height: int) -> bytes:
    """The PNG of one mask: ``colour`` at ALPHA where the mask is set, clear elsewhere; a mask
    sized unlike its image (kept by the importer, with a finding) is stretched over it."""
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    rle = json.loads(rle_json)
    counts = rle["counts"]
    bits = mask_utils.decode({"size": rle["size"], "counts": counts.encode() if isinstance(counts, str) else counts})
    alpha = Image.fromarray((bits > 0).astype(np.uint8) * ALPHA, "L")
    if alpha.size != (width, height):
        alpha = alpha.resize((width, height), Image.Resampling.NEAREST)
    picture = Image.new("RGBA", alpha.size, (*colour, 0))
    picture.putalpha(alpha)
    out = io.BytesIO()
    picture.save(out, "PNG", optimize=True)
    return out.getvalue()


def mask_file(vault: Vault, ref: str, image_id: int, index: int, tint: str = "class") -> Path:
    """The cached PNG of mask ``index`` of image ``image_id`` of REF, made if it is not there yet."""
    from lensvault.image_cache import mask_path, write_atomically

    if tint not in TINTS:
        raise HTTPProblem(422, f"{tint[:40]!r} is not a mask tint", where="tint", fix=f"use one of {', '.join(TINTS)}")
    tables = vault.dataset(ref).manifest().tables
    if "annotations" not in tables:
        raise HTTPProblem(422, f"{ref} has no annotations", where=ref, fix="masks are kept for versions with --format")
    table_oid = tables["annotations"]["oid"]
    # Image ids are the images table's: the key names it too (two versions may share annotations).
    images_oid = (tables.get("images") or {}).get("oid", "")
    key = hashlib.sha256(f"{_DRAWING}\0{images_oid}\0{image_id}\0{index}\0{tint}".encode()).hexdigest()[:40]
    path = mask_path(vault.dir, table_oid, key)
    if path.exists():
        return path
    image = vault.image(ref, image_id).to_dict()
    found = next((a for a in image["annotations"] if a["index"] == index), None)
    if found is None or not found.get("rle"):
        raise HTTPProblem(404, f"image {image_id} of {ref} has no mask annotation #{index}", where=f"{ref}/{image_id}",
                          fix="see the image's annotations: masks are those of kind rle or mask")
    png = render_mask(found["rle"], _colour(tint, found["class_id"]), int(image["width"]), int(image["height"]))
    write_atomically(path, lambda out: out.write(png))
    return path


def mask_response(request, state, name: str, version: str, image_id: int, index: int, tint: str):
    from lensvault.server.objects import IMMUTABLE, cached_picture
    from lensvault.server.state import exact_ref

    ref = f"{name}@{version}"
    path = mask_file(state.vault, ref, image_id, index, tint)
    # An exact version never changes; a moving ref (latest) may point elsewhere tomorrow.
    return cached_picture(request, path, lambda: mask_file(state.vault, ref, image_id, index, tint),
                          media_type="image/png", etag=f'"{path.parent.name}-{path.stem}"',
                          cache_control=IMMUTABLE if exact_ref(ref) else "no-cache")
