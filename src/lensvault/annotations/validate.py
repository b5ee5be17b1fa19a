"""Checks that hold for every format, run on the normalized tables.

Format-specific checks (a YOLO value outside [0, 1], an image file that is not on disk)
happen in the importers, which know the line; these checks are vectorized over the
tables and use the importer's origin record to point at the source file and position.

Finding codes (all warnings — the data is kept as given, never clipped):

    box-outside-image   a box extends past the image border
    zero-area-box       a box, polygon or mask with zero width or height
    unknown-class       a class id the class map does not name
    missing-image       an annotated image that is not in the images table / not on disk
    unannotated-image   an image with no annotations (kept: negatives are valid data)
    duplicate-file-name the same file name in two folders (ambiguous when flattened)
    exif-rotated        EXIF orientation 5-8: viewers swap width and height

and one error, whatever the importer (each importer should catch it first, at its line):

    bad-value           a coordinate, polygon or keypoint value that is NaN or infinite
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from lensvault.annotations.model import AnnotationSet, Finding
from lensvault.errors import AnnotationError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

__all__ = ["raise_errors", "raise_if_strict", "validate"]

# Boxes computed from float polygons or written with rounding sit a hair outside the
# border; a thousandth of a pixel is not a labelling mistake.
_EPS = 1e-3

Origin = Callable[[int], tuple[str, str]]


# Rows checked at once: the per-row arrays of a check (a dozen of 8 bytes) are per batch, not
# per table (at 10M boxes a whole-table pass held about 1 GB of them).
_BATCH = 65_536

# The row-level checks, in the order their findings are listed.
_CHECKS = ("nonfinite", "missing", "outside", "zero", "unknown")


class _Flagged(NamedTuple):
    """What a flagged row's findings say about it."""

    image: str
    position: int  # the row's "index" (within its image)
    kind: str
    class_id: int
    x: float
    y: float
    w: float
    h: float
    iw: float
    ih: float


def validate(aset: AnnotationSet, *, origin: Origin | None = None,
             image_origin: Callable[[str], str] | None = None) -> list[Finding]:
    """Return the generic findings for ``aset`` (it is not modified).

    ``origin(row)`` gives (file, location) of annotation ``row``; ``image_origin(path)``
    the file that declares an image. Without them, locations name the image and index.
    """
    import numpy as np
    import pyarrow.compute as pc

    images, anns = aset.images, aset.annotations
    paths = images.column("path")
    width = images.column("width").to_numpy().astype(np.float64)
    height = images.column("height").to_numpy().astype(np.float64)
    class_map = np.asarray(aset.classes.ids, dtype=np.int32)
    rows: dict[str, list[int]] = {check: [] for check in _CHECKS}
    flagged: dict[int, _Flagged] = {}
    start = 0
    lookup = image_rows(paths, anns.num_rows)
    for batch in anns.to_batches(max_chunksize=_BATCH):
        _check_batch(batch, start, lookup, width, height, class_map, rows, flagged)
        start += batch.num_rows

    def where(row: int) -> tuple[str, str]:
        if origin is not None:
            file, loc = origin(row)
            if file:
                return file, loc
        return flagged[row].image, f"annotation {flagged[row].position}"

    findings: list[Finding] = []
    for row in rows["nonfinite"]:
        f = flagged[row]
        findings.append(Finding(
            "error", "bad-value",
            f"a coordinate of this {f.kind} is NaN or infinite (box x={f.x:g} y={f.y:g} w={f.w:g} h={f.h:g})",
            *where(row)))
    findings.extend(Finding("warning", "missing-image",
                            f"annotation refers to image {flagged[row].image!r}, which is not in the dataset",
                            *where(row)) for row in rows["missing"])
    for row in rows["outside"]:
        f = flagged[row]
        findings.append(Finding(
            "warning", "box-outside-image",
            f"box x={f.x:g} y={f.y:g} w={f.w:g} h={f.h:g} extends past the "
            f"{f.iw:g}x{f.ih:g} image {f.image!r}", *where(row)))
    for row in rows["zero"]:
        f = flagged[row]
        findings.append(Finding(
            "warning", "zero-area-box", f"box has zero area (w={f.w:g}, h={f.h:g}) in image {f.image!r}",
            *where(row)))
    findings.extend(Finding(
        "warning", "unknown-class",
        f"class id {flagged[row].class_id} is not in the class map {list(aset.classes.ids)}", *where(row))
        for row in rows["unknown"])

    annotated = set(pc.unique(anns.column("image")).to_pylist())
    path_list = paths.to_pylist()
    findings.extend(Finding("warning", "unannotated-image", f"image {path!r} has no annotations",
                            image_origin(path) if image_origin else path, "image")
                    for path in path_list if path not in annotated)

    by_name: dict[str, list[str]] = {}
    for path in path_list:
        by_name.setdefault(path.rpartition("/")[2], []).append(path)  # not PurePosixPath: ~40 µs each
    for name, same in by_name.items():
        if len(same) > 1:
            findings.append(Finding(
                "warning", "duplicate-file-name",
                f"file name {name!r} appears in {len(same)} folders: {', '.join(same[:5])}",
                same[1], "image"))

    orient = images.column("orientation").to_numpy()
    for row in np.flatnonzero(orient >= 5).tolist():
        path = path_list[row]
        findings.append(Finding(
            "warning", "exif-rotated",
            f"EXIF orientation {int(orient[row])} rotates {path!r} by 90 degrees: viewers show it "
            f"{int(height[row])}x{int(width[row])}, while boxes are in stored {int(width[row])}x"
            f"{int(height[row])} pixels", path, "EXIF"))
    return findings


