"""``verify --repair``: good bytes back for missing or corrupt objects, from any source that hashes right.

An object's name is its sha256, so any file anywhere whose bytes hash to it *is* it:
a repair never has to trust a source, only hash it (``store.restore`` copies a
candidate to a temp file while hashing it and renames it into place only if it
matches). Sources are tried in this order:

1. folders given with ``--from DIR``: the file at each path the versions give the
   object, then any file of the object's size (DIR may also be a vault or an object
   store: its object of that name);
2. the folders the versions were snapshotted from (each manifest records its source);
3. the manifest files in ``data/manifests/`` (a manifest object's exact bytes) and,
   for a files table, the rows the stat cache keeps for the snapshot (rebuilt and
   hashed: Parquet output is deterministic for one pyarrow version);
4. the same for every other vault registered with the store.

A source is anything with ``candidates(need)`` yielding paths and ``origin(path)`` naming where
a path's bytes came from; a store without local files is one (its object spooled to a temp
file), and so will a remote be. A corrupt object nothing could repair is moved
to ``quarantine/`` in the store: its bytes are kept for inspection, no checkout or
link shares them, and a later snapshot of a folder that holds the good bytes stores
them again (a missing object is stored again, see ingest).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import CatalogError
from lensvault.progress import NO_PROGRESS

if TYPE_CHECKING:
    from lensvault.store.base import ObjectStore
    from lensvault.vault import Vault

__all__ = ["Need", "RepairReport", "repair"]


@dataclass
class Need:
    """What is known about one object to repair."""

    oid: str
    problem: str  # "missing" | "corrupt"
    size: int | None = None
    rels: list[str] = field(default_factory=list)  # its paths in the versions that list it
    paths: list[str] = field(default_factory=list)  # files recorded to hold it (sources, manifest files)
    needed_by: set[str] = field(default_factory=set)
    listings: list[str] = field(default_factory=list)  # snapshot ids whose files table it is


@dataclass
class RepairReport:
    repaired: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"repaired": self.repaired, "failed": self.failed}


# -- sources ------------------------------------------------------------------------------------


class FolderSource:
    """A folder that may hold the files: by the versions' paths, then by size."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._by_size: dict[int, list[str]] | None = None

    def candidates(self, need: Need) -> Iterator[str]:
        for rel in need.rels:
            yield str(self.root / rel)
        if need.size is not None:
            yield from self._sized().get(need.size, [])

    def _sized(self) -> dict[int, list[str]]:
        if self._by_size is None:
            self._by_size = {}
            for d, dirs, files in os.walk(self.root):
                dirs[:] = [x for x in dirs if x not in (".lensvault", ".git")]
                for f in files:
                    p = os.path.join(d, f)
                    try:
                        self._by_size.setdefault(os.stat(p).st_size, []).append(p)
                    except OSError:
                        continue
        return self._by_size

    def origin(self, path: str) -> str:
        return path

    def __str__(self) -> str:
        return str(self.root)


class StoreSource:
    """Another object store (or a vault's): its object of the same name — its file where the
    store keeps local files, else its bytes spooled to a temp file (a remote is one more source)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._spooled: dict[str, str] = {}

    def candidates(self, need: Need) -> Iterator[str]:
        path = self.store.local_path(need.oid)
        if path is not None:
            yield path
            return
        if not self.store.has(need.oid):
            return
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="lensvault-repair-") as d:
            spooled = os.path.join(d, need.oid)
            with self.store.open(need.oid) as f, open(spooled, "wb") as out:
                shutil.copyfileobj(f, out)
            self._spooled[spooled] = self.store.location(need.oid)
            yield spooled

    def origin(self, path: str) -> str:
        """Where a candidate's bytes came from (a spooled copy names the object's location)."""
        return self._spooled.get(path, path)

    def __str__(self) -> str:
        return f"store {self.store.url}"


class RecordedSource:
    """The folders and files the vault recorded as holding the object."""

    def candidates(self, need: Need) -> Iterator[str]:
        yield from need.paths

    def origin(self, path: str) -> str:
        return path

    def __str__(self) -> str:
        return "recorded sources"


def source_for(vault: Vault, path: Path):
    """A ``--from`` argument as a source: a vault, an object store, or a plain folder."""
    from lensvault.store import open_store

    path = Path(path)
    if (path / ".lensvault" / "config.toml").is_file():
        with vault.open_other(path) as v:
            return StoreSource(v.store)
    if (path / "tmp").is_dir() and any(len(p.name) == 2 for p in path.iterdir() if p.is_dir()):
        return StoreSource(open_store(path))
    return FolderSource(path)


# -- what is needed ------------------------------------------------------------------------------


def _describe(vault: Vault, needs: dict[str, Need]) -> None:
    """Fill in what ``vault``'s versions know of each needed object."""
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.listing import rows_for
    from lensvault.datasets.manifest import manifest_path
    from lensvault.datasets.needs import all_versions as _all_versions

    for rec in _all_versions(vault):
        mfile = manifest_path(vault.manifests_dir, rec.name, rec.version)
        if rec.manifest_oid in needs:
            needs[rec.manifest_oid].paths.append(str(mfile))
            needs[rec.manifest_oid].needed_by.add(rec.ref)
        try:
            manifest = Dataset(vault, rec).manifest()
        except Exception:  # noqa: BLE001 - any failure: the reason is on the next line
            continue  # its manifest is one of the needs: repaired first, then read on the next pass
        if rec.snapshot_id in needs:
            needs[rec.snapshot_id].needed_by.add(rec.ref)
        for t in manifest.tables.values():
            if t["oid"] in needs:
                needs[t["oid"]].needed_by.add(rec.ref)
        files_oid = manifest.tables.get("files", {}).get("oid")
        if files_oid in needs:
            needs[files_oid].listings.append(manifest.snapshot_id)
        try:
            rows = rows_for(vault, manifest)
        except Exception:  # noqa: BLE001 - its files table is one of the needs: repaired first, read on the next pass
            continue
        source = (manifest.source or {}).get("path")
        for path, oid, size, *_ in rows:
            need = needs.get(oid)
            if need is None:
                continue
            need.size = size
            need.rels.append(path)
            need.needed_by.add(rec.ref)
            if source:
                need.paths.append(os.path.join(source, path))


