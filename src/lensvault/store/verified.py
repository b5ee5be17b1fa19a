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

The base is two arrays, not a dict: the objects' sha256 as 32 raw bytes each, sorted, and
their keys as three 64-bit integers each (``KnownKeys``), read into numpy without a Python
object per entry: 56 bytes an object, where a dict of str → tuple held ~380 (a million
objects verified made every linked checkout hold 380 MB). Looking up a batch of objects is
one binary search over the array (``KnownKeys.differing``). A base in the old form (a
marshal dict) is read once and rewritten in the new one.
"""

from __future__ import annotations

import marshal
import os
import sys
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

__all__ = ["KnownKeys", "VerifiedObjects", "object_key", "untrusted"]

_TAG = b"lensvault-verified-1\n"  # a delta (and a base before 2): a marshal dict
_BASE_TAG = b"lensvault-verified-2\n"  # a base: n, the sorted raw digests, their keys (see KnownKeys)
_FOLD_AT = 32  # deltas merged into the base once there are this many
_SMALL_DELTA = 1024  # a delta of more keys is written as arrays (as the base is)
_U64 = (1 << 64) - 1  # keys are kept as unsigned 64-bit (an mtime may be negative): masked alike on both sides


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


class KnownKeys:
    """oid → key of every verified object: the base as sorted arrays (``oids``: raw 32-byte
    digests, ``keys``: (n, 3) uint64, masked with ``_U64``) and the deltas' changes over it
    (``changes``: oid → key, or None for an object no longer trusted)."""

    __slots__ = ("_buckets", "changes", "keys", "oids")

    def __init__(self, oids: Any = None, keys: Any = None, changes: dict[str, ObjectKey | None] | None = None) -> None:
        import numpy as np

        self.oids = np.empty(0, dtype="S32") if oids is None else oids
        self.keys = np.empty((0, 3), dtype=np.uint64) if keys is None else keys
        self.changes: dict[str, ObjectKey | None] = changes if changes is not None else {}
        self._buckets: tuple[int, Any] | None = None

    @classmethod
    def of(cls, keys: dict[str, ObjectKey]) -> KnownKeys:
        """From a dict (a base in the old form): sorted into arrays."""
        import numpy as np

        if not keys:
            return cls()
        oids = np.frombuffer(bytes.fromhex("".join(keys)), dtype="S32")
        values = np.fromiter((v & _U64 for k in keys.values() for v in k), dtype=np.uint64,
                             count=3 * len(keys)).reshape(-1, 3)
        order = np.argsort(oids, kind="stable")
        return cls(oids[order], values[order])

    def get(self, oid: str) -> ObjectKey | None:
        if oid in self.changes:
            return self.changes[oid]
        found = self._find([oid])
        i = int(found[0])
        if i < 0:
            return None
        ino, size, mtime = (int(v) for v in self.keys[i])
        return ino, _signed(size), _signed(mtime)

    def _find(self, oids: list[str]) -> Any:
        """Index into the base of each oid (hex), -1 where it is not there."""
        import numpy as np

        n = len(self.oids)
        if not oids or n == 0:
            return np.full(len(oids), -1, dtype=np.int64)
        raw = np.frombuffer(bytes.fromhex("".join(oids)), dtype="S32")
        # Not a binary search (~20 cache misses a lookup: 1.5 µs, 1.5 s for a million files):
        # the digests are uniform, so their first bits index a table of where each bucket
        # starts (~1 digest a bucket), and a lookup compares the few digests of its bucket.
        shift, starts = self._bucket_starts()
        b = (_prefix(raw) >> np.uint64(shift)).astype(np.int64)
        lo, hi = starts[b].astype(np.int64), starts[b + 1].astype(np.int64)
        out = np.full(len(raw), -1, dtype=np.int64)
        todo = np.flatnonzero(hi > lo)
        while len(todo):
            at = lo[todo]
            hit = self.oids[at] == raw[todo]
            out[todo[hit]] = at[hit]
            lo[todo] += 1
            todo = todo[~hit & (lo[todo] < hi[todo])]
        return out

    def _bucket_starts(self) -> tuple[int, Any]:
        """(shift, starts): bucket ``prefix >> shift`` of the sorted digests is ``starts[b]:starts[b + 1]``."""
        import numpy as np

        if self._buckets is None:
            bits = max(1, min(32, len(self.oids).bit_length()))
            shift = 64 - bits
            counts = np.bincount((_prefix(self.oids) >> np.uint64(shift)).astype(np.int64), minlength=1 << bits)
            starts = np.zeros((1 << bits) + 1, dtype=np.int64 if len(self.oids) >= 1 << 31 else np.int32)
            np.cumsum(counts, out=starts[1:])
            self._buckets = (shift, starts)
        return self._buckets

    def differing(self, items: Iterable[tuple[str, ObjectKey | None]]) -> list[str]:
        """The oids of ``items`` (oid, its key now) whose key is not the one recorded for them."""
        from itertools import islice

        out: list[str] = []
        it = iter(items)
        changes = self.changes
        while part := list(islice(it, 4096)):  # (what a lookup holds per item stays that of 4,096)
            if changes:
                out.extend(oid for oid, key in part if oid in changes and changes[oid] != key)
                part = [(oid, key) for oid, key in part if oid not in changes]
            out.extend(self._differing(part))
        return out

    def _differing(self, part: list[tuple[str, ObjectKey | None]]) -> list[str]:
        import numpy as np

        if not part:
            return []
        at = self._find([oid for oid, _ in part])
        found = at >= 0
        keys = [k for _, k in part]
        try:  # (the usual keys: three non-negative ints each)
            given = np.array(keys, dtype=np.uint64).reshape(-1, 3)
            none = np.zeros(len(part), dtype=bool)
        except (TypeError, ValueError, OverflowError):  # a None among them, or a negative mtime
            none = np.fromiter((k is None for k in keys), dtype=bool, count=len(keys))
            given = np.fromiter((v & _U64 for k in keys for v in (k if k is not None else (0, 0, 0))),
                                dtype=np.uint64, count=3 * len(keys)).reshape(-1, 3)
        same = found & ~none & (self.keys[np.maximum(at, 0)] == given).all(axis=1) if len(self.oids) else found
        # recorded == now: both the same key, or neither a key (not recorded, and no key now)
        differs = ~(same | (~found & none))
        return [part[i][0] for i in np.flatnonzero(differs).tolist()]

    def folded(self) -> KnownKeys:
        """The base with the changes applied (for a new base)."""
        import numpy as np

        if not self.changes:
            return self
        keep = np.ones(len(self.oids), dtype=bool)
        at = self._find(list(self.changes))
        keep[at[at >= 0]] = False
        added = {o: k for o, k in self.changes.items() if k is not None}
        new = KnownKeys.of(added)
        oids = np.concatenate([self.oids[keep], new.oids])
        keys = np.concatenate([self.keys[keep], new.keys])
        order = np.argsort(oids, kind="stable")
        return KnownKeys(oids[order], keys[order])

    def merged(self, newer: list[KnownKeys]) -> KnownKeys:
        """This record's (changes folded in) with the bases of ``newer`` over it, in order: for an
        oid in several, the newest key wins. One sort for all of them (~0.4 s a million)."""
        import numpy as np

        base = self.folded()
        oids = np.concatenate([base.oids, *(n.oids for n in newer)])
        keys = np.concatenate([base.keys, *(n.keys for n in newer)])
        order = np.argsort(oids, kind="stable")  # (an oid in several: the newest comes last)
        oids, keys = oids[order], keys[order]
        del order
        last = np.ones(len(oids), dtype=bool)
        np.not_equal(oids[:-1], oids[1:], out=last[:-1])
        return KnownKeys(oids[last], keys[last]) if not last.all() else KnownKeys(oids, keys)

    def to_bytes(self) -> bytes:
        return b"".join(self.to_parts())

    def to_parts(self) -> list[Any]:
        """``to_bytes`` in pieces (buffers of the arrays: written one after the other, never joined)."""
        import numpy as np

        oids, keys = np.ascontiguousarray(self.oids), np.ascontiguousarray(self.keys, dtype="<u8")
        return _framed(len(oids), oids.data.cast("B") if oids.size else b"",
                       keys.reshape(-1).data.cast("B") if keys.size else b"")

    @classmethod
    def from_bytes(cls, blob: bytes) -> KnownKeys | None:
        """A base (or a big delta, whose rows need not be sorted) in the new form; None if it is not
        one (damaged, or another form)."""
        import numpy as np

        if not blob.startswith(_BASE_TAG):
            return None
        head = len(_BASE_TAG)
        body = memoryview(blob)[head + 4:]
        if int.from_bytes(blob[head:head + 4], "big") != zlib.crc32(body) or len(body) < 8:
            return None
        n = int.from_bytes(body[:8], "little")
        if len(body) != 8 + 56 * n:
            return None
        oids = np.frombuffer(blob, dtype="S32", count=n, offset=head + 4 + 8)
        keys = np.frombuffer(blob, dtype="<u8", count=3 * n, offset=head + 4 + 8 + 32 * n).reshape(n, 3)
        return cls(oids, keys)


def _framed(n: int, oids: Any, keys: Any) -> list[Any]:
    """The pieces of a base (or big delta) file: tag, crc32 of the body, then the body (n, oids, keys)."""
    count = n.to_bytes(8, "little")
    crc = zlib.crc32(keys, zlib.crc32(oids, zlib.crc32(count)))
    return [_BASE_TAG + crc.to_bytes(4, "big"), count, oids, keys]


def _arrays_bytes(keys: dict[str, ObjectKey]) -> list[Any]:
    """A delta of many keys in the base's form, without numpy (a snapshot's process need not import
    it): not sorted, which the reader does as it merges it (``KnownKeys.merged``)."""
    from array import array

    values = array("Q", (v & _U64 for k in keys.values() for v in k))
    if sys.byteorder != "little":
        values.byteswap()
    return _framed(len(keys), bytes.fromhex("".join(keys)), values.tobytes())


def _prefix(raw: Any) -> Any:
    """The first 8 bytes of each raw digest as a big-endian integer: sorted as the digests are."""
    import numpy as np

    return np.ascontiguousarray(raw).view(">u8").reshape(-1, 4)[:, 0].astype(np.uint64)


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


class VerifiedObjects:
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = os.fspath(folder)

    def _read_blob(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def _write(self, name: str, payload: _Payload) -> None:
        self._write_bytes(name, [_encode(payload)])

    def _write_bytes(self, name: str, data: list[Any]) -> None:
        path = f"{self.folder}/{name}"
        tmp = f"{self.folder}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            os.makedirs(self.folder, exist_ok=True)
            with open(tmp, "wb") as f:
                f.writelines(data)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def load(self) -> KnownKeys:
        """oid → key of every object verified so far (deltas merged over the base, oldest first)."""
        known = self._base()
        try:
            deltas = sorted((e for e in os.scandir(self.folder) if e.name.startswith("delta-")),
                            key=lambda e: (e.stat().st_mtime_ns, e.name))
        except OSError:
            return known
        big = False
        pending: list[KnownKeys] = []  # big deltas, in the base's form (see ``add``): merged in one sort
        for e in deltas:
            blob = self._read_blob(e.path)
            arrays = KnownKeys.from_bytes(blob) if blob is not None else None
            if arrays is not None:
                pending.append(arrays)
                big = True
                continue
            if pending:  # (before a small delta that is newer than them)
                known, pending = known.merged(pending), []
            known.changes.update((_decode(blob) if blob is not None else None) or {})
        if pending:
            known = known.merged(pending)
        if big or len(deltas) >= _FOLD_AT or len(known.changes) > 4 * _SMALL_DELTA:
            known = known.folded()
            self._write_base(known)
            for e in deltas:  # only the ones merged: a delta written meanwhile stays
                try:
                    os.unlink(e.path)
                except OSError:
                    pass
        return known

    def _base(self) -> KnownKeys:
        blob = self._read_blob(f"{self.folder}/base")
        if blob is None:
            return KnownKeys()
        known = KnownKeys.from_bytes(blob)
        if known is not None:
            return known
        old = _decode(blob)  # a base in the old form: rewritten once in the new one
        if old is None:
            return KnownKeys()
        del blob
        known = KnownKeys.of(old)
        del old
        self._write_base(known)
        return known

    def _write_base(self, known: KnownKeys) -> None:
        self._write_bytes("base", known.to_parts())

    def add(self, keys: dict[str, ObjectKey]) -> None:
        if len(keys) > _SMALL_DELTA:
            # A snapshot's or a verify's many keys: in the base's form, so that the reader never
            # holds them as a dict (it merges them into the base and writes that).
            self._write_bytes(f"delta-{uuid.uuid4().hex}", _arrays_bytes(keys))
        elif keys:
            self._write(f"delta-{uuid.uuid4().hex}", dict(keys))

    def forget(self, oids: Iterable[str]) -> None:
        """Objects found damaged (or replaced): never trusted on their old key again."""
        oids = list(oids)
        if oids:
            self._write(f"delta-{uuid.uuid4().hex}", dict.fromkeys(oids))


def untrusted(store: ObjectStore, items: Iterable[tuple[str, ObjectKey | None]],
              keys: KnownKeys | dict[str, ObjectKey], *, record: VerifiedObjects | None = None,
              progress: Progress | None = None) -> dict[str, str]:
    """Of ``items`` (oid, the object's key now), those not verified under that key are hashed;
    returns {oid: 'corrupt' | 'missing'} for the ones that fail. The ones that pass are recorded."""
    from lensvault.progress import NO_PROGRESS

    if isinstance(keys, KnownKeys):
        todo = sorted(set(keys.differing(items)))
    else:
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
