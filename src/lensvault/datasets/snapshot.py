"""Create a dataset version: ingest, describe, and bind ``NAME@X.Y.Z`` write-once.

Order matters for crash safety. Objects first (harmless if orphaned: gc takes
them), then the snapshot and manifest objects, then one catalog transaction
that inserts the version row and writes the manifest file. Until that commit
no version is visible; if it fails, the manifest file is removed again.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lensvault import interrupts, ledger
from lensvault.catalog.catalog import utcnow
from lensvault.datasets import files_table
from lensvault.datasets.ingest import ingest_link, ingested
from lensvault.datasets.manifest import (
    Manifest,
    canonical_json,
    frozen_manifest_error,
    manifest_path,
    snapshot_document,
    write_manifest_file,
)
from lensvault.datasets.versions import DatasetVersion, get_version, latest_version, taken_error
from lensvault.errors import UsageError
from lensvault.progress import NO_PROGRESS
from lensvault.refs import SemVer, validate_name
from lensvault.store.base import LinkMode

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import Connection

    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.ingest import KnownContent
    from lensvault.progress import Progress
    from lensvault.vault import Vault

__all__ = ["commit_version", "snapshot_folder", "with_retries", "with_warnings"]

_T = TypeVar("_T")


def with_retries(write: Callable[[], _T], *, attempts: int = 3) -> _T:
    """``write()``, again if its commit found objects gone from the store (a gc racing it).

    Each attempt ingests again, which stores whatever is missing once more.
    """
    from lensvault.errors import ObjectsVanished

    for attempt in range(attempts):
        try:
            return write()
        except ObjectsVanished:
            if attempt == attempts - 1:
                raise
    raise ValueError(f"attempts must be at least 1, not {attempts}")


def snapshot_folder(
    vault: Vault,
    name: str,
    src: Path,
    *,
    version: str | None = None,
    bump: str | None = None,
    notes: str = "",
    link: LinkMode | str = LinkMode.AUTO,
    parent: str | None = None,
    force: bool = False,
    progress: Progress = NO_PROGRESS,
) -> Dataset:
    name = validate_name(name)
    link = ingest_link(link)  # before any work: a snapshot never symlinks
    if version is not None:
        version = str(SemVer.parse(version))
        if manifest_path(vault.manifests_dir, name, version).exists():
            _refuse_taken(vault, name, version)  # the usual way a version is known to be taken: fail at once
    elif bump is None:
        raise UsageError("say which version to create", fix="pass --version X.Y.Z or --bump auto|major|minor|patch")

    def write() -> Dataset:
        # Opening the catalog (the SQLAlchemy import alone is ~0.25 s) overlaps the
        # folder walk: ingest calls this while the walk runs in a child process (or
        # while workers hash a new folder).
        with ingested(vault, Path(src), link=link, progress=progress, rows_needed=False,
                      known=lambda: _known_of(vault, _catalog_checks(vault, name, version))) as table:
            v = version if version is not None else _next_file_version(vault, name, table, bump)
            record = commit_version(
                vault, name=name, version=v, files=table, notes=notes, parent=parent,
                source={"path": str(Path(src).absolute()), "link": LinkMode(link).value}, allow_identical=force,
            )
            return with_warnings(vault, record, table)

    return with_retries(write)


def with_warnings(vault: Vault, record: DatasetVersion, files: files_table.FileRows) -> Dataset:
    """The new version as a ``Dataset``, carrying what the snapshot found damaged on the way
    (``Dataset.warnings``: objects changed in place through hardlinks, see ingest)."""
    from lensvault.datasets.handle import Dataset

    ds = Dataset(vault, record)
    if files.damaged:
        from lensvault.datasets.needs import damage_warnings

        ds.warnings = damage_warnings(vault, files.damaged)
    return ds


def _next_file_version(vault: Vault, name: str, table: files_table.FileRows, bump: str | None) -> str:
    """For plain file datasets: added/removed/renamed files → MINOR, changed bytes only → PATCH."""
    from lensvault.datasets.diff import diff_batches
    from lensvault.datasets.handle import Dataset

    with vault.catalog.read() as conn:
        prev = latest_version(conn, name)
    if prev is None:
        return "1.0.0"
    if bump in ("major", "minor", "patch"):
        return str(prev.semver.bump(bump))
    columns = ["path", "sha256", "size"]
    d = diff_batches(Dataset(vault, prev).file_batches(columns), table.table().select(columns).to_batches(), prev.ref,
                     "new")
    if not d.changed:
        raise UsageError(f"nothing changed since {prev.ref}", where=prev.ref, fix="there is nothing to version")
    return str(prev.semver.bump("minor" if (d.added or d.removed or d.renamed) else "patch"))


def _existing_parent(conn: Connection, name: str, parent: str) -> str:
    """The version string of an explicit --parent, which must be a version of the same dataset."""
    from lensvault.errors import NotFound

    pname, _, pversion = parent.rpartition("@")
    if pname and pname != name:
        raise UsageError(f"the parent {parent} is a version of another dataset", where=parent,
                         fix=f"a parent must be a version of {name}; use --parent X.Y.Z")
    pversion = str(SemVer.parse(pversion))
    if get_version(conn, name, pversion) is None:
        raise NotFound(f"the parent {name}@{pversion} does not exist", where=parent,
                       fix=f"see `lensvault dataset log {name}` for its versions")
    return pversion


def _catalog_checks(vault: Vault, name: str, version: str | None) -> DatasetVersion | None:
    """The latest version of NAME, after refusing a taken VERSION (run beside the scan)."""
    if version is not None:
        _refuse_taken(vault, name, version)
    with vault.catalog.read() as conn:
        return latest_version(conn, name)


def known_content(vault: Vault, name: str) -> KnownContent:
    """The content of the latest version of NAME (in the store, by construction), for ingest."""
    with vault.catalog.read() as conn:
        prev = latest_version(conn, name)
    return _known_of(vault, prev)


def _known_of(vault: Vault, prev: DatasetVersion | None) -> KnownContent:
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.ingest import KnownContent
    from lensvault.datasets.listing import rows_for

    if prev is None:
        return KnownContent()
    try:
        manifest = Dataset(vault, prev).manifest()
    except Exception:  # noqa: BLE001 - a damaged previous version must not block a new one: just check everything
        return KnownContent()

    def oids() -> list[str]:
        try:
            return [r[1] for r in rows_for(vault, manifest)]
        except Exception:  # noqa: BLE001 - as above: a listing that cannot be read only costs checks
            return []

    files = manifest.tables.get("files", {})
    table = {**files, "bytes": manifest.counts.get("bytes"), "media_types": manifest.media_types}
    return KnownContent(digest=files.get("digest"), load=oids, table=table)


def _refuse_taken(vault: Vault, name: str, version: str) -> None:
    # Checked before any hashing so a typo costs nothing; the unique constraint
    # at commit time is what actually decides a race.
    with vault.catalog.read() as conn:
        existing = get_version(conn, name, version)
    if existing:
        raise taken_error(existing)
    path = manifest_path(vault.manifests_dir, name, version)
    if path.exists() and not _left_by_a_killed_write(vault, path):
        # A frozen manifest the catalog does not know (a catalog that lost versions, or a
        # file left by a failed write): never replaced by another snapshot.
        raise frozen_manifest_error(path)


def _left_by_a_killed_write(vault: Vault, path: Path) -> bool:
    """Whether the manifest file was left by a write killed before its COMMIT (and is now gone)."""
    from lensvault.unfinished import finish

    return bool(finish(vault)) and not path.exists()


def commit_version(
    vault: Vault,
    *,
    name: str,
    version: str,
    files: files_table.FileRows | pa.Table,
    notes: str = "",
    parent: str | None = None,
    sections: dict[str, Any] | None = None,
    tables: dict[str, dict[str, Any]] | None = None,
    manifest_fields: dict[str, Any] | None = None,
    counts: dict[str, int] | None = None,
    bump: str | None = None,
    forced: bool = False,
    changelog: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    allow_identical: bool = False,
    in_commit: Callable[[Connection], object] | None = None,
) -> DatasetVersion:
    """Bind NAME@VERSION to the snapshot made of ``files`` plus extra ``sections``/``tables``.

    Domain layers (annotations, splits) pass their parts as ``sections``
    (content digests that define the snapshot id), ``tables`` (Parquet objects
    listed in the manifest) and ``manifest_fields`` (class_map, splits).
    ``in_commit(conn)`` runs first inside the commit's transaction (a check that may refuse it).
    """
    from lensvault.catalog.repos import Conflict, DatasetRepo

    semver = SemVer.parse(version)
    if not isinstance(files, files_table.FileRows):
        files = files_table.FileRows.from_table(files)
    # (A background writer of the files table that this never collects, because the
    # version is refused, is waited for by ``ingest.ingested``, which every caller uses.)
    snapshot_id, files_oid, parent_version, media_types = _describe(vault, name, semver, files, parent,
                                                                     sections, allow_identical)
    files_digest = files.digest()
    total_bytes = files.total_bytes()
    all_tables = {"files": {"oid": files_oid, "digest": files_digest, "rows": files.num_rows}, **(tables or {})}
    all_counts = {"files": files.num_rows, "bytes": total_bytes, "images": sum(v for k, v in media_types.items() if k.startswith("image/"))}
    all_counts.update(counts or {})
    if bump is None and parent_version:
        bump = SemVer.parse(parent_version).bump_kind_to(semver)
    manifest = Manifest(
        name=name,
        version=str(semver),
        snapshot_id=snapshot_id,
        parent=f"{name}@{parent_version}" if parent_version else None,
        created_at=utcnow(),
        created_by=vault.actor,
        notes=notes,
        counts=all_counts,
        tables=all_tables,
        media_types=media_types,
        bump=bump,
        forced=forced,
        changelog=changelog,
        source=source,
        **(manifest_fields or {}),
    )
    manifest_bytes = manifest.to_bytes()
    manifest_oid = vault.store.put_bytes(manifest_bytes)
    path = manifest_path(vault.manifests_dir, name, str(semver))
    if path.exists():
        _left_by_a_killed_write(vault, path)  # (else write_manifest_file refuses it)

    snapshot_row = {
        "snapshot_id": snapshot_id, "snapshot_oid": snapshot_id, "files_oid": files_oid,
        "file_count": files.num_rows, "total_bytes": total_bytes,
        "annotations_oid": (tables or {}).get("annotations", {}).get("oid"),
        "images_oid": (tables or {}).get("images", {}).get("oid"), "created_at": manifest.created_at,
    }
    version_row = {
        "name": name, "version": str(semver), "major": semver.major, "minor": semver.minor, "patch": semver.patch,
        "prerelease": semver.prerelease, "snapshot_id": snapshot_id, "manifest_oid": manifest_oid,
        "parent": parent_version, "file_count": files.num_rows, "total_bytes": total_bytes, "notes": notes,
        "bump": bump, "forced": forced, "changelog": None if changelog is None else canonical_json(changelog).decode(),
        "created_at": manifest.created_at, "created_by": manifest.created_by,
    }

    # Under the gc lock, every object this version needs that no committed version already
    # references must still be in the store: a gc either finished before (and what it took
    # is found missing: ObjectsVanished, and the caller stores it again) or starts after
    # the commit (and sees the new references).
    # (The fresh objects come as an iterable: a million-file table's are read a row group at a time.)
    needed = chain((snapshot_id, manifest_oid, *(t["oid"] for t in all_tables.values())), files.fresh_oids())
    written = done = False
    try:
        with vault.store.committing(needed, since=files.since), interrupts.commit(f"{name}@{semver}"):
            with vault.catalog.begin() as conn:
                if in_commit is not None:
                    in_commit(conn)
                versions = DatasetRepo(conn)
                versions.add_snapshot(snapshot_row)
                try:
                    versions.add_version(version_row)
                except Conflict as taken:
                    assert taken.existing is not None  # add_version's Conflict carries the row
                    raise taken_error(DatasetVersion.from_row(taken.existing)) from None
                vault.catalog.append_event(
                    conn, "dataset.version.create", "dataset_version", f"{name}@{semver}",
                    after={"snapshot_id": snapshot_id, "manifest_oid": manifest_oid, "files": files.num_rows,
                           "bytes": total_bytes, "parent": manifest.parent, "bump": bump, "forced": forced},
                )
                # The store's own record of the version (catalog rebuild reads it back); its
                # write-once ref refuses a second NAME@VERSION the catalog failed to know about.
                ledger.record(vault, conn, "dataset.version", {"row": version_row, "snapshot": snapshot_row},
                              objects=[manifest_oid, snapshot_id, *(t["oid"] for t in all_tables.values())],
                              ref=f"datasets/{name}/{semver}")
                written = write_manifest_file(path, manifest_bytes)
            # A Ctrl-C held through the COMMIT is raised when interrupts.commit ends: the
            # version is kept, and so must its manifest file be.
            done = True
    except BaseException:
        # The version did not commit, so a manifest file we wrote names nothing.
        if written and not done:
            try:
                path.unlink()
                path.parent.rmdir()  # the folder of a first version; kept when other versions are in it
            except OSError:
                pass
        raise
    with vault.catalog.read() as conn:
        committed = get_version(conn, name, str(semver))
    assert committed is not None  # just committed, and a version is never deleted
    return committed


def _describe(vault: Vault, name: str, semver: SemVer, files: files_table.FileRows, parent: str | None,
              sections: dict[str, Any] | None, allow_identical: bool) -> tuple[str, str, str | None, dict[str, int]]:
    """(snapshot id, files-table oid, parent version, media-type counts) of a version about to be
    committed, refusing one identical to its parent. The files table's Parquet object may be
    under way in a background writer (``FileRows.store_in_background``): everything that does
    not need its oid is done before waiting for it."""
    store = vault.store
    files_digest = files.digest()
    # The same rows as the latest version: its Parquet object is reused, and
    # pyarrow is never imported (an unchanged re-snapshot is a stat walk).
    files_oid = None if files.storing else _same_files_as_latest(vault, name, files_digest)
    all_sections = {"files": {"digest": files_digest, "count": files.num_rows, "bytes": files.total_bytes()},
                    **(sections or {})}
    snapshot_id = store.put_bytes(snapshot_document(all_sections))
    # The listing is true of the snapshot id whether or not this version commits.
    listing = files.listing()
    if listing is not None:
        vault.state.save_listing(snapshot_id, listing)
    media_types = files.media_type_counts()
    with vault.catalog.read() as conn:
        if parent is None:
            prev = latest_version(conn, name, below=semver)
            parent_version = prev.version if prev else None
        else:
            parent_version = _existing_parent(conn, name, parent)
        if parent_version and not allow_identical:
            same = get_version(conn, name, parent_version)
            if same is not None and same.snapshot_id == snapshot_id:
                raise UsageError(
                    f"nothing changed since {same.ref}: the content is identical (snapshot {snapshot_id[:12]})",
                    where=f"{name}@{semver}",
                    fix="there is nothing new to version; pass --force to record the same content under a new version",
                )
    if files_oid is None:
        files_oid = files.stored_oid(store)
    return snapshot_id, files_oid, parent_version, dict(sorted(media_types.items()))


def _same_files_as_latest(vault: Vault, name: str, digest: str) -> str | None:
    """The latest version's files-table object, if its rows are exactly these (no rewrite needed)."""
    from lensvault.datasets.handle import Dataset

    with vault.catalog.read() as conn:
        prev = latest_version(conn, name)
    if prev is None:
        return None
    try:
        entry = Dataset(vault, prev).manifest().tables["files"]
    except Exception:  # noqa: BLE001 - an unreadable manifest only means the table is written again
        return None
    return entry["oid"] if entry.get("digest") == digest and vault.store.has(entry["oid"]) else None