def image_rows(paths: pa.ChunkedArray, n_rows: int) -> Callable[[Any], tuple[Any, Any]]:
    """How a batch of annotation rows finds each one's image: ``lookup(image column)`` gives
    (the image's row, 0 where there is none; whether there is none). ``pc.index_in`` hashes
    all of ``paths`` on every call: once per 65,536-row batch of a 10M-box file that was the
    1M image paths hashed 150 times (61 s of the import's 200). With more than one batch, the
    paths are hashed once, into a dict (first row of a path, as ``index_in`` finds)."""
    import numpy as np
    import pyarrow.compute as pc

    if n_rows <= _BATCH:
        def one_hash(image_of: Any) -> tuple[Any, Any]:
            found = pc.index_in(image_of, value_set=paths)
            return (found.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64),
                    found.is_null().to_numpy(zero_copy_only=False))
        return one_hash

    row_of: dict[str, int] = {}
    for i, path in enumerate(paths.to_pylist()):
        row_of.setdefault(path, i)

    def one_dict(image_of: Any) -> tuple[Any, Any]:
        # Each distinct path of the batch looked up once (boxes come several to an image).
        codes = image_of.dictionary_encode()
        at = np.array([row_of.get(p, -1) for p in codes.dictionary.to_pylist()] or [-1], dtype=np.int64)
        got = at[codes.indices.fill_null(0).to_numpy(zero_copy_only=False)]
        got[codes.indices.is_null().to_numpy(zero_copy_only=False)] = -1
        missing = got < 0
        got[missing] = 0
        return got, missing
    return one_dict