def _rebuilt_table(vault: Vault, need: Need) -> bytes | None:
    """A files table's Parquet bytes rebuilt from the rows the stat cache keeps, if they hash right."""
    import hashlib

    from lensvault.datasets import files_table

    for snapshot_id in need.listings:
        rows = vault.state.listing(snapshot_id)
        if rows is None:
            continue
        paths, oids, sizes, mts, ws, hs = zip(*rows) if rows else ([],) * 6
        table = files_table.build(list(paths), list(sizes), list(oids), list(mts), list(ws), list(hs))
        # In each row-group layout files tables have been written in (one big group before issue 16).
        for row_group_rows in files_table.LAYOUTS:
            data = files_table.to_parquet_bytes(table, row_group_rows=row_group_rows)
            if hashlib.sha256(data).hexdigest() == need.oid:
                return data
    return None


# -- the repair ------------------------------------------------------------------------------------


def repair(vault: Vault, report, *, sources=(), progress=NO_PROGRESS) -> RepairReport:
    """Restore the missing and corrupt objects of a ``VerifyReport`` from ``sources`` (paths) and
    from what the vault (and the vaults sharing its store) recorded."""
    store = vault.store
    needs = {m["oid"]: Need(m["oid"], "missing") for m in report.missing}
    needs.update({c["oid"]: Need(c["oid"], "corrupt") for c in report.corrupt})
    out = RepairReport()
    if not needs:
        return out
    given = [source_for(vault, Path(s)) for s in sources]
    others = [p for p in vault.vaults_sharing_store() if os.path.isdir(os.path.join(p, ".lensvault"))]
    # Manifests first: once one is back, its version's tables and files can be described.
    for _ in range(2):
        try:
            _describe(vault, needs)
        except CatalogError:
            pass  # without a catalog: only the --from folders (by size) and stores can help
        for path in others:
            try:
                with vault.open_other(path) as other:
                    _describe(other, needs)
            except Exception:  # noqa: BLE001 - another vault that cannot be read only offers no copies
                continue
        for need in list(needs.values()):
            if need.paths and not need.rels and _try(store, need, [RecordedSource()], out):
                del needs[need.oid]
    with progress.task("Repairing", len(needs)) as advance:
        for need in sorted(needs.values(), key=lambda n: n.oid):
            if not _try(store, need, [*given, RecordedSource()], out):
                data = _rebuilt_table(vault, need) if need.listings else None
                if data is not None:
                    store.restore_bytes(need.oid, data)
                    out.repaired.append({"oid": need.oid, "problem": need.problem, "from": "rebuilt from the cached rows"})
                else:
                    out.failed.append(_failure(store, need, given))
            advance(1)
    return out


def _try(store, need: Need, sources, out: RepairReport) -> bool:
    seen = set()
    for src in sources:
        for path in src.candidates(need):
            if path in seen or not os.path.isfile(path):
                continue
            seen.add(path)
            own = store.local_path(need.oid)
            if own is not None and os.path.realpath(path) == os.path.realpath(own):
                continue  # the damaged object itself
            if store.restore(need.oid, path):
                out.repaired.append({"oid": need.oid, "problem": need.problem, "from": src.origin(path),
                                     "needed_by": sorted(need.needed_by)[:20]})
                return True
    return False


def _failure(store, need: Need, given) -> dict:
    quarantined = store.quarantine(need.oid) if need.problem == "corrupt" else None
    where = ", ".join(str(g) for g in given) or "the recorded source folders"
    return {
        "oid": need.oid, "problem": need.problem, "needed_by": sorted(need.needed_by)[:20],
        "paths": sorted(set(need.rels))[:5], "quarantined": quarantined,
        "fix": (f"no file in {where} hashes to it; find a copy of "
                + (", ".join(sorted(set(need.rels))[:3]) or "the object")
                + " and run `lensvault verify --repair --from DIR`"
                + (" (the damaged bytes were moved aside to the path shown)" if quarantined else "")),
    }
