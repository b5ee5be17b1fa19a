"""Refs: small named files kept beside the objects, the part of a store that is not content-addressed.

Objects name themselves; refs are how a store says which objects matter and in what
order: a catalog's ledger (journal entries naming record objects, write-once version
refs, movable alias refs; see ``lensvault.ledger``), and later a remote's refs. The
interface is what object storage offers: create-if-absent (``If-None-Match: *``),
overwrite, read, list by prefix, delete. ``LocalRefs`` keeps them as files under the
store root, outside the ``ab/`` object shards.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

from lensvault.errors import UsageError
from lensvault.store.owner import current as current_owner

__all__ = ["LocalRefs", "check_ref_name"]

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@=-]{0,199}$")
_TOP = ("ledgers",)  # the only top-level folders refs may live in (never an object shard, tmp or pins)


def check_ref_name(name: str) -> str:
    parts = name.split("/")
    if len(parts) < 2 or parts[0] not in _TOP or not all(_PART.match(p) for p in parts) or ".." in parts:
        raise UsageError(f"{name!r} is not a valid ref name", where=name,
                         fix="ref names are relative paths of letters, digits and ._+@=- under ledgers/")
    return name


class LocalRefs:
    """Refs as files under ``self.root`` (mixed into ``LocalObjectStore``)."""

    root: Path

    def _ref_path(self, name: str) -> Path:
        return self.root / check_ref_name(name)

    def ref_age(self, name: str) -> float | None:
        try:
            return max(0.0, time.time() - os.stat(self._ref_path(name)).st_mtime)
        except FileNotFoundError:
            return None

    def ref_location(self, name: str) -> str:
        return str(self._ref_path(name))

    def put_ref(self, name: str, data: bytes, *, exclusive: bool = False) -> bool:
        """Write ref ``name``, durably. With ``exclusive``, only if it does not exist yet:
        False then (the ref is left as it was)."""
        from lensvault.store.linking import storage_error

        path = self._ref_path(name)
        # Beside the ref, hidden (list_refs skips it): the store's tmp/ is for objects only. Named
        # after its writer, so gc removes it at once if the writer was killed (store/leftovers.py).
        tmp = path.parent / f".{current_owner()}-{uuid.uuid4().hex[:8]}-{path.name}.tmp"
        try:
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
                _fsync_dir(path.parent.parent)  # the new folder's own entry must be durable too
            if exclusive and not data:
                # An empty ref (a journal entry) is whole the moment it exists: no temp file.
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444))
                except FileExistsError:
                    return False
                _fsync_dir(path.parent)
                return True
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if exclusive:
                try:
                    os.link(tmp, path)  # atomic create-if-absent
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp)
            else:
                os.replace(tmp, path)
            _fsync_dir(path.parent)
            return True
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise storage_error(e, str(path)) from e

    def get_ref(self, name: str) -> bytes | None:
        try:
            return self._ref_path(name).read_bytes()
        except FileNotFoundError:
            return None

    def delete_ref(self, name: str) -> None:
        try:
            os.unlink(self._ref_path(name))
        except FileNotFoundError:
            pass

    def list_refs(self, prefix: str) -> list[str]:
        """Every ref under folder ``prefix``, sorted by name."""
        base = self._ref_path(prefix)
        out: list[str] = []
        for dirpath, _dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            out.extend(f"{rel}/{f}" for f in files if not f.startswith("."))
        return sorted(out)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
