"""Which objects were verified since they last changed: a stat cache for the store.

A copy reads every byte, so a copy checkout hashes what it copies and needs no
record. A hardlink, symlink or reflink checkout reads nothing: it shares the
object's bytes. It trusts an object only if its bytes hashed to its name at a
moment its ``(inode, size, mtime_ns)`` was what it is now; any other object is
hashed first (and a mismatch stops the checkout). This module keeps those keys.

Why not the ctime too: hardlinking an object (a hardlink snapshot or checkout)
moves its ctime, so every link would make every object unverified again. The
price: a rewrite that restores the mtime (``cp -p`` or ``rsync --inplace`` onto a
read-only, hardlinked object, which takes root or a chmod) is not seen here; the
stat cache of the folder it was made through sees it (its key has the ctime), and
``lensvault verify`` always does. This is the hardlink-mode risk the README states.

Where a key comes from:
- an object written by a copy ingest: the temp file's stat right after writing
  (created read-only, under a name no other process knows, then renamed: the rename
  keeps inode, size and mtime);
- an object linked from a file by a hardlink ingest: the file's stat after the link,
  when its mtime is not racy (state.racy);
- ``verify`` and a checkout that hashed the object: the stat taken before hashing,
  kept only if the object still has it afterwards.

The record is machine-local (inodes), kept with the stat cache: a base and small
delta files that writers add without reading the base (``add``, ``forget``); the
reader merges them and folds them into the base once there are many. A damaged or
foreign file is ignored: a miss costs a re-hash, never a wrong answer.
"""

from __future__ import annotations

import marshal
import os
import uuid
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

from lensvault.store.base import ObjectKey  # (inode, size, mtime_ns)

# oid → its key, or None: no longer trusted (a delta's ``forget``)
_Payload: TypeAlias = dict[str, ObjectKey] | dict[str, ObjectKey | None]

if TYPE_CHECKING:
    from lensvault.progress import Progress
    from lensvault.store.base import ObjectStore

__all__ = ["VerifiedObjects", "object_key", "untrusted"]

_TAG = b"lensvault-verified-1\n"
_FOLD_AT = 32  # deltas merged into the base once there are this many


def _encode(payload: _Payload) -> bytes:
    data = marshal.dumps(payload, marshal.version)
    return _TAG + zlib.crc32(data).to_bytes(4, "big") + data


def _decode(blob: bytes) -> dict[str, Any] | None:  # a file's payload, not checked beyond being a dict
    if not blob.startswith(_TAG):
        return None
    head = len(_TAG)
    data = memoryview(blob)[head + 4:]
    if int.from_bytes(blob[head:head + 4], "big") != zlib.crc32(data):
        return None
    try:
        payload = marshal.loads(data)
    except Exception:  # noqa: BLE001 - any undecodable file is a miss (see the module's doc)
        return None
    return payload if isinstance(payload, dict) else None


def object_key(st: os.stat_result) -> ObjectKey:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class VerifiedObjects:
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = os.fspath(folder)

    def _read(self, path: str) -> dict[str, Any] | None:
        try:
            with open(path, "rb") as f:
                return _decode(f.read())
        except OSError:
            return None

    def _write(self, name: str, payload: _Payload) -> None:
        path = f"{self.folder}/{name}"
        tmp = f"{self.folder}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            os.makedirs(self.folder, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(_encode(payload))
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def load(self) -> dict[str, ObjectKey]:
        """oid → key of every object verified so far (deltas merged, oldest first)."""
        keys: dict[str, ObjectKey] = self._read(f"{self.folder}/base") or {}
        try:
            deltas = sorted((e for e in os.scandir(self.folder) if e.name.startswith("delta-")),
                            key=lambda e: (e.stat().st_mtime_ns, e.name))
        except OSError:
            return keys
        for e in deltas:
            for oid, key in (self._read(e.path) or {}).items():
                if key is None:
                    keys.pop(oid, None)
                else:
                    keys[oid] = key
        if len(deltas) >= _FOLD_AT:
            self._write("base", keys)
            for e in deltas:  # only the ones merged: a delta written meanwhile stays
                try:
                    os.unlink(e.path)
                except OSError:
                    pass
        return keys

    def add(self, keys: dict[str, ObjectKey]) -> None:
        if keys:
            self._write(f"delta-{uuid.uuid4().hex}", dict(keys))

    def forget(self, oids: Iterable[str]) -> None:
        """Objects found damaged (or replaced): never trusted on their old key again."""
        oids = list(oids)
        if oids:
            self._write(f"delta-{uuid.uuid4().hex}", dict.fromkeys(oids))


def untrusted(store: ObjectStore, items: Iterable[tuple[str, ObjectKey | None]], keys: dict[str, ObjectKey], *,
              record: VerifiedObjects | None = None, progress: Progress | None = None) -> dict[str, str]:
    """Of ``items`` (oid, the object's key now), those not verified under that key are hashed;
    returns {oid: 'corrupt' | 'missing'} for the ones that fail. The ones that pass are recorded."""
    from lensvault.progress import NO_PROGRESS

    todo = sorted({oid for oid, key in items if keys.get(oid) != key})
    if not todo:
        return {}
    bad: dict[str, str] = {}
    learned: dict[str, ObjectKey] = {}
    with (progress or NO_PROGRESS).task("Verifying objects", len(todo)) as advance:
        for oid, (result, key) in store.check_many(todo, on_done=advance):
            if result != "ok":
                bad[oid] = result
            elif key is not None:
                learned[oid] = key
    if record is not None:
        record.add(learned)
    return bad