def _check_batch(batch: pa.RecordBatch, start: int, lookup: Callable[[Any], tuple[Any, Any]],
                 width: npt.NDArray[np.float64],
                 height: npt.NDArray[np.float64], class_map: npt.NDArray[np.int32], rows: dict[str, list[int]],
                 flagged: dict[int, _Flagged]) -> None:
    """The row-level checks of the annotation rows ``batch`` (from table row ``start``): each
    check's flagged rows go to ``rows``, what their findings say to ``flagged``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    image_of = batch.column("image")
    idx, missing = lookup(image_of)
    iw = width[idx] if len(width) else np.zeros(n)
    ih = height[idx] if len(height) else np.zeros(n)
    x, y, w, h = (batch.column(name).to_numpy() for name in ("x", "y", "w", "h"))
    areal = pc.and_(pc.not_equal(batch.column("kind"), "keypoints"),
                    pc.invert(pc.match_substring_regex(batch.column("attributes"),
                                                       '"shape_type":"(line|linestrip|point|points)"')))
    areal = areal.to_numpy(zero_copy_only=False)
    known_size = (iw > 0) & (ih > 0) & ~missing
    outside = known_size & ((x < -_EPS) | (y < -_EPS) | (x + w > iw + _EPS) | (y + h > ih + _EPS))
    zero = areal & ((w <= 0) | (h <= 0))
    unknown = ~np.isin(batch.column("class_id").to_numpy(), class_map)
    nonfinite = _non_finite(batch)
    outside &= ~nonfinite  # reported as bad-value instead
    zero &= ~nonfinite
    masks = {"nonfinite": nonfinite, "missing": missing, "outside": outside, "zero": zero, "unknown": unknown}
    hit = np.flatnonzero(nonfinite | missing | outside | zero | unknown)
    if not len(hit):
        return
    picked = batch.select(["image", "index", "kind", "class_id", "x", "y", "w", "h"]).take(pa.array(hit))
    for r, image, index, kind, class_id, bx, by, bw, bh in zip(
            hit.tolist(), *(picked.column(i).to_pylist() for i in range(picked.num_columns))):
        flagged[start + r] = _Flagged(image, index, kind, class_id, bx, by, bw, bh, float(iw[r]), float(ih[r]))
    for check in _CHECKS:
        rows[check].extend((np.flatnonzero(masks[check]) + start).tolist())


def _non_finite(anns: pa.RecordBatch) -> npt.NDArray[np.bool_]:
    """Rows whose box, polygon or keypoints hold NaN or ±Infinity (no comparison catches NaN:
    a NaN box is never "outside" nor "zero-area")."""
    import numpy as np
    import pyarrow.compute as pc

    bad = np.zeros(len(anns), dtype=bool)
    for name in ("x", "y", "w", "h"):
        bad |= ~np.isfinite(anns.column(name).to_numpy())
    for name, levels in (("polygon", 2), ("keypoints", 1)):
        col = anns.column(name)
        if col.null_count == len(col):
            continue
        values = col
        for _ in range(levels):
            values = pc.list_flatten(values)
        if pc.all(pc.is_finite(values)).as_py() in (True, None):
            continue
        # Rare: find the rows (a list_parent_indices per level maps values back to rows).
        parents = pc.list_parent_indices(col)
        if levels == 2:
            inner = pc.list_flatten(col)
            parents = pc.take(parents, pc.list_parent_indices(inner))
        rows = pc.filter(parents, pc.invert(pc.is_finite(values)))
        bad[np.unique(rows.to_numpy(zero_copy_only=False))] = True
    return bad


def raise_errors(findings: list[Finding], *, source: str) -> None:
    """Error-level findings stop an import in any mode: the value cannot be stored."""
    bad = [f for f in findings if f.level == "error"]
    if not bad:
        return
    first = bad[0]
    where = f"{first.file}, {first.location}" if first.location else first.file
    raise AnnotationError(
        f"{len(bad)} annotation error(s) ({', '.join(sorted({f.code for f in bad}))}); first: {first.message}",
        where=where, fix=f"correct the listed values in {source}", findings=[f.to_dict() for f in bad])


def raise_if_strict(findings: list[Finding], *, strict: bool, source: str) -> None:
    """In strict mode every warning is an error: stop before anything is stored."""
    if not strict:
        return
    bad = [f for f in findings if f.level in {"warning", "error"}]
    if not bad:
        return
    first = bad[0]
    codes = sorted({f.code for f in bad})
    what = (f"{len(bad)} annotation problem(s) in strict mode ({', '.join(codes)}); "
            f"first: {first.message}")
    where = f"{first.file}, {first.location}" if first.location else first.file
    raise AnnotationError(
        what, where=where,
        fix=f"fix the listed findings in {source}, or import without --strict to keep them as warnings",
        findings=[f.to_dict() for f in bad])
