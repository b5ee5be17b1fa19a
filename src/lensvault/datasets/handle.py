"""``Dataset``: a dataset version bound to its vault — what ``vault.dataset(ref)`` returns."""

from __future__ import annotations

from pathlib import Path

from lensvault.progress import NO_PROGRESS
from lensvault.store.base import LinkMode

from lensvault.datasets.manifest import Manifest
from lensvault.datasets.versions import DatasetVersion

__all__ = ["Dataset"]


class Dataset:
    def __init__(self, vault, record: DatasetVersion):
        self.vault = vault
        self.record = record
        self._manifest: Manifest | None = None
        self._files = None

    def __repr__(self) -> str:
        return f"<Dataset {self.ref} snapshot={self.snapshot_id[:12]} files={self.record.files}>"

    name = property(lambda self: self.record.name)
    version = property(lambda self: self.record.version)
    ref = property(lambda self: self.record.ref)
    snapshot_id = property(lambda self: self.record.snapshot_id)
    parent = property(lambda self: self.record.parent)

    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest.from_bytes(self.vault.store.read_bytes(self.record.manifest_oid))
        return self._manifest

    def restore_manifest(self) -> str:
        """Rewrite data/manifests/NAME/VERSION.json from the stored manifest object."""
        from lensvault.datasets.manifest import manifest_path, write_manifest_file

        path = manifest_path(self.vault.manifests_dir, self.name, self.version)
        write_manifest_file(path, self.vault.store.read_bytes(self.record.manifest_oid))
        return str(path)

    def files(self):
        """The files table (pyarrow): path, size, sha256, media_type, width, height."""
        if self._files is None:
            from lensvault.datasets import files_table

            oid = self.manifest().tables["files"]["oid"]
            self._files = files_table.read(self.vault.store.read_bytes(oid))
        return self._files

    def object_ids(self) -> set[str]:
        """Every object this version needs: file contents, tables, snapshot, manifest."""
        m = self.manifest()
        oids = set(self.files()["sha256"].to_pylist())
        oids.update(t["oid"] for t in m.tables.values())
        oids.update((self.record.manifest_oid, self.record.snapshot_id))
        return oids

    def diff(self, other):
        from lensvault.datasets.diff import diff_files

        other = other if isinstance(other, Dataset) else self.vault.dataset(other)
        return diff_files(self, other)

    def checkout(self, dest, *, link: LinkMode | str = LinkMode.AUTO, progress=NO_PROGRESS):
        from lensvault.datasets.checkout import checkout

        return checkout(self, Path(dest), link=LinkMode(link), progress=progress)

    def to_dict(self) -> dict:
        m = self.manifest()
        d = self.record.to_dict()
        d.update({"counts": m.counts, "media_types": m.media_types, "class_map": m.class_map,
                  "splits": m.splits, "manifest_path": str(self.vault.manifests_dir / self.name / f"{self.version}.json")})
        return d

