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

from lensvault.errors import IntegrityError

__all__ = ["Manifest", "canonical_json", "snapshot_document", "write_manifest_file"]

SNAPSHOT_FORMAT = "lensvault.snapshot/1"
MANIFEST_FORMAT = "lensvault.manifest/1"


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def snapshot_document(sections: dict) -> bytes:
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
    counts: dict
    tables: dict  # part -> {"oid": parquet object, "digest": canonical digest, "rows": n}
    media_types: dict = field(default_factory=dict)
    class_map: dict | None = None
    splits: dict | None = None
    bump: str | None = None
    forced: bool = False
    changelog: dict | None = None
    source: dict | None = None

    def to_dict(self) -> dict:
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
    def from_dict(cls, d: dict) -> Manifest:
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


def write_manifest_file(path: Path, data: bytes) -> None:
    """Atomically write a read-only manifest file (replacing an orphan of a crashed write)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        from lensvault.store.linking import storage_error

        raise storage_error(e, str(path)) from e
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


