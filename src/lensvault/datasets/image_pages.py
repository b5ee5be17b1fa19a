"""Images of a vision dataset version with their annotations, a page at a time.

What the server's image grid, image page and diff overlays read (and ``Vault.images`` /
``Vault.image`` / ``Vault.images_at`` return). Pages are keyset-paged by image id (``after``):
the next page starts after the last id shown, so a page never shifts when read again (a
version is immutable anyway) and costs the same wherever it is: each is read through the
version's image index (lensvault.datasets.image_index), built once per snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lensvault.errors import NotFound, UsageError

if TYPE_CHECKING:
    from lensvault.datasets.handle import Dataset

__all__ = ["ImageDetails", "ImagePage", "ImageSet", "image_details", "image_page", "images_at"]

MAX_LIMIT = 500


@dataclass(frozen=True)
class ImagePage:
    """``GET …/images``: one page of images (each with its annotations), the filters applied,
    how many images match in all, and ``next`` (the ``after`` of the next page, None at the end)."""

    ref: str
    total: int
    items: list[dict[str, Any]]
    after: int
    limit: int
    next: int | None
    filters: dict[str, str] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "filters": self.filters, "total": self.total, "after": self.after,
                "limit": self.limit, "next": self.next, "truncated": self.next is not None,
                "classes": self.classes, "items": self.items}


@dataclass(frozen=True)
class ImageDetails:
    """``GET …/images/{id}``: one image and every annotation of it, attributes included."""

    ref: str
    image: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, **self.image}


@dataclass(frozen=True)
class ImageSet:
    """Images of a version by path (the diff page's overlays); ``missing``: paths it lacks."""

    ref: str
    items: dict[str, dict[str, Any]]
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "items": list(self.items.values()), "missing": self.missing}


def image_page(ds: Dataset, *, split: str | None = None, class_name: str | None = None, tag: str | None = None,
               after: int = 0, limit: int = 48) -> ImagePage:
    from lensvault.datasets.image_index import image_index

    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit {limit} is out of range", where="limit", fix=f"ask for 1 to {MAX_LIMIT} images")
    index = image_index(ds)
    rows = index.rows(split=split, class_name=class_name, tag=tag)
    items, more = index.page(rows, after, limit)
    filters = {k: v for k, v in (("split", split), ("class", class_name), ("tag", tag)) if v}
    return ImagePage(ds.ref, len(rows), items, after, limit, items[-1]["image_id"] if more and items else None,
                     filters, list(index.class_map.names))


def image_details(ds: Dataset, image_id: int) -> ImageDetails:
    from lensvault.datasets.image_index import image_index

    index = image_index(ds)
    row = index.row_of_id(image_id)
    if row is None:
        raise NotFound(f"{ds.ref} has no image with id {image_id}", where=ds.ref,
                       fix="image ids are listed by the images page of the version")
    return ImageDetails(ds.ref, index.items([row], full=True)[0])


def images_at(ds: Dataset, paths: list[str]) -> ImageSet:
    from lensvault.datasets.image_index import image_index

    index = image_index(ds)
    wanted = list(dict.fromkeys(paths))
    rows = index.rows_of_paths(wanted)
    found = dict(zip(rows, index.items(list(rows.values()), full=False)))
    return ImageSet(ds.ref, {p: found[p] for p in wanted if p in found}, [p for p in wanted if p not in found])
