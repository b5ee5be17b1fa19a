"""``dataset export``: a version's images and annotations in a training format."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.errors import IntegrityError, LensVaultError, UsageError
from lensvault.store import local_links
from lensvault.store.base import LinkMode
from lensvault.store.linking import LinkStrategy

if TYPE_CHECKING:
    from lensvault.annotations.model import AnnotationSet
    from lensvault.datasets.handle import Dataset

__all__ = ["annotation_set", "export_version", "require_annotations"]


def require_annotations(dataset: Dataset) -> None:
    if not dataset.is_vision:
        raise UsageError(
            f"{dataset.ref} has no annotations",
            where=dataset.ref,
            fix="snapshot the folder with --format auto|coco|yolo|voc|labelme|masks to record annotations",
        )


def annotation_set(dataset: Dataset) -> AnnotationSet:
    from lensvault.annotations.model import AnnotationSet

    require_annotations(dataset)
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
    import pyarrow.compute as pc

    images = dataset.images()
    assert images is not None  # annotation_set refused a version without images
    splits = images["split"]
    if split is not None:
        known = {x for x in pc.unique(splits).to_pylist() if x}
        if split not in known:
            raise UsageError(f"{dataset.ref} has no split {split!r}", where="--split",
                             fix=f"known splits: {', '.join(sorted(known)) or 'none'}")
    store = dataset.vault.store
    # The exporters name an image's bytes by its oid; ``place`` puts that object at the destination.
    with_file = images.filter(pc.is_valid(images["sha256"]))
    image_files = ColumnMapping(with_file["path"], with_file["sha256"])
    del with_file
    local_links.check_link(store, link)  # a link the store cannot make is refused before any work
    if local_links.shares_bytes_by(store, link):
        _check_shared(dataset, image_files.values_column())
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
    n = images.num_rows if split is None else int(pc.sum(pc.fill_null(pc.equal(splits, split), False)).as_py() or 0)
    return {"ref": dataset.ref, "dest": str(dest), "format": format, "split": split, "images": n}


def _check_shared(dataset: Dataset, oids: Any) -> None:
    """Objects an export will link must be verified since they last changed (store/verified.py).

    ``oids``: an Arrow array; checked ``_CHECK_BATCH`` distinct objects at a time, the ones that
    fail collected, so that the error names what it named when all were checked at once."""
    import pyarrow.compute as pc

    from lensvault.store.verified import untrusted

    vault = dataset.vault
    known = vault.verified.load()
    unique = pc.unique(oids)
    unique = unique.take(pc.sort_indices(unique))
    bad: dict[str, str] = {}
    for lo in range(0, len(unique), _CHECK_BATCH):
        part = unique.slice(lo, _CHECK_BATCH).to_pylist()
        bad.update(untrusted(vault.store, zip(part, local_links.object_keys(vault.store, part)), known,
                             record=vault.verified))
    corrupt = sorted(o for o, r in bad.items() if r == "corrupt")
    if corrupt:
        from lensvault.datasets.checkout import _corrupt_error

        raise _corrupt_error(vault, dataset.ref, corrupt)
    if bad:
        raise vault.store.missing_error(next(iter(sorted(bad))))


_CHECK_BATCH = 65_536


class ColumnMapping(Mapping[str, str]):
    """A read-only mapping from one Arrow string column to another (an image's path → its sha256),
    the keys found by a PathIndex: ~16 bytes an image beside the columns, instead of a dict entry
    and two Python strings. The exporters ask in table (or path) order: the 1,024 keys around the
    last one found are kept as a dict, so most lookups are a dict's."""

    def __init__(self, keys: Any, values: Any) -> None:
        from lensvault.datasets.path_index import PathIndex

        self._index = PathIndex(keys)
        self._values = values.combine_chunks() if hasattr(values, "combine_chunks") else values
        self._near: dict[str, str] = {}

    def values_column(self) -> Any:
        return self._values

    def _get(self, key: object) -> str | None:
        if not isinstance(key, str):
            return None
        found = self._near.get(key)
        if found is None:
            row = self._index.row(key)
            if row is None:
                return None
            lo = row - row % _NEAR
            keys = self._index.keys.slice(lo, _NEAR).to_pylist()
            values = self._values.slice(lo, _NEAR).to_pylist()
            self._near = dict(zip(reversed(keys), reversed(values)))  # (the first of a repeated key wins)
            found = self._near[key]
        return found

    def __getitem__(self, key: str) -> str:
        found = self._get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return self._get(key) is not None

    def __iter__(self) -> Iterator[str]:
        keys = self._index.keys
        for lo in range(0, len(keys), _CHECK_BATCH):
            yield from keys.slice(lo, _CHECK_BATCH).to_pylist()

    def __len__(self) -> int:
        return len(self._index)


_NEAR = 1_024


def _empty(folder: Path) -> None:
    import shutil

    for p in folder.iterdir():
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
