"""``dataset export``: a version's images and annotations in a training format."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.errors import IntegrityError, LensVaultError, UsageError
from lensvault.store import local_links
from lensvault.store.base import LinkMode
from lensvault.store.linking import LinkStrategy

if TYPE_CHECKING:
    from lensvault.annotations.model import AnnotationSet
    from lensvault.datasets.handle import Dataset

__all__ = ["export_version", "annotation_set"]


def annotation_set(dataset: Dataset) -> AnnotationSet:
    from lensvault.annotations.model import AnnotationSet

    if not dataset.is_vision:
        raise UsageError(
            f"{dataset.ref} has no annotations",
            where=dataset.ref,
            fix="snapshot the folder with --format auto|coco|yolo|voc|labelme|masks to record annotations",
        )
    t = dataset.vision_tables()
    source = dataset.manifest().source or {}
    return AnnotationSet(images=t.images.drop_columns(["sha256"]), annotations=t.annotations, classes=t.classes,
                         source_format=source.get("format", ""), label_key=source.get("label_key"),
                         masks=source.get("masks"))


def export_version(dataset: Dataset, dest: Path, *, format: str, split: str | None = None,
                   link: LinkMode = LinkMode.AUTO) -> dict[str, Any]:
    from lensvault.annotations import export
    from lensvault.datasets.checkout import check_destination

    dest = check_destination(dest, "export")
    aset = annotation_set(dataset)
    if format in ("yolo", "voc"):  # image labels are no boxes (coco writes them in an image field)
        import pyarrow.compute as pc

        aset.annotations = aset.annotations.filter(pc.not_equal(aset.annotations.column("kind"), "label"))
    images = dataset.images()
    assert images is not None  # annotation_set refused a version without images
    if split is not None:
        known = {x for x in images["split"].to_pylist() if x}
        if split not in known:
            raise UsageError(f"{dataset.ref} has no split {split!r}", where="--split",
                             fix=f"known splits: {', '.join(sorted(known)) or 'none'}")
    store = dataset.vault.store
    # The exporters name an image's bytes by its oid; ``place`` puts that object at the destination.
    image_files = {p: sha for p, sha in zip(images["path"].to_pylist(), images["sha256"].to_pylist()) if sha}
    local_links.check_link(store, link)  # a link the store cannot make is refused before any work
    if local_links.shares_bytes_by(store, link):
        _check_shared(dataset, sorted(set(image_files.values())))
    strategy = LinkStrategy(link if store.local() is not None else LinkMode.COPY)

    def place(oid: str, dst: Path) -> None:
        # A copy is hashed as it is made (local_links.copy_checked); links were checked above.
        local_links.place(store, strategy, oid, dst)

    created = not dest.exists()
    try:
        export(aset, image_files, dest, format=format, split=split, link=place)
    except BaseException as e:
        # Nothing half-exported is left: the folder was new (or empty) when we started.
        import shutil

        shutil.rmtree(dest, ignore_errors=True) if created else _empty(dest)
        if isinstance(e, IntegrityError) and "corrupt" in e.details:
            from lensvault.datasets.checkout import _corrupt_error

            raise _corrupt_error(dataset.vault, dataset.ref, e.details["corrupt"]) from None
        if isinstance(e, OSError) and not isinstance(e, LensVaultError):  # a full disk, a read-only folder
            from lensvault.store.linking import storage_error

            raise storage_error(e, e.filename2 or e.filename or str(dest)) from e
        raise
    n = images.num_rows if split is None else sum(1 for s in images["split"].to_pylist() if s == split)
    return {"ref": dataset.ref, "dest": str(dest), "format": format, "split": split, "images": n}


def _check_shared(dataset: Dataset, oids: list[str]) -> None:
    """Objects an export will link must be verified since they last changed (store/verified.py)."""
    from lensvault.store.verified import untrusted

    vault = dataset.vault
    keys = list(zip(oids, local_links.object_keys(vault.store, oids)))
    bad = untrusted(vault.store, keys, vault.verified.load(), record=vault.verified)
    corrupt = sorted(o for o, r in bad.items() if r == "corrupt")
    if corrupt:
        from lensvault.datasets.checkout import _corrupt_error

        raise _corrupt_error(vault, dataset.ref, corrupt)
    if bad:
        raise vault.store.missing_error(next(iter(sorted(bad))))


def _empty(folder: Path) -> None:
    import shutil

    for p in folder.iterdir():
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
