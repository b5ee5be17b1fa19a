"""COCO segmentations, checked: polygons and RLE masks as the model stores them.

pycocotools validates nothing: counts that do not sum to ``height × width`` decode to
whatever memory follows; a 4-value polygon ring is read as a box and shorter ones crash it (such
rings are kept, with a finding, for tools that can use them).
So each segmentation is checked here, at its position in the file, before pycocotools sees it.
"""

from __future__ import annotations

from typing import Any

from lensvault.annotations._common import describe, fail
from lensvault.annotations.fields import finite_numbers, integer
from lensvault.annotations.model import Finding, canonical_json

__all__ = ["decode_counts", "kp_bbox", "poly_bbox", "polygon", "rle", "short_ring"]

_UINT32_MAX = 2**32 - 1  # pycocotools stores runs as uint32
_RLE_FIX = ("write RLE as {\"size\": [height, width], \"counts\": ...} with counts (a list of run lengths, "
            "or pycocotools' compressed string) summing to height*width")


def rle(seg: dict[str, Any], size_hw: tuple[int, int], file: str, loc: str) -> tuple[str, list[float], list[int]]:
    """Compressed RLE as canonical JSON, its bbox and its [h, w]. Uncompressed counts are encoded.

    pycocotools checks nothing: counts that do not sum to h*w decode to whatever memory
    follows, so the sum is checked here, for compressed strings too.
    """
    from pycocotools import mask as mask_utils

    size = seg.get("size")
    if size is None:
        size = list(size_hw)
    elif type(size) is not list or len(size) != 2:
        fail(f"RLE size is {describe(size)}, not [height, width]", file, f"{loc}.size", fix=_RLE_FIX, code="bad-rle")
    h, w = (integer(v, file, f"{loc}.size[{i}]", what="RLE size", fix=_RLE_FIX, lo=0, code="bad-rle")
            for i, v in enumerate(size))
    counts = seg.get("counts")
    runs: list[int]
    if type(counts) is list:
        if not (set(map(type, counts)) <= {int} and all(0 <= c <= _UINT32_MAX for c in counts)):
            bad = next(i for i, c in enumerate(counts) if type(c) is not int or not 0 <= c <= _UINT32_MAX)
            fail(f"RLE counts hold {describe(counts[bad])}, not a run length", file, f"{loc}.counts[{bad}]",
                 fix=_RLE_FIX, code="bad-rle")
        runs = counts
    elif type(counts) is str:
        decoded = decode_counts(counts)
        if decoded is None:
            fail("RLE counts is not a valid compressed string", file, f"{loc}.counts", fix=_RLE_FIX, code="bad-rle")
        runs = decoded
    else:
        fail(f"RLE counts is {describe(counts)}, not a list of run lengths or a compressed string", file,
             f"{loc}.counts", fix=_RLE_FIX, code="bad-rle")
    if sum(runs) != h * w:
        fail(f"RLE counts cover {sum(runs):,} pixels, but size {h}x{w} has {h * w:,}", file, f"{loc}.counts",
             fix=_RLE_FIX, code="bad-rle")
    encoded: dict[str, Any]  # pycocotools' RLE object: {"size": [h, w], "counts": bytes}
    try:
        if type(counts) is str:
            encoded = {"size": [h, w], "counts": counts.encode()}
        else:  # a list of run lengths
            encoded = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        bbox = mask_utils.toBbox(encoded).tolist()
    except Exception as e:  # noqa: BLE001 - pycocotools raises bare exceptions; the checks above should leave none
        fail(f"invalid RLE segmentation: {e}", file, loc, fix=_RLE_FIX, code="bad-rle")
    counts_out = encoded["counts"]
    if isinstance(counts_out, bytes):
        counts_out = counts_out.decode("ascii")
    return canonical_json({"counts": counts_out, "size": [h, w]}), bbox, [h, w]



def decode_counts(text: str) -> list[int] | None:
    """Run lengths of pycocotools' compressed RLE string (``rleFrString`` in maskApi.c), or
    None when it is not one: characters outside '0'..'o', a number cut off at the end, a
    negative or over-long run."""
    runs: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x = k = 0
        more = 1  # the continuation bit of the last character
        while more:
            if p >= n or k > 7:
                return None
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                return None
            x |= (c & 0x1F) << (5 * k)
            more = c & 0x20
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if not 0 <= x <= _UINT32_MAX:
            return None
        runs.append(x)
    return runs


def polygon(seg: list[Any], file: str, loc: str) -> list[list[float]]:
    """Rings as lists of floats. A flat list of numbers is one ring (some tools drop the
    outer list). An odd number of values, or none, is an error."""
    fix = "write segmentation as [[x1, y1, x2, y2, x3, y3, ...], ...]: rings of at least 3 x, y points"
    flat = type(seg[0]) is not list
    rings = [seg] if flat else seg
    out: list[list[float]] = []
    for j, ring in enumerate(rings):
        where = loc if flat else f"{loc}[{j}]"
        if type(ring) is not list:
            fail(f"polygon ring is {describe(ring)}, not a list of numbers", file, where, fix=fix,
                 code="bad-polygon")
        values = finite_numbers(ring, file, where, what="polygon", fix=fix, code="bad-polygon")
        if len(values) % 2:
            fail(f"polygon has an odd number of values ({len(values)}), not x, y pairs", file, where, fix=fix,
                 code="bad-polygon")
        if not values:
            fail("polygon ring is empty", file, where, fix=fix, code="bad-polygon")
        out.append(values)
    return out


# Open shapes our exporter writes as short rings (labelme lines and points): not degenerate.
_OPEN_SHAPES = frozenset({"line", "linestrip", "point", "points"})


def short_ring(polygon: list[list[float]], a: dict[str, Any], attrs: dict[str, Any] | None, shown: str, loc: str
               ) -> Finding | None:
    """A ring of fewer than 3 points is kept as given, with a finding: pycocotools reads a
    4-value ring as a box and fails on shorter ones, so tools downstream may choke on it."""
    short = next((j for j, ring in enumerate(polygon) if len(ring) < 6), None)
    if short is None:
        return None
    shape = (attrs or {}).get("shape_type", a.get("shape_type"))
    if isinstance(shape, str) and shape in _OPEN_SHAPES:
        return None
    return Finding("warning", "degenerate-polygon",
                   f"polygon ring has {len(polygon[short]) // 2} point(s); an area needs at least 3", shown,
                   f"{loc}.segmentation[{short}]")


def poly_bbox(polygon: list[list[float]]) -> list[float]:
    xs = [v for p in polygon for v in p[0::2]]
    ys = [v for p in polygon for v in p[1::2]]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)] if xs else []


def kp_bbox(kp: list[float]) -> list[float]:
    pts = [(kp[i], kp[i + 1]) for i in range(0, len(kp) - 2, 3) if kp[i + 2] > 0]
    if not pts:
        return [0.0, 0.0, 0.0, 0.0]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
