"""What in a folder differs from a dataset version (added, removed, modified)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.datasets.checkout import MARKER
from lensvault.datasets.ingest import hash_files, trusted_roots
from lensvault.datasets.listing import batches_matching, manifest_for, row_batches
from lensvault.datasets.record_scan import RecordScan, scan_record
from lensvault.errors import InputError, NotFound, UsageError
from lensvault.progress import NO_PROGRESS
from lensvault.state import racy, unsure

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from lensvault.datasets.files_table import DamagedFile
    from lensvault.datasets.manifest import Manifest
    from lensvault.datasets.needs import DamageWarning
    from lensvault.datasets.scan import ScannedFile
    from lensvault.folder_record import FolderRecord
    from lensvault.progress import Progress
    from lensvault.state import Entry
    from lensvault.vault import Vault

__all__ = ["FolderStatus", "folder_status"]


@dataclass(frozen=True)
class FolderStatus:
    ref: str
    folder: str
    added: list[str]
    removed: list[str]
    modified: list[str]
    unchanged: int
    # Files changed in place while hardlinked into the store: their objects changed too
    # (datasets.needs.damage_warnings: path, oid, needed_by, what, fix).
    damaged: list[DamageWarning] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.modified)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["clean"] = self.clean
        return d


def _marker_ref(marker: Path) -> str:
    """The NAME@VERSION a checkout's marker file names; a damaged marker is a located error."""
    try:
        data = json.loads(marker.read_bytes())
    except (OSError, ValueError, RecursionError) as e:
        problem = f"cannot be read ({e})"
    else:
        ref = data.get("ref") if isinstance(data, dict) else None
        if isinstance(ref, str) and ref:
            return ref
        problem = "does not name a version (no \"ref\": \"NAME@VERSION\")"
    raise InputError(f"the checkout marker {problem}", where=str(marker),
                     fix="say which version to compare with: lensvault status NAME@VERSION FOLDER "
                         "(a new checkout writes the marker again)")


def _checked_out_paths(folder: Path, ref: str) -> list[str]:
    """The ``--path`` patterns of the partial checkout of ``ref`` in ``folder`` (none for a whole one)."""
    try:
        data = json.loads((folder / MARKER).read_bytes())
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(data, dict) or data.get("ref") != ref or not isinstance(data.get("paths"), list):
        return []
    return [p for p in data["paths"] if isinstance(p, str)]


def folder_status(vault: Vault, ref: str | None, folder: Path, *, progress: Progress = NO_PROGRESS) -> FolderStatus:
    """Compare ``folder`` with ``ref`` (or the version its checkout marker names).

    A merge in path order of three sorted streams: the folder's walk, its stat-cache record
    (what each file held when last read), and the version's files table. Only the files
    that changed since the record are read, and what is held is what differs, never the
    folder or the version: a clean million-file folder is compared in flat memory.
    """
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise NotFound("no such folder to compare", where=str(folder),
                       fix="give the folder a `dataset checkout` made (or any folder, with NAME@VERSION)")
    if ref is None:
        marker = folder / MARKER
        if not marker.is_file():
            raise UsageError(
                "which dataset version should the folder be compared with?",
                where=str(folder),
                fix="pass NAME@VERSION (only folders made by `dataset checkout` remember their version)",
            )
        ref = _marker_ref(marker)
    ref, manifest = manifest_for(vault, ref)
    files = manifest.tables.get("files", {})
    real = os.path.realpath(folder)
    record = vault.state.open_index(real)
    try:
        seen = time.time_ns()  # before any stat of the walk: the moment the racy rule measures from
        found = scan_record(folder, record, exclude_dirs=(vault.dir, vault.manifests_dir), trusted=trusted_roots(vault))
        was = None if record is None or found.damaged else record.digest  # what the record held, if known
        if found.unchanged and was is not None and was == files.get("digest"):
            # Unchanged since a record that is exactly this version's table.
            return FolderStatus(ref, str(folder), [], [], [], int(files["rows"]))
        now = _read_changed(found, seen, progress)
        changes: dict[str, Entry | None] = {f.rel: e for f, e in now}
        changes.update((rel, None) for rel, _ in found.gone)
        # Stat keys that moved over the same bytes leave the record's table, so its digest, as it was.
        same_table = not found.gone and all(old is not None and old[4] == e[4] for (_, old), (_, e) in zip(found.changed, now))
        selected = _checked_out_paths(folder, ref)
        if was is not None and was == files.get("digest") and not selected:
            # The record was this version: what changed since is the whole answer.
            out = _from_changes(found, now)
        else:
            out = _merged_with_version(vault, manifest, record, changes, selected, ref)
        if changes or found.damaged:
            vault.state.save_changes(real, record, changes, was if same_table else None, found.same + len(now))
    finally:
        if record is not None:
            record.close()
    added, removed, modified, want = out
    unchanged = found.same + len(now) - len(added) - len(modified)
    return FolderStatus(ref, str(folder), added, removed, modified, unchanged,
                        _damaged(vault, folder, modified, want))


