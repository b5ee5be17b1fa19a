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
reader merges them and folds them into the base once there are many (or one is big). A
fold is a merge of sorted runs (the base, big deltas written sorted, the small ones'
changes) into a new base file, a window of each at a time: it never holds the record
twice or sorts it whole. A damaged or foreign file is ignored: a miss costs a re-hash,
never a wrong answer.

The base is two arrays, not a dict: the objects' sha256 as 32 raw bytes each, sorted, and
their keys as three 64-bit integers each (``KnownKeys``): 56 bytes an object, where a dict of
str → tuple held ~380. Read into memory that still grew with the store (a checkout of 2M files
held 306 MB); the file is mapped instead, once its checksum is checked, and a batch of lookups
(``KnownKeys.differing``, a checkout's batch of 16,384) reads a few pages of it for each
object, a span of rows at a time, letting them go after each (lensvault/sorted_runs.py). The
file is never written in place (a new base is renamed over it), so a mapping stays whole. A
base in the old form (a marshal dict) is read once and rewritten in the new one.
"""

from __future__ import annotations

import marshal
import os
import sys
import uuid
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

from lensvault.sorted_runs import MERGE_ROWS, ArrayRun, Mapped, bucket_starts, find, merged_runs
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
# Looked up at once (a checkout's batch): what a lookup holds per item stays that of so many, and
# a mapped base's pages are read again once a batch, so bigger batches read it fewer times.
_LOOKUP_ROWS = 16_384
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

    __slots__ = ("_buckets", "changes", "keys", "mapped", "oids")

    def __init__(self, oids: Any = None, keys: Any = None, changes: dict[str, ObjectKey | None] | None = None,
                 mapped: Mapped | None = None) -> None:
        import numpy as np

        self.oids = np.empty(0, dtype="S32") if oids is None else oids
        self.keys = np.empty((0, 3), dtype=np.uint64) if keys is None else keys
        self.changes: dict[str, ObjectKey | None] = changes if changes is not None else {}
        self.mapped = mapped  # the base file the arrays are views of, or None: they are in memory
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

    @classmethod
    def of_file(cls, run: _FileRun) -> KnownKeys:
        """The base file ``run`` (checked whole) mapped, not read: lookups read a few pages of it."""
        mapped = Mapped(run.fd)
        oids = mapped.array("S32", run.n, run.oids_at)
        return cls(oids, mapped.array("<u8", 3 * run.n, run.keys_at).reshape(-1, 3), mapped=mapped)

    def get(self, oid: str) -> ObjectKey | None:
        if oid in self.changes:
            return self.changes[oid]
        at, keys = self._find([oid])
        if int(at[0]) < 0:
            return None
        ino, size, mtime = (int(v) for v in keys[0])
        return ino, _signed(size), _signed(mtime)

    def _find(self, oids: list[str]) -> tuple[Any, Any]:
        """(index into the base of each oid (hex), -1 where it is not there; its key there)."""
        import numpy as np

        raw = np.frombuffer(bytes.fromhex("".join(oids)), dtype="S32")
        # Not a binary search over the whole (~20 cache misses a lookup: 1.5 s for a million
        # files): the digests are uniform, so their first bits index a table of where each
        # bucket starts, and a lookup searches the few digests of its bucket.
        return find(self.oids, raw, self._bucket_starts(), self.keys, self.mapped)

    def _bucket_starts(self) -> tuple[int, Any]:
        """(shift, starts): bucket ``prefix >> shift`` of the sorted digests is ``starts[b]:starts[b + 1]``.
        In memory ~1 digest a bucket; a mapped base ~8 (a page or two a lookup, 0.5 bytes an object)."""
        if self._buckets is None:
            self._buckets = bucket_starts(self.oids, 1 if self.mapped is None else 8, self.mapped)
        return self._buckets

    def differing(self, items: Iterable[tuple[str, ObjectKey | None]]) -> list[str]:
        """The oids of ``items`` (oid, its key now) whose key is not the one recorded for them."""
        from itertools import islice

        out: list[str] = []
        it = iter(items)
        changes = self.changes
        while part := list(islice(it, _LOOKUP_ROWS)):
            if changes:
                out.extend(oid for oid, key in part if oid in changes and changes[oid] != key)
                part = [(oid, key) for oid, key in part if oid not in changes]
            out.extend(self._differing(part))
        return out

    def _differing(self, part: list[tuple[str, ObjectKey | None]]) -> list[str]:
        import numpy as np

        if not part:
            return []
        at, recorded = self._find([oid for oid, _ in part])
        found = at >= 0
        keys = [k for _, k in part]
        try:  # (the usual keys: three non-negative ints each)
            given = np.array(keys, dtype=np.uint64).reshape(-1, 3)
            none = np.zeros(len(part), dtype=bool)
        except (TypeError, ValueError, OverflowError):  # a None among them, or a negative mtime
            none = np.fromiter((k is None for k in keys), dtype=bool, count=len(keys))
            given = np.fromiter((v & _U64 for k in keys for v in (k if k is not None else (0, 0, 0))),
                                dtype=np.uint64, count=3 * len(keys)).reshape(-1, 3)
        same = found & ~none & (recorded == given).all(axis=1)
        # recorded == now: both the same key, or neither a key (not recorded, and no key now)
        differs = ~(same | (~found & none))
        return [part[i][0] for i in np.flatnonzero(differs).tolist()]

    def folded(self) -> KnownKeys:
        """The base with the changes applied (for a new base)."""
        import numpy as np

        if not self.changes:
            return self
        keep = np.ones(len(self.oids), dtype=bool)
        at = self._find(list(self.changes))[0]
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
    """A delta of many keys in the base's form, sorted, without numpy (a snapshot's process need not
    import it). Sorted, so that the reader folds it into the base by merging sorted runs a window at
    a time (``sorted_runs.merged_runs``) instead of holding it and the base whole to sort them (~150 bytes an
    object for a moment: the peak of the first checkout after a big snapshot). The hex digests sort
    as their bytes do (~0.9 s a million)."""
    from array import array

    order = sorted(keys)
    values = array("Q", (v & _U64 for o in order for v in keys[o]))
    if sys.byteorder != "little":
        values.byteswap()
    return _framed(len(order), bytes.fromhex("".join(order)), values.tobytes())


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


class _FileRun:
    """A base or big delta file (the base's form), checked whole (its checksum) without being held,
    read a window of rows at a time."""

    def __init__(self, fd: int, n: int) -> None:
        self.fd, self.n = fd, n
        self.oids_at = len(_BASE_TAG) + 4 + 8
        self.keys_at = self.oids_at + 32 * n

    @classmethod
    def open(cls, path: str) -> _FileRun | None:
        """The file, if it is whole and in the base's form; None otherwise (another form: the
        caller reads it as such; damaged: a miss)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            size = os.fstat(fd).st_size
            head = os.pread(fd, len(_BASE_TAG) + 12, 0)
            if len(head) == len(_BASE_TAG) + 12 and head.startswith(_BASE_TAG):
                n = int.from_bytes(head[-8:], "little")
                if size == len(head) + 56 * n:
                    crc = zlib.crc32(head[-8:])
                    for at in range(len(head), size, 1 << 20):
                        crc = zlib.crc32(os.pread(fd, 1 << 20, at), crc)
                    if crc == int.from_bytes(head[len(_BASE_TAG):len(_BASE_TAG) + 4], "big"):
                        return cls(fd, n)
        except OSError:
            pass
        os.close(fd)
        return None

    def close(self) -> None:
        os.close(self.fd)

    def _read(self, at: int, length: int) -> bytes:
        data = os.pread(self.fd, length, at)
        if len(data) != length:  # (checked whole when opened, and a record file never changes)
            raise OSError(f"short read of a verified-objects record: {len(data)} of {length} bytes")
        return data

    def rows(self, lo: int, hi: int) -> tuple[Any, Any, Any]:
        import numpy as np

        oids = np.frombuffer(self._read(self.oids_at + 32 * lo, 32 * (hi - lo)), dtype="S32")
        keys = np.frombuffer(self._read(self.keys_at + 24 * lo, 24 * (hi - lo)), dtype="<u8").reshape(-1, 3)
        return oids, keys, None

    def is_sorted(self) -> bool:
        last = None
        for lo in range(0, self.n, MERGE_ROWS):
            oids = self.rows(lo, min(lo + MERGE_ROWS, self.n))[0]
            if (last is not None and last > oids[0]) or bool((oids[:-1] > oids[1:]).any()):
                return False
            last = oids[-1]
        return True

    def sorted_in_memory(self) -> ArrayRun:
        """An unsorted delta (as versions before sorted ones wrote them), read whole and sorted."""
        import numpy as np

        oids, keys, _ = self.rows(0, self.n)
        order = np.argsort(oids, kind="stable")
        return ArrayRun(oids[order], keys[order])


