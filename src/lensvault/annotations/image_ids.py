"""Image ids: one number per image of a vision dataset version, the same wherever an id appears.

The rule (docs/formats.md, "Image ids"):

- The images table of a version stores ``image_id`` (int64, not null), assigned when the
  version is committed (``dataset snapshot`` and ``dataset fix`` alike).
- An image keeps the id it had in the parent version: the same path keeps its id, and so
  does a renamed image (the same sha256, held by one image in each version, whose old path
  is gone).
- New images get ids above every id the dataset has ever handed out (in any version: the
  high-water mark each version records, ``ids_issued``), + 1, + 2, … in path order; so an id
  removed by one version never comes back for another image. A first version numbers its
  images 1..N in path order.
- A version written before the column existed reads as 1 + the image's rank by path: the
  ids its evaluations and run files used then, so what was recorded stays consistent.

COCO exports (any split), the run's ``annotations/instances.json``, ``eval``,
``VisionDataset`` and ``Dataset.images()`` all read ids through :func:`image_ids`; nothing
else numbers images. Ids are stable across versions, so predictions made by id on 1.0.0
name the same images on 1.1.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["COLUMN", "assign_image_ids", "image_ids", "issued_through", "with_image_ids"]

COLUMN = "image_id"


def image_ids(images: pa.Table) -> list[int]:
    """The id of each row of the images table ``images``, in row order.

    The stored column when there is one; otherwise (a version written before ids were
    stored, or a table straight from an importer) 1 + the image's rank by path.
    """
    if COLUMN in images.column_names:
        stored: list[int] = images.column(COLUMN).to_pylist()
        return stored
    paths = images.column("path").to_pylist()
    rank = {p: n for n, p in enumerate(sorted(set(paths)), start=1)}
    return [rank[p] for p in paths]


def with_image_ids(images: pa.Table) -> pa.Table:
    """``images`` with its ``image_id`` column: the stored one, or the fallback of :func:`image_ids`."""
    if COLUMN in images.column_names:
        return images
    return _set_ids(images, image_ids(images))


def issued_through(images: pa.Table | None, issued: int = 0) -> int:
    """The high-water mark of image ids after a version with ``images``: the highest id it
    holds, or ``issued`` (the mark before it) if that is higher."""
    if images is None or not images.num_rows:
        return issued
    return max(issued, max(image_ids(images)))


def assign_image_ids(images: pa.Table, parent_images: pa.Table | None = None, *, issued: int = 0) -> pa.Table:
    """``images`` (a new version's images table, with ``sha256``) with the ids the rule gives it.

    ``parent_images`` is the parent version's images table (None for a first version or a
    parent without annotations); ``issued`` the highest id the dataset has handed out so far
    (any version's), which new images are numbered above.
    """
    paths = images.column("path").to_pylist()
    ids: dict[str, int] = {}
    top = issued
    if parent_images is not None and parent_images.num_rows:
        old_paths = parent_images.column("path").to_pylist()
        old_ids = image_ids(parent_images)
        top = max(top, max(old_ids))
        before = dict(zip(old_paths, old_ids))
        ids = {p: before[p] for p in paths if p in before}
        ids.update(_renamed(images, parent_images, before, set(paths)))
    for p in sorted(set(paths) - ids.keys()):
        top += 1
        ids[p] = top
    return _set_ids(images, [ids[p] for p in paths])


def _renamed(images: pa.Table, parent_images: pa.Table, before: dict[str, int], now: set[str]) -> dict[str, int]:
    """New path → the parent's id, for images whose bytes moved to a new path.

    Only when the content is held by exactly one image in each version and the old path
    is gone: a copy, or bytes shared by several images, says nothing about which is which.
    """
    if "sha256" not in images.column_names or "sha256" not in parent_images.column_names:
        return {}
    new_by_sha = _unique_by_sha(images)
    old_by_sha = _unique_by_sha(parent_images)
    out: dict[str, int] = {}
    for sha, new_path in new_by_sha.items():
        old_path = old_by_sha.get(sha)
        if old_path is not None and new_path not in before and old_path not in now:
            out[new_path] = before[old_path]
    return out


def _unique_by_sha(images: pa.Table) -> dict[str, str]:
    seen: dict[str, str | None] = {}
    for path, sha in zip(images.column("path").to_pylist(), images.column("sha256").to_pylist()):
        if sha is not None:
            seen[sha] = path if sha not in seen else None
    return {sha: path for sha, path in seen.items() if path is not None}


def _set_ids(images: pa.Table, ids: list[int]) -> pa.Table:
    import pyarrow as pa

    if COLUMN in images.column_names:
        images = images.drop_columns([COLUMN])
    return images.append_column(pa.field(COLUMN, pa.int64(), nullable=False), pa.array(ids, pa.int64()))