_Compared = tuple[list[str], list[str], list[str], dict[str, str]]  # added, removed, modified, version oid of each modified


def _read_changed(found: RecordScan, seen: int, progress: Progress) -> list[tuple[ScannedFile, Entry]]:
    """Each changed file with its new record entry: hashed (by worker processes), its media kept if
    its bytes are the old entry's."""
    files = [f for f, _ in found.changed]
    out = []
    for (f, old), oid in zip(found.changed, hash_files(files, progress)):
        media = old[5:] if old is not None and old[4] == oid else (None, None, None)
        key = unsure(f.key) if racy(f.key, seen) else f.key
        out.append((f, (*key, oid, *media)))
    return out


def _from_changes(found: RecordScan, now: list[tuple[ScannedFile, Entry]]) -> _Compared:
    """The comparison when the record was the version: read off the changes alone."""
    added, modified, want = [], [], {}
    for (f, old), (_, e) in zip(found.changed, now):
        if old is None:
            added.append(f.rel)
        elif old[4] != e[4]:
            modified.append(f.rel)
            want[f.rel] = old[4]
    return added, [rel for rel, _ in found.gone], modified, want


def _merged_with_version(vault: Vault, manifest: Manifest, record: FolderRecord | None,
                         changes: dict[str, Entry | None], selected: list[str], ref: str) -> _Compared:
    """The folder as its record now says (the record with ``changes``) merged with the version's
    rows, both in path order."""
    from lensvault.state import merged_entries

    have = merged_entries(record.items() if record is not None else iter(()), sorted(changes.items()))
    added, removed, modified, want = [], [], [], {}
    at, entry = next(have, (None, None))
    for path, oid in _version_rows(vault, manifest, selected, ref):
        while at is not None and at < path:
            added.append(at)
            at, entry = next(have, (None, None))
        if at == path:
            if entry[4] != oid:  # type: ignore[index]
                modified.append(path)
                want[path] = oid
            at, entry = next(have, (None, None))
        else:
            removed.append(path)
    while at is not None:
        added.append(at)
        at, entry = next(have, (None, None))
    return added, removed, modified, want


def _version_rows(vault: Vault, manifest: Manifest, selected: list[str], ref: str) -> Iterator[tuple[str, str]]:
    """(path, sha256) of the version's files in path order (those a partial checkout selected), a
    batch at a time (``listing.row_batches``)."""
    batches: Iterable[Sequence[Any]] = row_batches(vault, manifest, columns=("path", "sha256"))
    if selected:  # a partial checkout: the files it selected are the version here
        batches = batches_matching(batches, selected, ref)
    for batch in batches:
        yield from batch


def _damaged(vault: Vault, folder: Path, modified: list[str], want: dict[str, str]) -> list[DamageWarning]:
    # ``want``: the version's oid of each modified file.
    """Modified files that are still the version's object (hardlinked): the object changed with them.

    One stat per modified file and its object. Said every time until repaired: the store
    still serves those bytes under the old name (``verify --repair`` sets them aside).
    """
    from lensvault.store.local_links import shares_inode

    found: list[DamagedFile] = []
    for rel in modified:
        path = folder / rel
        try:
            ino = path.stat().st_ino
        except OSError:
            continue
        if shares_inode(vault.store, want[rel], ino):
            found.append({"path": str(path), "rel": rel, "oid": want[rel]})
    if not found:
        return []
    from lensvault.datasets.needs import damage_warnings

    return damage_warnings(vault, found)
