"""The frozen manifest of a dataset version, and the snapshot it names.

A snapshot is content only (files, and later annotations, classes, splits); its
id is the sha256 of its canonical JSON, which is also stored as an object, so
the id names real bytes. A manifest adds what a person needs — name, version,
parent, counts, notes, changelog — and is written both to the store and, read
only, to ``data/manifests/NAME/VERSION.json`` in the user's repository.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.errors import AlreadyExists, IntegrityError

if TYPE_CHECKING:
    from lensvault.annotations.model import ClassMapDict

__all__ = ["Manifest", "canonical_json", "frozen_manifest_error", "snapshot_document", "write_manifest_file"]

SNAPSHOT_FORMAT = "lensvault.snapshot/1"
MANIFEST_FORMAT = "lensvault.manifest/1"


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def snapshot_document(sections: dict[str, Any]) -> bytes:
    """Canonical bytes of a snapshot. ``sections`` maps a part name to its digest record.

    Only content goes in (digests, counts, class map, split spec): the same
    content always gives the same snapshot id, whoever writes it and when.
    """
    return canonical_json({"format": SNAPSHOT_FORMAT, **sections})


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    snapshot_id: str
    parent: str | None
    created_at: str
    created_by: str
    notes: str
    counts: dict[str, Any]
    tables: dict[str, dict[str, Any]]  # part -> {"oid": parquet object, "digest": canonical digest, "rows": n}
    media_types: dict[str, int] = field(default_factory=dict)
    class_map: ClassMapDict | None = None
    splits: dict[str, Any] | None = None
    bump: str | None = None
    forced: bool = False
    changelog: dict[str, Any] | None = None
    source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "version": self.version,
            "snapshot_id": self.snapshot_id,
            "parent": self.parent,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "notes": self.notes,
            "counts": self.counts,
            "media_types": self.media_types,
            "class_map": self.class_map,
            "splits": self.splits,
            "tables": self.tables,
            "bump": self.bump,
            "forced": self.forced,
            "changelog": self.changelog,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        if d.get("format") != MANIFEST_FORMAT:
            raise IntegrityError(
                f"not a LensVault manifest (format {d.get('format')!r})",
                fix="the manifest object or file was replaced; run `lensvault verify`",
            )
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in keys})

    def to_bytes(self) -> bytes:
        # Indented for people reading it in Git; still deterministic.
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        return cls.from_dict(json.loads(data))


def manifest_path(manifests_dir: Path, name: str, version: str) -> Path:
    return manifests_dir / name / f"{version}.json"


def write_manifest_file(path: Path, data: bytes, *, replace: bool = False) -> bool:
    """Atomically write a read-only manifest file; True if written, False if it was already there.

    A manifest is frozen once written (and usually committed to Git): an existing file with
    other bytes is refused, never replaced — whatever the catalog says about the version.
    Only ``replace`` (restoring a damaged file from its stored object) overwrites.
    """
    import errno

    from lensvault.store.owner import current

    # Named after its writer: gc removes it at once if the writer was killed (store/leftovers.py).
    tmp = path.with_name(f".{current()}-{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o444)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # create-if-absent, atomically: no check-then-write race
        except FileExistsError:
            if path.read_bytes() == data:
                return False
            raise frozen_manifest_error(path) from None
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # A filesystem without hard links: check, then rename (a tiny race, as before).
            if path.exists():
                if path.read_bytes() == data:
                    return False
                raise frozen_manifest_error(path) from None
            os.replace(tmp, path)
        return True
    except OSError as e:
        from lensvault.store.linking import storage_error

        raise storage_error(e, str(path)) from e
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def frozen_manifest_error(path: Path) -> AlreadyExists:
    """The error for a NAME@VERSION whose manifest file exists with other content."""
    detail = ""
    try:
        m = Manifest.from_bytes(path.read_bytes())
        detail = f" (snapshot {m.snapshot_id[:12]}, created {m.created_at} by {m.created_by})"
    except Exception:  # noqa: BLE001 - whatever the file holds, the error is raised; only its detail is lost
        pass
    return AlreadyExists(
        f"the manifest {path.parent.name}@{path.stem} already exists{detail}: manifests are frozen, "
        "and this one is not replaced by another snapshot",
        where=str(path),
        fix="choose another version. If the catalog does not list this version, it has lost it: run "
            "`lensvault catalog rebuild` (or `--force`); if the file is left over from a failed write "
            "and was never committed, delete it",
    )
