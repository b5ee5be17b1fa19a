"""What in a folder differs from a dataset version (added, removed, modified)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault.datasets.checkout import MARKER
from lensvault.datasets.ingest import folder_oids
from lensvault.datasets.listing import manifest_for, rows_for, rows_matching
from lensvault.errors import InputError, NotFound, UsageError
from lensvault.progress import NO_PROGRESS

if TYPE_CHECKING:
    from lensvault.datasets.files_table import DamagedFile
    from lensvault.datasets.needs import DamageWarning
    from lensvault.progress import Progress
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
    have = folder_oids(vault, folder, progress=progress, same_as=files.get("digest"))
    if have is None:  # unchanged since its stat-cache record, which is exactly this version's table
        return FolderStatus(ref, str(folder), [], [], [], int(files["rows"]))
    rows = rows_for(vault, manifest)
    selected = _checked_out_paths(folder, ref)
    if selected:  # a partial checkout: the files it selected are the version here
        rows = rows_matching(rows, selected, ref)
    want = dict(zip(map(itemgetter(0), rows), map(itemgetter(1), rows)))
    if have == want:  # the common answer, decided in one C-level comparison
        added, removed, modified = [], [], []
    else:
        added = sorted(p for p in have if p not in want)
        removed = sorted(p for p in want if p not in have)
        modified = sorted(p for p, o in have.items() if p in want and want[p] != o)
    unchanged = len(have) - len(added) - len(modified)
    return FolderStatus(ref, str(folder), added, removed, modified, unchanged,
                        _damaged(vault, folder, modified, want))


def _damaged(vault: Vault, folder: Path, modified: list[str], want: dict[str, str]) -> list[DamageWarning]:
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
