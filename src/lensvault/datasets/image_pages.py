"""Images of a vision dataset version with their annotations, a page at a time.

What the server's image grid, image page and diff overlays read (and ``Vault.images`` /
``Vault.image`` / ``Vault.images_at`` return). Pages are keyset-paged by image id (``after``):
the next page starts after the last id shown, so a page never shifts when read again (a
version is immutable anyway) and costs the same wherever it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lensvault.errors import NotFound, UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from lensvault.annotations.model import ClassMap
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


def _vision(ds: Dataset) -> tuple[pa.Table, pa.Table, ClassMap]:
    images, anns, cm = ds.images(), ds.annotations(), ds.class_map()
    if images is None or anns is None or cm is None:
        raise UsageError(f"{ds.ref} has no annotations", where=ds.ref,
                         fix="images and boxes are kept for versions snapshotted with --format")
    return images, anns, cm


def _class_name(cm: ClassMap, cid: int) -> str:
    try:
        return str(cm.name_of(cid))
    except KeyError:
        return f"<unknown {cid}>"


def _annotations_by_image(anns: pa.Table, paths: list[str], cm: ClassMap, *,
                          full: bool) -> dict[str, list[dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
    if not paths or not anns.num_rows:
        return out
    rows = anns.filter(pc.is_in(anns["image"], value_set=pa.array(paths, pa.string()))).to_pylist()
    for r in sorted(rows, key=lambda r: (r["image"], r["index"])):
        a: dict[str, Any] = {"index": r["index"], "class_id": r["class_id"], "class": _class_name(cm, r["class_id"]),
                             "kind": r["kind"], "bbox": [r["x"], r["y"], r["w"], r["h"]]}
        if r["polygon"]:
            a["polygon"] = r["polygon"]
        if r["keypoints"]:  # small, and drawn wherever the image is: with its class's skeleton
            a["keypoints"] = r["keypoints"]
            schema = cm.keypoints.get(r["class_id"])
            a["skeleton"] = schema["skeleton"] if schema else []
        if full:
            a.update({k: r[k] for k in ("iscrowd", "difficult", "truncated", "occluded")})
            a["attributes"] = json.loads(r["attributes"] or "{}")
            if r["rle"]:
                a["rle"] = r["rle"]
        out[r["image"]].append(a)
    return out


def _image_dict(row: dict[str, Any], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"image_id": row["image_id"], "path": row["path"], "sha256": row.get("sha256"),
            "width": row["width"], "height": row["height"], "orientation": row["orientation"],
            "split": row["split"], "tags": json.loads(row["tags"] or "{}"), "annotations": annotations}


def _tag_mask(images: pa.Table, tag: str) -> pa.Array:
    """``key`` (the image has the tag) or ``key=value``; tags are a canonical JSON object."""
    import pyarrow as pa

    key, _, value = tag.partition("=")
    keep = []
    for text in images["tags"].to_pylist():
        tags = json.loads(text or "{}")
        keep.append(key in tags and (not value or str(tags[key]) == value))
    return pa.array(keep, pa.bool_())


def image_page(ds: Dataset, *, split: str | None = None, class_name: str | None = None, tag: str | None = None,
               after: int = 0, limit: int = 48) -> ImagePage:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit {limit} is out of range", where="limit", fix=f"ask for 1 to {MAX_LIMIT} images")
    images, anns, cm = _vision(ds)
    table = images
    if split:
        table = table.filter(pc.equal(table["split"], split))
    if tag:
        table = table.filter(_tag_mask(table, tag))
    if class_name:
        if class_name not in cm.names:
            raise NotFound(f"{ds.ref} has no class {class_name!r}", where=ds.ref,
                           fix=f"classes: {', '.join(cm.names)}")
        cid = cm.ids[list(cm.names).index(class_name)]
        having = pc.unique(anns.filter(pc.equal(anns["class_id"], cid))["image"])
        table = table.filter(pc.is_in(table["path"], value_set=having))
    total = table.num_rows
    table = table.filter(pc.greater(table["image_id"], pa.scalar(after, pa.int64())))
    table = table.take(pc.sort_indices(table["image_id"]))
    more = table.num_rows > limit
    rows = table.slice(0, limit).to_pylist()
    by_image = _annotations_by_image(anns, [r["path"] for r in rows], cm, full=False)
    items = [_image_dict(r, by_image[r["path"]]) for r in rows]
    filters = {k: v for k, v in (("split", split), ("class", class_name), ("tag", tag)) if v}
    return ImagePage(ds.ref, total, items, after, limit, items[-1]["image_id"] if more and items else None,
                     filters, list(cm.names))


def image_details(ds: Dataset, image_id: int) -> ImageDetails:
    import pyarrow.compute as pc

    images, anns, cm = _vision(ds)
    rows = images.filter(pc.equal(images["image_id"], image_id)).to_pylist()
    if not rows:
        raise NotFound(f"{ds.ref} has no image with id {image_id}", where=ds.ref,
                       fix="image ids are listed by the images page of the version")
    row = rows[0]
    return ImageDetails(ds.ref, _image_dict(row, _annotations_by_image(anns, [row["path"]], cm, full=True)[row["path"]]))


def images_at(ds: Dataset, paths: list[str]) -> ImageSet:
    import pyarrow as pa
    import pyarrow.compute as pc

    images, anns, cm = _vision(ds)
    wanted = list(dict.fromkeys(paths))
    rows = images.filter(pc.is_in(images["path"], value_set=pa.array(wanted, pa.string()))).to_pylist()
    by_image = _annotations_by_image(anns, [r["path"] for r in rows], cm, full=False)
    found = {r["path"]: _image_dict(r, by_image[r["path"]]) for r in rows}
    return ImageSet(ds.ref, {p: found[p] for p in wanted if p in found}, [p for p in wanted if p not in found])
