"""Dataset version records in the catalog: bind, resolve, list.

``NAME@X.Y.Z`` is bound once; the unique constraint (name, version) decides
which of two racing writers wins.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lensvault.errors import AlreadyExists, NotFound
from lensvault.refs import Ref, SemVer

if TYPE_CHECKING:
    from lensvault.catalog.repos._base import RowT
    from lensvault.catalog.repos.datasets import DatasetRepo
    from lensvault.catalog.sql import Conn
    from lensvault.datasets.manifest import Manifest

__all__ = ["DatasetVersion", "all_versions", "get_version", "latest_version", "list_datasets", "list_versions", "resolve"]


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: str
    snapshot_id: str
    manifest_oid: str
    parent: str | None
    files: int
    bytes: int
    notes: str
    bump: str | None
    forced: bool
    changelog: dict[str, Any] | None
    created_at: str
    created_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def semver(self) -> SemVer:
        return SemVer.parse(self.version)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ref"] = self.ref
        return d

    @classmethod
    def from_manifest(cls, m: Manifest, manifest_oid: str) -> DatasetVersion:
        """The same record, read from a (verified) manifest instead of the catalog."""
        return cls(
            name=m.name, version=m.version, snapshot_id=m.snapshot_id, manifest_oid=manifest_oid, parent=m.parent,
            files=int(m.counts.get("files", 0)), bytes=int(m.counts.get("bytes", 0)), notes=m.notes or "",
            bump=m.bump, forced=bool(m.forced), changelog=m.changelog, created_at=m.created_at,
            created_by=m.created_by,
        )

    @classmethod
    def from_row(cls, row: RowT) -> DatasetVersion:
        m = row._mapping
        return cls(
            name=m["name"],
            version=m["version"],
            snapshot_id=m["snapshot_id"],
            manifest_oid=m["manifest_oid"],
            parent=f"{m['name']}@{m['parent']}" if m["parent"] else None,
            files=int(m["file_count"]),
            bytes=int(m["total_bytes"]),
            notes=m["notes"] or "",
            bump=m["bump"],
            forced=bool(m["forced"]),
            changelog=json.loads(m["changelog"]) if m["changelog"] else None,
            created_at=m["created_at"],
            created_by=m["created_by"],
        )


def _repo(conn: Conn) -> DatasetRepo:
    from lensvault.catalog.repos.datasets import DatasetRepo

    return DatasetRepo(conn)


def get_version(conn: Conn, name: str, version: str) -> DatasetVersion | None:
    row = _repo(conn).get(name, version)
    return DatasetVersion.from_row(row) if row else None


def list_versions(conn: Conn, name: str) -> list[DatasetVersion]:
    return sorted((DatasetVersion.from_row(r) for r in _repo(conn).of_name(name)), key=lambda v: v.semver)


def all_versions(conn: Conn) -> list[DatasetVersion]:
    """Every version of every dataset, in no particular order."""
    return [DatasetVersion.from_row(r) for r in _repo(conn).all()]


def latest_version(conn: Conn, name: str, *, below: SemVer | None = None) -> DatasetVersion | None:
    versions = list_versions(conn, name)
    if below is not None:
        versions = [v for v in versions if v.semver < below]
    return versions[-1] if versions else None


def list_datasets(conn: Conn) -> list[dict[str, Any]]:
    out = []
    for r in sorted(_repo(conn).summaries(), key=lambda r: r.name):
        latest = latest_version(conn, r.name)
        out.append(
            {
                "name": r.name,
                "versions": int(r.versions),
                "latest": latest.version if latest else None,
                "files": latest.files if latest else 0,
                "bytes": latest.bytes if latest else 0,
                "updated_at": r.updated_at,
            }
        )
    return out


def resolve(conn: Conn, ref: str | Ref) -> DatasetVersion:
    """``name@X.Y.Z`` exactly, or ``name`` / ``name@latest`` for the highest version."""
    r = ref if isinstance(ref, Ref) else Ref.parse(ref)
    if r.version is not None:
        v = get_version(conn, r.name, str(r.version))
        if v is None:
            known = [x.version for x in list_versions(conn, r.name)]
            raise NotFound(
                f"dataset version {r} does not exist",
                where=str(r),
                fix=(f"known versions of {r.name}: {', '.join(known)}" if known else f"no dataset named {r.name!r}; see `lensvault dataset list`"),
            )
        return v
    if r.alias in (None, "latest"):
        v = latest_version(conn, r.name)
        if v is None:
            raise NotFound(f"no dataset named {r.name!r}", where=str(r), fix="see `lensvault dataset list`")
        return v
    raise NotFound(f"datasets have no alias {r.alias!r}", where=str(r), fix=f"use {r.name}@X.Y.Z or {r.name}@latest")


def taken_error(existing: DatasetVersion) -> AlreadyExists:
    return AlreadyExists(
        f"{existing.ref} already exists (snapshot {existing.snapshot_id[:12]}, {existing.files} files, created {existing.created_at} by {existing.created_by})",
        where=existing.ref,
        fix="versions are immutable: choose a new version (e.g. bump MINOR or PATCH)",
        existing=existing.to_dict(),
    )
