"""Pictures made from stored objects for the web UI, kept in the vault's machine-local cache.

Each is made once (with Pillow) and named after the stored object it is made from, so it
never goes stale and needs no bound of its own: it lives exactly as long as that object.

    cache/thumbnails/ab/<oid>-<size>.jpg          a JPEG thumbnail of image object <oid>
    cache/masks/ab/<oid>/<key>.png                a mask overlay drawn from annotations table <oid>

``gc`` removes the ones whose object is no longer in the store (or that it deletes), and
temp files of writers that died (``stale``). A cache entry of another vault sharing the
store is removed by ``gc`` in that vault, when it finds the object gone.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from lensvault.store.leftovers import Leftover
    from lensvault.vault import Vault

__all__ = ["KIND", "mask_path", "stale", "thumbnail_path", "write_atomically"]

KIND = "cached picture of a deleted object"
_OID = re.compile(r"^[0-9a-f]{64}")
_TMP = ".tmp-"


def thumbnail_path(vault_dir: Path, oid: str, size: int) -> Path:
    return Path(vault_dir) / "cache" / "thumbnails" / oid[:2] / f"{oid}-{size}.jpg"


def mask_path(vault_dir: Path, table_oid: str, key: str) -> Path:
    return Path(vault_dir) / "cache" / "masks" / table_oid[:2] / table_oid / f"{key}.png"


def write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """``write(file)`` into a temp file beside ``path``, then renamed: two processes making the
    same picture both end with a whole file, and a reader never sees half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP, suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _entries(vault_dir: Path) -> Iterable[tuple[str, Path]]:
    """(oid, path) of every cache entry, and ("", path) of temp files."""
    for kind in ("thumbnails", "masks"):
        top = Path(vault_dir) / "cache" / kind
        try:
            shards = [e for e in os.scandir(top) if e.is_dir()]
        except OSError:
            continue
        for shard in shards:
            for e in os.scandir(shard.path):
                found = _OID.match(e.name)
                if e.name.startswith(_TMP):
                    yield "", Path(e.path)
                elif found:
                    yield found.group(0), Path(e.path)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def stale(vault: Vault, deleting: set[str], grace_seconds: float) -> list[Leftover]:
    """Cache entries of objects that gc deletes (``deleting``) or that are gone from the store,
    and temp files older than the grace period (their writer died)."""
    from lensvault.store.leftovers import Leftover

    now = time.time()
    by_oid: dict[str, list[Path]] = {}
    out: list[Leftover] = []
    for oid, path in _entries(vault.dir):
        try:
            if not oid:
                age = now - path.stat().st_mtime
                if age > grace_seconds:
                    out.append(Leftover(str(path), "cache temp file", _size(path), age))
                continue
            by_oid.setdefault(oid, []).append(path)
        except FileNotFoundError:
            continue  # removed meanwhile (a racing gc)
    unknown = [o for o in by_oid if o not in deleting]
    gone = set(deleting) | set(vault.store.missing(sorted(unknown)) if unknown else ())
    for oid in sorted(set(by_oid) & gone):
        for path in by_oid[oid]:
            try:
                out.append(Leftover(str(path), KIND, _size(path), now - path.stat().st_mtime))
            except FileNotFoundError:
                continue
    return out
