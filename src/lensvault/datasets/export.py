"""``dataset export``: a version's images and annotations in a training format."""

from __future__ import annotations

import os
from pathlib import Path

from lensvault.errors import InputError, UsageError
from lensvault.store.base import LinkMode
from lensvault.store.linking import LinkStrategy

__all__ = ["export_version", "annotation_set"]


def annotation_set(dataset):
    from lensvault.annotations.model import AnnotationSet

    if not dataset.is_vision:
        raise UsageError(
            f"{dataset.ref} has no annotations",
            where=dataset.ref,
            fix="snapshot the folder with --format auto|coco|yolo|voc|labelme|masks to record annotations",
        )
    images = dataset.images()
    return AnnotationSet(images=images.drop_columns(["sha256"]), annotations=dataset.annotations(),
                         classes=dataset.class_map(), source_format=dataset.manifest().source.get("format", ""))


def export_version(dataset, dest: Path, *, format: str, split: str | None = None, link: LinkMode = LinkMode.AUTO) -> dict:
    from lensvault.annotations import export

    dest = Path(dest).absolute()
    if dest.exists() and any(dest.iterdir()):
        raise InputError("the destination folder is not empty", where=str(dest), fix="choose a new or empty folder")
    aset = annotation_set(dataset)
    images = dataset.images()
    if split is not None:
        known = set(x for x in images["split"].to_pylist() if x)
        if split not in known:
            raise UsageError(f"{dataset.ref} has no split {split!r}", where="--split",
                             fix=f"known splits: {', '.join(sorted(known)) or 'none'}")
    store = dataset.vault.store
    image_files = {p: store.oid_to_path(sha) for p, sha in zip(images["path"].to_pylist(), images["sha256"].to_pylist()) if sha}
    strategy = LinkStrategy(link)

    def place(src: Path, dst: Path) -> None:
        strategy.apply(str(src), str(dst))
        if strategy.effective in (LinkMode.COPY, LinkMode.REFLINK):
            os.chmod(dst, 0o644)

    export(aset, image_files, dest, format=format, split=split, link=place)
    n = images.num_rows if split is None else sum(1 for s in images["split"].to_pylist() if s == split)
    return {"ref": dataset.ref, "dest": str(dest), "format": format, "split": split, "images": n}