_Run: TypeAlias = "_FileRun | ArrayRun"


def _dict_run(changes: dict[str, ObjectKey | None]) -> ArrayRun:
    import numpy as np

    oids = np.frombuffer(bytes.fromhex("".join(changes)), dtype="S32")
    keys = np.fromiter((v & _U64 for k in changes.values() for v in (k if k is not None else (0, 0, 0))),
                       dtype=np.uint64, count=3 * len(changes)).reshape(-1, 3)
    dead = np.fromiter((k is None for k in changes.values()), dtype=bool, count=len(changes))
    order = np.argsort(oids, kind="stable")
    return ArrayRun(oids[order], keys[order], dead[order])


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
        """oid → key of every object verified so far (deltas merged over the base, oldest first).

        What is held is the base (56 bytes an object) and the small deltas' changes. Deltas
        that are due to be folded (a big one, or many) are merged with the base into a new base
        file a window of rows at a time (``_fold_on_disk``), which is then read: the fold holds
        a window of each run, not the base and the deltas whole."""
        try:
            deltas = sorted((e for e in os.scandir(self.folder) if e.name.startswith("delta-")),
                            key=lambda e: (e.stat().st_mtime_ns, e.name))
        except OSError:
            return self._base()
        if deltas and self._fold_on_disk(deltas):
            return self._base()
        return self._load_in_memory(deltas)

    def _fold_on_disk(self, deltas: list[os.DirEntry[str]]) -> bool:
        """Fold ``deltas`` into a new base if they are due (what ``_load_in_memory`` would fold), by
        a merge of sorted runs written as it goes; False if they are not due or the fold could
        not be written (the caller then reads them as before)."""
        runs: list[_Run] = []
        pending: dict[str, ObjectKey | None] = {}  # consecutive small deltas, merged in order
        big = False
        opened: list[_FileRun] = []
        try:
            for e in deltas:
                run = _FileRun.open(e.path)
                if run is None:
                    blob = self._read_blob(e.path)
                    pending.update((_decode(blob) if blob is not None else None) or {})
                    continue
                big = True
                if pending:
                    runs.append(_dict_run(pending))
                    pending = {}
                opened.append(run)
                runs.append(run if run.is_sorted() else run.sorted_in_memory())  # (unsorted: written before they were sorted)
            if pending:
                runs.append(_dict_run(pending))
            small = sum(r.n for r in runs if isinstance(r, ArrayRun))
            if not (big or len(deltas) >= _FOLD_AT or small > 4 * _SMALL_DELTA):
                return False
            base = _FileRun.open(f"{self.folder}/base")
            if base is not None:
                opened.append(base)
                runs.insert(0, base)
            else:  # none yet, a damaged one (a miss), or one in the old form (read as it was)
                known = self._base()
                runs.insert(0, ArrayRun(known.oids, known.keys))
            if not self._write_runs(runs):
                return False
        except (OSError, ValueError, TypeError):  # a delta that reads as garbage: the old way decides
            return False
        finally:
            for run in opened:
                run.close()
        _remove_merged(deltas)
        return True

    def _write_runs(self, runs: list[_Run]) -> bool:
        """A new base of the merged ``runs`` (newest last), written a window at a time: the digests
        into the file, the keys into a side file appended after them, then the checksum."""
        path = f"{self.folder}/base"
        tmp = f"{self.folder}/.base.{uuid.uuid4().hex}.tmp"
        side = f"{tmp}.keys"
        head = len(_BASE_TAG) + 4
        try:
            with open(tmp, "w+b") as f, open(side, "w+b") as g:
                f.write(_BASE_TAG + bytes(12))
                n = 0
                for oids, keys in merged_runs(runs):
                    f.write(oids.tobytes())
                    g.write(keys.astype("<u8").tobytes())
                    n += len(oids)
                g.seek(0)
                while chunk := g.read(1 << 20):
                    f.write(chunk)
                count = n.to_bytes(8, "little")
                crc = zlib.crc32(count)
                f.seek(head + 8)
                while chunk := f.read(1 << 20):
                    crc = zlib.crc32(chunk, crc)
                f.seek(len(_BASE_TAG))
                f.write(crc.to_bytes(4, "big") + count)
            os.replace(tmp, path)
            return True
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return False
        finally:
            try:
                os.unlink(side)
            except OSError:
                pass

    def _load_in_memory(self, deltas: list[os.DirEntry[str]]) -> KnownKeys:
        """``load`` with the deltas merged in memory: small deltas not yet due to be folded, or a
        fold that could not be written as a file (then sorted whole, as before)."""
        known = self._base()
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
            _remove_merged(deltas)
        return known

    def _base(self) -> KnownKeys:
        """The base, mapped (a file in the new form, checked whole first), or read (the old form:
        rewritten in the new one); empty if there is none or it is damaged."""
        path = f"{self.folder}/base"
        run = _FileRun.open(path)
        if run is not None:
            try:
                return KnownKeys.of_file(run)
            except (OSError, ValueError):  # (not mappable: read as before)
                pass
            finally:
                run.close()
        blob = self._read_blob(path)
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


def _remove_merged(deltas: list[os.DirEntry[str]]) -> None:
    """Remove the deltas a fold merged (only those: a delta written meanwhile stays)."""
    for e in deltas:
        try:
            os.unlink(e.path)
        except OSError:
            pass


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
