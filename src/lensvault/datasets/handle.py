"""``Dataset``: a dataset version bound to its vault — what ``vault.dataset(ref)`` returns."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.datasets.manifest import Manifest
from lensvault.datasets.versions import DatasetVersion
from lensvault.progress import NO_PROGRESS
from lensvault.store.base import LinkMode

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pyarrow as pa

    from lensvault.annotations.model import ClassMap
    from lensvault.datasets.annotation_diff import AnnotationDiff
    from lensvault.datasets.checkout import CheckoutResult
    from lensvault.datasets.diff import FileDiff
    from lensvault.datasets.needs import DamageWarning
    from lensvault.datasets.vision_tables import VisionTables
    from lensvault.progress import Progress
    from lensvault.vault import Vault

__all__ = ["FILE_DICTS_ROWS", "Dataset"]

# Dicts handed out at a time by Dataset.file_dicts: a whole row group (65,536 rows) as dicts, and
# then as indented JSON (the encoder joins its pieces at the end), peaked at 305 MB for 200,000
# files where batches of 2,048 peak at 174.
FILE_DICTS_ROWS = 2_048


class Dataset:
    def __init__(self, vault: Vault, record: DatasetVersion, manifest: Manifest | None = None) -> None:
        self.vault = vault
        self.record = record
        self._manifest: Manifest | None = manifest
        self._files: pa.Table | None = None
        # What the write that made this version found damaged (see datasets.needs.damage_warnings).
        self.warnings: list[DamageWarning] = []

    def __repr__(self) -> str:
        return f"<Dataset {self.ref} snapshot={self.snapshot_id[:12]} files={self.record.files}>"

    name = property(lambda self: self.record.name)
    version = property(lambda self: self.record.version)
    ref = property(lambda self: self.record.ref)
    snapshot_id = property(lambda self: self.record.snapshot_id)
    parent = property(lambda self: self.record.parent)

    def manifest(self) -> Manifest:
        if self._manifest is None:
            data = self.vault.store.read_bytes(self.record.manifest_oid)  # hashed: a damaged one raises
            try:
                self._manifest = Manifest.from_bytes(data)
            except (ValueError, TypeError) as e:
                from lensvault.errors import IntegrityError

                raise IntegrityError(f"the manifest of {self.ref} cannot be read ({e})", where=self.record.manifest_oid,
                                     fix="report this as a bug: its bytes are the ones written") from e
        return self._manifest

    def restore_manifest(self) -> str:
        """Rewrite data/manifests/NAME/VERSION.json from the stored manifest object.

        Only a missing or damaged file is replaced: one whose bytes are themselves a stored
        manifest (another record of this version) is a conflict for a person to settle.
        """
        from lensvault.datasets.manifest import frozen_manifest_error, manifest_path, write_manifest_file
        from lensvault.hashing import hash_bytes

        path = manifest_path(self.vault.manifests_dir, self.name, self.version)
        data = self.vault.store.read_bytes(self.record.manifest_oid)
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        if current is not None and current != data and self.vault.store.has(hash_bytes(current)):
            raise frozen_manifest_error(path)
        write_manifest_file(path, data, replace=current is not None)
        return str(path)

    def files(self, columns: list[str] | None = None) -> pa.Table:
        """The files table (pyarrow): path, size, sha256, media_type, width, height (or ``columns``)."""
        if self._files is not None:
            return self._files if columns is None else self._files.select(columns)
        from lensvault.datasets import files_table

        oid = self.manifest().tables["files"]["oid"]
        table = files_table.read_object(self.vault.store, oid, columns=columns)
        if columns is None:
            self._files = table
        return table

    def file_batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The files table (or ``columns`` of it) as record batches in path order, a Parquet
        row group at a time: memory that does not grow with the file count."""
        if self._files is not None:
            yield from (self._files if columns is None else self._files.select(columns)).to_batches()
            return
        from lensvault.datasets import files_table

        yield from files_table.batches(self.vault.store, self.manifest().tables["files"]["oid"], columns)

    def file_list(self) -> list[dict[str, Any]]:
        """Every file as a dict (the files table's columns); in a vision version each also
        carries its ``image_id`` (None for a file that is not one of the version's images).
        All of them at once: ``file_dicts`` hands out the same dicts a batch at a time."""
        return [row for rows in self.file_dicts() for row in rows]

    def file_dicts(self) -> Iterator[list[dict[str, Any]]]:
        """``file_list`` ``FILE_DICTS_ROWS`` at a time, in path order: only one batch of dicts
        is alive at once, so a caller that writes them out as they come holds the same memory
        for a million files as for a thousand. The tables are read (and a damaged one is an
        error) by this call, before any batch is handed out, so nothing half-written is shown."""
        ids = self._image_id_lookup()
        batches = self.file_batches()
        first = next(batches, None)
        return self._dicts(ids, itertools.chain(() if first is None else (first,), batches))

    @classmethod
    def _dicts(cls, ids: Callable[[pa.Array], list[int | None]] | None,
               groups: Iterator[pa.RecordBatch]) -> Iterator[list[dict[str, Any]]]:
        import pyarrow as pa

        while (group := next(groups, None)) is not None:
            yield from cls._group_dicts(group, ids)
            # Let the group go before the next is read, and hand its memory back: else two groups
            # are alive at once and the allocator keeps what each left (200,000 files: 174 -> 145 MB).
            del group
            pa.default_memory_pool().release_unused()

    @classmethod
    def _group_dicts(cls, group: pa.RecordBatch,
                     ids: Callable[[pa.Array], list[int | None]] | None) -> Iterator[list[dict[str, Any]]]:
        for lo in range(0, group.num_rows, FILE_DICTS_ROWS):
            yield cls._rows(group.slice(lo, FILE_DICTS_ROWS), ids)

    @staticmethod
    def _rows(part: pa.RecordBatch | pa.Table,
              ids: Callable[[pa.Array], list[int | None]] | None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = part.to_pylist()
        if ids is not None:
            for row, image_id in zip(rows, ids(part.column("path"))):
                row["image_id"] = image_id
        return rows

    def file_page(self, after: int, limit: int) -> list[dict[str, Any]]:
        """``file_list[after:after + limit]``: only the row groups holding them are read, and a
        vision version's image ids are looked up in what is kept for its snapshot (made once)."""
        from lensvault.datasets import files_table
        from lensvault.datasets.snapshot_cache import kept

        if self._files is not None:
            part = self._files.slice(after, limit)
        else:
            part = files_table.rows_at(self.vault.store, self.manifest().tables["files"]["oid"], after, limit)
        ids = kept(self.snapshot_id, "image_id_lookup", self._image_id_lookup) if self.is_vision else None
        return self._rows(part, ids)

    def _image_id_lookup(self) -> Callable[[pa.Array], list[int | None]] | None:
        """For a vision version: the image id of each path of a batch (None: not an image).

        Only the images' paths and ids are read, and looked up through a PathIndex (16 bytes an
        image beside the Arrow column) rather than a dict of every image: ~100 bytes an image less.
        """
        entry = self.manifest().tables.get("images")
        if entry is None:
            return None
        import pyarrow as pa

        from lensvault.annotations.image_ids import COLUMN, with_image_ids
        from lensvault.datasets import files_table
        from lensvault.datasets.path_index import PathIndex

        images = files_table.read_object_columns(self.vault.store, entry["oid"], ["path", COLUMN])
        images = with_image_ids(images)  # (a version written before ids were stored: the rule's fallback)
        index, id_column = PathIndex(images.column("path")), images.column(COLUMN).combine_chunks()

        def ids(paths: pa.Array) -> list[int | None]:
            rows = index.rows(paths)
            found: list[int | None] = id_column.take(pa.array(rows, mask=rows < 0)).to_pylist()
            return found

        return ids

    def _table(self, part: str) -> pa.Table | None:
        entry = self.manifest().tables.get(part)
        if entry is None:
            return None
        from lensvault.datasets import files_table

        return files_table.read_object(self.vault.store, entry["oid"])

    @property
    def is_vision(self) -> bool:
        """True when the version was snapshotted with annotations (``--format``)."""
        return "annotations" in self.manifest().tables

    def images(self) -> pa.Table | None:
        """The images table (path, width, height, orientation, split, tags, sha256, image_id), or None.

        ``image_id`` is the id every export, run file, evaluation and ``VisionDataset`` uses
        (lensvault.annotations.image_ids); versions written before it was stored get the
        rule's fallback, 1 + rank by path.
        """
        if "_images" not in self.__dict__:
            table = self._table("images")
            if table is not None:
                from lensvault.annotations.image_ids import with_image_ids

                table = with_image_ids(table)
            self._images = table
        return self._images

    def annotations(self) -> pa.Table | None:
        """The annotations table (see lensvault.annotations.model.ANNOTATION_SCHEMA), or None."""
        if "_annotations" not in self.__dict__:
            self._annotations = self._table("annotations")
        return self._annotations

    def annotation_batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The annotations table (or ``columns`` of it) as record batches, a Parquet row group at a
        time (nothing for a version without annotations): its rows without holding them all."""
        read: pa.Table | None = self.__dict__.get("_annotations")
        if read is not None:
            yield from (read if columns is None else read.select(columns)).to_batches()
            return
        entry = self.manifest().tables.get("annotations")
        if entry is not None:
            from lensvault.datasets import files_table

            yield from files_table.batches(self.vault.store, entry["oid"], columns)

    def release_tables(self) -> None:
        """Forget the images and annotations tables read so far (they are read again when asked
        for), and hand Arrow's unused memory back: a caller done with them keeps less resident."""
        self.__dict__.pop("_images", None)
        self.__dict__.pop("_annotations", None)
        import pyarrow as pa

        pa.default_memory_pool().release_unused()

    def class_map(self) -> ClassMap | None:
        """The ClassMap, or None for a version without annotations."""
        cm = self.manifest().class_map
        if cm is None:
            return None
        from lensvault.annotations.model import ClassMap

        return ClassMap.from_dict(cm)

    def vision_tables(self) -> VisionTables:
        from lensvault.datasets.vision_tables import VisionTables

        images, anns, cm = self.images(), self.annotations(), self.class_map()
        assert images is not None and anns is not None and cm is not None, f"{self.ref} is not a vision version"
        return VisionTables(self.ref, images, anns, cm)

    def object_ids(self) -> set[str]:
        """Every object this version needs: file contents, tables, snapshot, manifest."""
        m = self.manifest()
        oids = set(self.files()["sha256"].to_pylist())
        oids.update(t["oid"] for t in m.tables.values())
        oids.update((self.record.manifest_oid, self.record.snapshot_id))
        return oids

    def diff(self, other: Dataset | str) -> FileDiff:
        """File-level diff (added, removed, modified, renamed files)."""
        from lensvault.datasets.diff import diff_files

        other = other if isinstance(other, Dataset) else self.vault.dataset(other)
        return diff_files(self, other)

    def diff_annotations(self, other: Dataset | str) -> AnnotationDiff:
        """Annotation-level diff; both versions must have been snapshotted with annotations."""
        from lensvault.datasets.annotation_diff import diff_vision
        from lensvault.errors import UsageError

        other = other if isinstance(other, Dataset) else self.vault.dataset(other)
        for d in (self, other):
            if not d.is_vision:
                raise UsageError(f"{d.ref} has no annotations", where=d.ref,
                                 fix="annotation diffs need versions snapshotted with --format")
        return diff_vision(self.vision_tables(), other.vision_tables())

    def checkout(self, dest: str | Path, *, link: LinkMode | str = LinkMode.AUTO,
                 progress: Progress = NO_PROGRESS) -> CheckoutResult:
        from lensvault.datasets.checkout import checkout

        return checkout(self, Path(dest), link=LinkMode(link), progress=progress)

    def vision_summary(self) -> dict[str, Any]:
        """Counts a person asks for first: images, annotations, classes, splits, per class
        (computed once per snapshot: kept in the process, lensvault.datasets.snapshot_cache,
        and on this machine's disk, lensvault.datasets.derived_files)."""
        import copy

        from lensvault.datasets.snapshot_cache import kept

        return copy.deepcopy(kept(self.snapshot_id, "vision_summary", self._kept_vision_summary))

    def _kept_vision_summary(self) -> dict[str, Any]:
        from lensvault.datasets import derived_files

        found = derived_files.read_json(self.vault, self.snapshot_id, "vision_summary")
        if isinstance(found, dict) and isinstance(found.get("per_class"), dict):
            return found
        summary = self._vision_summary()
        derived_files.write_json(self.vault, self.snapshot_id, "vision_summary", summary)
        return summary

    def _vision_summary(self) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.compute as pc

        images, anns, cm = self.images(), self.annotations(), self.class_map()
        assert images is not None and anns is not None and cm is not None, f"{self.ref} is not a vision version"
        # Each annotation's split (null: an image without one, or one the images table lacks),
        # then one count per (class, split): a handful of groups, whatever the number of images.
        ann_split = pc.take(images["split"], pc.index_in(anns["image"], value_set=images["path"]))
        pairs = pa.table({"class_id": anns["class_id"], "split": ann_split})
        # No Arrow thread pool: its threads, alive at exit, can abort the process (files_table.read).
        counts = pairs.group_by(["class_id", "split"], use_threads=False).aggregate([("class_id", "count")])
        per_class: dict[str, dict[str, int]] = {n: {} for n in cm.names}
        for cid, split, n in sorted(zip(counts["class_id"].to_pylist(), counts["split"].to_pylist(),
                                        counts["class_id_count"].to_pylist()), key=lambda t: (t[0], t[1] or "")):
            try:
                cname = cm.name_of(cid)
            except KeyError:
                cname = f"<unknown {cid}>"
            bucket = per_class.setdefault(cname, {})
            bucket[split or "unassigned"] = bucket.get(split or "unassigned", 0) + n
        for bucket in per_class.values():
            bucket["total"] = sum(bucket.values())
        splits: dict[str, int] = {}
        found = pc.value_counts(images["split"])
        for sp, n in zip(found.field("values").to_pylist(), found.field("counts").to_pylist()):
            splits[sp or "unassigned"] = splits.get(sp or "unassigned", 0) + n
        return {
            "images": images.num_rows,
            "annotations": anns.num_rows,
            "classes": list(cm.names),
            "class_ids": list(cm.ids),
            "splits": dict(sorted(splits.items())),
            "split_spec": {k: v for k, v in (self.manifest().splits or {}).items() if k != "counts"},
            "per_class": per_class,
            "kinds": sorted(set(pc.unique(anns["kind"]).to_pylist())) if anns.num_rows else [],
        }

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest()
        d = self.record.to_dict()
        d.update({"counts": m.counts, "media_types": m.media_types, "class_map": m.class_map,
                  "manifest_path": str(self.vault.manifests_dir / self.name / f"{self.version}.json"),
                  "source": m.source})
        if self.is_vision:
            d.update(self.vision_summary())
        return d

